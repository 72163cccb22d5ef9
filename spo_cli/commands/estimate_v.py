"""`spo estimate-v`: one Value record per problem (thin layer over spo_cli.values)."""

from __future__ import annotations

from typing import List, Optional

import typer

from spo_cli.commands._options import Compress, Dedup, Output, SkipInvalid
from spo_cli.commands import _options as opts


def main(
    trajectories: str = typer.Argument("-", help="Judged trajectories: file, shard directory, glob or - for stdin (ignored with --model)."),
    output: str = Output,
    beta: float = typer.Option(0.1, "--beta", help="Temperature of the soft value (must match the one `spo train` uses)."),
    source: Optional[List[str]] = typer.Option(None, "--source", help="Use only trajectories with this source (repeatable; e.g. --source ref). Default: all."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="End to end: sample -k per problem from this reference model, judge and estimate."),
    problems: Optional[str] = typer.Option(None, "--problems", "-p", help="Problems (needed with --model): file, shard directory, glob or -."),
    k: int = typer.Option(800, "-k", "--k", help="With --model: samples per problem (the paper uses 800)."),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="With --model: sampling temperature (1 = the reference policy itself)."),
    top_p: float = typer.Option(1.0, "--top-p", help="With --model: nucleus mass (1 = the reference policy itself)."),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="With --model: most response tokens per sample."),
    seed: int = typer.Option(0, "--seed", help="With --model: run seed (sample k of problem id is seeded by (seed, id, k))."),
    samples_out: Optional[str] = typer.Option(None, "--samples-out", help="With --model: also keep the judged samples, one shard per batch of problems, in this corpus directory."),
    fresh: bool = typer.Option(False, "--fresh", help="With --model: ignore values already in --output instead of resuming."),
    jobs: Optional[int] = opts.Jobs,
    backend: str = opts.Backend,
    batch_size: int = opts.BatchSize,
    device: str = opts.Device,
    dtype: str = opts.Dtype,
    threads: Optional[int] = opts.Threads,
    skip_invalid: bool = SkipInvalid,
    dedup: bool = Dedup,
    compress: Optional[str] = Compress,
) -> None:
    """Estimate V_hat(x0) = beta log mean exp((reward - 1)/beta) per problem (MATH.md section 7).

    From judged reference-policy trajectories (any order), one Value record per problem:
    problem_id, v (computed with logsumexp), p_hat (share of samples that passed every test), k,
    beta and stderr (delta method). Memory grows with the number of problems, not of samples.
    Judge errors (verdict JE) are left out and counted; an unjudged trajectory is an error.

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

    if not beta > 0:
        raise typer.BadParameter("beta must be > 0", param_hint="--beta")
    if model is not None:
        _end_to_end(model=model, problems=problems, output=output, beta=beta, k=k,
                    temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                    samples_out=samples_out, fresh=fresh, jobs=jobs, backend=backend,
                    batch_size=batch_size, device=device, dtype=dtype, threads=threads,
                    skip_invalid=skip_invalid, compress=compress)
        return
    if problems is not None:
        warn("--problems is used only with --model; ignored")
    rstats = ReadStats()
    stats = EstimateStats()
    # Every value needs all of its problem's samples, so nothing can be written before the input
    # ends; reading it all first means bad input leaves no half-made output behind.
    recs = list(estimate_values(read_records(trajectories, "trajectory", skip_invalid=skip_invalid,
                                             dedup=dedup, stats=rstats), beta, sources=source, stats=stats))
    with open_writer(output, compress) as w:
        for rec in recs:
            w.write(rec)
    info(f"spo estimate-v: {stats.problems} problems from {stats.trajectories} judged trajectories"
         f" (beta {beta:g})")
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


def _end_to_end(*, model, problems, output, beta, k, temperature, top_p, max_new_tokens, seed,
                samples_out, fresh, jobs, backend, batch_size, device, dtype, threads,
                skip_invalid, compress) -> None:
    import time
    from pathlib import Path

    from spo_cli.console import info, progress
    from spo_cli.errors import BadInput
    from spo_cli.sampling import SampleOptions, make_sampler
    from spo_cli.streams import ReadStats, add_shard, open_writer, read_records, write_records
    from spo_cli.values import Judge, estimate_problems, p_hat_histogram, read_done_problem_ids

    if problems is None:
        raise typer.BadParameter("--model needs --problems", param_hint="--problems")
    if k < 1:
        raise typer.BadParameter("k must be >= 1", param_hint="-k")
    try:
        opts = SampleOptions(n=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                             seed=seed, source="ref", batch_size=batch_size)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    to_stdout = output == "-"
    out_path = None if to_stdout else Path(output)
    to_dir = out_path is not None and (out_path.is_dir() or output.endswith("/"))
    done_recs: list[dict] = []
    done: set[str] = set()
    if out_path is not None and not fresh:
        try:
            done_recs, done = read_done_problem_ids(out_path)
        except BadInput as e:
            raise BadInput(f"cannot resume from the existing output ({e}); use --fresh to start over") from None
    if to_dir and fresh and any(out_path.iterdir()):
        raise BadInput("--fresh with an output directory that already holds shards: give an empty "
                       "or new directory", path=str(out_path))
    other = next((r for r in done_recs if r["beta"] != beta or r["k"] != k), None)
    if other is not None:
        raise BadInput(f"the output already holds values with beta={other['beta']:g}, k={other['k']} "
                       f"(problem {other['problem_id']!r}); this run asks for beta={beta:g}, k={k}: "
                       "give another --output, or --fresh to start over", path=output)
    if done:
        info(f"spo estimate-v: resuming, {len(done)} problems already in {output}")

    rstats = ReadStats()
    todo, seen = [], set()
    for p in read_records(problems, "problem", skip_invalid=skip_invalid, stats=rstats):
        if p["id"] in seen:
            raise BadInput(f"problem id {p['id']!r} appears twice", path=problems)
        seen.add(p["id"])
        if p["id"] not in done:
            todo.append(p)
    if not todo:
        info(f"spo estimate-v: nothing to do, every problem already has a value in {output}")
        return
    if threads is not None:
        import torch

        torch.set_num_threads(max(1, threads))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    sampler = make_sampler(backend, model, opts, device=device, dtype=dtype)
    info(f"spo estimate-v: {len(todo)} problems x {k} samples from {model} (temperature "
         f"{temperature:g}, top-p {top_p:g}), beta {beta:g}")

    new: list[dict] = []
    pending: list[dict] = []  # finished but not yet saved (directory output)
    t0 = time.perf_counter()
    judge = Judge(jobs)
    on_samples = (lambda judged: add_shard(samples_out, judged, prefix="estimate-v")) if samples_out else None

    def save() -> None:  # after each batch of problems: what is saved survives a kill
        if to_dir and pending:
            add_shard(out_path, pending, prefix="values")
            pending.clear()
        elif out_path is not None and not to_dir:
            write_records(out_path, done_recs + new, compress)  # atomic rewrite

    try:
        with progress() as bar, (open_writer("-", compress) if to_stdout else _null()) as w:
            task = bar.add_task("estimate-v", total=len(todo) * k)
            for rec in estimate_problems(todo, sampler, judge, k=k, beta=beta, on_samples=on_samples,
                                         on_progress=lambda n: bar.advance(task, n), on_batch_done=save):
                if w is not None:
                    w.write(rec)
                    w.flush()
                new.append(rec)
                pending.append(rec)
    finally:
        judge.close()
    dt = time.perf_counter() - t0
    if new:
        info("spo estimate-v: p_hat of the new problems: " + p_hat_histogram(r["p_hat"] for r in new))
    info(f"spo estimate-v: {len(new)} new values ({len(done_recs) + len(new)} in all) in {dt:.0f} s"
         f" ({len(new) * k / max(dt, 1e-9):.1f} samples/s); judge ran {judge.runs} programs,"
         f" {judge.memo_hits} repeats reused")


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
