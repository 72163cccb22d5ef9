"""Run small stdin/stdout Python programs on test inputs: the benchmark's own checker.

Two ways in:
- `run_inprocess(code, inputs)`: exec in this process. Only for programs we wrote ourselves (the
  generator's templates), to drop incorrect solutions that happen to pass every test.
- `run_programs(codes, inputs)` / `run_subprocess(code, inputs)` / `run_many(jobs)`: a child
  `python -I` that runs programs on all their inputs, with a wall-time alarm per test and rlimits
  (CPU, address space, file size, processes), in a fresh session and a private temp dir, with a scrubbed environment. This is a
  guard against accidents (infinite loops, runaway memory) in tiny-model samples and in tests,
  NOT a sandbox for hostile code: that is the judge's job (`spo judge`).

Output comparison (`outputs_match`) follows CodeContests: whitespace-separated tokens,
case-insensitive, numbers equal within 1e-6 (absolute or relative). `strict=True` compares tokens
exactly.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

# Status of one program on one input.
OK, RE, TLE = "OK", "RE", "TLE"


@dataclass(frozen=True)
class RunResult:
    status: str  # OK | RE | TLE (the program ran to the end / raised / ran out of time)
    stdout: str


def _tokens_equal(a: str, b: str) -> bool:
    if a.lower() == b.lower():
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) or math.isnan(y):
        return False
    return abs(x - y) <= 1e-6 * max(1.0, abs(y))


def outputs_match(got: str, expected: str, *, strict: bool = False) -> bool:
    """CodeContests-style comparison of a program's stdout with the expected output."""
    g, e = got.split(), expected.split()
    if len(g) != len(e):
        return False
    if strict:
        return g == e
    return all(_tokens_equal(x, y) for x, y in zip(g, e))


# ---------------------------------------------------------------------------------------------
# In-process execution (trusted code only)


def _exec_one(code_obj, stdin_text: str) -> RunResult:
    old_in, old_out = sys.stdin, sys.stdout
    buf_in = io.TextIOWrapper(io.BytesIO(stdin_text.encode()), encoding="utf-8")
    out = io.StringIO()
    sys.stdin, sys.stdout = buf_in, out
    status = OK
    try:
        exec(code_obj, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as e:
        if e.code not in (None, 0):
            status = RE
    except Exception:  # noqa: BLE001 - any error of the program is a runtime error
        status = RE
    finally:
        sys.stdin, sys.stdout = old_in, old_out
    return RunResult(status, out.getvalue())


def run_inprocess(code: str, inputs: Sequence[str]) -> list[RunResult]:
    """Execute trusted `code` once per input in this process (fast; no time limit)."""
    try:
        code_obj = compile(code, "<solution>", "exec")
    except SyntaxError:
        return [RunResult(RE, "") for _ in inputs]
    return [_exec_one(code_obj, x) for x in inputs]


# ---------------------------------------------------------------------------------------------
# Child-process execution

# The child reads {"codes", "inputs", "timeout"} as JSON on stdin, execs each code on each input
# with a per-input wall-clock alarm (after a time-out, the program's remaining inputs are marked
# TLE without running), and writes [[[status, stdout], ...] per code] as JSON to its real stdout.
# Programs share the interpreter: one that rebinds builtins can disturb the next; acceptable for
# the benchmark's own programs and tiny-model samples, not for hostile code.
_CHILD = r"""
import io, json, signal, sys
job = json.loads(sys.stdin.read())
real_out = sys.stdout
class _Timeout(BaseException):
    pass
def _alarm(signum, frame):
    raise _Timeout()
signal.signal(signal.SIGALRM, _alarm)
all_res = []
for src in job["codes"]:
    res = []
    try:
        code = compile(src, "<solution>", "exec")
    except (SyntaxError, ValueError):
        code = None
    for text in job["inputs"]:
        if code is None or (res and res[-1][0] == "TLE"):
            res.append(["RE" if code is None else "TLE", ""])  # after a time-out, skip the rest
            continue
        sys.stdin = io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8")
        out = io.StringIO()
        sys.stdout = out
        status = "OK"
        signal.setitimer(signal.ITIMER_REAL, job["timeout"])
        try:
            exec(code, {"__name__": "__main__"})
        except _Timeout:
            status = "TLE"
        except SystemExit as e:
            if e.code not in (None, 0):
                status = "RE"
        except BaseException:
            status = "RE"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout = real_out
        res.append([status, out.getvalue()[:65536]])
    all_res.append(res)
real_out.write(json.dumps(all_res))
real_out.flush()
"""


def _limits(cpu_s: int, mem_bytes: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))
        except (ValueError, OSError):
            pass

    return apply


def run_programs(
    codes: Sequence[str],
    inputs: Sequence[str],
    *,
    timeout: float = 2.0,
    memory_mb: int = 512,
) -> list[list[RunResult]]:
    """Run every program on every input in one child process (one interpreter start for all).

    If a program breaks the child (os._exit, a limit kills it, stdout closed, ...), the programs are
    rerun one child each, and a program that breaks its own child is rerun input by input, so one
    bad program or test never fails the others."""
    codes, inputs = list(codes), list(inputs)
    if not codes or not inputs:
        return [[] for _ in codes]
    # Each program times out at most once (its later inputs are skipped), so: one time limit per
    # program plus a generous 0.2 s per normal run on a busy machine.
    budget = len(codes) * (timeout + 0.2 * len(inputs)) + 5.0
    job = json.dumps({"codes": codes, "inputs": inputs, "timeout": timeout})
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
    res = None
    with tempfile.TemporaryDirectory(prefix="spo-bench-run-") as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _CHILD],
                input=job,
                capture_output=True,
                text=True,
                timeout=budget,
                cwd=tmp,
                env=env,
                start_new_session=True,
                preexec_fn=_limits(int(budget) + 1, memory_mb << 20),
            )
            res = json.loads(proc.stdout)
        except subprocess.TimeoutExpired:
            if len(codes) == 1 and len(inputs) == 1:
                return [[RunResult(TLE, "")]]
        except ValueError:
            if len(codes) == 1 and len(inputs) == 1:
                return [[RunResult(RE, "")]]
    if res is not None:
        return [[RunResult(st, out) for st, out in r] for r in res]
    if len(codes) > 1:
        return [run_programs([c], inputs, timeout=timeout, memory_mb=memory_mb)[0] for c in codes]
    return [[run_programs(codes, [x], timeout=timeout, memory_mb=memory_mb)[0][0] for x in inputs]]


def run_subprocess(
    code: str,
    inputs: Sequence[str],
    *,
    timeout: float = 2.0,
    memory_mb: int = 512,
) -> list[RunResult]:
    """Run `code` on every input in one child process."""
    return run_programs([code], inputs, timeout=timeout, memory_mb=memory_mb)[0]


def run_many(
    jobs: Iterable[tuple[str, Sequence[str]]],
    *,
    workers: int = 2,
    timeout: float = 2.0,
    memory_mb: int = 512,
    per_child: int = 16,
) -> list[list[RunResult]]:
    """Results of many (code, inputs) jobs, in order: jobs with the same inputs share a child
    process, up to `per_child` programs each, and `workers` children run at a time."""
    jobs = [(c, tuple(i)) for c, i in jobs]
    groups: dict[tuple, list[int]] = {}
    for idx, (_, inputs) in enumerate(jobs):
        groups.setdefault(inputs, []).append(idx)
    batches = []
    for inputs, idxs in groups.items():
        for k in range(0, len(idxs), per_child):
            batches.append((inputs, idxs[k : k + per_child]))
    out: list[list[RunResult]] = [[] for _ in jobs]

    def work(batch):
        inputs, idxs = batch
        return idxs, run_programs([jobs[i][0] for i in idxs], inputs, timeout=timeout, memory_mb=memory_mb)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for idxs, results in pool.map(work, batches):
            for i, r in zip(idxs, results):
                out[i] = r
    return out


def passes(results: Sequence[RunResult], expected: Sequence[str]) -> bool:
    """True when every run finished normally with the expected output."""
    return len(results) == len(expected) and all(
        r.status == OK and outputs_match(r.stdout, e) for r, e in zip(results, expected)
    )


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
