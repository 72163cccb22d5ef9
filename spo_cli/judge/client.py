"""The judge as its callers use it: one way to open a sandbox pool, a memoising judge, and
"sample, judge, drop judge errors".

    from spo_cli.judge.client import Judge, open_pool, rollouts
    with Judge(jobs=2, time_scale=2.0) as judge:            # owns its pool, opened on first use
        judged = list(judge(trajectories, problems_by_id))  # input order, judge fields merged in
        r = rollouts(sampler, problems, judge, n=4)         # Rollouts: judged, usable, timings
    pool = open_pool(JudgeOptions(), jobs=8)                # for callers that stream judge_stream

`open_pool` is the one place outside spo_cli.judge.runner that builds a SandboxPool: it passes
every isolation option on, and turns "no isolation works here" into an SpoError that says so
(exit code 1), instead of a traceback. `Judge` is what the value estimator, PTS, eval, the
trainer and the rollout worker judge with; it may borrow a pool (a test's, a long-lived
process's) instead of opening its own. `rollouts` is the step the trainer's online data and the
rollout worker share.

Judge errors (JE: the judge failed, not the program; reward null) are dropped from `usable` and
counted, never counted against the program (spo_cli.judge's docstring says why).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spo_cli.errors import BadInput, SpoError
from spo_cli.judge.outcome import JUDGE_ERROR, is_usable, outcome
from spo_cli.judge.runner import JudgeOptions, MissingProblem, SandboxPool, judge_stream
from spo_cli.judge.sandbox import SandboxUnavailable

JUDGE_FIELDS = ("reward", "verdict", "tests_passed", "tests_total", "judge")


def open_pool(opts: JudgeOptions, jobs: int | None = None) -> SandboxPool:
    """A sandbox pool of up to `jobs` runners (default: one per CPU) with `opts`' interpreter and
    isolation policy. SpoError naming the reason when no isolation works and
    `opts.unsafe_no_isolation` is off."""
    try:
        return SandboxPool(jobs, python=opts.python, unsafe_no_isolation=opts.unsafe_no_isolation,
                           sandbox=opts.sandbox, memory=opts.memory)
    except SandboxUnavailable as e:
        raise SpoError(f"cannot judge: {e}") from None


class Judge:
    """Judges trajectories in parallel with a sandbox pool that lives as long as this object
    (or a borrowed one, which it leaves open).

        judge = Judge(jobs=2)
        for t in judge(trajectories, problems_by_id): ...    # input order, fields merged in
        judge.close()

    Responses already judged for a problem are not run again (an LRU memo of `memo` entries):
    samples of a small model repeat a lot, and PTS rollouts from late prefixes even more. A
    reused verdict is marked `judge.reused`. Judge errors are not memoised (they may pass later).
    """

    def __init__(self, jobs: int | None = None, *, memo: int = 65536, pool: SandboxPool | None = None,
                 **options: Any):
        self.jobs = max(1, jobs or len(os.sched_getaffinity(0)))
        self.opts = JudgeOptions(**options)
        self._pool = pool
        self._own_pool = pool is None
        self._memo: dict[tuple[str, str], dict] = {}
        self._memo_size = memo
        self.runs = 0
        self.memo_hits = 0

    @property
    def pool(self) -> SandboxPool:
        if self._pool is None:
            self._pool = open_pool(self.opts, self.jobs)
        return self._pool

    @property
    def isolation(self) -> str:
        return self.pool.mechanism

    def __call__(self, trajectories: Iterable[dict], problems_by_id: Mapping[str, dict]) -> Iterator[dict]:
        out: list[dict] = list(trajectories)
        fresh: list[dict] = []  # one trajectory per distinct (problem, response) not in the memo
        waiting: dict[tuple, list[int]] = {}  # that key -> positions in `out` that take its verdict
        for i, t in enumerate(out):
            if t.get("problem_id") not in problems_by_id:
                raise BadInput(f"trajectory {i + 1} (id {t.get('id')!r}): problem_id "
                               f"{t.get('problem_id')!r} is not among the problems given")
            key = (t.get("problem_id"), t.get("response") or "")
            hit = self._memo.get(key)
            if hit is not None:
                self.memo_hits += 1
                out[i] = _reuse(t, hit)
            elif key in waiting:
                self.memo_hits += 1
                waiting[key].append(i)
            else:
                waiting[key] = [i]
                fresh.append(t)
        if not fresh:
            return iter(out)
        try:
            for judged in judge_stream(fresh, problems_by_id, self.opts, self.jobs, pool=self.pool):
                self.runs += 1
                key = (judged.get("problem_id"), judged.get("response") or "")
                first, *rest = waiting[key]
                out[first] = judged
                got = {f: judged.get(f) for f in JUDGE_FIELDS}
                for i in rest:
                    out[i] = _reuse(out[i], got)
                if outcome(judged) != JUDGE_ERROR:
                    if len(self._memo) >= self._memo_size:
                        self._memo.pop(next(iter(self._memo)))
                    self._memo[key] = got
        except MissingProblem as e:
            raise BadInput(str(e)) from None
        return iter(out)

    def close(self) -> None:
        """Close the pool if this judge opened it (a borrowed pool stays open)."""
        if self._own_pool and self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reuse(traj: dict, fields: dict) -> dict:
    return {**traj, **fields, "judge": {**(fields.get("judge") or {}), "reused": True}}


@dataclass
class Rollouts:
    """One round of "sample, judge, drop judge errors"."""

    judged: list[dict]  # every sampled trajectory, judged (judge errors included), problem order
    usable: list[dict]  # those with a reward (judge errors left out)
    sample_s: float  # seconds spent sampling
    judge_s: float  # seconds spent judging
    tokens: int  # response tokens sampled

    @property
    def judge_errors(self) -> int:
        return len(self.judged) - len(self.usable)


def rollouts(sampler: Any, problems: Sequence[dict], judge: Judge, *, n: int | None = None) -> Rollouts:
    """Sample `n` (default the sampler's opts.n) trajectories per problem with `sampler` (a
    spo_cli.sampling Sampler; a problem may appear more than once), judge them all with `judge`,
    and split off the judge errors."""
    t0 = time.perf_counter()
    trajs = sampler.sample(problems, n)
    t1 = time.perf_counter()
    judged = list(judge(trajs, {p["id"]: p for p in problems}))
    t2 = time.perf_counter()
    usable = [t for t in judged if is_usable(t)]  # a judge error is no evidence
    tokens = sum(len(t.get("response_ids") or ()) for t in trajs)
    return Rollouts(judged, usable, t1 - t0, t2 - t1, tokens)
