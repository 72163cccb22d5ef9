"""The issue-17 study: baselines users would pick, the paper's ablations, settings chosen on the
validation split only, held-out scored once at the end. examples/Makefile drives it; this script is
its recipes (what each run and evaluation is) and its tables.

    python study.py train NAME          # one training run (resumes an interrupted one)
    python study.py eval SPLIT LABEL    # spo eval of a run's checkpoints on validation or held-out
    python study.py choose              # choices.json: per method, the lr/corpus/step best on validation
    python study.py trl NAME            # TRL's GRPOTrainer peer (examples/trl_grpo.py in its own venv)
    python study.py store NAME          # copy a run's config and metrics into the results directory
    python study.py results [DIR]       # tables, plots and the claims table from the stored files

Run names (the Makefile lists them):
    g-METHOD-lrLR   the validation grid: every method at every lr of LRS, seed 0 (METHOD-all: the
                    offline corpus of every reference sample instead of the correct ones)
    m-METHOD-sSEED  the main runs of seeds 1, 2 at the chosen lr and corpus (seed 0: the grid run)
    a-VARIANT-sSEED ablations of SPO half-online at its chosen settings, seeds 0 and 1
    trl-grpo-sSEED  TRL's GRPOTrainer at our GRPO's chosen lr

Settings come from the environment (the Makefile exports them): OUT, RESULTS, STEPS, EVERY, BATCH,
ONLINE_N, LRS, EVAL_N, VAL_N, SPO, TRL_PYTHON. Every run uses one torch thread.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compare import _per_problem, _se, run_metrics, train_minutes  # noqa: E402  (one definition of each)

SEEDS = (0, 1, 2)  # per method: the grid's seed 0 and the Makefile's SEEDS_MAIN (TRL: SEEDS_TRL)
ALL_METHODS = ["rft", "grpo", "ppo", "spo-online", "spo-half", "spo-offline"]
METHODS = [m for m in ALL_METHODS if m in os.environ.get("METHODS", " ".join(ALL_METHODS)).split()]
CORPUS_CHOICE = {"spo-half": ["spo-half", "spo-half-all"], "spo-offline": ["spo-offline", "spo-offline-all"]}
ABLATIONS = {  # variant -> (what it changes from SPO half-online, spo train options)
    "nonterminal": ("objective: non-terminal (reverse-Q) targets", ["--loss", "nonterminal:ce"]),
    "advantage": ("objective: advantage regression (sigmoid)", ["--loss", "advantage"]),
    "sq": ("loss: squared instead of cross-entropy", ["--loss", "terminal:sq"]),
    "pts": ("PTS mc targets added to the corpus", ["--loss", "terminal:ce", "--loss", "pts=terminal:ce+mc:ce"]),
    "interval1": ("behaviour policy refreshed every step (not every 10)", ["--model-update-interval", "1"]),
    "clipseq": ("gradient clipped per sequence (not the batch's)", ["--clip-per-sequence"]),
}
SHORT = {"nonterminal": "non-terminal objective", "advantage": "advantage objective", "sq": "squared loss",
         "pts": "+ PTS mc targets", "interval1": "refresh every step", "clipseq": "clip per sequence"}
LABELS = {"reference": "reference", "rft": "RFT", "grpo": "GRPO", "ppo": "PPO", "spo-online": "SPO online",
          "spo-half": "SPO half-online", "spo-offline": "SPO offline-only", "trl-grpo": "TRL GRPOTrainer"}
COLORS = {"reference": "#888888", "rft": "#aa77cc", "grpo": "#dd8833", "ppo": "#cc5555", "spo-online": "#77cc44",
          "spo-half": "#22aa77", "spo-offline": "#2277aa", "trl-grpo": "#886644"}


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


OUT = Path(env("OUT", "../runs/spo-evidence"))
RESULTS = Path(env("RESULTS", "results/spo-evidence"))
DATA = OUT / "data"


def lr_tag(lr: str) -> str:
    return lr.replace("+", "")


def choices() -> dict:
    return json.loads((OUT / "choices.json").read_text())


# ---------------------------------------------------------------------- what a run is
def run_spec(name: str) -> tuple[str, str, int, dict]:
    """name -> (method, lr, seed, extra) where extra holds the ablation variant or the corpus."""
    if m := re.fullmatch(r"g-(.+)-lr(.+)", name):
        method, lr = m[1], m[2]
        return method, lr, 0, {}
    if m := re.fullmatch(r"m-(.+)-s(\d+)", name):
        c = choices()[m[1]]
        return c["variant"], c["lr"], int(m[2]), {}
    if m := re.fullmatch(r"a-(.+)-s(\d+)", name):
        c = choices()["spo-half"]
        return c["variant"], c["lr"], int(m[2]), {"ablation": m[1]}
    raise SystemExit(f"study.py: not a run name: {name}")


def train_args(method: str, lr: str, seed: int, extra: dict) -> list[str]:
    corpus = str(DATA / ("corpus-all" if method.endswith("-all") else "corpus-correct"))
    base = method.removesuffix("-all")
    args = {
        "rft": ["--algo", "rft", "--offline", corpus, "--offline-ratio", "0.5"],
        "grpo": ["--algo", "grpo", "--offline-ratio", "0"],
        "ppo": ["--algo", "ppo", "--offline-ratio", "0"],
        "spo-online": ["--offline-ratio", "0", "--loss", "terminal:ce"],
        "spo-half": ["--offline", corpus, "--offline-ratio", "0.5"],
        "spo-offline": ["--offline", corpus, "--offline-ratio", "1", "--loss", "terminal:ce"],
    }[base]
    if base == "spo-half":
        ablation = extra.get("ablation")
        opts = ABLATIONS[ablation][1] if ablation else []
        if "--loss" not in opts:
            opts = ["--loss", "terminal:ce", *opts]
        if ablation == "pts":
            # The searched trajectories are corpus trajectories (same ids) that PTS annotated with mc
            # targets; the offline reader keeps the first copy of an id, so the annotated file goes first.
            args = ["--offline", str(DATA / "pts.jsonl.zst"), *args]
        args += opts
    return args + [
        "-m", model_dir(), "-p", str(DATA / "train.jsonl"), "--values", str(DATA / "values.jsonl"),
        "--steps", env("STEPS", "300"), "--batch-size", env("BATCH", "16"), "--online-n", env("ONLINE_N", "4"),
        "--lr", lr, "--warmup", "5", "--beta", "0.1", "--save-every", env("EVERY", "100"), "--keep", "1000",
        "--temperature-range", "0.4,1.0", "--max-new-tokens", env("MAX_NEW_TOKENS", "256"),
        "--no-save-rollouts", "--threads", "1", "--judge-jobs", "1", "--seed", str(seed)]


def model_dir() -> str:
    return json.loads((DATA / "paths.json").read_text())["model_dir"]


def sh(cmd: list[str], log: Path, stdout=subprocess.DEVNULL) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as err:
        r = subprocess.run(cmd, stdout=stdout, stderr=err)
    if r.returncode:
        raise SystemExit(f"study.py: {' '.join(cmd[:3])} ... failed ({r.returncode}); see {log}")


def train(name: str) -> None:
    method, lr, seed, extra = run_spec(name)
    run = OUT / "runs" / name
    resume = ["--resume"] if (run / "checkpoints" / "latest").exists() else []
    if not resume and run.exists():
        shutil.rmtree(run)  # a run that died before its first checkpoint: start afresh
    sh([env("SPO", "spo"), "train", *train_args(method, lr, seed, extra), "--out", str(run), *resume],
       OUT / "logs" / f"{name}.log")
    (OUT / "runs" / f"{name}.done").write_text(json.dumps({"method": method, "lr": lr, "seed": seed, **extra}) + "\n")


# ---------------------------------------------------------------------- evaluations
def run_dir(label: str) -> Path:
    """An eval label (a run name, or METHOD-sSEED of the main table) -> the run directory."""
    if m := re.fullmatch(r"(.+)-s(\d+)", label):
        method, seed = m[1], int(m[2])
        if method == "trl-grpo":
            return OUT / "runs" / label
        if method in ALL_METHODS:
            c = choices()[method]
            return OUT / "runs" / (c["run"] if seed == 0 else f"m-{method}-s{seed}")
    return OUT / "runs" / label


def evaluate(split: str, label: str) -> None:
    problems = DATA / f"{split}.jsonl"
    n = env("VAL_N" if split == "validation" else "EVAL_N", "20")
    if label == "reference":
        models = [model_dir()]
    else:
        models = sorted(str(p) for p in (run_dir(label) / "checkpoints").glob("step-*"))
        chosen = _chosen_step(label)
        if chosen is not None:  # ablations and TRL: only the checkpoint of their reference method's step
            models = [m for m in models if m.endswith(f"step-{chosen:06d}")]
        if not models:
            raise SystemExit(f"study.py: no checkpoints of {label} in {run_dir(label)}")
    out = OUT / "eval" / f"{split}-{label}.json"
    tmp = out.with_suffix(".json.tmp")
    with open(tmp, "w") as f:
        sh([env("SPO", "spo"), "eval", "-m", *models, "-p", str(problems), "-n", n, "-k", "1,10", "--seed", "7",
            "--threads", "1", "--jobs", "1", "--no-plot"], OUT / "logs" / f"eval-{split}-{label}.log", stdout=f)
    os.replace(tmp, out)


def _chosen_step(label: str) -> int | None:
    """The one checkpoint step at which a run is scored on held-out: SPO half-online's chosen step for
    an ablation, our GRPO's for TRL; None (every checkpoint: the curves) for the main runs."""
    if label.startswith("a-"):
        return choices()["spo-half"]["step"]
    if label.startswith("trl-grpo"):
        return choices()["grpo"]["step"]
    return None


def _score(report: dict, step: int | None = None) -> dict:
    models = report["models"]
    return next(m for m in models if m.get("step") == step) if step is not None else models[-1]


def choose() -> None:
    """Per method: the (lr, corpus, checkpoint step) with the best validation pass@10 of the grid
    (ties: pass@1, then the earlier step). Written only when it changes (it dates the main runs)."""
    lrs = env("LRS", "2e-5 5e-5 1e-4").split()
    if not METHODS or not lrs:  # a choices.json without choices would date every main run
        raise SystemExit("study.py choose: METHODS or LRS is empty")
    out: dict = {}
    for method in METHODS:
        best = None
        for variant in CORPUS_CHOICE.get(method, [method]):
            for lr in lrs:
                report = json.loads((OUT / "eval" / f"validation-g-{variant}-lr{lr_tag(lr)}.json").read_text())
                for m in report["models"]:
                    key = (m["pass@10"]["mean"], m["pass@1"]["mean"], -(m.get("step") or 0))
                    if best is None or key > best[0]:
                        best = (key, {"variant": variant, "lr": lr, "step": m.get("step"),
                                      "run": f"g-{variant}-lr{lr_tag(lr)}",
                                      "validation_pass@10": round(m["pass@10"]["mean"], 4),
                                      "validation_pass@1": round(m["pass@1"]["mean"], 4)})
        out[method] = best[1]
    path = OUT / "choices.json"
    text = json.dumps(out, indent=1) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    print(text, end="")


# ---------------------------------------------------------------------- TRL's GRPOTrainer
def trl(name: str) -> None:
    seed = int(re.fullmatch(r"trl-grpo-s(\d+)", name)[1])
    c = choices()["grpo"]
    run = OUT / "runs" / name
    sh([env("TRL_PYTHON", "/work/venv-trl/bin/python"), str(HERE / "trl_grpo.py"), "--model", model_dir(),
        "--problems", str(DATA / "train.jsonl"), "--out", str(run), "--lr", c["lr"], "--seed", str(seed),
        "--steps", env("STEPS", "300"), "--batch-size", env("BATCH", "16"), "--num-generations", env("ONLINE_N", "4"),
        "--save-every", env("EVERY", "100"), "--max-new-tokens", env("MAX_NEW_TOKENS", "256")],
       OUT / "logs" / f"{name}.log")
    (OUT / "runs" / f"{name}.done").write_text(json.dumps({"method": "trl-grpo", "lr": c["lr"], "seed": seed}) + "\n")


# ---------------------------------------------------------------------- stored files
def store(name: str) -> None:
    """The files that rebuild the tables: the run's resolved config and its per-step metrics."""
    import zstandard

    src, dst = OUT / "runs" / name, RESULTS / "runs" / name
    dst.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "trl_config.json"):
        if (src / f).exists():
            shutil.copyfile(src / f, dst / f)
    if (src / "metrics.jsonl").exists():
        (dst / "metrics.jsonl.zst").write_bytes(zstandard.ZstdCompressor(level=19).compress(
            (src / "metrics.jsonl").read_bytes()))


# ---------------------------------------------------------------------- tables
def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _paired(a_runs: list[dict], b_runs: list[dict], k: str) -> tuple[float, float, int]:
    """Per-problem difference (a - b) of pass@k, each side averaged over its seeds; mean +- SE over problems."""
    pa = [_per_problem(m, k) for m in a_runs]
    pb = [_per_problem(m, k) for m in b_runs]
    common = sorted(set(pa[0]).intersection(*pa, *pb))
    diffs = [_mean([r[p] for r in pa]) - _mean([r[p] for r in pb]) for p in common]
    return _mean(diffs), _se(diffs), len(common)


def load_results(res: Path) -> dict:
    ev = {f.stem: json.loads(f.read_text()) for f in sorted((res / "eval").glob("*.json"))}
    ch = json.loads((res / "choices.json").read_text()) if (res / "choices.json").exists() else {}
    return {"eval": ev, "choices": ch}


def _runs_of(ev: dict, prefix: str) -> dict[int, dict]:
    return {int(m[1]): r for n, r in ev.items() if (m := re.fullmatch(re.escape(prefix) + r"-s(\d+)", n))}


def summarise(res: Path) -> dict:
    data = load_results(res)
    ev, ch = data["eval"], data["choices"]
    ks = ["pass@1", "pass@10"]
    ref = ev.get("heldout-reference")
    s: dict = {"choices": ch, "main": {}, "ablations": {}, "curves": {}, "grid": {}}
    finals: dict[str, list[dict]] = {}
    seeds_of: dict[str, list[int]] = {}  # method -> the seeds scored on held-out, in finals' order
    if ref:
        finals["reference"] = [_score(ref)]
    for method in ALL_METHODS + ["trl-grpo"]:
        runs = _runs_of(ev, f"heldout-{method}")
        if not runs:
            continue
        step = ch.get("grpo" if method == "trl-grpo" else method, {}).get("step")
        picked = []
        for seed in sorted(runs):
            steps = {m.get("step") for m in runs[seed]["models"]}
            picked.append(_score(runs[seed], step if step in steps else None))
        finals[method] = picked
        seeds_of[method] = sorted(runs)
        s["curves"][method] = _curve([runs[x] for x in sorted(runs)], ks)
    for method, models in finals.items():
        row = {"runs": len(models), "step": [m.get("step") for m in models],
               "minutes": [train_minutes(res / "runs", _name_of(method, seed, ch)) for seed in seeds_of.get(method, [])]}
        for k in ks:
            xs = [m[k]["mean"] for m in models]
            row[k] = {"mean": _mean(xs), "stderr": _se(xs) if len(xs) > 1 else models[0][k]["stderr"], "runs": xs}
            if "reference" in finals and method != "reference":
                d, e, n = _paired(models, finals["reference"], k)
                row[k].update(delta_ref=d, delta_ref_se=e, problems=n)
            if "spo-half" in finals and method not in ("spo-half", "reference"):
                d, e, _ = _paired(finals["spo-half"], models, k)
                row[k].update(spo_half_minus=d, spo_half_minus_se=e)
        s["main"][method] = row
    # ablations: SPO half-online seeds 0, 1 against each variant (same seeds), paired by problem
    base = {x: r for x, r in _runs_of(ev, "heldout-spo-half").items() if x < 2}
    step = ch.get("spo-half", {}).get("step")
    scored: dict[str, dict[int, dict]] = {}  # variant -> seed -> the scored checkpoint
    for variant in ABLATIONS:
        runs = _runs_of(ev, f"heldout-a-{variant}")
        if not runs or not base:
            continue
        seeds = sorted(set(runs) & set(base))
        v = [_score(runs[x], step) for x in seeds]
        b = [_score(base[x], step) for x in seeds]
        scored[variant] = dict(zip(seeds, v))
        row = {"what": ABLATIONS[variant][0], "seeds": seeds,
               "minutes": [train_minutes(res / "runs", f"a-{variant}-s{x}") for x in seeds]}
        for k in ks:
            d, e, n = _paired(v, b, k)
            row[k] = {"mean": _mean([m[k]["mean"] for m in v]), "base": _mean([m[k]["mean"] for m in b]),
                      "delta": d, "delta_se": e, "problems": n}
        s["ablations"][variant] = row
    # the paper ranks the squared loss above advantage regression too: compare the two directly
    if "sq" in scored and "advantage" in scored and (seeds := sorted(set(scored["sq"]) & set(scored["advantage"]))):
        d, e, n = _paired([scored["sq"][x] for x in seeds], [scored["advantage"][x] for x in seeds], "pass@10")
        s["sq_minus_advantage"] = {"delta": d, "delta_se": e, "problems": n, "seeds": seeds}
    for n, r in ev.items():
        if m := re.fullmatch(r"validation-g-(.+)-lr(.+)", n):
            s["grid"].setdefault(m[1], {})[m[2]] = [[x.get("step"), round(x["pass@1"]["mean"], 4),
                                                    round(x["pass@10"]["mean"], 4)] for x in r["models"]]
    if "validation-reference" in ev:
        vr = _score(ev["validation-reference"])
        s["grid"]["reference"] = {"-": [[0, round(vr["pass@1"]["mean"], 4), round(vr["pass@10"]["mean"], 4)]]}
    s["training"] = training_curves(res / "runs", ch)
    mins = [m for d in sorted((res / "runs").glob("*")) if (m := train_minutes(res / "runs", d.name)) is not None]
    s["compute"] = {"training_runs": len(mins), "training_minutes": round(sum(mins), 1)}
    s["claims"] = claims(s)
    return s


def training_curves(runs: Path, ch: dict, block: int = 10) -> dict:
    """Per method at its chosen settings, mean over its seeds, in blocks of `block` steps: the reward
    of the policy's own samples (TRL logs it as `reward`; SPO offline-only has none) and the wall
    time of a step. From the stored per-step metrics, so `make results` needs no run directory."""
    out: dict = {}
    for method in ALL_METHODS + ["trl-grpo"]:
        if method != "trl-grpo" and method not in ch:
            continue
        seeds = []
        for seed in SEEDS:
            rows = run_metrics(runs, _name_of(method, seed, ch))
            if rows:
                seeds.append(rows)
        if not seeds:
            continue
        curves = {}
        for key, field in (("reward_online", "reward" if method == "trl-grpo" else "reward_online"), ("step_s", "step_s")):
            pts = []
            for start in range(0, min(len(r) for r in seeds), block):
                xs = [r[field] for rows in seeds for r in rows[start:start + block] if r.get(field) is not None]
                if xs:
                    pts.append([start + block, round(_mean(xs), 4)])
            if pts:
                curves[key] = pts
        out[method] = {"seeds": len(seeds), **curves}
    return out


def _name_of(method: str, seed: int, ch: dict) -> str:
    if method == "trl-grpo":
        return f"trl-grpo-s{seed}"
    return ch[method]["run"] if seed == 0 else f"m-{method}-s{seed}"


def _curve(reports: list[dict], ks: list[str]) -> dict:
    steps = sorted(set.intersection(*[{m.get("step") or 0 for m in r["models"]} for r in reports]))
    out = {}
    for k in ks:
        pts = []
        for st in steps:
            xs = [next(m[k]["mean"] for m in r["models"] if (m.get("step") or 0) == st) for r in reports]
            pts.append([st, _mean(xs), _se(xs) if len(xs) > 1 else None])
        out[k] = pts
    return out


def _direction(d: float, e: float, sign: int) -> str:
    if any(isinstance(x, float) and math.isnan(x) for x in (d, e)):
        return "not tested"
    return "reproduced" if sign * d > e else "not reproduced"


def claims(s: dict) -> list[dict]:
    """The paper's qualitative claims beside ours: reproduced when our paired difference points the
    claimed way by more than its standard error, not reproduced otherwise, not tested without data."""
    main, abl = s["main"], s["ablations"]
    rows = []

    def add(claim: str, paper: str, ours: str | None, status: str) -> None:
        rows.append({"claim": claim, "paper": paper, "ours": ours or "—", "status": status})

    def delta(method: str, k: str, field="delta_ref") -> tuple[float, float] | None:
        r = main.get(method, {}).get(k, {})
        return (r[field], r[field + "_se"]) if field in r else None

    def fmt(d: tuple[float, float]) -> str:
        return f"{100 * d[0]:+.1f} ± {100 * d[1]:.1f}"

    for method in ("spo-half", "spo-online"):
        d = delta(method, "pass@10")
        add(f"{LABELS[method]} raises pass@10 over the reference", "pass@10 rises for SPO",
            d and f"Δ pass@10 {fmt(d)}", _direction(*d, 1) if d else "not tested")
    d = delta("ppo", "pass@10")
    add("PPO lowers pass@10 (diversity)", "pass@10 falls for PPO", d and f"Δ pass@10 {fmt(d)}",
        _direction(*d, -1) if d else "not tested")
    d = delta("ppo", "pass@1", "spo_half_minus")
    add("PPO has the best pass@1 (above SPO half-online)", "pass@1 PPO 8.4 vs SPO half-online 6.3",
        d and f"SPO half − PPO pass@1 {fmt(d)}", _direction(*d, -1) if d else "not tested")
    d = delta("spo-online", "pass@10", "spo_half_minus")
    add("Half-online beats online (offline data helps)", "pass@1 6.3 vs 6.0",
        d and f"SPO half − SPO online pass@10 {fmt(d)}", _direction(*d, 1) if d else "not tested")
    d = delta("spo-offline", "pass@10")
    add("SPO learns from offline data alone", "the method's premise (offline-only not reported)",
        d and f"Δ pass@10 {fmt(d)}", _direction(*d, 1) if d else "not tested")
    r = abl.get("sq")
    add("The squared loss learns fastest", "squared loss learns fastest in the loss ablation",
        r and f"sq − ce pass@10 {100 * r['pass@10']['delta']:+.1f} ± {100 * r['pass@10']['delta_se']:.1f}",
        _direction(r["pass@10"]["delta"], r["pass@10"]["delta_se"], 1) if r else "not tested")
    r = s.get("sq_minus_advantage")
    add("The squared loss beats advantage regression", "squared loss outperforms advantage regression (sigmoid, ce)",
        r and f"sq − advantage pass@10 {100 * r['delta']:+.1f} ± {100 * r['delta_se']:.1f}",
        _direction(r["delta"], r["delta_se"], 1) if r else "not tested")
    r = abl.get("nonterminal")
    add("Non-terminal (reverse-Q) targets with cross-entropy degrade", "significantly degrades performance",
        r and f"non-terminal − terminal pass@10 {100 * r['pass@10']['delta']:+.1f} ± {100 * r['pass@10']['delta_se']:.1f}",
        _direction(r["pass@10"]["delta"], r["pass@10"]["delta_se"], -1) if r else "not tested")
    r = abl.get("pts")
    add("MC targets from PTS help", "MC targets from PTS help",
        r and f"with − without pass@10 {100 * r['pass@10']['delta']:+.1f} ± {100 * r['pass@10']['delta_se']:.1f}",
        _direction(r["pass@10"]["delta"], r["pass@10"]["delta_se"], 1) if r else "not tested")
    add("Terminal loss on raw PTS rollouts does not help", "as stated", None, "not tested")
    r = abl.get("interval1")
    add("Refreshing the behaviour policy every 10 steps costs no quality", "SPO updates every 10 batches",
        r and f"interval 1 − 10 pass@10 {100 * r['pass@10']['delta']:+.1f} ± {100 * r['pass@10']['delta_se']:.1f}",
        ("reproduced" if r["pass@10"]["delta"] <= r["pass@10"]["delta_se"] else "not reproduced") if r else "not tested")
    add("SPO trains ~85% faster than PPO", "from fewer weight transfers between machines", None,
        "not tested (one machine: no transfers between nodes to save)")
    for method in ("ppo", "grpo", "rft", "spo-online", "trl-grpo"):
        d = delta(method, "pass@10", "spo_half_minus")
        if d:
            add(f"SPO half-online above {LABELS[method]} on pass@10 (this issue's goal)", "—",
                f"SPO half − {LABELS[method]} {fmt(d)}", _direction(*d, 1))
    return rows


def tables(s: dict) -> str:
    lines = ["## Held-out pass@k at the checkpoint chosen on validation", "",
             "| method | runs | lr | step | train min (median) | pass@1 | pass@10 | Δ pass@1 vs ref | Δ pass@10 vs ref | "
             "SPO half − it, pass@10 |", "|" + "---|" * 10]
    for method in ["reference"] + ALL_METHODS + ["trl-grpo"]:
        r = s["main"].get(method)
        if not r:
            continue
        c = s["choices"].get("grpo" if method == "trl-grpo" else method, {})
        mins = [m for m in r["minutes"] if m is not None]
        cells = [LABELS[method] + (" (all samples corpus)" if c.get("variant", "").endswith("-all") else ""),
                 str(r["runs"]), c.get("lr", "—"), "/".join(str(x) for x in sorted(set(r["step"]))) if method != "reference" else "—",
                 f"{statistics.median(mins):.1f}" if mins else "—"]
        for k in ("pass@1", "pass@10"):
            cells.append(f"{100 * r[k]['mean']:.1f} ± {100 * r[k]['stderr']:.1f}")
        for k in ("pass@1", "pass@10"):
            cells.append(f"{100 * r[k]['delta_ref']:+.1f} ± {100 * r[k]['delta_ref_se']:.1f}" if "delta_ref" in r[k] else "—")
        x = r["pass@10"]
        cells.append(f"{100 * x['spo_half_minus']:+.1f} ± {100 * x['spo_half_minus_se']:.1f}" if "spo_half_minus" in x else "—")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "pass@k: mean over the method's seeds ± the standard error over seeds (over problems where one run "
              "is scored). Δ columns are paired by problem: per held-out problem, the difference of the seed-averaged "
              "pass@k, mean ± standard error over the problems."]
    if s["ablations"]:
        lines += ["", "## Ablations of SPO half-online (paired with its own seeds)", "",
                  "| variant | seeds | pass@1 | pass@10 | Δ pass@1 vs SPO half | Δ pass@10 vs SPO half | train min (median) |",
                  "|" + "---|" * 7]
        for r in s["ablations"].values():
            mins = [m for m in r["minutes"] if m is not None]
            lines.append("| " + " | ".join([r["what"], ",".join(map(str, r["seeds"])),
                         f"{100 * r['pass@1']['mean']:.1f}", f"{100 * r['pass@10']['mean']:.1f}",
                         f"{100 * r['pass@1']['delta']:+.1f} ± {100 * r['pass@1']['delta_se']:.1f}",
                         f"{100 * r['pass@10']['delta']:+.1f} ± {100 * r['pass@10']['delta_se']:.1f}",
                         f"{statistics.median(mins):.1f}" if mins else "—"]) + " |")
    if s["choices"]:
        lines += ["", "## Chosen on validation (seed 0 of the grid; best pass@10, then pass@1, then the earlier step)", "",
                  "| method | corpus | lr | step | validation pass@1 | validation pass@10 |", "|" + "---|" * 6]
        for method, c in s["choices"].items():
            corpus = ("all judged" if c["variant"].endswith("-all") else "correct only") if method in CORPUS_CHOICE else "—"
            lines.append(f"| {LABELS.get(method, method)} | {corpus} | {c['lr']} | {c['step']} | "
                         f"{100 * c['validation_pass@1']:.1f} | {100 * c['validation_pass@10']:.1f} |")
    if s["grid"]:
        lines += ["", "## Validation grid (seed 0): pass@10 % at each checkpoint [step: pass@10]", "",
                  "| run | lr | checkpoints |", "|---|---|---|"]
        for method in sorted(s["grid"]):
            for lr, pts in sorted(s["grid"][method].items()):
                lines.append(f"| {method} | {lr} | " + ", ".join(f"{p[0]}: {100 * p[2]:.1f}" for p in pts) + " |")
    c = s.get("compute")
    if c and c["training_runs"]:
        lines += ["", f"Training compute stored here: {c['training_runs']} runs, {c['training_minutes'] / 60:.1f} hours of "
                  "optimiser steps (sum of every run's step wall times; one torch thread each, two runs side by side)."]
    if s["claims"]:
        lines += ["", "## The paper's claims beside ours", "", "| claim | paper | ours | status |", "|---|---|---|---|"]
        lines += [f"| {c['claim']} | {c['paper']} | {c['ours']} | {c['status']} |" for c in s["claims"]]
    return "\n".join(lines) + "\n"


def plot(s: dict, path: Path) -> bool:
    """summary.png: held-out pass@1 and pass@10 per method (bars), against the training step
    (curves), pass@10 against training wall-clock minutes (TRL's GRPOTrainer beside ours), and
    the ablations' paired differences from SPO half-online."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ks = ["pass@1", "pass@10"]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    methods = [m for m in ["reference"] + ALL_METHODS + ["trl-grpo"] if m in s["main"]]
    for j, k in enumerate(ks):
        ax = axes[0][j]
        ax.bar([LABELS[m] for m in methods], [100 * s["main"][m][k]["mean"] for m in methods],
               yerr=[100 * s["main"][m][k]["stderr"] for m in methods], capsize=4,
               color=[COLORS[m] for m in methods])
        ax.set_title(f"held-out {k} (%), checkpoint chosen on validation", fontsize=10)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        ax = axes[1][j]
        start = [[0, s["main"]["reference"][k]["mean"], None]] if "reference" in s["main"] else []
        for m, pts in s["curves"].items():
            pts = start + pts[k]  # every run starts from the reference model: its step 0
            ax.errorbar([p[0] for p in pts], [100 * p[1] for p in pts], yerr=[100 * (p[2] or 0) for p in pts],
                        marker="o", capsize=3, label=LABELS[m], color=COLORS[m])
        if "reference" in s["main"]:
            ax.axhline(100 * s["main"]["reference"][k]["mean"], color=COLORS["reference"], ls="--", label="reference")
        ax.set_xlabel("training step (16 trajectories each)")
        ax.set_title(f"held-out {k} (%) against the step, mean ± se over seeds", fontsize=10)
        ax.legend(fontsize=7)
    ax = axes[0][2]  # what each method's pass@10 cost in training time
    for m in methods:
        mins = [x for x in s["main"][m]["minutes"] if x is not None]
        r = s["main"][m]["pass@10"]
        if m == "reference":
            ax.axhline(100 * r["mean"], color=COLORS[m], ls="--", label="reference")
        elif mins:
            mid = statistics.median(mins)  # runs that shared the machine with other work take longer: the median
            ax.errorbar([mid], [100 * r["mean"]], xerr=[[mid - min(mins)], [max(mins) - mid]],
                        yerr=[100 * r["stderr"]], marker="s" if m == "trl-grpo" else "o", capsize=3,
                        color=COLORS[m], label=LABELS[m], ls="none")
    ax.set_xlabel("training minutes per run (median over seeds;\nbars: fastest to slowest seed)")
    ax.set_title("held-out pass@10 (%) against training time", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1][2]  # the ablations, paired with SPO half-online's own seeds
    abl = list(s["ablations"].items())
    if abl:
        ys = list(range(len(abl)))
        ax.barh(ys, [100 * r["pass@10"]["delta"] for _, r in abl],
                xerr=[100 * r["pass@10"]["delta_se"] for _, r in abl], capsize=3, color=COLORS["spo-half"])
        ax.set_yticks(ys, [SHORT.get(v, v) for v, _ in abl], fontsize=8)
        ax.axvline(0, color="#333333", lw=0.8)
        ax.invert_yaxis()
    ax.set_xlabel("Δ held-out pass@10 vs SPO half-online (points)")
    ax.set_title("ablations of SPO half-online", fontsize=10)
    fig.text(0.5, 0.005, "error bars: standard error across seeds (reference: across problems); the tables' "
             "deltas are paired by problem", ha="center", fontsize=8, color="#555555")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_training(s: dict, path: Path) -> bool:
    """training.png: the reward of each method's own samples and its step time against the step."""
    if not s["training"]:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, key, title in ((axes[0], "reward_online", "reward of the policy's own samples (mean of 10 steps)"),
                           (axes[1], "step_s", "seconds per step (mean of 10 steps)")):
        for m, c in s["training"].items():
            if key in c:
                ax.plot([p[0] for p in c[key]], [p[1] for p in c[key]], label=f"{LABELS[m]} ({c['seeds']} seed{'s' * (c['seeds'] > 1)})",
                        color=COLORS[m], ls="--" if m == "trl-grpo" else "-")
        ax.set_xlabel("training step (16 trajectories each)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def results(res: Path) -> dict:
    s = summarise(res)
    (res / "summary.json").write_text(json.dumps(s, indent=1))
    md = tables(s)
    (res / "summary.md").write_text(md)
    print(md, file=sys.stderr, end="")
    if plot(s, res / "summary.png"):
        print(f"plot: {res / 'summary.png'}", file=sys.stderr)
    if plot_training(s, res / "training.png"):
        print(f"plot: {res / 'training.png'}", file=sys.stderr)
    print(json.dumps({m: {k: round(r[k]["mean"], 4) for k in ("pass@1", "pass@10")} for m, r in s["main"].items()}))
    return s


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "train":
        train(args[0])
    elif cmd == "eval":
        evaluate(args[0], args[1])
    elif cmd == "choose":
        choose()
    elif cmd == "trl":
        trl(args[0])
    elif cmd == "store":
        store(args[0])
    elif cmd == "results":
        results(Path(args[0]) if args else RESULTS)
    else:
        raise SystemExit(f"study.py: unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
