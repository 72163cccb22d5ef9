"""pass@k reports (docs/math.md §10): sample n per problem, judge, estimate; table and plot.

    from spo_cli.evaluate import evaluate_models, evaluate_trajectories, plot_report
    report = evaluate_models(["run/step-000100", "run/step-000200"], problems, n=20, ks=(1, 10))
    report["models"][1]["pass@10"]     # {"mean": ..., "stderr": ...}
    plot_report(report, "run/pass_at_k.png")

The estimator is spo_cli.core.estimators (unbiased pass@k per problem; mean over problems with
the across-problem standard error). The report is one JSON-able dict:

    {"ks": [1, 10], "models": [{"model", "step", "n", "problems", "samples",
      "pass@1": {"mean", "stderr", "problems"}, ...,
      "per_problem": [{"problem_id", "n", "c", "pass@1": {"mean", "stderr"}, ...}]}], ...}

Choices where the paper is silent:
- Correct = a success in spo_cli.judge.outcome's sense (reward 1: every test passed). Judge
  errors (JE) are dropped from n and counted; an unjudged trajectory is bad input.
- Per-problem standard error: the jackknife over the problem's n samples (leave one out), which
  needs only the counts: c leave-outs give pass@k(n-1, c-1), n-c give pass@k(n-1, c). For k = 1
  it is sqrt(p(1-p)/(n-1)). Null when n - 1 < k.
- With already-judged trajectories, a problem with fewer than k samples is left out of pass@k's
  mean (counted in "problems" of that k); the unbiased estimator does not exist for it.
- The training step of a checkpoint: `spo_checkpoint.json` {"step": N} in it, else the number in
  a name like step-000100, else its position in the list.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from spo_cli.errors import BadInput, SpoError
from spo_cli.judge.client import Judge
from spo_cli.judge.outcome import is_success, judged_reward

EVAL_DEFAULTS = {"n": 20, "temperature": 0.4, "top_p": 0.95, "ks": (1, 10)}  # the paper's
CHECKPOINT_META = "spo_checkpoint.json"


# ---------------------------------------------------------------------------------------------
# The numbers


def pass_at_k_report(counts: dict[str, tuple[int, int]], ks: Sequence[int]) -> dict:
    """{problem_id: (n, c)} -> the pass@k part of a model's report (overall and per problem)."""
    from spo_cli.core.estimators import finite_or_none, jackknife_pass_at_k_stderr, pass_at_k, pass_at_k_mean

    per_problem = []
    for pid, (n, c) in counts.items():
        row: dict = {"problem_id": pid, "n": n, "c": c}
        for k in ks:
            if n >= k:
                row[f"pass@{k}"] = {"mean": float(pass_at_k(n, c, k)),
                                    "stderr": finite_or_none(jackknife_pass_at_k_stderr(n, c, k))}
            else:
                row[f"pass@{k}"] = None
        per_problem.append(row)
    out: dict = {"problems": len(counts), "samples": sum(n for n, _ in counts.values())}
    for k in ks:
        ok = [(n, c) for n, c in counts.values() if n >= k]
        if ok:
            est = pass_at_k_mean([n for n, _ in ok], [c for _, c in ok], k)
            out[f"pass@{k}"] = {"mean": est.value, "stderr": finite_or_none(est.stderr), "problems": len(ok)}
        else:
            out[f"pass@{k}"] = {"mean": None, "stderr": None, "problems": 0}
    out["per_problem"] = per_problem
    return out


def _tally(judged: Iterable[dict], group: Callable[[dict], str],
           stats: Counter) -> dict[str, dict[str, list[int]]]:
    """{group: {problem_id: [n, c]}} (first-seen order) from judged trajectories, `group` called
    on each usable one. JE is counted in stats['judge_errors'] and left out; an unjudged
    trajectory is a BadInput. Memory grows with problems, not trajectories."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for i, t in enumerate(judged, 1):
        r = judged_reward(t, i)
        if r is None:
            stats["judge_errors"] += 1
            continue
        nc = counts[group(t)].setdefault(t["problem_id"], [0, 0])
        nc[0] += 1
        nc[1] += int(is_success(r))
    return counts


def count_correct(judged: Iterable[dict], *, stats: Counter | None = None) -> dict[str, tuple[int, int]]:
    """{problem_id: (n, c)} from judged trajectories (first-seen order). JE is counted in
    stats['judge_errors'] and left out; an unjudged trajectory is a BadInput."""
    per = _tally(judged, lambda t: "", stats if stats is not None else Counter()).get("", {})
    return {pid: (n, c) for pid, (n, c) in per.items()}


# ---------------------------------------------------------------------------------------------
# Checkpoints


def checkpoint_step(path: str | Path, index: int) -> int:
    """The training step of a checkpoint directory (see the module docstring)."""
    p = Path(path)
    meta = p / CHECKPOINT_META
    if meta.is_file():
        try:
            step = json.loads(meta.read_text())["step"]
            return int(step)
        except (ValueError, KeyError, TypeError) as e:
            raise BadInput(f"cannot read the step: {type(e).__name__}: {e}", path=str(meta)) from None
    m = re.search(r"step[-_]?(\d+)", p.resolve().name if p.exists() else p.name)
    return int(m.group(1)) if m else index


# ---------------------------------------------------------------------------------------------
# Evaluating


def evaluate_trajectories(judged: Iterable[dict], ks: Sequence[int] = (1, 10), *,
                          group_by: str = "model") -> dict:
    """A report from already-judged trajectories, one entry per group: `model` (sampler.model,
    with the step from policy_version when every trajectory agrees), `policy_version`, or `none`."""
    if group_by not in ("model", "policy_version", "none"):
        raise BadInput(f"group by model, policy_version or none, not {group_by!r}")
    versions: dict[str, set] = defaultdict(set)

    def key(t: dict) -> str:
        if group_by == "model":
            g = str((t.get("sampler") or {}).get("model") or "trajectories")
        elif group_by == "policy_version":
            g = f"policy_version {t.get('policy_version')}"
        else:
            g = "trajectories"
        versions[g].add(t.get("policy_version"))
        return g

    stats: Counter = Counter()
    counts = _tally(judged, key, stats)
    models = []
    for idx, (g, per) in enumerate(counts.items()):
        vs = versions[g] - {None}
        step = next(iter(vs)) if len(vs) == 1 else idx
        entry = {"model": g, "step": step}
        entry.update(pass_at_k_report({p: (n, c) for p, (n, c) in per.items()}, ks))
        models.append(entry)
    models.sort(key=lambda m: m["step"])
    return {"ks": list(ks), "models": models, "judge_errors": stats["judge_errors"]}


def evaluate_models(models: Sequence[str], problems: Sequence[dict], *, n: int = 20,
                    ks: Sequence[int] = (1, 10), temperature: float = 0.4, top_p: float = 0.95,
                    max_new_tokens: int = 512, seed: int = 0, backend: str = "hf",
                    device: str = "auto", dtype: str = "auto", batch_size: int = 16,
                    judge: Judge | None = None, sampler_factory: Callable | None = None,
                    on_samples: Callable[[list[dict]], None] | None = None,
                    on_progress: Callable[[int], None] | None = None) -> dict:
    """Sample n per problem from each checkpoint, judge, and report pass@k per checkpoint.

    sampler_factory(model, SampleOptions) -> Sampler overrides the default (make_sampler with
    backend/device/dtype), e.g. for a live model in the trainer. on_samples gets each batch of
    judged samples (to keep them), on_progress the number of samples judged.
    """
    from spo_cli.sampling import SampleOptions, make_sampler

    bad = [k for k in ks if k > n]
    if bad:
        raise BadInput(f"pass@{bad[0]} needs at least {bad[0]} samples per problem; n is {n}")
    if not problems:
        raise BadInput("no problems to evaluate on")
    opts = SampleOptions(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                         seed=seed, source="eval", batch_size=batch_size)
    by_id = {}
    for p in problems:
        if p["id"] in by_id:
            raise BadInput(f"problem id {p['id']!r} appears twice")
        by_id[p["id"]] = p
    own_judge = judge is None
    judge = judge or Judge()
    report: dict = {"ks": list(ks), "n": n, "temperature": temperature, "top_p": top_p,
                    "seed": seed, "models": [], "judge_errors": 0}
    try:
        for idx, model in enumerate(models):
            step = checkpoint_step(model, idx) if isinstance(model, (str, Path)) else idx
            sampler = (sampler_factory(model, opts) if sampler_factory is not None else
                       make_sampler(backend, str(model), opts, device=device, dtype=dtype))
            stats: Counter = Counter()
            n_c: dict[str, list[int]] = {p["id"]: [0, 0] for p in problems}
            window = max(1, (8 * batch_size) // n)
            for start in range(0, len(problems), window):
                chunk = problems[start:start + window]
                judged = list(judge(sampler.sample(chunk, n), by_id))
                if on_samples is not None:
                    on_samples(judged)
                for pid, (nn, cc) in count_correct(judged, stats=stats).items():
                    n_c[pid][0] += nn
                    n_c[pid][1] += cc
                if on_progress is not None:
                    on_progress(len(judged))
            del sampler
            entry = {"model": str(model), "step": step}
            entry.update(pass_at_k_report({p: (a, b) for p, (a, b) in n_c.items() if a > 0}, ks))
            entry["judge_errors"] = stats["judge_errors"]
            report["judge_errors"] += stats["judge_errors"]
            report["models"].append(entry)
    finally:
        if own_judge:
            judge.close()
    return report


# ---------------------------------------------------------------------------------------------
# For people: a table and a plot


def render_table(report: dict):
    """A rich Table: one row per model, pass@k +- stderr per k."""
    from rich.table import Table

    ks = report["ks"]
    table = Table(title="pass@k (unbiased; +- standard error across problems)")
    table.add_column("model", overflow="fold")
    table.add_column("step", justify="right")
    table.add_column("problems", justify="right")
    table.add_column("samples", justify="right")
    for k in ks:
        table.add_column(f"pass@{k}", justify="right")
    for m in report["models"]:
        cells = []
        for k in ks:
            e = m.get(f"pass@{k}") or {}
            if e.get("mean") is None:
                cells.append("-")
            else:
                se = e.get("stderr")
                cells.append(f"{100 * e['mean']:.1f}%" + (f" +- {100 * se:.1f}" if se is not None else ""))
        table.add_row(_short(str(m["model"])), str(m["step"]), str(m["problems"]), str(m["samples"]), *cells)
    return table


def _short(name: str) -> str:
    """The last two path components of a checkpoint (run/step-000100), for a narrow table."""
    parts = Path(name).parts
    return str(Path(*parts[-2:])) if len(parts) > 2 else name


def plot_report(report: dict, path: str | Path, *, title: str | None = None) -> Path:
    """A PNG of pass@k (with +-1 standard error bars) against the training step, one line per k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted(report["models"], key=lambda m: m["step"])
    if not models:
        raise SpoError("nothing to plot: the report has no models")
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    try:
        for k in report["ks"]:
            pts = [(m["step"], m[f"pass@{k}"]["mean"], m[f"pass@{k}"]["stderr"]) for m in models
                   if (m.get(f"pass@{k}") or {}).get("mean") is not None]
            if not pts:
                continue
            xs, ys, es = zip(*pts)
            ax.errorbar(xs, [100 * y for y in ys], yerr=[100 * (e or 0.0) for e in es], marker="o",
                        capsize=3, label=f"pass@{k}")
        ax.set_xlabel("training step")
        ax.set_ylabel("pass@k (%)")
        ax.set_title(title or "pass@k against training step")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp, format="png")
        tmp.replace(path)
    finally:
        plt.close(fig)
    return path


def default_plot_path(models: Sequence[str]) -> Path | None:
    """Where the plot of several checkpoints of one run goes by default: their common parent
    directory (the run directory), as pass_at_k.png. None for a single model or unrelated dirs."""
    if len(models) < 2:
        return None
    parents = {Path(m).resolve().parent for m in models}
    if len(parents) != 1:
        return None
    return parents.pop() / "pass_at_k.png"
