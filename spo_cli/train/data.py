"""Where the learner's trajectories come from: a resumable offline stream and online rollouts.

Offline: the corpus files are listed once when a run starts (and saved with it), read as a
stream through a shuffle buffer seeded per epoch, forever. The data position is the number of
records taken; resuming replays the same stream and skips that many, so the resumed run sees
exactly the records an uninterrupted one would have. Memory: the shuffle buffer, not the corpus.

Values: spo_cli.values.load_values (the Trainer's V_hat table).

Online: each step's problems and sampling seed are functions of (seed, step), and the behaviour
policy is the policy as of the last update step, so online data too is the same after a resume.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterator

from spo_cli.errors import BadInput
from spo_cli.judge.outcome import is_usable
from spo_cli.streams import ReadStats, expand, read_records


def step_seed(seed: int, step: int, what: str) -> int:
    h = hashlib.blake2b(f"{what}/{seed}/{step}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") >> 1


class OfflineStream:
    """An endless, shuffled, resumable stream of judged trajectories from fixed files."""

    def __init__(self, files: list[str], seed: int, buffer: int = 4096, position: int = 0):
        if not files:
            raise BadInput("the offline corpus is empty: no files")
        self.files = files
        self.seed = seed
        self.buffer = max(1, buffer)
        self.position = position  # records taken so far (the data position of a checkpoint)
        self.unjudged = 0
        self._it = itertools.islice(self._stream(), position, None)

    @staticmethod
    def list_files(spec: list[str]) -> list[str]:
        return expand(spec) if spec else []

    def _epoch(self, epoch: int) -> Iterator[dict]:
        rng = random.Random(step_seed(self.seed, epoch, "offline-shuffle"))
        buf: list[dict] = []
        stats = ReadStats()
        for rec in read_records(self.files, "trajectory", dedup=True, stats=stats):
            if not is_usable(rec):
                self.unjudged += 1  # not judged: nothing to learn from
                continue
            if len(buf) < self.buffer:
                buf.append(rec)
                continue
            i = rng.randrange(len(buf))
            yield buf[i]
            buf[i] = rec
        if epoch == 0 and stats.dropped_targets:
            from spo_cli.console import warn

            for path, n in stats.dropped_targets.items():
                warn(f"spo train: {path}: {n} trajectories with PTS targets (mc/pivotal) were dropped as duplicates "
                     "of ids read earlier without them; list the PTS output before the corpus it annotates in --offline")
        rng.shuffle(buf)
        yield from buf

    def _stream(self) -> Iterator[dict]:
        for epoch in itertools.count():
            n = 0
            for rec in self._epoch(epoch):
                n += 1
                yield rec
            if n == 0:
                raise BadInput(f"the offline corpus has no judged trajectories ({', '.join(self.files[:3])}"
                               f"{', ...' if len(self.files) > 3 else ''}; {self.unjudged} unjudged)")

    def take(self, n: int) -> list[dict]:
        out = list(itertools.islice(self._it, n))
        self.position += len(out)
        return out
