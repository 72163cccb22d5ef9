"""Held-out pass@1 / pass@10 and build time of the built-in benchmark's reference models.

    python bench/reference_model.py           # default + toy: fresh timed builds, all held-out
                                              # problems x 20 samples (~15-25 min on 2 busy cores)
    python bench/reference_model.py --reuse   # same evaluation, cached builds (build time from build.json)
    python bench/reference_model.py --quick   # toy only, cached, 29 held-out problems x 10 samples (about
                                              # a minute once the toy is cached)

Settings as in the paper's evaluation: n = 20 samples per problem, temperature 0.4, top-p 0.95,
unbiased pass@k = 1 - C(n-c, k)/C(n, k) (docs/math.md §10). Measured the way `spo eval` measures
any model (spo_cli.evaluate.evaluate_models): the hf sampler, every sample judged in the judge's
sandbox, the core estimators; sampling and judging alternate, never overlap. Torch threads: auto
(spo_cli.hw.resolve_threads: one thread on a busy machine, where two collapse throughput).

Peer, in the same run, on the same problems and through the same judge: nearest-statement
retrieval - for each held-out problem, submit the first correct solution of the train problem whose
statement shares the most words with it (Jaccard). It knows every family's program shape but copies
the train problem's constants, so it measures how much reading the statement's parameters matters;
the model must beat it to be doing more than recall. The floor, an untrained model, scores 0.

Build time is pessimistic when other work shares the CPU; the load average at the start and end is
reported with it. People-facing lines go to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _words(description: str) -> set[str]:
    text = description.split("\nExample\n")[0]
    return set(re.findall(r"[A-Za-z]+|\d+|\S", text))


class RetrievalPeer:
    """A stand-in sampler: answers each problem with the first solution of the train problem whose
    statement shares the most words with it (Jaccard), so the same evaluation judges it."""

    model_name = "retrieval-peer"

    def __init__(self, train_problems: list[dict]):
        self.index = [(_words(p["prompt"]), p["solutions"][0]) for p in train_problems]

    def sample(self, problems: list[dict], n: int) -> list[dict]:
        from spo_cli.schema import new_trajectory

        out = []
        for p in problems:
            w = _words(p["prompt"])
            best = max(self.index, key=lambda t: len(w & t[0]) / max(1, len(w | t[0])))
            out += [new_trajectory(problem_id=p["id"], prompt=p["prompt"], response=best[1],
                                   sampler={"model": self.model_name})] * n
        return out


class TimedSampler:
    """The hf sampler, timing each call: seconds and generated tokens per sampled problem."""

    def __init__(self, model: str, opts):
        from spo_cli.sampling import make_sampler

        self.inner = make_sampler("hf", model, opts)
        self.gen_s = 0.0
        self.tokens = 0
        self.per_problem_s: list[float] = []

    def sample(self, problems: list[dict], n: int) -> list[dict]:
        t0 = time.perf_counter()
        out = self.inner.sample(problems, n)
        dt = time.perf_counter() - t0
        self.gen_s += dt
        self.tokens += sum(len(t.get("response_ids") or ()) for t in out)
        self.per_problem_s.append(dt / max(1, len(problems)))
        return out


def run_config(name: str, args, cache_dir: str | None) -> dict:
    from spo_cli.benchmark.cache import ensure_benchmark
    from spo_cli.evaluate import evaluate_models
    from spo_cli.streams import read_records

    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    last = {"step": 0}

    def on_event(kind, data):
        if kind == "step" and (data["step"] % 100 == 0):
            log(f"  [{name}] step {data['step']}: loss {data['loss']:.3f}, {data['tok_per_s']:,.0f} tok/s")
            last.update(data)

    paths = ensure_benchmark(name, cache_dir, on_event=on_event)
    wall = time.perf_counter() - t0
    info = json.loads((paths.root / "build.json").read_text())
    fresh = last["step"] > 0
    log(f"[{name}] {'built' if fresh else 'cached'} at {paths.root} "
        f"(build {info['build_s']:.0f} s, {info['sft']['params']:,} params)")
    problems = list(read_records(paths.heldout_problems, "problem"))
    if args.problems:
        problems = problems[: args.problems]

    samplers: list[TimedSampler] = []

    def factory(model, opts):
        samplers.append(TimedSampler(model, opts))
        return samplers[-1]

    t_eval = time.perf_counter()
    report = evaluate_models([str(paths.model_dir)], problems, n=args.n, ks=(1, 10), temperature=args.temperature,
                             top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed,
                             sampler_factory=factory)
    eval_s = time.perf_counter() - t_eval
    res, timed = report["models"][0], samplers[0]
    peer = RetrievalPeer(list(read_records(paths.train_problems, "problem")))
    peer_res = evaluate_models(["retrieval-peer"], problems, n=1, ks=(1,),
                               sampler_factory=lambda model, opts: peer)["models"][0]
    family = {p["id"]: (p.get("meta") or {}).get("family") or "?" for p in problems}
    by_family: dict[str, list[float]] = defaultdict(list)
    for row in res["per_problem"]:
        by_family[family[row["problem_id"]]].append(row["c"] / row["n"])
    out = {
        "params": info["sft"]["params"],
        "vocab_size": info["sft"]["vocab_size"],
        "sft_steps": info["sft"]["steps"],
        "sft_tokens": info["sft"]["tokens"],
        "final_sft_loss": round(info["sft"]["final_loss"], 4),
        "build_s": info["build_s"],
        "build_fresh": fresh,
        "build_wall_s": round(wall, 1) if fresh else None,
        "build_threads": info["sft"].get("threads"),
        "sft_tok_per_s": info["sft"]["tok_per_s"],
        "load_avg_at_build_start": round(load0, 2) if fresh else None,
        **{f"pass@{k}": round(res[f"pass@{k}"]["mean"], 4) for k in (1, 10) if f"pass@{k}" in res},
        **{f"pass@{k}_stderr": round(res[f"pass@{k}"]["stderr"] or 0.0, 4) for k in (1, 10) if f"pass@{k}" in res},
        "problems": res["problems"],
        "n": args.n,
        "judge_errors": res["judge_errors"],
        "gen_s": round(timed.gen_s, 1),
        "judge_s": round(eval_s - timed.gen_s, 1),  # the rest of the evaluation: loading and judging
        "gen_tok_per_s": round(timed.tokens / max(timed.gen_s, 1e-9), 1),
        "median_gen_s_per_problem": round(statistics.median(timed.per_problem_s), 2),
        "eval_s": round(eval_s, 1),
        "retrieval_peer_pass@1": round(peer_res["pass@1"]["mean"], 4),
        "per_family_pass@1": {f: round(sum(v) / len(v), 3) for f, v in sorted(by_family.items())},
    }
    log(f"[{name}] held-out pass@1 {out['pass@1']:.3f}, pass@10 {out.get('pass@10', float('nan')):.3f} "
        f"on {out['problems']} problems x {out['n']} (retrieval peer pass@1 {out['retrieval_peer_pass@1']:.3f}); "
        f"eval {eval_s:.0f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="toy only, cached, 29 problems x 10 samples")
    ap.add_argument("--reuse", action="store_true", help="use cached builds instead of timing fresh ones")
    ap.add_argument("--configs", default=None, help="comma-separated: default,toy")
    ap.add_argument("--problems", type=int, default=None, help="first N held-out problems (default: all)")
    ap.add_argument("--n", type=int, default=None, help="samples per problem (default 20; quick 10)")
    ap.add_argument("--temperature", type=float, default=0.4)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--max-new-tokens", type=int, default=160, help="the models' programs are short")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for sampling (0: auto)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.quick:
        args.reuse = True
        args.configs = args.configs or "toy"
        args.problems = args.problems or 29
        args.n = args.n or 10
    args.n = args.n or 20
    configs = (args.configs or "default,toy").split(",")
    import torch

    from spo_cli.hw import resolve_threads

    torch.set_num_threads(resolve_threads(args.threads))

    result: dict = {"n": args.n, "temperature": args.temperature, "top_p": args.top_p, "cpus": os.cpu_count(),
                    "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="spo-bench-ref-") as tmp:
        cache_dir = None if args.reuse else tmp  # fresh builds go to a throwaway cache
        for name in configs:
            result[name] = run_config(name, args, cache_dir)
    result["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
