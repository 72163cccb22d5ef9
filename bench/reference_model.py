"""Held-out pass@1 / pass@10 and build time of the built-in benchmark's reference models.

    python bench/reference_model.py           # default + toy: fresh timed builds, all held-out
                                              # problems x 20 samples (~15-25 min on 2 busy cores)
    python bench/reference_model.py --reuse   # same evaluation, cached builds (build time from build.json)
    python bench/reference_model.py --quick   # toy only, cached, 29 held-out problems x 10 samples (< 1 min
                                              # once the toy is cached)

Settings as in the paper's evaluation: n = 20 samples per problem, temperature 0.4, top-p 0.95,
unbiased pass@k = 1 - C(n-c, k)/C(n, k) (MATH.md section 10). Sampling with transformers
`generate` (torch threads: auto, see tinymodel.resolve_threads), then every distinct program is run
on all the problem's tests in a child process (spo_cli.benchmark.runner); the two never overlap.

Peer, in the same run, on the same problems: nearest-statement retrieval - for each held-out
problem, submit the first correct solution of the train problem whose statement shares the most
words with it (Jaccard). It knows every family's program shape but copies the train problem's
constants, so it measures how much reading the statement's parameters matters; the model must beat
it to be doing more than recall. The floor, an untrained model, scores 0.

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _words(description: str) -> set[str]:
    text = description.split("\nExample\n")[0]
    return set(re.findall(r"[A-Za-z]+|\d+|\S", text))


def retrieval_peer(train_rows: list[dict], problems: list[dict], workers: int = 2) -> float:
    """Fraction of held-out problems solved by the nearest train problem's first solution."""
    from spo_cli.benchmark.evaluate import judge_samples

    index = [(_words(r["description"]), r["solutions"]["solution"][0]) for r in train_rows]
    picks = []
    for p in problems:
        w = _words(p["prompt"])
        best = max(index, key=lambda t: len(w & t[0]) / max(1, len(w | t[0])))
        picks.append([best[1]])
    counts = judge_samples(problems, picks, workers=workers)
    return sum(counts) / max(1, len(counts))


def run_config(name: str, args, cache_dir: str | None) -> dict:
    from spo_cli.benchmark.cache import ensure_benchmark, read_jsonl
    from spo_cli.benchmark.evaluate import evaluate
    from spo_cli.importers import from_codecontests

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
    rows = read_jsonl(paths.heldout_problems)
    problems = [from_codecontests(r) for r in rows]
    if args.problems:
        problems = problems[: args.problems]
    rates = []

    t_eval = time.perf_counter()
    res = evaluate(
        paths.model_dir, problems, n=args.n, ks=(1, 10), temperature=args.temperature, top_p=args.top_p,
        seed=args.seed, on_batch=lambda k: rates.append(time.perf_counter()),
    )
    eval_s = time.perf_counter() - t_eval
    peer = retrieval_peer(read_jsonl(paths.train_problems), problems)
    batch_s = [b - a for a, b in zip(rates, rates[1:])]
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
        **res.summary(),
        "median_batch_s": round(statistics.median(batch_s), 2) if batch_s else None,
        "eval_s": round(eval_s, 1),
        "retrieval_peer_pass@1": round(peer, 4),
        "per_family_pass@1": {f: round(v[1], 3) for f, v in res.per_family.items()},
    }
    log(f"[{name}] held-out pass@1 {out['pass@1']:.3f}, pass@10 {out.get('pass@10', float('nan')):.3f} "
        f"on {out['problems']} problems x {out['n']} (retrieval peer pass@1 {peer:.3f}); eval {eval_s:.0f} s")
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
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.quick:
        args.reuse = True
        args.configs = args.configs or "toy"
        args.problems = args.problems or 29
        args.n = args.n or 10
    args.n = args.n or 20
    configs = (args.configs or "default,toy").split(",")

    result: dict = {"n": args.n, "temperature": args.temperature, "top_p": args.top_p, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="spo-bench-ref-") as tmp:
        cache_dir = None if args.reuse else tmp  # fresh builds go to a throwaway cache
        for name in configs:
            result[name] = run_config(name, args, cache_dir)
    result["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
