"""End-to-end value estimation that survives being stopped: what `spo estimate-v --model` does.

    out = ValuesOutput("values.jsonl.zst", beta=0.1, k=800)     # refuses mixing; reads what is done
    todo = out.todo(read_records("problems.jsonl", "problem"))   # the problems without a value yet
    with out:
        for rec in estimate_problems(todo, sampler, judge, k=800, beta=0.1, on_batch_done=out.save):
            out.add(rec)

Sampling, judging and the estimate itself are spo_cli.values.estimate_problems; this module owns
where the records go and how a rerun resumes:
- a file is rewritten atomically (all records so far) after each batch of problems, so a killed
  run loses at most the problems in flight, and a rerun skips the problems the file holds;
- a directory gets a new shard per batch (the same, without rewriting anything);
- stdout gets each record as it is finished (nothing to resume from).
Values of another beta or k in the output are refused rather than mixed (`fresh` starts over; a
directory must then be empty).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from spo_cli.errors import BadInput


@dataclass
class EstimateOptions:
    """How `spo estimate-v --model` samples the reference policy pi_ref."""

    k: int = 800
    """With --model: samples per problem (the paper uses 800)."""
    temperature: float = 1.0
    """With --model: sampling temperature (1 = the reference policy itself)."""
    top_p: float = 1.0
    """With --model: nucleus mass (1 = the reference policy itself)."""
    max_new_tokens: int = 512
    """With --model: most response tokens per sample."""
    seed: int = 0
    """With --model: run seed (sample k of problem id is seeded by (seed, id, k))."""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")

    def sample_options(self, batch_size: int):
        """The SampleOptions of the reference samples (source ref)."""
        from spo_cli.sampling.base import SampleOptions

        return SampleOptions(n=self.k, temperature=self.temperature, top_p=self.top_p,
                             max_new_tokens=self.max_new_tokens, seed=self.seed, source="ref",
                             batch_size=batch_size)


class ValuesOutput:
    """Where an end-to-end run writes its Value records ('-', a file or a directory of shards),
    and the records a previous run of the same estimate left there."""

    def __init__(self, output: str | os.PathLike, *, beta: float, k: int, fresh: bool = False,
                 compress: str | None = None):
        from spo_cli.values import read_done_problem_ids

        self.name = os.fspath(output)
        self.compress = compress
        self.path = None if self.name == "-" else Path(self.name)
        self.to_dir = self.path is not None and (self.path.is_dir() or self.name.endswith(("/", os.sep)))
        self.done_recs: list[dict] = []
        self.done: set[str] = set()
        if self.path is not None and not fresh:
            try:
                self.done_recs, self.done = read_done_problem_ids(self.path)
            except BadInput as e:
                raise BadInput(f"cannot resume from the existing output ({e}); use --fresh to start over") from None
        if self.to_dir and fresh and self.path.exists() and any(self.path.iterdir()):
            raise BadInput("--fresh with an output directory that already holds shards: give an empty "
                           "or new directory", path=self.name)
        other = next((r for r in self.done_recs if r["beta"] != beta or r["k"] != k), None)
        if other is not None:
            raise BadInput(f"the output already holds values with beta={other['beta']:g}, k={other['k']} "
                           f"(problem {other['problem_id']!r}); this run asks for beta={beta:g}, k={k}: "
                           "give another --output, or --fresh to start over", path=self.name)
        self.new: list[dict] = []
        self._pending: list[dict] = []  # finished, not yet in a shard (directory output)
        self._stdout = None

    def todo(self, problems: Iterable[dict], where: str = "the problems") -> list[dict]:
        """The problems that have no value in the output yet, in order; a repeated id is an error."""
        todo, seen = [], set()
        for p in problems:
            if p["id"] in seen:
                raise BadInput(f"problem id {p['id']!r} appears twice", path=where)
            seen.add(p["id"])
            if p["id"] not in self.done:
                todo.append(p)
        return todo

    def __enter__(self) -> ValuesOutput:
        if self.path is None:
            from spo_cli.streams import open_writer

            self._cm = open_writer("-", self.compress)
            self._stdout = self._cm.__enter__()
        return self

    def __exit__(self, *exc) -> bool:
        if self._stdout is not None:
            self._stdout = None
            return bool(self._cm.__exit__(*exc))
        return False

    def add(self, rec: dict) -> None:
        """One finished problem's Value record (on stdout: written at once)."""
        self.new.append(rec)
        self._pending.append(rec)
        if self._stdout is not None:
            self._stdout.write(rec)
            self._stdout.flush()

    def save(self) -> None:
        """Make what was added durable: a new shard of the records since the last save, or an
        atomic rewrite of the file with every record so far."""
        from spo_cli.streams import add_shard, write_records

        if self.to_dir:
            if self._pending:
                add_shard(self.path, self._pending, prefix="values")
        elif self.path is not None:
            write_records(self.path, self.done_recs + self.new, self.compress)
        self._pending.clear()
