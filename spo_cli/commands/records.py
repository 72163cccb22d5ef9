"""`spo records`: look at, check, convert and combine record files and corpora."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import orjson
import typer

from spo_cli.commands._options import DEDUP, READING, WRITING, Options, cli, signature

app = typer.Typer(
    help="Look at, check, convert and combine record files and corpora.\n\n"
    "Any input may be a file (JSON lines, plain, .gz or .zst; or Parquet or Arrow: detected by "
    "content), a directory of shards, a glob, or - for stdin.",
    no_args_is_help=True,
)

KINDS = ["problem", "trajectory", "value"]


def _kind(text: str, option: str) -> str:
    if text not in KINDS:
        raise typer.BadParameter(f"choose one of {', '.join(KINDS)}", param_hint=option)
    return text


@dataclass
class Inputs:
    inputs: list[str] = field(default_factory=list, metadata=cli(argument=True))
    """Files, shard directories, globs or - (default: stdin)."""


@dataclass
class Cat:
    kind: str | None = field(default=None, metadata=cli("--kind", "-k", parse=_kind))
    """Validate as problem, trajectory or value. 'problem' also converts the rows of CodeContests,
    APPS, TACO, LiveCodeBench, HumanEval, MBPP and EvalPlus (HumanEval+, MBPP+) into Problem
    records, and skips (and counts) problems without usable tests."""
    min_reward: float | None = None
    """Keep only judged trajectories with reward >= this (e.g. 1 for the correct ones, as the
    paper's offline corpus); unjudged ones are dropped too."""
    source: list[str] = field(default_factory=list)
    """Keep only records with this source (e.g. human, ref)."""


@dataclass
class Check:
    kind: str = field(default="trajectory", metadata=cli("--kind", "-k", parse=_kind))
    """problem, trajectory or value."""


@dataclass
class Solutions:
    problems: list[str] = field(default_factory=list, metadata=cli(argument=True))
    """Problem files (any supported layout) or - (default: stdin)."""
    incorrect: bool = field(default=False, metadata=cli("--incorrect/--correct"))
    """Take the problems' incorrect_solutions instead of solutions."""
    source: str = "human"
    """The trajectories' source label."""


@dataclass
class Schema:
    kind: str = field(default="trajectory", metadata=cli(argument=True, parse=_kind))
    """problem, trajectory or value."""


INPUTS, CAT, CHECK, SOLUTIONS, SCHEMA = (Options(c) for c in (Inputs, Cat, Check, Solutions, Schema))


def cat(**kw) -> None:
    """Stream records from the inputs to one output: convert, validate, filter, deduplicate, compress.

    Writing to a directory adds a new shard to it atomically, so a cron job can grow a corpus:
    `spo records cat new.jsonl -o corpus/`. A curated corpus of correct solutions only:
    `spo records cat judged/ --min-reward 1 --dedup -o correct/`.
    """
    from spo_cli.console import info
    from spo_cli.streams import ReadStats, open_writer, read_records

    inputs, a, out = INPUTS.take(kw).inputs, CAT.take(kw), WRITING.take(kw)
    stats = ReadStats()
    keep = record_filter(a.min_reward, a.source)
    dropped = 0
    with open_writer(out.output, out.compress) as w:
        for rec in read_records(inputs or "-", a.kind, skip_invalid=READING.take(kw).skip_invalid,
                                dedup=DEDUP.take(kw).dedup, stats=stats):
            if keep is None or keep(rec):
                w.write(rec)
            else:
                dropped += 1
    filtered = f", {dropped} filtered out" if keep is not None else ""
    info(f"spo records cat: {stats.summary()}{filtered}")


def record_filter(min_reward: Optional[float], sources: Optional[list[str]]):
    """A predicate for `cat`'s filters, or None when there are none."""
    if min_reward is None and not sources:
        return None
    wanted = set(sources or ())

    def keep(rec: dict) -> bool:
        if wanted and rec.get("source") not in wanted:
            return False
        if min_reward is not None:
            r = rec.get("reward")
            if not isinstance(r, (int, float)) or isinstance(r, bool) or r < min_reward:
                return False
        return True

    return keep


def check(**kw) -> None:
    """Validate records; print counts as JSON on stdout (with `skipped`: problems without usable
    tests, when there are any). Exit 2 if any record is invalid."""
    from spo_cli.console import err
    from spo_cli.judge.outcome import is_usable
    from spo_cli.streams import ReadStats, read_records

    inputs, kind = INPUTS.take(kw).inputs, CHECK.take(kw).kind
    stats = ReadStats()
    judged = rewards = 0.0
    for rec in read_records(inputs or "-", kind, skip_invalid=True, stats=stats):
        if kind == "trajectory" and is_usable(rec):
            judged += 1
            rewards += rec["reward"]
    summary = {"records": stats.records, "invalid": stats.invalid}
    if stats.unusable:  # problems without usable tests: skipped, not invalid (issue 16)
        summary["skipped"] = stats.unusable
    if kind == "trajectory":
        summary["judged"] = int(judged)
        summary["mean_reward"] = (rewards / judged) if judged else None
    for path, line, reason in stats.examples + stats.unusable_examples:
        err.print(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}", markup=False)
    typer.echo(orjson.dumps(summary).decode())
    if stats.invalid:
        raise typer.Exit(2)


def solutions(**kw) -> None:
    """Turn the known solutions of problems into (unjudged) trajectories: human data for an
    offline corpus. Pipe them through `spo judge` to give them rewards:

    spo records solutions train.jsonl | spo judge -p train.jsonl > human.jsonl.zst
    """
    from spo_cli.console import info
    from spo_cli.schema import new_trajectory, prompt_text
    from spo_cli.streams import open_writer, read_records

    a, out = SOLUTIONS.take(kw), WRITING.take(kw)
    key = "incorrect_solutions" if a.incorrect else "solutions"
    n = 0
    with open_writer(out.output, out.compress) as w:
        for p in read_records(a.problems or "-", "problem"):
            for k, code in enumerate(p.get(key) or []):
                w.write(new_trajectory(problem_id=p["id"], prompt=prompt_text(p["prompt"]), response=code,
                                       source=a.source, policy_version=None,
                                       sampler={"model": a.source, "index": k}))
                n += 1
    info(f"spo records solutions: {n} trajectories")


def schema(**kw) -> None:
    """Print the fields of a record type: name, type, required or optional, meaning."""
    from spo_cli.schema import describe

    typer.echo(describe(SCHEMA.take(kw).kind))


for _name, _fn, _groups in [("cat", cat, (INPUTS, WRITING, CAT, DEDUP, READING)),
                            ("check", check, (INPUTS, CHECK)),
                            ("solutions", solutions, (SOLUTIONS, WRITING)),
                            ("schema", schema, (SCHEMA,))]:
    _fn.__signature__ = signature(*_groups)  # type: ignore[attr-defined]
    app.command(_name)(_fn)
