"""`spo pts`: Pivotal Token Search, Monte-Carlo targets for trajectories (thin layer over spo_cli.pts)."""

from __future__ import annotations

from typing import Optional

import typer

from spo_cli.commands._options import Compress, Output, SkipInvalid
from spo_cli.commands import _options as opts


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.replace(":", ",").split(","))
    except ValueError:
        raise typer.BadParameter(f"want LO,HI such as 0.2,0.8, got {text!r}", param_hint="--p-range") from None
    return lo, hi


def main(
    trajectories: str = typer.Argument("-", help="Judged trajectories: file, shard directory, glob or - for stdin."),
    model: str = typer.Option(..., "--model", "-m", help="The reference model (checkpoint directory): it samples the rollouts."),
    problems: str = typer.Option(..., "--problems", "-p", help="Problems the trajectories answer (file, directory, glob)."),
    values: Optional[str] = typer.Option(None, "--values", help="Value records (spo estimate-v): p_hat selects problems (--p-range) and gives p(0)."),
    output: str = Output,
    n_rollouts: int = typer.Option(10, "-n", "--rollouts", help="N: rollouts per prefix estimate."),
    p_gap: float = typer.Option(0.2, "--p-gap", help="Bisect a span while its success probability changes by at least this."),
    split: str = typer.Option("logprob", "--split", help="logprob (midpoint of cumulative log-prob under the reference model) or token (token midpoint)."),
    budget: int = typer.Option(300, "--budget", help="Most rollouts per trajectory."),
    p_range: str = typer.Option("0.2,0.8", "--p-range", help="LO,HI: search only problems whose p_hat is in [LO, HI] (0,1: all)."),
    all_trajectories: bool = typer.Option(False, "--all-trajectories", help="Search failed trajectories too (default: successful ones only)."),
    missing_value: str = typer.Option("error", "--missing-value", help="A problem without a value: error, estimate (p(0) from N rollouts, then --p-range) or skip."),
    rollouts_out: Optional[str] = typer.Option(None, "--rollouts-out", help="Also write every rollout as a judged trajectory (source pts-rollout) here."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Search at most this many trajectories (after selection)."),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Rollout temperature (1 = the reference policy)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Rollout nucleus mass (1 = the reference policy)."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="Most response tokens of prefix + continuation."),
    seed: int = typer.Option(0, "--seed", help="Rollout i of prefix k of trajectory t is seeded by (seed, t, k, i)."),
    concurrent: int = typer.Option(8, "--concurrent", help="Trajectories searched at once (their rollouts share sampling batches)."),
    jobs: Optional[int] = opts.Jobs,
    backend: str = opts.Backend,
    batch_size: int = typer.Option(16, "--batch-size", help="Rollouts decoded together (hf backend)."),
    device: str = opts.Device,
    dtype: str = opts.Dtype,
    threads: Optional[int] = opts.Threads,
    skip_invalid: bool = SkipInvalid,
    compress: Optional[str] = Compress,
) -> None:
    """Find pivotal tokens and write Monte-Carlo targets (MATH.md section 8).

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
    from spo_cli.pts import PrefixRollouts, PTSOptions, PTSStats, pivotal_token_search
    from spo_cli.sampling import SampleOptions, make_sampler
    from spo_cli.streams import ReadStats, index_by, open_writer, read_records
    from spo_cli.values import Judge, load_values, p_hat_histogram, parse_missing_value

    lo, hi = _range(p_range)
    try:
        mv = parse_missing_value(missing_value, allow=("error", "estimate", "skip"))
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--missing-value") from None
    try:
        opts = PTSOptions(n_rollouts=n_rollouts, p_gap=p_gap, split=split, budget=budget,
                          p_range=None if (lo, hi) == (0.0, 1.0) and values is None else (lo, hi),
                          successful_only=not all_trajectories, temperature=temperature,
                          max_new_tokens=max_new_tokens, seed=seed, concurrent=concurrent)
        sopts = SampleOptions(n=1, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                              seed=seed, source="pts-rollout", batch_size=batch_size)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    if values is None and opts.p_range is not None and mv.policy == "error":
        raise typer.BadParameter("selecting by --p-range needs --values (or --missing-value "
                                 "estimate, or --p-range 0,1)", param_hint="--values")
    problems_by_id = index_by(read_records(problems, "problem", skip_invalid=skip_invalid), "id", "problem")
    vals = load_values(values) if values is not None else None
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, threads))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    sampler = make_sampler(backend, model, sopts, device=device, dtype=dtype)
    rollouts = PrefixRollouts(sampler, temperature=temperature, seed=seed)
    rstats = ReadStats()
    stats = PTSStats()
    src = read_records(trajectories, "trajectory", skip_invalid=skip_invalid, stats=rstats)
    info(f"spo pts: N={n_rollouts}, p_gap={p_gap:g}, split={split}, budget {budget} rollouts per "
         f"trajectory, p_hat range {opts.p_range or 'all'}")
    judge = Judge(jobs)
    t0 = time.perf_counter()
    written = 0
    try:
        with progress() as bar, open_writer(output, compress) as w, \
                (open_writer(rollouts_out, compress) if rollouts_out else _null()) as rw:
            t_roll = bar.add_task("rollouts", total=None)
            t_traj = bar.add_task("trajectories", total=None)

            def on_progress(kind: str, n: int) -> None:
                bar.advance(t_roll if kind == "rollouts" else t_traj, n)

            for rec in pivotal_token_search(src, problems_by_id, rollouts, judge, opts, values=vals,
                                            missing=mv.policy, stats=stats, limit=limit,
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


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
