"""Wall clock of asynchronous training with weights sent to the workers every step vs every 10.

    python bench/async.py            # 3 repetitions per arm, 30 steps each (a few minutes)
    python bench/async.py --quick    # 1 repetition per arm, 10 steps (under a minute)

The paper (Sec 3.2, 4): PPO needs near on-policy rollouts, so the trainers send new weights to the
workers after every batch; SPO does not, and sends them every 10 batches; the paper reports an 85%
wall-clock speed-up from that alone. Here both arms run the same learner (`spo train --async`'s
AsyncTrainer, SPO terminal:ce, online rollouts only), the same budget (steps x batch size), the
same two `spo sample --serve` worker processes on 127.0.0.1, and differ in two settings only:

    interval 1:  --model-update-interval 1  --max-staleness 1
    interval 10: --model-update-interval 10 --max-staleness 10

i.e. each arm takes rollouts at most one weights publication old, the freshness its interval is
chosen for (the staleness bound is what makes frequent updates costly: rollouts sampled with old
weights are dropped and the learner waits for fresh ones; the transfers themselves cost a little
too). Timed: wall clock from the end of step 1 (the first weights push and first fresh rollouts are
start-up) to the end of the last step, and learner utilisation = time in forward/backward/optimiser
steps / wall clock. Arms alternate; figures are medians. `interval10_speedup` = wall(1) / wall(10).

Not comparable to the paper's 85%: there, an 8B model's weights cross a network and big batches
take minutes to sample; here a tiny random Llama (~0.3M parameters by default) on a shared 2-core
CPU, where a step and a round of sampling take tens of milliseconds and the speed-up comes mostly
from fewer dropped stale rollouts. Every process (learner, each worker) runs one torch thread;
each worker judges with one sandbox process.

People-facing lines go to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAPER_SPEEDUP = 1.85  # "speedups of about 85%": 1.85x the throughput


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def make_problems(k: int) -> list[dict]:
    return [{"id": f"a{i}", "prompt": f"Read a number and print it plus {i}.",
             "tests": [{"input": "1\n", "output": f"{1 + i}\n"}, {"input": "7\n", "output": f"{7 + i}\n"}],
             "time_limit": 2} for i in range(k)]


def start_worker(model: str, problems: Path, args, env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "spo_cli", "sample", "--serve", "-m", model, "-p", str(problems), "--port", "0",
         "-n", "2", "--batch-size", str(args.worker_rows), "--max-new-tokens", str(args.max_new_tokens),
         "--queue-size", str(args.queue_size), "--judge-jobs", "1", "--device", "cpu", "--threads", "1",
         "--temperature-range", "0.4,1.0", "--top-p", "0.95"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    box: list = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(300)
    if not box or not box[0]:
        proc.kill()
        raise SystemExit("a worker did not start")
    return proc, json.loads(box[0])["url"]


def run_arm(interval: int, rep: int, root: Path, model: str, problems: Path, urls: list[str], args) -> dict:
    from spo_cli.train.async_loop import AsyncConfig, AsyncTrainer
    from spo_cli.train.config import TrainConfig

    cfg = TrainConfig(model=model, out=str(root / f"run-i{interval}-r{rep}"), problems=[str(problems)],
                      offline_ratio=0.0, batch_size=args.batch_size, online_n=1, steps=args.steps,
                      model_update_interval=interval, max_staleness=interval, lr=1e-4, warmup=0,
                      missing_value="fallback:-0.5", save_every=10 ** 9, save_rollouts=False, device="cpu",
                      max_new_tokens=args.max_new_tokens)
    trainer = AsyncTrainer(cfg, AsyncConfig(workers=urls, rollout_wait=300, worker_timeout=60))
    t0 = t1 = 0.0
    learn = wait = publish = 0.0
    dropped = used = 0
    stale = []
    try:
        for m in trainer.steps():
            if m["step"] == 1:
                t0 = time.perf_counter()
                continue
            learn += m["learn_s"]
            wait += m["wait_s"]
            publish += m["publish_s"]
            dropped += m["rollouts_dropped_stale"]
            used += m["online_rows"]
            stale.append(m["staleness"])
            if m["step"] == args.steps:
                t1 = time.perf_counter()
                break  # no final checkpoint: not part of the comparison
    finally:
        trainer.close()
    wall = t1 - t0
    return {"wall_s": wall, "learner_util": learn / wall, "wait_s": wait, "publish_s": publish,
            "dropped_frac": dropped / max(1, dropped + used), "staleness_mean": statistics.mean(stale),
            "pushes": trainer.published_version}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition per arm, 10 steps (under a minute)")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps per arm (default 30; quick 10)")
    ap.add_argument("--repeats", type=int, default=None, help="repetitions per arm (default 3; quick 1)")
    ap.add_argument("--batch-size", type=int, default=8, help="online rollouts per step")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--worker-rows", type=int, default=8, help="rollouts per sampling round of a worker")
    ap.add_argument("--queue-size", type=int, default=32, help="each worker's queue")
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=64, help="tiny model width (2 layers)")
    args = ap.parse_args()
    args.steps = args.steps or (10 if args.quick else 30)
    args.repeats = args.repeats or (1 if args.quick else 3)

    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    from spo_cli.runtime import quiet_libraries
    from spo_cli.streams import write_records
    from tests.tinymodel_util import build_tiny_model

    quiet_libraries()
    os.environ.setdefault("SPO_QUIET", "1")
    env = dict(os.environ, OMP_NUM_THREADS="1", SPO_QUIET="1")
    env.pop("SPO_TOKEN", None)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spo-bench-async-") as tmp:
        root = Path(tmp)
        model = str(build_tiny_model(root / "model", chat_template=True, hidden_size=args.hidden))
        n_params = sum(p.numel() for p in __import__("transformers").AutoModelForCausalLM.from_pretrained(model).parameters())
        problems = root / "problems.jsonl"
        write_records(problems, make_problems(8))
        log(f"bench/async: {args.workers} workers, model {n_params / 1e6:.2f}M params, {args.steps} steps x "
            f"{args.batch_size} rollouts per arm, {args.repeats} repetition(s), 1 torch thread per process")
        procs = []
        try:
            urls = []
            for _ in range(args.workers):
                p, u = start_worker(model, problems, args, env)
                procs.append(p)
                urls.append(u)
            results: dict[int, list[dict]] = {1: [], 10: []}
            for rep in range(args.repeats):
                for interval in ((1, 10) if rep % 2 == 0 else (10, 1)):
                    r = run_arm(interval, rep, root, model, problems, urls, args)
                    results[interval].append(r)
                    log(f"  interval {interval:2d} rep {rep}: wall {r['wall_s']:.2f} s, learner busy "
                        f"{100 * r['learner_util']:.0f}%, stale rollouts dropped {100 * r['dropped_frac']:.0f}%, "
                        f"mean staleness {r['staleness_mean']:.2f}")
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()

    def med(i: int, k: str) -> float:
        return statistics.median(r[k] for r in results[i])

    speedup = med(1, "wall_s") / med(10, "wall_s")
    out = {
        "interval10_speedup": round(speedup, 3),
        "paper_interval10_speedup": PAPER_SPEEDUP,
        "interval1_wall_s": round(med(1, "wall_s"), 3), "interval10_wall_s": round(med(10, "wall_s"), 3),
        "interval1_learner_util": round(med(1, "learner_util"), 3),
        "interval10_learner_util": round(med(10, "learner_util"), 3),
        "interval1_dropped_frac": round(med(1, "dropped_frac"), 3),
        "interval10_dropped_frac": round(med(10, "dropped_frac"), 3),
        "interval1_publish_s": round(med(1, "publish_s"), 4), "interval10_publish_s": round(med(10, "publish_s"), 4),
        "steps": args.steps, "batch_size": args.batch_size, "repeats": args.repeats, "workers": args.workers,
        "model_params": n_params, "threads_per_process": 1, "bench_s": round(time.perf_counter() - t_start, 1),
    }
    log(f"interval 1 vs 10: {out['interval1_wall_s']:.2f} s vs {out['interval10_wall_s']:.2f} s -> "
        f"{speedup:.2f}x (paper: {PAPER_SPEEDUP}x, i.e. 85% faster); learner busy "
        f"{100 * out['interval1_learner_util']:.0f}% vs {100 * out['interval10_learner_util']:.0f}%")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
