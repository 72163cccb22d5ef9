"""`spo estimate-v`: one Value record per problem (thin layer over spo_cli.values and, end to end,
spo_cli.estimate_v). Its options are generated from the dataclasses below and EstimateOptions."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from spo_cli.commands._options import (
    DEDUP,
    JUDGING,
    READING,
    RUNTIME,
    WRITING,
    Cli,
    Options,
    cli,
    signature,
    usage_errors,
)
from spo_cli.estimate_v import EstimateOptions
from spo_cli.sampling.base import SampleOptions


@dataclass
class EstimateV:
    trajectories: str = field(default="-", metadata=cli(argument=True))
    """Judged trajectories: file, shard directory, glob or - for stdin (ignored with --model)."""
    beta: float = 0.1
    """Temperature of the soft value (must match the one `spo train` uses)."""
    source: list[str] = field(default_factory=list)
    """Use only trajectories with this source (e.g. --source ref). Default: all."""
    model: str | None = field(default=None, metadata=cli("--model", "-m"))
    """End to end: sample -k per problem from this reference model, judge and estimate."""
    problems: str | None = field(default=None, metadata=cli("--problems", "-p"))
    """Problems (needed with --model): file, shard directory, glob or -."""

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta}")


@dataclass
class EndToEnd:
    samples_out: str | None = None
    """With --model: also keep the judged samples, one shard per batch of problems, in this corpus
    directory."""
    fresh: bool = field(default=False, metadata=cli("--fresh"))
    """With --model: ignore values already in --output instead of resuming."""


ARGS, E2E = Options(EstimateV), Options(EndToEnd)
ESTIMATE = Options(EstimateOptions, {"k": Cli(("-k", "--k")), "temperature": Cli(("--temperature", "-t"))})
BATCH = Options(SampleOptions, only=("batch_size",))


def main(**kw) -> None:
    """Estimate V_hat(x0) = beta log mean exp((reward - 1)/beta) per problem (docs/math.md §7).

    From judged reference-policy trajectories (any order), one Value record per problem:
    problem_id, v (computed with logsumexp), p_hat (share of samples that passed every test), k,
    beta, stderr (delta method) and, when the judge failed on some samples, judge_errors. Memory
    grows with the number of problems, not of samples. Judge errors (verdict JE) are left out and
    counted; an unjudged trajectory is an error.

    As a pipe stage: spo sample --ref -n 64 -m ref -p problems.jsonl | spo judge -p problems.jsonl | spo estimate-v --beta 0.1 > values.jsonl

    End to end: spo estimate-v -m ref -p problems.jsonl -k 800 -o values.jsonl samples, judges and
    estimates one problem after another. Each finished problem's record is saved at once (the
    output file is rewritten atomically; a directory gets a new shard), so a killed run loses at
    most the problems in flight, and running the same command again skips the problems the
    output already holds (--fresh starts over).
    """
    from spo_cli.console import info, warn
    from spo_cli.streams import ReadStats, open_writer, read_records
    from spo_cli.values import EstimateStats, estimate_values, p_hat_histogram

    args, out, reading = ARGS.take(kw), WRITING.take(kw), READING.take(kw)
    if args.model is not None:
        return _end_to_end(args, out, reading, **kw)
    if args.problems is not None:
        warn("--problems is used only with --model; ignored")
    rstats = ReadStats()
    stats = EstimateStats()
    # Every value needs all of its problem's samples, so nothing can be written before the input
    # ends; reading it all first means bad input leaves no half-made output behind.
    recs = list(estimate_values(read_records(args.trajectories, "trajectory", skip_invalid=reading.skip_invalid,
                                             dedup=DEDUP.take(kw).dedup, stats=rstats),
                                args.beta, sources=args.source or None, stats=stats))
    with open_writer(out.output, out.compress) as w:
        w.write_many(recs)
    info(f"spo estimate-v: {stats.problems} problems from {stats.trajectories} judged trajectories"
         f" (beta {args.beta:g})")
    if recs:
        info("spo estimate-v: p_hat of the problems: " + p_hat_histogram(r["p_hat"] for r in recs))
    if stats.judge_errors:
        warn(f"{stats.judge_errors} trajectories with judge errors (JE) were left out")
    if stats.skipped_source:
        info(f"spo estimate-v: {stats.skipped_source} trajectories of other sources skipped")
    if rstats.invalid or rstats.duplicates:
        info(f"spo estimate-v: {rstats.summary()}")
    if stats.problems == 0:
        warn("no values written: the input held no judged trajectories")


def _end_to_end(args: EstimateV, out, reading, **kw) -> None:
    import time

    from spo_cli.console import info, progress
    from spo_cli.estimate_v import ValuesOutput
    from spo_cli.judge.client import Judge
    from spo_cli.sampling import make_sampler
    from spo_cli.streams import ReadStats, add_shard, read_records
    from spo_cli.values import estimate_problems, p_hat_histogram

    if args.problems is None:
        raise typer.BadParameter("--model needs --problems", param_hint="--problems")
    est, e2e, runtime = ESTIMATE.take(kw), E2E.take(kw), RUNTIME.take(kw)
    with usage_errors():
        sopts = est.sample_options(BATCH.values(kw)["batch_size"])
    jobs = JUDGING.take(kw).jobs
    k, beta = est.k, args.beta
    values = ValuesOutput(out.output, beta=beta, k=k, fresh=e2e.fresh, compress=out.compress)
    if values.done:
        info(f"spo estimate-v: resuming, {len(values.done)} problems already in {out.output}")
    todo = values.todo(read_records(args.problems, "problem", skip_invalid=reading.skip_invalid,
                                    stats=ReadStats()), where=args.problems)
    if not todo:
        info(f"spo estimate-v: nothing to do, every problem already has a value in {out.output}")
        return
    runtime.apply()
    sampler = make_sampler(runtime.backend, args.model, sopts, device=runtime.device, dtype=runtime.dtype)
    info(f"spo estimate-v: {len(todo)} problems x {k} samples from {args.model} (temperature "
         f"{est.temperature:g}, top-p {est.top_p:g}), beta {beta:g}")

    t0 = time.perf_counter()
    judge = Judge(jobs)
    samples_out = e2e.samples_out
    on_samples = (lambda judged: add_shard(samples_out, judged, prefix="estimate-v")) if samples_out else None
    try:
        with progress() as bar, values:
            task = bar.add_task("estimate-v", total=len(todo) * k)
            for rec in estimate_problems(todo, sampler, judge, k=k, beta=beta, on_samples=on_samples,
                                         on_progress=lambda n: bar.advance(task, n),
                                         on_batch_done=values.save):
                values.add(rec)
    finally:
        judge.close()
    dt = time.perf_counter() - t0
    new = values.new
    if new:
        info("spo estimate-v: p_hat of the new problems: " + p_hat_histogram(r["p_hat"] for r in new))
    info(f"spo estimate-v: {len(new)} new values ({len(values.done_recs) + len(new)} in all) in {dt:.0f} s"
         f" ({len(new) * k / max(dt, 1e-9):.1f} samples/s); judge ran {judge.runs} programs,"
         f" {judge.memo_hits} repeats reused")


main.__signature__ = signature(ARGS, WRITING, ESTIMATE, E2E, JUDGING, RUNTIME, BATCH, READING,  # type: ignore[attr-defined]
                               DEDUP)
