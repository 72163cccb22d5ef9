"""`spo pts`: Pivotal Token Search, Monte-Carlo targets for trajectories (thin layer over spo_cli.pts)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

import typer

from spo_cli.commands._options import JUDGING, READING, RUNTIME, WRITING, Cli, Options, cli, signature, usage_errors
from spo_cli.parsing import parse_range
from spo_cli.pts import PTSOptions
from spo_cli.sampling.base import SampleOptions


@dataclass(kw_only=True)
class Pts:
    trajectories: str = field(default="-", metadata=cli(argument=True))
    """Judged trajectories: file, shard directory, glob or - for stdin."""
    model: str = field(metadata=cli("--model", "-m"))
    """The reference model (checkpoint directory): it samples the rollouts."""
    problems: str = field(metadata=cli("--problems", "-p"))
    """Problems the trajectories answer (file, directory, glob)."""
    values: str | None = None
    """Value records (spo estimate-v): p_hat selects problems (--p-range) and gives p(0)."""
    missing_value: str = "error"
    """A problem without a value: error, estimate (p(0) from N rollouts, then --p-range) or skip."""
    rollouts_out: str | None = None
    """Also write every rollout as a judged trajectory (source pts-rollout) here."""
    limit: int | None = None
    """Search at most this many trajectories (after selection)."""
    top_p: float = 1.0
    """Rollout nucleus mass (1 = the reference policy)."""


ARGS = Options(Pts)
SEARCH = Options(PTSOptions, {
    "n_rollouts": Cli(("-n", "--rollouts")),
    "p_range": Cli(parse=partial(parse_range, lo=0.0, hi=1.0), metavar="LO,HI",
                   help="LO,HI: search only problems whose p_hat is in [LO, HI] (0,1: all)."),
    "successful_only": Cli(("--successful-only/--all-trajectories",)),
    "temperature": Cli(("--temperature", "-t")),
}, skip=("prompt_p_from_values",))
BATCH = Options(SampleOptions, only=("batch_size",))


def main(**kw) -> None:
    """Find pivotal tokens and write Monte-Carlo targets (docs/math.md §8).

    For each selected trajectory (by default: successful ones of problems with 0.2 <= p_hat <= 0.8),
    estimate the success probability p(k) of the reference model continuing the first k response
    tokens from N rollouts (sampled in batches, judged in parallel, memoised) and bisect the
    response where |delta p| >= p_gap. Output: the trajectory with `mc` = [[k, p_hat, n], ...] for
    every estimated prefix, `pivotal` = the single tokens where p jumps (index, token, p_before,
    p_after, delta), `pts` = what the search did (rollouts used, budget_exhausted, ...), the
    reference log-probs as `ref_logprobs`, and source pts. Trajectories are written as their
    searches finish. Progress and a summary (rollouts per second, the distribution of p_hat) go to
    stderr.

    Example: spo pts judged.jsonl.zst -m ref -p problems.jsonl --values values.jsonl -o pts.jsonl.zst --rollouts-out rollouts/
    """
    import time

    from spo_cli.console import info, progress, warn
    from spo_cli.judge.client import Judge
    from spo_cli.pts import PrefixRollouts, PTSStats, pivotal_token_search
    from spo_cli.sampling import make_sampler
    from spo_cli.streams import ReadStats, index_by, open_writer, read_records
    from spo_cli.values import load_values, p_hat_histogram, parse_missing_value

    args, out, runtime = ARGS.take(kw), WRITING.take(kw), RUNTIME.take(kw)
    skip_invalid = READING.take(kw).skip_invalid
    search = SEARCH.values(kw)
    try:
        mv = parse_missing_value(args.missing_value, allow=("error", "estimate", "skip"))
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--missing-value") from None
    if search["p_range"] == (0.0, 1.0) and args.values is None:
        search["p_range"] = None  # every problem: nothing to select by
    opts = SEARCH.build(search)
    with usage_errors():
        sopts = SampleOptions(n=1, temperature=opts.temperature, top_p=args.top_p,
                              max_new_tokens=opts.max_new_tokens, seed=opts.seed, source="pts-rollout",
                              batch_size=BATCH.values(kw)["batch_size"])
    if args.values is None and opts.p_range is not None and mv.policy == "error":
        raise typer.BadParameter("selecting by --p-range needs --values (or --missing-value "
                                 "estimate, or --p-range 0,1)", param_hint="--values")
    problems_by_id = index_by(read_records(args.problems, "problem", skip_invalid=skip_invalid), "id", "problem")
    vals = load_values(args.values) if args.values is not None else None
    runtime.apply()
    sampler = make_sampler(runtime.backend, args.model, sopts, device=runtime.device, dtype=runtime.dtype)
    rollouts = PrefixRollouts(sampler, temperature=opts.temperature, seed=opts.seed)
    rstats = ReadStats()
    stats = PTSStats()
    src = read_records(args.trajectories, "trajectory", skip_invalid=skip_invalid, stats=rstats)
    info(f"spo pts: N={opts.n_rollouts}, p_gap={opts.p_gap:g}, split={opts.split}, budget {opts.budget} "
         f"rollouts per trajectory, p_hat range {opts.p_range or 'all'}")
    judge = Judge(JUDGING.take(kw).jobs)
    t0 = time.perf_counter()
    written = 0
    try:
        with progress() as bar, open_writer(out.output, out.compress) as w, \
                (open_writer(args.rollouts_out, out.compress) if args.rollouts_out else nullcontext()) as rw:
            t_roll = bar.add_task("rollouts", total=None)
            t_traj = bar.add_task("trajectories", total=None)

            def on_progress(kind: str, n: int) -> None:
                bar.advance(t_roll if kind == "rollouts" else t_traj, n)

            for rec in pivotal_token_search(src, problems_by_id, rollouts, judge, opts, values=vals,
                                            missing=mv.policy, stats=stats, limit=args.limit,
                                            on_progress=on_progress,
                                            on_rollouts=rw.write_many if rw is not None else None):
                w.write(rec)
                written += 1
    finally:
        judge.close()
    dt = time.perf_counter() - t0
    info(f"spo pts: {written} trajectories searched ({stats.seen} read; skipped: "
         f"{stats.skipped_failed} failed, {stats.skipped_range} outside the p_hat range, "
         f"{stats.skipped_missing_value} without a value, {stats.dropped_after_estimate} out of range "
         f"once estimated, {stats.duplicates} repeats); {stats.pivotal} pivotal tokens")
    info(f"spo pts: {stats.rollouts} rollouts in {dt:.0f} s ({stats.rollouts / max(dt, 1e-9):.1f}/s; "
         f"{rollouts.generated_tokens / max(dt, 1e-9):.0f} tokens/s); judge ran {judge.runs} programs, "
         f"{judge.memo_hits} repeats reused")
    if stats.p_hats:
        info("spo pts: p_hat of the estimated prefixes: " + p_hat_histogram(stats.p_hats))
    if stats.budget_exhausted:
        warn(f"{stats.budget_exhausted} searches ran out of --budget before every span was resolved")
    if stats.judge_errors:
        warn(f"{stats.judge_errors} rollouts with judge errors (JE) were left out")
    if stats.retokenized:
        info(f"spo pts: {stats.retokenized} trajectories re-tokenized with the reference tokenizer")


main.__signature__ = signature(ARGS, WRITING, SEARCH, BATCH, JUDGING, RUNTIME, READING)  # type: ignore[attr-defined]
