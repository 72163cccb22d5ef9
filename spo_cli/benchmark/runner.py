"""Run small stdin/stdout Python programs on test inputs: the benchmark's own checker.

Two ways in:
- `run_inprocess(code, inputs)`: exec in this process. Only for programs we wrote ourselves (the
  generator's templates), to drop incorrect solutions that happen to pass every test.
- `run_subprocess(code, inputs)` / `run_many(jobs)`: one child `python -I` per program that runs
  all its inputs, with a wall-time alarm per test and rlimits (CPU, address space, file size,
  processes), in a fresh session and a private temp dir, with a scrubbed environment. This is a
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

# The child reads {"code", "inputs", "timeout"} as JSON on stdin, execs the code per input with a
# per-input wall-clock alarm, and writes [[status, stdout], ...] as JSON to its real stdout.
_CHILD = r"""
import io, json, signal, sys
job = json.loads(sys.stdin.read())
real_out = sys.stdout
class _Timeout(BaseException):
    pass
def _alarm(signum, frame):
    raise _Timeout()
signal.signal(signal.SIGALRM, _alarm)
res = []
try:
    code = compile(job["code"], "<solution>", "exec")
except (SyntaxError, ValueError):
    code = None
for text in job["inputs"]:
    if code is None:
        res.append(["RE", ""])
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
real_out.write(json.dumps(res))
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


def run_subprocess(
    code: str,
    inputs: Sequence[str],
    *,
    timeout: float = 2.0,
    memory_mb: int = 512,
) -> list[RunResult]:
    """Run `code` on every input in one child process; a crashed or killed child fails them all."""
    inputs = list(inputs)
    if not inputs:
        return []
    budget = timeout * len(inputs) + 5.0
    job = json.dumps({"code": code, "inputs": inputs, "timeout": timeout})
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
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
        except subprocess.TimeoutExpired:
            return [RunResult(TLE, "") for _ in inputs]
    try:
        res = json.loads(proc.stdout)
    except ValueError:
        # The program broke the harness (os._exit, killed by a limit, closed stdout, ...). Retry
        # input by input so one bad test does not fail the others.
        if len(inputs) == 1:
            return [RunResult(RE, "")]
        return [run_subprocess(code, [x], timeout=timeout, memory_mb=memory_mb)[0] for x in inputs]
    return [RunResult(s, o) for s, o in res]


def run_many(
    jobs: Iterable[tuple[str, Sequence[str]]],
    *,
    workers: int = 2,
    timeout: float = 2.0,
    memory_mb: int = 512,
) -> list[list[RunResult]]:
    """`run_subprocess` over many (code, inputs) jobs, `workers` children at a time, in order."""
    jobs = list(jobs)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(
            pool.map(lambda j: run_subprocess(j[0], j[1], timeout=timeout, memory_mb=memory_mb), jobs)
        )


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
