"""Run the generator's own programs in this process, and decide with the judge's rule whether
they passed.

The generator writes every program of the benchmark itself (correct ones in several styles and
plausible wrong ones), runs each on tens of tests, and keeps a wrong program only if it fails a
hidden test. That is ~16,000 programs x ~14 tests for the default build: in this process it takes
seconds, in the judge's sandbox (a fresh isolated process per test) it would take over an hour
(measured: 308 programs x 14 tests, 0.43 s here against 67 s sandboxed on 2 cores). Trusted code
only: nothing here isolates or time-limits a program. Model samples go to the judge (`spo judge`,
spo_cli.evaluate).

What counts as passing is not decided here: `passes` asks spo_cli.judge.compare.outputs_match,
the rule the judge applies, so the generator and the judge cannot disagree about an output.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from spo_cli.judge import compare

OK, RE = "OK", "RE"  # the program ran to the end / raised (or exited non-zero)


@dataclass(frozen=True)
class RunResult:
    status: str  # OK | RE
    stdout: str


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


def run_trusted(code: str, inputs: Sequence[str]) -> list[RunResult]:
    """Execute our own `code` once per input in this process (fast; no isolation, no time limit)."""
    try:
        code_obj = compile(code, "<solution>", "exec")
    except SyntaxError:
        return [RunResult(RE, "") for _ in inputs]
    return [_exec_one(code_obj, x) for x in inputs]


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")  # as the judge encodes a test's output


def output_passes(result: RunResult, expected: str) -> bool:
    """Did one run end normally with output the judge would accept?"""
    return result.status == OK and compare.outputs_match(_bytes(result.stdout), _bytes(expected))


def passes(results: Sequence[RunResult], expected: Sequence[str]) -> bool:
    """Did every run end normally with output the judge would accept (its rule, not strict)?"""
    return len(results) == len(expected) and all(map(output_passes, results, expected))
