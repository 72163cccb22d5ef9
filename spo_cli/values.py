"""Value records: V_hat(x0) per problem from judged reference-policy samples (docs/math.md §7).

    from spo_cli.values import estimate_values, load_values, parse_missing_value
    for rec in estimate_values(read_records("judged.jsonl", "trajectory"), beta=0.1): ...
    values = load_values("values.jsonl", beta=0.1)              # {problem_id: Value record}
    values["p17"]["v"]                                           # BadInput naming p17 if absent
    values = load_values("values.jsonl", missing=parse_missing_value("fallback:-0.5"))

What is computed (the math itself lives in spo_cli.core.estimators; nothing is rewritten here):
    v      = beta log (1/K) sum_k exp((reward_k - 1)/beta)   soft_value (logsumexp)
    p_hat  = share of the K samples with reward 1 (every test passed)
    stderr = delta-method standard error of v                soft_value_stderr
    k, beta

Streaming: `estimate_values` keeps, per problem, a count of each distinct reward value (two
numbers for a binary judge, at most tests_total + 1 with partial rewards), so memory grows with
the number of problems, not of trajectories. The estimators see the rewards expanded back, one
problem at a time.

End to end (`estimate_problems`): sample K per problem from the reference model, judge, estimate,
one Value record per problem as soon as its K samples are judged; the caller writes each one
durably (see spo_cli.estimate_v for how a killed run resumes).

Choices where the paper is silent:
- Judge errors (verdict JE, reward null: the judge failed, not the program) are left out of K and
  counted; an unjudged trajectory (reward and verdict null) is an error, because estimating from
  it would silently treat "not judged" as a failure.
- A missing value is an error naming the problem unless the caller chose a policy
  (`--missing-value`): fallback:<v> (a constant V_hat, flagged `fallback` on the record) or
  estimate (sample K for that problem on first use). Values estimated at another beta are refused
  rather than converted: V_hat depends on beta, and only binary rewards could be converted.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from spo_cli.errors import BadInput, SpoError
from spo_cli.judge.client import Judge, rollouts
from spo_cli.judge.outcome import is_success, is_usable, judged_reward


def _finite_or_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def p_hat_histogram(ps: Iterable[float], bins: int = 5) -> str:
    """'[0.0,0.2) 12, [0.2,0.4) 3, ...': a one-line distribution of success rates, for people."""
    counts = [0] * bins
    for p in ps:
        counts[min(bins - 1, int(p * bins))] += 1
    edges = [i / bins for i in range(bins + 1)]
    return ", ".join(f"[{edges[i]:.1f},{edges[i + 1]:.1f}{']' if i == bins - 1 else ')'} {c}"
                     for i, c in enumerate(counts))


# ---------------------------------------------------------------------------------------------
# Estimating


def value_record(problem_id: str, rewards: Mapping[float, int] | Iterable[float], beta: float,
                 judge_errors: int = 0, **extra) -> dict:
    """The Value record of one problem from its K judged rewards (a list, or {reward: count});
    `judge_errors` (samples left out because the judge failed) is recorded when there were any."""
    from spo_cli.core.estimators import soft_value, soft_value_stderr
    from spo_cli.schema import new_value

    if isinstance(rewards, Mapping):
        vals = np.fromiter(rewards.keys(), dtype=np.float64, count=len(rewards))
        counts = np.fromiter(rewards.values(), dtype=np.int64, count=len(rewards))
        r = np.repeat(vals, counts)  # (K,)
    else:
        r = np.asarray(list(rewards), dtype=np.float64)  # (K,)
    if r.size == 0:
        raise SpoError(f"problem {problem_id!r}: no judged samples to estimate a value from")
    p_hat = float(np.mean(is_success(r)))
    return new_value(
        problem_id=problem_id,
        v=soft_value(r, beta),
        k=int(r.size),
        beta=float(beta),
        p_hat=p_hat,
        stderr=_finite_or_none(soft_value_stderr(r, beta)),
        **({"judge_errors": int(judge_errors)} if judge_errors else {}),
        **extra,
    )


@dataclass
class EstimateStats:
    trajectories: int = 0
    judge_errors: int = 0
    skipped_source: int = 0
    problems: int = 0


def estimate_values(trajectories: Iterable[dict], beta: float, *, sources: Iterable[str] | None = None,
                    stats: EstimateStats | None = None) -> Iterator[dict]:
    """One Value record per problem (first-seen order) from judged trajectories in any order.

    sources: keep only trajectories whose `source` is one of these (None: all).
    Raises BadInput on an unjudged trajectory (reward and verdict null). Judge errors (JE) are
    counted in `stats` and left out.
    """
    stats = stats if stats is not None else EstimateStats()
    keep = set(sources) if sources is not None else None
    hist: dict[str, Counter] = {}
    errors: Counter = Counter()  # judge errors per problem
    for n, t in enumerate(trajectories, 1):
        if keep is not None and t.get("source") not in keep:
            stats.skipped_source += 1
            continue
        reward = judged_reward(t, n)
        if reward is None:
            stats.judge_errors += 1
            errors[t["problem_id"]] += 1
            continue
        stats.trajectories += 1
        hist.setdefault(t["problem_id"], Counter())[float(reward)] += 1
    for pid, counts in hist.items():
        stats.problems += 1
        yield value_record(pid, counts, beta, errors[pid])


# ---------------------------------------------------------------------------------------------
# Loading, and what to do about a missing value


@dataclass(frozen=True)
class MissingValue:
    """What to do when a problem has no Value record: 'error', 'fallback' (use `value`),
    'estimate' (call the table's estimator) or 'skip' (for commands that may leave it out)."""

    policy: str = "error"
    value: float | None = None

    def __str__(self) -> str:
        return f"fallback:{self.value:g}" if self.policy == "fallback" else self.policy


MISSING_CHOICES = "error, fallback:<v> (e.g. fallback:-0.5), estimate"


def parse_missing_value(text: str | None, *, allow: Iterable[str] = ("error", "fallback", "estimate")) -> MissingValue:
    """'error' | 'fallback:<v>' | 'estimate' | 'skip' (where allowed) -> MissingValue.

    Raises ValueError with a message meant for the user."""
    allow = tuple(allow)
    text = (text or "error").strip()
    if text.startswith("fallback"):
        head, _, num = text.partition(":")
        if head != "fallback" or not num:
            raise ValueError(f"write fallback:<v>, e.g. fallback:-0.5 (got {text!r})")
        try:
            v = float(num)
        except ValueError:
            raise ValueError(f"fallback:<v> needs a number, got {num!r}") from None
        if not math.isfinite(v) or v > 0:
            raise ValueError(f"a soft value is finite and <= 0 (rewards are shifted by r_max = 1), got {v}")
        mv = MissingValue("fallback", v)
    elif text in ("error", "estimate", "skip"):
        mv = MissingValue(text)
    else:
        raise ValueError(f"unknown policy {text!r}; choose {', '.join(_choices(allow))}")
    if mv.policy not in allow:
        raise ValueError(f"{mv.policy} is not available here; choose {', '.join(_choices(allow))}")
    return mv


def _choices(allow: tuple[str, ...]) -> list[str]:
    return ["fallback:<v>" if a == "fallback" else a for a in allow]


class ValueTable(Mapping):
    """Value records by problem_id. Looking up a missing problem follows the MissingValue policy:
    a BadInput naming the problem (default), a flagged fallback record, or an estimate made on
    first use by `estimator(problem_id) -> Value record` (then cached)."""

    def __init__(self, records: dict[str, dict], *, missing: MissingValue = MissingValue(),
                 beta: float | None = None, source: str = "the values given",
                 estimator: Callable[[str], dict] | None = None):
        if missing.policy == "estimate" and estimator is None:
            raise SpoError("--missing-value estimate needs an estimator (a reference model) here")
        self._recs = records
        self.missing = missing
        self.beta = beta
        self.source = source
        self.estimator = estimator
        self.fallbacks: set[str] = set()
        self.estimated: set[str] = set()

    def __len__(self) -> int:
        return len(self._recs)

    def __iter__(self):
        return iter(self._recs)

    def __contains__(self, pid: object) -> bool:
        return pid in self._recs

    def __getitem__(self, pid: str) -> dict:
        rec = self._recs.get(pid)
        if rec is not None:
            return rec
        pol = self.missing.policy
        if pol == "fallback":
            from spo_cli.schema import new_value

            self.fallbacks.add(pid)
            return new_value(problem_id=pid, v=float(self.missing.value), k=0,
                             beta=float(self.beta) if self.beta is not None else math.nan,
                             fallback=True)
        if pol == "estimate":
            rec = self.estimator(pid)
            self._recs[pid] = rec
            self.estimated.add(pid)
            return rec
        raise BadInput(f"no value for problem {pid!r} in {self.source}; estimate it with "
                       f"`spo estimate-v`, or choose --missing-value ({MISSING_CHOICES})")

    def v(self, pid: str) -> float:
        """V_hat(x0) of the problem (following the missing-value policy)."""
        return float(self[pid]["v"])


def load_values(spec, *, missing: MissingValue | str | None = None, beta: float | None = None,
                estimator: Callable[[str], dict] | None = None) -> ValueTable:
    """Value records from a file, directory or glob (see spo_cli.streams) -> ValueTable.

    beta: the beta the caller trains with; a record estimated at another beta is a BadInput.
    A problem that appears twice is a BadInput (two estimates of one value: merge them by
    re-running estimate-v on the union of the samples instead).
    """
    from spo_cli.streams import expand, read_records

    if not isinstance(missing, MissingValue):
        try:
            missing = parse_missing_value(missing, allow=("error", "fallback", "estimate", "skip"))
        except ValueError as e:
            raise BadInput(f"--missing-value: {e}") from None
    recs: dict[str, dict] = {}
    names = expand(spec)
    where = names[0] if len(names) == 1 else f"{len(names)} value files"
    for rec in read_records(spec, "value"):
        pid = rec["problem_id"]
        if pid in recs:
            raise BadInput(f"problem {pid!r} has two value records", path=where)
        if beta is not None and not math.isclose(rec["beta"], beta, rel_tol=1e-9):
            raise BadInput(f"the value of problem {pid!r} was estimated at beta={rec['beta']:g}, "
                           f"this run uses beta={beta:g}; re-run `spo estimate-v --beta {beta:g}`",
                           path=where)
        recs[pid] = rec
    return ValueTable(recs, missing=missing, beta=beta, source=where, estimator=estimator)


def read_done_problem_ids(spec: str | os.PathLike) -> tuple[list[dict], set[str]]:
    """The Value records already in an output (file or shard directory) and their problem ids;
    nothing when it does not exist yet. Used to resume."""
    from pathlib import Path

    from spo_cli.streams import read_records

    p = Path(spec)
    if not p.exists() or (p.is_dir() and not any(p.iterdir())):
        return [], set()
    recs = list(read_records(str(p), "value"))
    return recs, {r["problem_id"] for r in recs}


# ---------------------------------------------------------------------------------------------
# End to end: sample K per problem, judge, estimate


def estimate_problems(problems: Iterable[dict], sampler, judge: Judge, *, k: int, beta: float,
                      on_samples: Callable[[list[dict]], None] | None = None,
                      on_progress: Callable[[int], None] | None = None,
                      on_batch_done: Callable[[], None] | None = None) -> Iterator[dict]:
    """One Value record per problem, yielded as soon as its K samples are judged.

    sampler: a spo_cli.sampling Sampler (its options should be those of pi_ref: temperature 1,
    top-p 1); k: samples per problem; on_samples(judged trajectories of a batch of problems)
    lets the caller keep the samples; on_progress(n) is called with the number of samples judged;
    on_batch_done() after the records of each batch of problems were yielded (a good moment to
    save them). Memory: the samples of one batch of problems (about 8 sampling batches, at least
    one problem's K) at a time.
    """
    window = max(1, (8 * getattr(sampler.opts, "batch_size", 16)) // k)
    chunk: list[dict] = []

    def run(chunk: list[dict]) -> Iterator[dict]:
        judged = rollouts(sampler, chunk, judge, n=k).judged
        if on_progress is not None:
            on_progress(len(judged))
        if on_samples is not None:
            on_samples(judged)
        for p in chunk:
            mine = [t for t in judged if t["problem_id"] == p["id"]]
            good = [t["reward"] for t in mine if is_usable(t)]
            if not good:
                raise SpoError(f"problem {p['id']!r}: the judge failed on all {len(mine)} samples "
                               f"(first: {(mine[0].get('judge') or {}).get('detail') if mine else '-'})")
            errors = len(mine) - len(good)
            yield value_record(p["id"], Counter(good), beta, errors)
        if on_batch_done is not None:
            on_batch_done()

    for p in problems:
        chunk.append(p)
        if len(chunk) >= window:
            yield from run(chunk)
            chunk = []
    if chunk:
        yield from run(chunk)


def value_estimator(sampler, judge: Callable, problems_by_id: Mapping[str, dict], *, k: int,
                    beta: float) -> Callable[[str], dict]:
    """An estimator for `load_values(..., missing="estimate", estimator=...)`: the Value of a
    problem the table lacks, from k fresh samples of `sampler` (the reference policy), judged.

        values = load_values(path, missing="estimate", beta=0.1,
                             estimator=value_estimator(ref_sampler, Judge(), problems, k=64, beta=0.1))
    """
    def estimate(problem_id: str) -> dict:
        problem = problems_by_id.get(problem_id)
        if problem is None:
            raise BadInput(f"cannot estimate a value for problem {problem_id!r}: it is not among the problems given")
        (rec,) = estimate_problems([problem], sampler, judge, k=k, beta=beta)
        return {**rec, "estimated_on_demand": True}

    return estimate
