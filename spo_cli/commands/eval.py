"""`spo eval`: pass@k of checkpoints or of judged trajectories (thin layer over spo_cli.evaluate)."""

from __future__ import annotations

from typing import List, Optional

import typer

from spo_cli.commands._options import SkipInvalid
from spo_cli.commands import _options as opts


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(x) for x in text.replace(" ", "").split(",") if x})
    except ValueError:
        raise typer.BadParameter(f"want a list of integers like 1,10, got {text!r}", param_hint="-k") from None
    if not ks or ks[0] < 1:
        raise typer.BadParameter("every k must be >= 1", param_hint="-k")
    return ks


def main(
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Checkpoint directory (repeatable, or several after one --model: DIR [DIR ...]). Several checkpoints of one run give a plot of pass@k against the step."),
    extra_models: Optional[List[str]] = typer.Argument(None, metavar="[DIR]...", help="More checkpoint directories (so `--model run/step-*` works with a shell glob)."),
    problems: Optional[str] = typer.Option(None, "--problems", "-p", help="Problems: file, shard directory, glob or -."),
    trajectories: Optional[str] = typer.Option(None, "--trajectories", help="Evaluate already-judged trajectories instead of sampling (file, directory, glob or -)."),
    k: str = typer.Option("1,10", "-k", "--k", help="Comma-separated k of pass@k."),
    n: int = typer.Option(20, "-n", "--n", help="Samples per problem (the paper: 20)."),
    temperature: float = typer.Option(0.4, "--temperature", "-t", help="Sampling temperature (the paper: 0.4)."),
    top_p: float = typer.Option(0.95, "--top-p", help="Nucleus mass (the paper: 0.95)."),
    max_new_tokens: int = opts.MaxNewTokens,
    seed: int = typer.Option(0, "--seed", help="Run seed (sample k of problem id is seeded by (seed, id, k))."),
    samples_out: Optional[str] = typer.Option(None, "--samples-out", help="Also write the judged samples here (file, directory for a new shard, or -: then the report goes only to stderr)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="PNG of pass@k against the training step. Default: pass_at_k.png in the run directory when several checkpoints of one run are given."),
    no_plot: bool = typer.Option(False, "--no-plot", help="Write no plot."),
    group_by: str = typer.Option("model", "--group-by", help="With --trajectories: one report entry per sampler model, policy_version, or none."),
    per_problem: bool = typer.Option(True, "--per-problem/--no-per-problem", help="Include the per-problem rows in the JSON report."),
    jobs: Optional[int] = opts.Jobs,
    backend: str = opts.Backend,
    batch_size: int = opts.BatchSize,
    device: str = opts.Device,
    dtype: str = opts.Dtype,
    threads: Optional[int] = opts.Threads,
    skip_invalid: bool = SkipInvalid,
) -> None:
    """Report pass@k (unbiased estimator, MATH.md section 10) per problem and overall.

    Samples -n per problem from each checkpoint (temperature 0.4, top-p 0.95 by default, as in
    the paper), judges them, and prints ONE JSON report on stdout: per model its step, pass@k
    for each k with the standard error across problems, and per-problem n, c and pass@k with a
    jackknife standard error. A table goes to stderr. Several checkpoints of one run (e.g.
    run/step-000100 run/step-000200) also give a PNG of pass@k against the training step; the
    step comes from spo_checkpoint.json in the checkpoint, else from its name, else its position.

    Examples:
      spo eval -m run/step-* -p heldout.jsonl -k 1,10
      spo eval --trajectories judged.jsonl.zst -k 1,5
    """
    import json
    from pathlib import Path

    from spo_cli.console import err, info, progress, warn
    from spo_cli.errors import BadInput
    from spo_cli.evaluate import (default_plot_path, evaluate_models, evaluate_trajectories,
                                  plot_report, render_table)
    from spo_cli.streams import ReadStats, open_writer, read_records
    from spo_cli.values import Judge

    ks = parse_ks(k)
    models = list(model or []) + list(extra_models or [])
    rstats = ReadStats()
    if trajectories is not None:
        if models:
            raise typer.BadParameter("give --model or --trajectories, not both", param_hint="--trajectories")
        report = evaluate_trajectories(read_records(trajectories, "trajectory", skip_invalid=skip_invalid,
                                                    stats=rstats), ks, group_by=group_by)
        if not report["models"]:
            raise BadInput("no judged trajectories in the input", path=trajectories)
        short = [m["model"] for m in report["models"]
                 if any((m.get(f"pass@{kk}") or {}).get("problems", 0) < m["problems"] for kk in ks)]
        if short:
            warn(f"some problems have fewer samples than k; they are left out of that pass@k ({short[0]})")
    else:
        if not models:
            raise typer.BadParameter("give --model DIR (or --trajectories FILE)", param_hint="--model")
        if problems is None:
            raise typer.BadParameter("--model needs --problems", param_hint="--problems")
        if n < 1:
            raise typer.BadParameter("n must be >= 1", param_hint="-n")
        if ks[-1] > n:
            raise typer.BadParameter(f"pass@{ks[-1]} needs n >= {ks[-1]} samples per problem", param_hint="-n")
        for m in models:
            if not Path(m).is_dir():
                raise BadInput("not a model directory", path=m)
        probs = list(read_records(problems, "problem", skip_invalid=skip_invalid, stats=rstats))
        if threads is not None:
            import torch

            torch.set_num_threads(max(1, threads))
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        info(f"spo eval: {len(models)} model(s) x {len(probs)} problems x {n} samples "
             f"(temperature {temperature:g}, top-p {top_p:g})")
        judge = Judge(jobs)
        try:
            with progress() as bar, (open_writer(samples_out) if samples_out else _null()) as w:
                task = bar.add_task("eval", total=len(models) * len(probs) * n)
                report = evaluate_models(
                    models, probs, n=n, ks=ks, temperature=temperature, top_p=top_p,
                    max_new_tokens=max_new_tokens, seed=seed, backend=backend, device=device,
                    dtype=dtype, batch_size=batch_size, judge=judge,
                    on_samples=(lambda recs: w.write_many(recs)) if w is not None else None,
                    on_progress=lambda c: bar.advance(task, c))
            report["sandbox"] = judge.isolation
        finally:
            judge.close()
    if report.get("judge_errors"):
        warn(f"{report['judge_errors']} samples with judge errors (JE) were left out")
    if rstats.invalid:
        info(f"spo eval: {rstats.summary()}")

    plot_path = None if no_plot else (Path(plot) if plot else
                                      (default_plot_path(models) if trajectories is None else None))
    if plot_path is not None:
        plot_report(report, plot_path)
        report["plot"] = str(plot_path)
        info(f"spo eval: plot written to {plot_path}")
    err.print(render_table(report))
    if not per_problem:
        for m in report["models"]:
            m.pop("per_problem", None)
    text = json.dumps(report, allow_nan=False)
    if samples_out == "-":
        err.print(text, markup=False, highlight=False, soft_wrap=True)  # stdout carries the samples
    else:
        typer.echo(text)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
