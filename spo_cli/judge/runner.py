"""Judging: a response and a problem in, the reward fields out; many in parallel, streaming.

    judge_response(problem, response, opts) -> {"reward", "verdict", "tests_passed",
                                                "tests_total", "judge": {...}}
    judge_stream(trajectories, problems_by_id, opts, jobs) -> judged trajectories, input order

Test styles (chosen from the problem record):
- stdio: `tests` [{input, output}]: the program reads stdin; its stdout is compared outside the
  sandbox (compare.outputs_match). One isolated run per test.
- call: `fn_name` + `tests` (TACO): each input is a JSON list of arguments; the function's return
  value comes back as plain data (plain.py) and is compared outside (compare.call_result_matches).
  One run per test.
- assert: `test_code` (+ `entry_point`): HumanEval's `check(candidate)` is one test; otherwise every
  top-level `assert` of test_code is a test (MBPP) and the other statements are run first. One run:
  the tests run in a sandboxed tester process of their own, which calls the program's functions
  in the program's process and gets plain data back (zygote.py). The tester binds, of the
  program's top-level names, only those the test code uses and does not itself define (nor the
  problem's prompt code, nor Python's builtins); modules by importing its own copy.

Verdicts come only from trusted code: the judge's comparisons, the tester's asserts, the runner's
exit statuses, CPU times and cgroup counters. Nothing a program writes, returns or patches can turn
a failing run into a passing one.

Verdicts: OK, WA (wrong output, failed assert, or output over the limit), TLE (CPU time over the
limit, SIGXCPU, or wall time over 2x the limit + 1 s), MLE (MemoryError under the address-space
limit, or the run's cgroup over its memory limit), RE (exception, non-zero exit, signal), CE (the
program does not compile), JE (the judge itself failed: reward null, never counted against the
program; a program cannot cause one). Reward: 1.0 when every test passes, else 0.0; with
`partial`, tests passed / tests total (all tests are then run).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import marshal
import os
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from spo_cli.judge import memory as memory_mod
from spo_cli.judge import plain
from spo_cli.judge.compare import call_result_matches, outputs_match
from spo_cli.judge.extract import extract_program
from spo_cli.judge.sandbox import (
    MECHANISMS,
    Limits,
    Sandbox,
    SandboxCrashed,
    SandboxUnavailable,
    probe,
)


@dataclass(frozen=True)
class JudgeOptions:
    partial: bool = False  # reward = fraction of tests passed (implies all_tests)
    all_tests: bool = False  # run every test even after a failure
    strict: bool = False  # byte-exact output comparison (and exact floats in call results)
    time_scale: float = 1.0  # multiplies every time limit
    default_time_limit: float = 3.0  # seconds per test when the problem gives none
    default_memory_mb: int = 512  # when the problem gives none
    extract: bool = True  # take the program out of markdown fences / chat text
    unsafe_no_isolation: bool = False  # allow rlimits-only runs where namespaces do not work
    python: str | None = None  # interpreter for the programs (default: this one's base)
    sandbox: str = "auto"  # auto (strongest that works), namespaces or bwrap
    nproc: int = 32  # processes + threads a program may have
    nofile: int = 64
    fsize_mb: int = 16  # largest file a program may write
    tmp_mb: int = 32  # size of its private /tmp (and /dev/shm)
    output_limit_mb: int = 32  # stdout + stderr a run may write (the same for every test)
    memory: str = "auto"  # memory accounting: auto, cgroup2, cgroup1 or rlimit (memory.py)
    allow_packages: tuple[str, ...] = ()  # importable beyond the standard library, everywhere

    @property
    def run_all(self) -> bool:
        return self.all_tests or self.partial


# ------------------------------------------------------------------------------------------
# Test plans

@dataclass
class Plan:
    mode: str  # stdio | call | assert
    tests: list  # stdio: [(input bytes, expected bytes)]; call: [(args json, expected value)];
    #              assert: [test source]
    prelude: str = ""
    fn_name: str | None = None
    time_limit: float = 3.0
    memory_mb: float = 512
    entry_point: str | None = None
    names: list = field(default_factory=list)  # assert: names the test code uses
    prompt_code: str | None = None  # assert: the problem's own code the tests need (HumanEval)
    packages: tuple = ()
    error: str | None = None  # the problem cannot be judged (JE)
    compiled: dict = field(default_factory=dict)  # run_all -> the tests, marshalled (this
    #                                               interpreter's bytecode), made once


def _tester_request(plan: Plan, opts: JudgeOptions, sb: Sandbox) -> dict:
    """What the tester reads: the test code, and, when the runner's interpreter has this one's
    bytecode magic, the same code compiled once here (the tester then only unmarshals it)."""
    req = {"prompt": plan.prompt_code, "prelude": plan.prelude, "tests": plan.tests,
           "names": plan.names, "entry_point": plan.entry_point,
           "stop_on_fail": not opts.run_all}
    if sb.magic == _MAGIC:
        blob = plan.compiled.get("code")
        if blob is None:
            blob = plan.compiled["code"] = marshal.dumps((
                compile(plan.prompt_code, "prompt.py", "exec") if plan.prompt_code else None,
                compile(plan.prelude or "", "test.py", "exec"),
                [compile(t, "test.py", "exec") for t in plan.tests]))
        req["compiled"] = blob
    return req


_MAGIC = importlib.util.MAGIC_NUMBER.hex()


def _split_asserts(test_code: str) -> tuple[str, list[str]]:
    """MBPP-style test code: (everything but the top-level asserts, [each assert's source]).
    The asserts' lines are blanked in the prelude so line numbers in tracebacks stay right."""
    tree = ast.parse(test_code)
    lines = test_code.split("\n")
    tests = []
    for node in tree.body:
        if isinstance(node, ast.Assert):
            a, b = node.lineno - 1, node.end_lineno
            tests.append("\n".join(lines[a:b]).strip() + "\n")
            for k in range(a, b):
                lines[k] = ""
    return "\n".join(lines), tests


def _names_used(*sources: str) -> set[str]:
    return {n.id for src in sources for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Name)}


def _defined(tree: ast.Module) -> set[str]:
    """Top-level names a module defines (functions, classes, assignments, imports)."""
    out = set()
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in n.names}
        elif isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            out |= {x.id for t in targets for x in ast.walk(t) if isinstance(x, ast.Name)}
    return out


def _prompt_code(problem: dict, entry: str | None, used: set[str]) -> str | None:
    """The prompt, when it is the code the program completes (HumanEval: it defines the entry
    point) and defines something else the tests use (helpers like HumanEval/32's poly): those
    then come from the problem, not from the program. None when the tests need nothing of it."""
    prompt = problem.get("prompt")
    if not entry or not isinstance(prompt, str):
        return None
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError):
        return None
    if not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == entry
               for n in tree.body):
        return None
    return prompt if (_defined(tree) - {entry}) & used else None


def make_plan(problem: dict, opts: JudgeOptions) -> Plan:
    tl = problem.get("time_limit") or opts.default_time_limit
    mem = problem.get("memory_limit_mb") or opts.default_memory_mb
    p = Plan(mode="stdio", tests=[], time_limit=float(tl) * opts.time_scale, memory_mb=mem)
    try:
        pk = problem.get("packages") or ()
        if not isinstance(pk, (list, tuple)) or not all(isinstance(x, str) for x in pk):
            raise TypeError("packages must be a list of module names")
        p.packages = tuple(pk)
        if problem.get("test_code"):
            p.mode = "assert"
            code, entry = problem["test_code"], problem.get("entry_point")
            tree = ast.parse(code)
            has_check = any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body)
            if entry and has_check:
                p.prelude, p.tests = code, [f"check({entry})\n"]
            else:
                p.prelude, p.tests = _split_asserts(code)
                if not p.tests:
                    p.prelude, p.tests = "", [code]
            p.entry_point = entry or None
            used = _names_used(p.prelude, *p.tests)
            p.names = sorted(used | ({entry} if entry else set()))
            p.prompt_code = _prompt_code(problem, entry, used)
        elif problem.get("fn_name"):
            p.mode, p.fn_name = "call", problem["fn_name"]
            p.tests = [(t["input"], json.loads(t["output"])) for t in problem.get("tests") or []]
        else:
            p.tests = [(t["input"].encode("utf-8", "surrogateescape"),
                        t["output"].encode("utf-8", "surrogateescape"))
                       for t in problem.get("tests") or []]
    except (SyntaxError, ValueError, KeyError, TypeError) as e:
        p.error = f"problem {problem.get('id')!r}: cannot read its tests: {type(e).__name__}: {e}"
    if not p.tests and p.error is None:
        p.error = f"problem {problem.get('id')!r} has no tests"
    return p


_plans: OrderedDict[tuple, tuple[dict, Plan]] = OrderedDict()
_plans_lock = threading.Lock()


def cached_plan(problem: dict, opts: JudgeOptions) -> Plan:
    """make_plan, remembered for the last 4096 problem objects (a problem is judged against many
    responses; parsing its test code each time would cost more than the run of a short test)."""
    key = (id(problem), opts.time_scale, opts.default_time_limit, opts.default_memory_mb)
    with _plans_lock:
        hit = _plans.get(key)
        if hit is not None and hit[0] is problem:
            _plans.move_to_end(key)
            return hit[1]
    plan = make_plan(problem, opts)
    with _plans_lock:
        _plans[key] = (problem, plan)
        while len(_plans) > 4096:
            _plans.popitem(last=False)
    return plan


def _limits(plan: Plan, opts: JudgeOptions, n_tests: int = 1) -> Limits:
    """The limits of one run. Nothing here depends on a test's input or expected output: the
    program can read its own limits, so they must not tell it anything about the answer."""
    cpu = plan.time_limit * n_tests
    return Limits(
        cpu_s=cpu, wall_s=2 * cpu + 1.0, mem_bytes=int(plan.memory_mb * (1 << 20)),
        out_bytes=opts.output_limit_mb << 20, nproc=opts.nproc, nofile=opts.nofile,
        fsize_bytes=opts.fsize_mb << 20, tmp_bytes=opts.tmp_mb << 20,
    )


# ------------------------------------------------------------------------------------------
# Verdicts of single runs

def _clean(text, n: int = 300) -> str:
    """Text safe to store in a trajectory: a str, valid UTF-8 (no lone surrogates), bounded."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    elif not isinstance(text, str):
        text = repr(text) if text is not None else ""
    return text[:n].encode("utf-8", "replace").decode("utf-8")


def _frame(run, op: bytes):
    """The first frame `op` of the run's result channel, decoded (None if absent or unreadable).
    In stdio/call runs the program can write this channel: only failures are read from it."""
    for o, payload in run.frames:
        if o == op:
            try:
                return plain.decode(payload, hashing=False)
            except plain.DecodeError:
                return None
    return None


def _pair(v) -> tuple[str, str]:
    if isinstance(v, list) and len(v) >= 2:
        return _clean(v[0], 80), _clean(v[1])
    return "Exception", ""


def _last_line(b: bytes) -> str:
    lines = [ln for ln in b.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _signame(sig: int) -> str:
    return signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)


def _ended(run, cpu_limit: float) -> tuple[str | None, str | None]:
    """How the run was ended from outside, if it was: limits and the OOM killer."""
    if run.killed == "output":
        return "WA", "output limit exceeded"
    if run.killed == "wall":
        return "TLE", f"wall time over {run.wall_s:.2f}s"
    if run.oom:
        return "MLE", "memory limit exceeded (the run's cgroup)"
    if run.cpu_s > cpu_limit or run.signal == signal.SIGXCPU:
        return "TLE", f"CPU time {run.cpu_s:.2f}s over the {cpu_limit:.2f}s limit"
    return None, None


def classify_run(run, cpu_limit: float) -> tuple[str | None, str | None]:
    """The verdict of a stdio/call run that did not succeed, or (None, None) when it ended
    normally (its output still has to be checked)."""
    if run.judge_error:  # from the runner itself, never from the program (it cannot write it)
        return "JE", _clean(run.judge_error)
    ce = _frame(run, b"C")
    if ce is not None:
        return "CE", _pair(ce)[1] or "compile error"
    verdict, detail = _ended(run, cpu_limit)
    if verdict:
        return verdict, detail
    exc = _frame(run, b"X")
    if exc is not None and _pair(exc)[0] == "MemoryError":
        return "MLE", "MemoryError"
    sig = run.signal
    if sig is not None:
        return "RE", f"killed by {_signame(sig)}"
    if run.exit_code not in (0, None):
        if exc is not None:
            kind, msg = _pair(exc)
            return "RE", _clean(f"{kind}: {msg}")
        return "RE", _clean(f"exit code {run.exit_code}"
                            + (f": {_last_line(run.stderr)}" if run.stderr else ""))
    if run.status is None:
        return "JE", "run ended without a status"
    return None, None


def _program_gone(run, cpu_limit: float) -> tuple[str, str]:
    """Assert-style: the program's process ended (or stopped answering) while its tests ran."""
    verdict, detail = _ended(run, cpu_limit)
    if verdict:
        return verdict, detail
    if run.signal is not None:
        return "RE", f"the program was killed by {_signame(run.signal)} during its tests"
    if run.exit_code is not None:
        return "RE", _clean(f"the program exited (code {run.exit_code}) during its tests"
                            + (f": {_last_line(run.stderr)}" if run.stderr else ""))
    return "RE", "the program stopped answering during its tests"


# ------------------------------------------------------------------------------------------
# A pool of sandboxes

class SandboxPool:
    """Up to `size` sandboxed runners, started on demand, lent to one thread at a time.

    Runners differ by the packages they make importable (none, unless a problem or the judge's
    options allow some); an idle runner of another package set is replaced when the pool is
    full. The first runner starts at once, so a machine without isolation fails here, not
    mid-stream.

    memory: how a run's memory is counted (memory.py): auto, cgroup2, cgroup1 or rlimit.
    """

    def __init__(self, size: int | None = None, *, python: str | None = None,
                 unsafe_no_isolation: bool = False, sandbox: str = "auto", memory: str = "auto"):
        self.size = max(1, size or os.cpu_count() or 1)
        self.python = python
        if sandbox not in ("auto",) + MECHANISMS:
            raise ValueError(f"sandbox must be auto, {' or '.join(MECHANISMS)}; got {sandbox!r}")
        kind, why = probe(python) if sandbox == "auto" else probe(python, (sandbox,))
        if kind == "none" and not unsafe_no_isolation:
            raise SandboxUnavailable(
                f"no process isolation works here ({why}). Refusing to run untrusted programs "
                "with rlimits alone; pass --unsafe-no-isolation (unsafe_no_isolation=True) to "
                "do it anyway")
        try:
            self.accounting = memory_mod.select(memory)
        except ValueError as e:
            raise SandboxUnavailable(str(e)) from None
        self.memory = self.accounting.name
        self.isolation = kind
        self.unsafe_reason = why  # why namespaces failed, when running without them
        self._cond = threading.Condition()
        self._idle: dict[tuple, list[Sandbox]] = {}
        self._all: list[Sandbox] = []
        first = self._new(())
        self._all.append(first)
        self._started = 1
        self.mechanism = first.mechanism
        self._idle[()] = [first]

    def _new(self, packages: tuple) -> Sandbox:
        return Sandbox(isolation=self.isolation, python=self.python, memory=self.accounting,
                       packages=packages)

    def acquire(self, packages=()) -> Sandbox:
        """A runner for this thread's exclusive use, with `packages` importable (blocks while
        all `size` are lent)."""
        key = tuple(sorted(set(packages)))
        while True:
            drop, got, start = [], None, False
            with self._cond:
                idle = self._idle.get(key, [])
                while idle:
                    sb = idle.pop()
                    if sb.alive:
                        got = sb
                        break
                    drop.append(sb)  # died while idle: its slot is free again
                    self._forget(sb)
                if got is None:
                    if self._started < self.size:
                        self._started += 1  # reserve the slot before the slow start
                        start = True
                    else:
                        victim = next((lst.pop() for lst in self._idle.values() if lst), None)
                        if victim is not None:  # idle, other packages: its slot is ours
                            drop.append(victim)
                            self._all.remove(victim)
                            start = True
                        elif not drop:
                            self._cond.wait()
            for sb in drop:
                sb.close()
            if got is not None:
                return got
            if not start:
                continue
            try:
                sb = self._new(key)
            except BaseException:
                with self._cond:
                    self._started -= 1
                    self._cond.notify()
                raise
            with self._cond:
                self._all.append(sb)
            return sb

    def _forget(self, sb: Sandbox) -> None:  # with the lock held
        if sb in self._all:
            self._all.remove(sb)
            self._started -= 1

    def release(self, sb: Sandbox) -> None:
        with self._cond:
            if sb.alive and sb in self._all:
                self._idle.setdefault(sb.packages, []).append(sb)
                self._cond.notify()
                return
            self._forget(sb)  # it died (closed after a crash): a fresh one may take its slot
            self._cond.notify()
        sb.close()  # reaps it; a no-op when already closed

    def close(self) -> None:
        with self._cond:
            sbs, self._all = self._all, []
            self._idle = {}
        for sb in sbs:
            sb.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_default_pools: dict[tuple, SandboxPool] = {}
_default_lock = threading.Lock()


def default_pool(opts: JudgeOptions, size: int | None = None) -> SandboxPool:
    """A process-wide pool per (interpreter, isolation policy), for callers that judge inline."""
    key = (opts.python, opts.unsafe_no_isolation, opts.sandbox, opts.memory)
    with _default_lock:
        pool = _default_pools.get(key)
        if pool is None:
            pool = _default_pools[key] = SandboxPool(
                size, python=opts.python, unsafe_no_isolation=opts.unsafe_no_isolation,
                sandbox=opts.sandbox, memory=opts.memory)
        return pool


# ------------------------------------------------------------------------------------------
# Judging one response

@dataclass
class _Tally:
    passed: int = 0
    verdict: str | None = None  # of the first failing test
    detail: str | None = None
    failed_test: int | None = None
    cpu: float = 0.0
    max_cpu: float = 0.0
    runs: int = 0
    mem_peak: int | None = None
    judge_errors: list = field(default_factory=list)

    def add_run(self, run) -> None:
        self.runs += 1
        self.cpu += run.cpu_s
        self.max_cpu = max(self.max_cpu, run.cpu_s)
        if run.mem_peak is not None:
            self.mem_peak = max(self.mem_peak or 0, run.mem_peak)

    def fail(self, i: int, verdict: str, detail: str | None) -> None:
        if verdict == "JE":
            self.judge_errors.append(detail)
        if self.verdict is None or (self.verdict == "JE" and verdict != "JE"):
            self.verdict, self.detail, self.failed_test = verdict, detail, i


def _run(pool: SandboxPool, box: list, packages: tuple, request: dict, limits: Limits,
         stdin: bytes = b"", tester=None):
    """One run; retried once if the judge failed (on a fresh runner if the runner crashed)."""
    for attempt in (0, 1):
        try:
            run = box[0].run(request, limits, stdin,
                             tester=tester(box[0]) if tester is not None else None)
            if run.judge_error is None or attempt == 1:
                return run
            time.sleep(0.05)  # e.g. fork() refused under a momentary process shortage
            continue
        except SandboxCrashed as e:
            if attempt == 1:
                return _crashed(str(e))
            pool.release(box[0])  # dead: frees its slot
            try:
                box[0] = pool.acquire(packages)
            except (SandboxUnavailable, OSError, ValueError) as e2:
                box[0] = None
                return _crashed(f"{e}; restarting it failed: {e2}")
    raise AssertionError("unreachable")


def _crashed(msg: str):
    from spo_cli.judge.sandbox import RunResult

    return RunResult(judge_error=f"sandbox runner crashed: {msg}")


def _judge_stdio(plan, code, opts, pool, box, pk, t: _Tally) -> None:
    limits = _limits(plan, opts)
    for i, (inp, expected) in enumerate(plan.tests):
        run = _run(pool, box, pk, {"mode": "stdio", "code": code}, limits, inp)
        t.add_run(run)
        verdict, detail = classify_run(run, limits.cpu_s)
        if verdict is None:
            if outputs_match(run.stdout, expected, strict=opts.strict):
                t.passed += 1
                continue
            verdict, detail = "WA", f"test {i}: wrong output"
        t.fail(i, verdict, detail)
        if verdict == "CE" or not opts.run_all or box[0] is None:
            return


def _judge_call(plan, code, opts, pool, box, pk, t: _Tally) -> None:
    limits = _limits(plan, opts)
    for i, (args, expected) in enumerate(plan.tests):
        run = _run(pool, box, pk, {"mode": "call", "code": code, "fn_name": plan.fn_name,
                                   "args": args}, limits)
        t.add_run(run)
        verdict, detail = classify_run(run, limits.cpu_s)
        if verdict is None:
            got = _frame(run, b"R")
            value_sent = any(op == b"R" for op, _ in run.frames)
            if value_sent and got is None:
                verdict, detail = "WA", f"test {i}: the return value is unreadable"
            elif value_sent:
                if call_result_matches(got, expected, strict=opts.strict):
                    t.passed += 1
                    continue
                verdict, detail = "WA", f"test {i}: wrong return value"
            elif _frame(run, b"N") is not None:
                verdict, detail = "WA", f"test {i}: the return value is not plain data"
            else:
                verdict, detail = "RE", "the function returned no result"
        t.fail(i, verdict, detail)
        if verdict == "CE" or not opts.run_all or box[0] is None:
            return


def _judge_assert(plan, code, opts, pool, box, pk, t: _Tally) -> None:
    n = len(plan.tests)
    limits = _limits(plan, opts, n)
    run = _run(pool, box, pk, {"mode": "serve", "code": code}, limits,
               tester=lambda sb: _tester_request(plan, opts, sb))
    t.add_run(run)
    t.cpu += run.tester_cpu_s
    if run.judge_error:
        t.fail(0, "JE", _clean(run.judge_error))
        return
    # Frames from the tester only: the program has no descriptor of this channel.
    problem_error = _frame(run, b"J")
    if problem_error is not None:
        t.fail(0, "JE", _clean(problem_error[0] if problem_error else "the problem's code fails"))
        return
    load = _frame(run, b"L")
    if load is not None:
        kind, tname, msg = (load + ["", "", ""])[:3] if isinstance(load, list) else ("", "", "")
        if kind == "ce":
            t.fail(0, "CE", _clean(msg) or "compile error")
        elif tname == "MemoryError":
            t.fail(0, "MLE", "MemoryError")
        elif kind == "exc":
            t.fail(0, "RE", _clean(f"{tname}: {msg}"))
        else:
            verdict, detail = _program_gone(run, limits.cpu_s)
            if detail.startswith("the program") and "during its tests" in detail:
                detail = detail.replace("during its tests", "before its tests ran")
            t.fail(0, verdict, detail)
        return
    results: dict[int, list] = {}
    done = False
    for op, payload in run.frames:
        if op == b"D":
            done = True
        elif op == b"T":
            try:
                ev = plain.decode(payload, hashing=False)
            except plain.DecodeError:
                continue
            if isinstance(ev, list) and len(ev) == 4 and type(ev[0]) is int \
                    and 0 <= ev[0] < n and ev[0] not in results:
                results[ev[0]] = ev
    t.passed = sum(1 for ev in results.values() if ev[1] is True)
    for i in sorted(results):
        _, ok, kind, msg = results[i]
        if ok is True:
            continue
        if kind == "ProgramDied":
            verdict, detail = _program_gone(run, limits.cpu_s)
        else:
            verdict = "WA" if kind == "AssertionError" else "MLE" if kind == "MemoryError" \
                else "RE"
            detail = f"test {i}: {_clean(kind, 80)}: {_clean(msg)}"
        t.fail(i, verdict, _clean(detail))
    if t.verdict is not None:
        return  # a test failed; whatever ended the run after it does not change that
    verdict, detail = _ended(run, limits.cpu_s)
    if verdict is None and run.tester_cpu_s > limits.cpu_s:
        verdict, detail = "TLE", f"the tests' CPU time {run.tester_cpu_s:.2f}s is over the limit"
    if verdict is None and (not done or len(results) < n):
        if run.tester_signal is not None:
            verdict, detail = "RE", f"the tests were killed by {_signame(run.tester_signal)}"
        else:
            verdict, detail = "RE", "the tests did not finish"
    if verdict is not None:
        t.fail(len(results), verdict, detail)


def judge_response(problem: dict, response: str, opts: JudgeOptions | None = None, *,
                   pool: SandboxPool | None = None) -> dict:
    """Judge one response against its problem's tests; return the fields to merge into the
    trajectory: reward, verdict, tests_passed, tests_total and `judge` (sandbox, memory
    accounting, timing, detail).

    pool: where the sandboxed runners come from (default: a process-wide pool).
    Never raises because of the response: an unexpected failure of the judge itself is a JE
    (reward null) for this response alone."""
    opts = opts or JudgeOptions()
    pool = pool or default_pool(opts)
    t0 = time.perf_counter()
    try:
        return _judge_response(problem, response, opts, pool, t0)
    except Exception as e:  # the judge's own fault: this trajectory only
        import traceback

        sys.stderr.write("spo judge: internal error on one response (JE):\n"
                         + traceback.format_exc(limit=8))
        try:
            total = len(cached_plan(problem, opts).tests)
        except Exception:
            total = 0
        return {"reward": None, "verdict": "JE", "tests_passed": 0, "tests_total": total,
                "judge": {"sandbox": pool.mechanism, "memory": pool.memory,
                          "time_s": round(time.perf_counter() - t0, 4),
                          "detail": _clean(f"judge error: {type(e).__name__}: {e}")}}


def _judge_response(problem: dict, response: str, opts: JudgeOptions, pool: SandboxPool,
                    t0: float) -> dict:
    plan = cached_plan(problem, opts)
    t = _Tally()
    if plan.error is not None:
        t.fail(0, "JE", plan.error)
    else:
        if not isinstance(response, str):
            raise TypeError(f"response must be a str, not {type(response).__name__}")
        code = extract_program(response) if opts.extract else response
        if plan.mode == "assert" and problem.get("entry_point") and problem.get("prompt") \
                and isinstance(problem["prompt"], str) \
                and f"def {problem['entry_point']}" not in code:
            code = problem["prompt"] + code  # a HumanEval-style completion of the prompt
        pk = tuple(sorted(set(opts.allow_packages) | set(plan.packages)))
        try:
            box = [pool.acquire(pk)]
        except (SandboxUnavailable, OSError, ValueError) as e:
            t.fail(0, "JE", _clean(f"cannot start a sandbox runner: {e}"))
        else:
            try:
                {"stdio": _judge_stdio, "call": _judge_call, "assert": _judge_assert}[plan.mode](
                    plan, code, opts, pool, box, pk, t)
            finally:
                if box[0] is not None:
                    pool.release(box[0])
    total = len(plan.tests)
    verdict = t.verdict or "OK"
    if verdict == "JE":
        reward = None
    elif opts.partial:
        reward = t.passed / total if total else 0.0
    else:
        reward = 1.0 if verdict == "OK" else 0.0
    info = {
        "sandbox": pool.mechanism,
        "memory": pool.memory,
        "time_s": round(time.perf_counter() - t0, 4),
        "cpu_s": round(t.cpu, 4),
        "max_test_cpu_s": round(t.max_cpu, 4),
        "runs": t.runs,
    }
    if t.mem_peak is not None:
        info["mem_peak_mb"] = round(t.mem_peak / (1 << 20), 1)
    if t.failed_test is not None:
        info["failed_test"] = t.failed_test
    if t.detail:
        info["detail"] = _clean(t.detail)
    return {"reward": reward, "verdict": verdict, "tests_passed": t.passed,
            "tests_total": total, "judge": info}


# ------------------------------------------------------------------------------------------
# Many, in parallel, streaming

class MissingProblem(KeyError):
    def __init__(self, index: int, problem_id):
        self.index, self.problem_id = index, problem_id
        super().__init__(problem_id)

    def __str__(self) -> str:
        return (f"trajectory {self.index + 1}: problem_id {self.problem_id!r} is not among the "
                "problems given")


def judge_stream(trajectories: Iterable[dict], problems_by_id: dict[str, dict],
                 opts: JudgeOptions | None = None, jobs: int | None = None, *,
                 pool: SandboxPool | None = None, window: int | None = None) -> Iterator[dict]:
    """Judge trajectories in parallel; yield each, with the judge's fields merged in, in input
    order. At most `window` (default 4 x jobs) are in flight, so memory stays bounded however
    long the stream. A trajectory whose problem is missing raises MissingProblem after every
    earlier trajectory has been yielded."""
    opts = opts or JudgeOptions()
    jobs = max(1, jobs or os.cpu_count() or 1)
    own_pool = pool is None
    if own_pool:
        pool = SandboxPool(jobs, python=opts.python, unsafe_no_isolation=opts.unsafe_no_isolation,
                           sandbox=opts.sandbox, memory=opts.memory)
    window = window or 4 * jobs
    ex = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="spo-judge")

    def one(traj: dict, problem: dict) -> dict:
        return {**traj, **judge_response(problem, traj.get("response") or "", opts, pool=pool)}

    pending: deque = deque()
    try:
        for n, traj in enumerate(trajectories):
            problem = problems_by_id.get(traj.get("problem_id"))
            if problem is None:
                while pending:
                    yield pending.popleft().result()
                raise MissingProblem(n, traj.get("problem_id"))
            pending.append(ex.submit(one, traj, problem))
            while len(pending) >= window or (pending and pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
        if own_pool:
            pool.close()
