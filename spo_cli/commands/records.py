"""`spo records`: look at, check, convert and combine record files and corpora."""

from __future__ import annotations

from typing import List, Optional

import orjson
import typer

from spo_cli.commands._options import Compress, Dedup, Output, SkipInvalid

app = typer.Typer(
    help="Look at, check, convert and combine record files and corpora.\n\n"
    "Any input may be a file (plain, .gz or .zst, detected by content), a directory of shards, "
    "a glob, or - for stdin.",
    no_args_is_help=True,
)

KINDS = ["problem", "trajectory", "value"]


def _kind(kind: Optional[str]) -> Optional[str]:
    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"choose one of {', '.join(KINDS)}", param_hint="--kind")
    return kind


@app.command("cat")
def cat(
    inputs: List[str] = typer.Argument(None, help="Files, shard directories, globs or - (default: stdin)."),
    output: str = Output,
    kind: Optional[str] = typer.Option(
        None, "--kind", "-k",
        help="Validate as problem, trajectory or value. 'problem' also converts CodeContests, "
        "TACO, HumanEval and MBPP rows into Problem records.",
    ),
    dedup: bool = Dedup,
    min_reward: Optional[float] = typer.Option(
        None, "--min-reward",
        help="Keep only judged trajectories with reward >= this (e.g. 1 for the correct ones, as "
        "the paper's offline corpus); unjudged ones are dropped too.",
    ),
    source: Optional[List[str]] = typer.Option(
        None, "--source", help="Keep only records with this source (repeatable; e.g. human, ref).",
    ),
    skip_invalid: bool = SkipInvalid,
    compress: Optional[str] = Compress,
) -> None:
    """Stream records from the inputs to one output: convert, validate, filter, deduplicate, compress.

    Writing to a directory adds a new shard to it atomically, so a cron job can grow a corpus:
    `spo records cat new.jsonl -o corpus/`. A curated corpus of correct solutions only:
    `spo records cat judged/ --min-reward 1 --dedup -o correct/`.
    """
    from spo_cli.console import info
    from spo_cli.streams import ReadStats, open_writer, read_records

    stats = ReadStats()
    keep = record_filter(min_reward, source)
    dropped = 0
    with open_writer(output, compress) as w:
        for rec in read_records(inputs or "-", _kind(kind), skip_invalid=skip_invalid,
                                dedup=dedup, stats=stats):
            if keep is None or keep(rec):
                w.write(rec)
            else:
                dropped += 1
    filtered = f", {dropped} filtered out" if keep is not None else ""
    info(f"spo records cat: {stats.summary()}{filtered}")


def record_filter(min_reward: Optional[float], sources: Optional[List[str]]):
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


@app.command("check")
def check(
    inputs: List[str] = typer.Argument(None, help="Files, shard directories, globs or - (default: stdin)."),
    kind: str = typer.Option("trajectory", "--kind", "-k", help="problem, trajectory or value."),
) -> None:
    """Validate records; print counts as JSON on stdout. Exit 2 if any record is invalid."""
    from spo_cli.console import err
    from spo_cli.streams import ReadStats, read_records

    stats = ReadStats()
    judged = rewards = 0.0
    for rec in read_records(inputs or "-", _kind(kind), skip_invalid=True, stats=stats):
        if kind == "trajectory" and rec.get("reward") is not None:
            judged += 1
            rewards += rec["reward"]
    summary = {"records": stats.records, "invalid": stats.invalid}
    if kind == "trajectory":
        summary["judged"] = int(judged)
        summary["mean_reward"] = (rewards / judged) if judged else None
    for path, line, reason in stats.examples:
        err.print(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}", markup=False)
    typer.echo(orjson.dumps(summary).decode())
    if stats.invalid:
        raise typer.Exit(2)


@app.command("solutions")
def solutions(
    problems: List[str] = typer.Argument(None, help="Problem files (any supported layout) or - (default: stdin)."),
    output: str = Output,
    incorrect: bool = typer.Option(False, "--incorrect/--correct",
                                   help="Take the problems' incorrect_solutions instead of solutions."),
    source: str = typer.Option("human", "--source", help="The trajectories' source label."),
    compress: Optional[str] = Compress,
) -> None:
    """Turn the known solutions of problems into (unjudged) trajectories: human data for an
    offline corpus. Pipe them through `spo judge` to give them rewards:

    spo records solutions train.jsonl | spo judge -p train.jsonl > human.jsonl.zst
    """
    from spo_cli.console import info
    from spo_cli.schema import new_trajectory, prompt_text
    from spo_cli.streams import open_writer, read_records

    field = "incorrect_solutions" if incorrect else "solutions"
    n = 0
    with open_writer(output, compress) as w:
        for p in read_records(problems or "-", "problem"):
            for k, code in enumerate(p.get(field) or []):
                w.write(new_trajectory(problem_id=p["id"], prompt=prompt_text(p["prompt"]), response=code,
                                       source=source, policy_version=None,
                                       sampler={"model": source, "index": k}))
                n += 1
    info(f"spo records solutions: {n} trajectories")


@app.command("schema")
def schema(kind: str = typer.Argument("trajectory", help="problem, trajectory or value.")) -> None:
    """Print the fields of a record type: name, type, required or optional, meaning."""
    from spo_cli.schema import describe

    typer.echo(describe(_kind(kind)))
