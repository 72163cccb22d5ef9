"""The rollout worker's engine: sample with the newest weights it has, judge inline, queue.

    worker = RolloutWorker(sampler, problems_by_id, WorkerOptions(n=4, rows=16, queue_size=256))
    worker.start()                          # a background thread runs sampling rounds
    batch = worker.take(32, wait_s=2.0)     # judged trajectories, oldest first, each served once
    worker.offer_weights(tensors, version=10, lineage="run-7f3a")   # checked now, applied between rounds
    worker.health()                         # version, queue depth, rollouts/s, counters

The sampler is any backend's (hf: a transformers model in this process; vllm: a vLLM engine);
new weights reach it through Sampler.load_weights, names and shapes are checked against
Sampler.weights_spec, and health reports Sampler.weights_dtype, in which learners send weights.

A round: draw `rows // n` problems uniformly at random (with replacement), sample n each with the
weights currently loaded, judge them in parallel in the sandbox, stamp each trajectory with the
weights' `policy_version` (and, under `sampler`, the worker id, a sequence number and the weights'
lineage), add them all to the spool (`--spool`: a corpus directory, one shard per round, before
anything is served, so a trajectory a learner sees is always on disk), then queue the judged ones.
The queue is bounded: when a round's rows would not fit, sampling pauses until learners take some.
New weights are checked when they arrive and loaded before the next round, never mid-round.

Versions and lineage. A learner run has a lineage id (kept in its run directory, the same after
--resume) and numbers its weights by optimiser step. The worker keeps only rollouts that are
consistent with the newest weights it was given (lineage L, version v): sampled with L's weights
at a version <= v, or with the initial --model weights (lineage none; the learner starts from the
same model). So a restarted learner that resumes at an earlier step than the worker last heard of
makes the worker drop the rollouts of the abandoned steps, and a new run drops an old run's. They
stay in the spool; only the queue forgets them. Learners apply the same rule to what they receive.

Departure from the paper: none known; the paper does not describe its workers beyond Sec 3.2.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from spo_cli.console import warn
from spo_cli.serve.weights import WeightsError, check_fits, payload_bytes

PROTOCOL = 1


@dataclass
class WorkerOptions:
    n: int = 4
    """Samples per problem in a round."""
    rows: int = 16
    """Trajectories per sampling round (rows // n problems, at least one)."""
    queue_size: int = 64
    """Most judged trajectories waiting for a learner; sampling pauses when the next round would
    not fit."""
    seed: int = 0
    """Run seed; each round's sampling seed is derived from (seed, worker id, round)."""
    judge_jobs: int = 1
    """Parallel judge processes."""
    time_scale: float = 1.0
    """Multiplies the problems' time limits when judging."""
    spool: str | None = None
    """Corpus directory that receives every rollout (one new shard per round)."""
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    """Names this worker instance in trajectories (sampler.worker) and in health."""
    max_failures: int = 3
    """Consecutive failed rounds after which the worker stops (health reports why)."""
    reference: bool = False
    """Sample with the reference policy (the --model weights) for good: new weights are checked
    and acknowledged but not loaded, and trajectories are marked source=ref (Sec 3.2: workers may
    sample with the latest or the reference policy)."""


def valid_for(item_lineage: str | None, item_version: int, lineage: str | None, version: int) -> bool:
    """Is a rollout sampled with weights (item_lineage, item_version) consistent with the newest
    weights (lineage, version)? See the module docstring. Before any learner spoke, all are."""
    if lineage is None:
        return True
    return item_lineage in (None, lineage) and item_version <= version


def _round_seed(seed: int, worker_id: str, rnd: int) -> int:
    h = hashlib.blake2b(f"spo-worker/{seed}/{worker_id}/{rnd}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


class RolloutWorker:
    def __init__(self, sampler: Any, problems: dict[str, dict], opts: WorkerOptions | None = None, *,
                 pool: Any = None, lineage: str | None = None):
        from spo_cli.judge.client import Judge

        self.sampler = sampler
        self.model = getattr(sampler, "model", None)  # hf: the live model; vllm: in the engine's processes
        self.problems = problems
        self.problem_ids = self._usable(problems)
        self.opts = opts = opts or WorkerOptions()
        self.rows = max(1, min(opts.rows, opts.queue_size))
        self.per_round = max(1, self.rows // opts.n)
        self.judge = Judge(opts.judge_jobs, pool=pool, time_scale=opts.time_scale)  # borrows `pool` if given
        self.spec = sampler.weights_spec()
        self.max_weights_bytes = payload_bytes(self.spec) + (16 << 20)  # fp32 + header room
        self.dtype = sampler.weights_dtype
        self._rng = random.Random(_round_seed(opts.seed, opts.worker_id, -1))

        self.cond = threading.Condition()
        self.queue: collections.deque[dict] = collections.deque()
        # weights in use, and the newest accepted (pending until the next round)
        self.version = int(sampler.opts.policy_version)
        self.lineage = lineage
        self.accepted: tuple[str | None, int] = (lineage, self.version)
        self._pending: tuple[dict, int, str] | None = None
        self.counts = collections.Counter()
        self._recent: collections.deque[tuple[float, int]] = collections.deque()  # (time, rollouts)
        self.round = 0
        self.seq = 0
        self.paused = False
        self.last_error: str | None = None
        self.fatal: str | None = None
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _usable(self, problems: dict[str, dict]) -> list[str]:
        """Ids of the problems whose prompt leaves the model room to answer (a round with one
        that does not would fail as a whole); the others are reported and never drawn."""
        from spo_cli.errors import BadInput

        fmt = self.sampler.formatter()  # as Sampler.rows formats
        limit = getattr(self.sampler, "max_positions", None)
        ok, skipped = [], []
        for pid in sorted(problems):
            try:
                n = len(fmt(problems[pid])[1])
            except BadInput as e:
                skipped.append(f"{pid} ({e})")
                continue
            if limit and n >= limit:
                skipped.append(f"{pid} (prompt of {n} tokens, context {limit})")
            else:
                ok.append(pid)
        if skipped:
            warn(f"{len(skipped)} problem(s) cannot be sampled and are skipped, e.g. {skipped[0]}")
        if not ok:
            raise BadInput("no problem this model can be given (see the warning above)" if skipped
                           else "a rollout worker needs problems")
        return ok

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> RolloutWorker:
        _ = self.judge.pool  # opened now: a machine without isolation fails here, not in a round
        self._thread = threading.Thread(target=self._loop, name="spo-rollouts", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 60.0) -> None:
        self._stop.set()
        with self.cond:
            self.cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self.judge.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if not self._wait_for_room():
                break
            try:
                self.run_round()
                failures = 0
            except Exception as e:  # noqa: BLE001 - a round failed; the worker reports and retries
                failures += 1
                self.counts["failed_rounds"] += 1
                self.last_error = f"{type(e).__name__}: {e}"
                warn(f"rollout round failed ({failures}/{self.opts.max_failures}): {self.last_error}")
                if failures >= self.opts.max_failures:
                    self.fatal = self.last_error
                    break
                self._stop.wait(min(2.0 ** failures, 10.0))
        with self.cond:
            self.cond.notify_all()

    def _wait_for_room(self) -> bool:
        while True:
            self._apply_pending()  # also while paused: the model is idle between rounds
            with self.cond:
                if len(self.queue) + self.rows <= self.opts.queue_size or self._stop.is_set():
                    self.paused = False
                    return not self._stop.is_set()
                self.paused = True
                if self._pending is None:
                    self.cond.wait(1.0)

    # ------------------------------------------------------------------ one round
    def run_round(self) -> int:
        """Sample, judge, spool and queue one round; returns how many were queued."""
        from spo_cli.judge.client import rollouts
        from spo_cli.streams import add_shard

        self._apply_pending()
        lineage, version = self.lineage, self.version
        rnd = self.round
        self.round += 1
        problems = [self.problems[self._rng.choice(self.problem_ids)] for _ in range(self.per_round)]
        # distinct seeds per round; per-sample seeds then follow base.sample_seed(seed, id, k)
        self.sampler.opts = self.sampler.opts.with_(seed=_round_seed(self.opts.seed, self.opts.worker_id, rnd),
                                                    policy_version=version,
                                                    source="ref" if self.opts.reference else "online")
        got = rollouts(self.sampler, problems, self.judge, n=self.opts.n)
        judged, usable = got.judged, got.usable
        for rec in judged:
            s = dict(rec.get("sampler") or {})
            s.update(worker=self.opts.worker_id, seq=self.seq, lineage=lineage)
            rec["sampler"] = s
            self.seq += 1
        if self.opts.spool:
            add_shard(self.opts.spool, judged, prefix=f"rollouts-{self.opts.worker_id}-v{version:06d}")
            self.counts["spooled"] += len(judged)
        now = time.time()
        with self.cond:
            self.counts["produced"] += len(judged)
            self.counts["judge_errors"] += got.judge_errors
            self._recent.append((now, len(judged)))
            if valid_for(lineage, version, *self.accepted):
                self.queue.extend(usable)
            else:  # weights from a later-abandoned lineage/step arrived mid-round
                self.counts["dropped"] += len(usable)
                usable = []
            self.cond.notify_all()
        return len(usable)

    # ------------------------------------------------------------------ learners' side
    def take(self, max_n: int, wait_s: float = 0.0) -> list[dict]:
        """Up to max_n judged trajectories, oldest first, each handed out once. Waits up to wait_s
        for the first one."""
        deadline = time.monotonic() + max(0.0, wait_s)
        with self.cond:
            while not self.queue and not self._stop.is_set() and self.fatal is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            out = [self.queue.popleft() for _ in range(min(max_n, len(self.queue)))]
            self.counts["served"] += len(out)
            if out:
                self.cond.notify_all()  # room for the sampler
        return out

    def offer_weights(self, tensors: dict, version: int, lineage: str) -> dict:
        """Check new weights (WeightsError if they do not fit; nothing changes then) and queue
        them for the next round. Rollouts inconsistent with them leave the queue."""
        check_fits(tensors, self.spec)
        with self.cond:
            if not self.opts.reference:
                self._pending = (tensors, int(version), lineage)
            self.accepted = (lineage, int(version))
            before = len(self.queue)
            keep = [r for r in self.queue if valid_for((r.get("sampler") or {}).get("lineage"),
                                                       int(r.get("policy_version") or 0), lineage, version)]
            self.queue = collections.deque(keep)
            dropped = before - len(keep)
            self.counts["dropped"] += dropped
            self.counts["weights_received"] += 1
            self.cond.notify_all()
        return {"accepted": int(version), "lineage": lineage, "dropped": dropped,
                "loaded": not self.opts.reference}

    def _apply_pending(self) -> None:
        with self.cond:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        tensors, version, lineage = pending
        self.sampler.load_weights(tensors)
        self.version, self.lineage = version, lineage
        self.counts["weights_applied"] += 1

    def health(self) -> dict:
        now = time.time()
        with self.cond:
            while self._recent and now - self._recent[0][0] > 60.0:
                self._recent.popleft()
            window = min(60.0, now - self.started)
            rate = sum(n for _, n in self._recent) / window if window > 0 else 0.0
            pending = self._pending[1] if self._pending else None
            return {
                "protocol": PROTOCOL, "worker": self.opts.worker_id, "policy_version": self.version,
                "lineage": self.lineage, "pending_version": pending,
                "accepted_lineage": self.accepted[0], "accepted_version": self.accepted[1], "queue": len(self.queue),
                "queue_max": self.opts.queue_size, "paused": self.paused, "rollouts_per_s": round(rate, 4),
                "rounds": self.round, "produced": self.counts["produced"], "served": self.counts["served"],
                "spooled": self.counts["spooled"], "dropped": self.counts["dropped"],
                "judge_errors": self.counts["judge_errors"], "failed_rounds": self.counts["failed_rounds"],
                "weights_received": self.counts["weights_received"],
                "weights_applied": self.counts["weights_applied"], "last_error": self.last_error,
                "fatal": self.fatal, "alive": self.alive, "reference": self.opts.reference,
                "model": self.sampler.model_name,
                "tokenizer": self.sampler.fingerprint, "dtype": self.dtype,
                "uptime_s": round(now - self.started, 3),
            }


__all__ = ["RolloutWorker", "WorkerOptions", "WeightsError", "valid_for", "PROTOCOL"]
