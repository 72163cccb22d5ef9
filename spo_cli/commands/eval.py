"""`spo eval`: pass@k of checkpoints or of judged trajectories (thin layer over spo_cli.evaluate)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

import typer

from spo_cli.commands._options import JUDGING, READING, RUNTIME, Options, cli, signature
from spo_cli.parsing import parse_int_list
from spo_cli.sampling.base import SampleOptions


@dataclass
class Eval:
    model: list[str] = field(default_factory=list, metadata=cli("--model", "-m"))
    """Checkpoint directory (or several after one --model: DIR [DIR ...]). Several checkpoints of
    one run give a plot of pass@k against the step."""
    extra_models: list[str] = field(default_factory=list, metadata=cli(argument=True, metavar="[DIR]..."))
    """More checkpoint directories (so `--model run/step-*` works with a shell glob)."""
    problems: str | None = field(default=None, metadata=cli("--problems", "-p"))
    """Problems: file, shard directory, glob or -."""
    trajectories: str | None = None
    """Evaluate already-judged trajectories instead of sampling (file, directory, glob or -)."""
    k: list[int] = field(default_factory=lambda: [1, 10],
                         metadata=cli("-k", "--k", parse=partial(parse_int_list, minimum=1)))
    """Comma-separated k of pass@k."""
    n: int = field(default=20, metadata=cli("-n", "--n"))
    """Samples per problem (the paper: 20)."""
    temperature: float = field(default=0.4, metadata=cli("--temperature", "-t"))
    """Sampling temperature (the paper: 0.4)."""
    top_p: float = 0.95
    """Nucleus mass (the paper: 0.95)."""
    max_new_tokens: int = 512
    """Most response tokens per sample."""
    seed: int = 0
    """Run seed (sample k of problem id is seeded by (seed, id, k))."""
    samples_out: str | None = None
    """Also write the judged samples here (file, directory for a new shard, or -: then the report
    goes only to stderr)."""
    plot: str | None = None
    """PNG of pass@k against the training step. Default: pass_at_k.png in the run directory when
    several checkpoints of one run are given."""
    no_plot: bool = field(default=False, metadata=cli("--no-plot"))
    """Write no plot."""
    group_by: str = "model"
    """With --trajectories: one report entry per sampler model, policy_version, or none."""
    per_problem: bool = True
    """Include the per-problem rows in the JSON report."""


EVAL = Options(Eval)
BATCH = Options(SampleOptions, only=("batch_size",))


def main(**kw) -> None:
    """Report pass@k (unbiased estimator, docs/math.md §10) per problem and overall.

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
    from spo_cli.evaluate import default_plot_path, evaluate_models, evaluate_trajectories, plot_report, render_table
    from spo_cli.judge.client import Judge
    from spo_cli.streams import ReadStats, open_writer, read_records

    a, skip_invalid = EVAL.take(kw), READING.take(kw).skip_invalid
    ks, n, samples_out = a.k, a.n, a.samples_out
    models = a.model + a.extra_models
    rstats = ReadStats()
    if a.trajectories is not None:
        if models:
            raise typer.BadParameter("give --model or --trajectories, not both", param_hint="--trajectories")
        report = evaluate_trajectories(read_records(a.trajectories, "trajectory", skip_invalid=skip_invalid,
                                                    stats=rstats), ks, group_by=a.group_by)
        if not report["models"]:
            raise BadInput("no judged trajectories in the input", path=a.trajectories)
        short = [m["model"] for m in report["models"]
                 if any((m.get(f"pass@{kk}") or {}).get("problems", 0) < m["problems"] for kk in ks)]
        if short:
            warn(f"some problems have fewer samples than k; they are left out of that pass@k ({short[0]})")
    else:
        if not models:
            raise typer.BadParameter("give --model DIR (or --trajectories FILE)", param_hint="--model")
        if a.problems is None:
            raise typer.BadParameter("--model needs --problems", param_hint="--problems")
        if n < 1:
            raise typer.BadParameter("n must be >= 1", param_hint="-n")
        if ks[-1] > n:
            raise typer.BadParameter(f"pass@{ks[-1]} needs n >= {ks[-1]} samples per problem", param_hint="-n")
        runtime, batch_size = RUNTIME.take(kw), BATCH.values(kw)["batch_size"]
        for m in models:
            if not Path(m).is_dir():
                raise BadInput("not a model directory", path=m)
        probs = list(read_records(a.problems, "problem", skip_invalid=skip_invalid, stats=rstats))
        runtime.apply()
        info(f"spo eval: {len(models)} model(s) x {len(probs)} problems x {n} samples "
             f"(temperature {a.temperature:g}, top-p {a.top_p:g})")
        judge = Judge(JUDGING.take(kw).jobs)
        try:
            with progress() as bar, (open_writer(samples_out) if samples_out else nullcontext()) as w:
                task = bar.add_task("eval", total=len(models) * len(probs) * n)
                report = evaluate_models(
                    models, probs, n=n, ks=ks, temperature=a.temperature, top_p=a.top_p,
                    max_new_tokens=a.max_new_tokens, seed=a.seed, backend=runtime.backend,
                    device=runtime.device, dtype=runtime.dtype, batch_size=batch_size, judge=judge,
                    on_samples=(lambda recs: w.write_many(recs)) if w is not None else None,
                    on_progress=lambda c: bar.advance(task, c))
            report["sandbox"] = judge.isolation
        finally:
            judge.close()
    if report.get("judge_errors"):
        warn(f"{report['judge_errors']} samples with judge errors (JE) were left out")
    if rstats.invalid:
        info(f"spo eval: {rstats.summary()}")

    plot_path = None if a.no_plot else (Path(a.plot) if a.plot else
                                        (default_plot_path(models) if a.trajectories is None else None))
    if plot_path is not None:
        plot_report(report, plot_path)
        report["plot"] = str(plot_path)
        info(f"spo eval: plot written to {plot_path}")
    err.print(render_table(report))
    if not a.per_problem:
        for m in report["models"]:
            m.pop("per_problem", None)
    text = json.dumps(report, allow_nan=False)
    if samples_out == "-":
        err.print(text, markup=False, highlight=False, soft_wrap=True)  # stdout carries the samples
    else:
        typer.echo(text)


main.__signature__ = signature(EVAL, JUDGING, RUNTIME, BATCH, READING)  # type: ignore[attr-defined]
