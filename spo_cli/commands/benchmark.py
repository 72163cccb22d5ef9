"""`spo benchmark`: the built-in benchmark (generated problems) and its tiny reference model."""

from __future__ import annotations

from typing import Optional

import typer

from spo_cli.commands._options import Compress, Output

app = typer.Typer(
    help="The built-in benchmark: generated stdin/stdout problems (CodeContests layout) and a tiny "
    "reference model trained on them, so everything runs on a CPU with no download.\n\n"
    "\b\n"
    "spo benchmark build                 # build once (cached), print the paths as JSON\n"
    "spo benchmark build --config toy    # the toy model, for quick tests\n"
    "spo benchmark problems --split validation > validation.jsonl",
    no_args_is_help=True,
)

ConfigOpt = typer.Option(
    "default", "--config", "-c",
    help="default (~2M-parameter model, a few minutes on 2 cores) or toy (tiny, well under a minute).",
)
SeedOpt = typer.Option(None, "--seed", help="Generator and training seed (default: the config's, 0).")
CacheOpt = typer.Option(
    None, "--cache-dir", help="Cache directory (default: $SPO_CACHE, else ~/.cache/spo).",
)


def _config(name: str, seed: Optional[int]):
    from spo_cli.benchmark.tinymodel import CONFIGS, get_config

    if name not in CONFIGS:
        raise typer.BadParameter(f"choose one of {', '.join(CONFIGS)}", param_hint="--config")
    return get_config(name) if seed is None else get_config(name, seed=seed)


@app.command("build")
def build(
    config: str = ConfigOpt,
    seed: Optional[int] = SeedOpt,
    cache_dir: Optional[str] = CacheOpt,
    out: Optional[str] = typer.Option(
        None, "--out", help="Build into this directory instead of the cache (replaced atomically).",
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a complete build exists."),
) -> None:
    """Build (or reuse) the problems and the reference model; print their paths as JSON on stdout
    (model_dir, train_problems, validation_problems, heldout_problems, root).

    The build is cached under a key of generator version + seed + config, written to a temporary
    directory and renamed into place, so a killed build never looks complete. Progress goes to stderr.
    """
    import json
    from pathlib import Path

    from spo_cli.benchmark.cache import build_atomic, cache_root, entry_name, is_complete
    from spo_cli.console import info, progress

    cfg = _config(config, seed)
    target = Path(out) if out else cache_root(cache_dir) / entry_name(cfg)
    if is_complete(target, cfg) and not force:
        info(f"spo benchmark: reusing {target}")
    else:
        info(f"spo benchmark: building config '{cfg.name}' (seed {cfg.seed}) into {target}")
    with progress() as bar:
        task = bar.add_task("sft", total=cfg.steps)

        def on_event(kind: str, data: dict) -> None:
            if kind == "stage":
                info(f"  {data['stage']}: " + ", ".join(f"{k}={v}" for k, v in data.items() if k != "stage"))
            elif kind == "step":
                bar.update(task, completed=data["step"], description=f"sft loss {data['loss']:.3f}")

        paths = build_atomic(target, cfg, force=force, on_event=on_event)
    summary = json.loads((paths.root / "build.json").read_text())
    info(f"  built in {summary['build_s']:.0f} s: {summary['sft']['params']:,} parameters, "
         f"final SFT loss {summary['sft']['final_loss']:.3f}")
    typer.echo(json.dumps(paths.as_dict()))


@app.command("problems")
def problems(
    split: str = typer.Option("train", "--split", "-s", help="train, validation (for choosing settings) or heldout (scored once, at the end)."),
    n: Optional[int] = typer.Option(None, "--n", "-n", help="How many problems (default: the config's split size)."),
    config: str = ConfigOpt,
    seed: Optional[int] = SeedOpt,
    family: Optional[list[str]] = typer.Option(
        None, "--family", "-f", help="Only these families (repeatable); see `spo benchmark families`.",
    ),
    as_problem: bool = typer.Option(
        False, "--as-problem", help="Write normalised Problem records instead of CodeContests rows.",
    ),
    output: str = Output,
    compress: Optional[str] = Compress,
) -> None:
    """Generate problems of one split (deterministic from the seed) and write them as JSONL.

    Rows are in the CodeContests layout (name, description, public/private/generated tests,
    solutions, incorrect_solutions, time_limit, memory_limit_bytes); every reader of problems
    accepts them. Nothing is built or cached: generation takes about a second per thousand.
    """
    import itertools

    from spo_cli.benchmark.generator import iter_problems
    from spo_cli.streams import open_writer

    if split not in ("train", "validation", "heldout"):
        raise typer.BadParameter("choose train, validation or heldout", param_hint="--split")
    cfg = _config(config, seed)
    count = n if n is not None else (cfg.n_train if split == "train" else cfg.n_heldout)
    if count < 0:
        raise typer.BadParameter("must be >= 0", param_hint="--n")
    try:
        rows = iter_problems(cfg.seed, split, count, families=family)
        first = next(rows, None)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--family") from None
    to_problem = None
    if as_problem:
        from spo_cli.importers import from_codecontests as to_problem
    with open_writer(output, compress) as w:
        if first is not None:
            for row in itertools.chain([first], rows):
                w.write(to_problem(row) if to_problem else row)


@app.command("families")
def families() -> None:
    """List the problem families, one JSON object per line: name and an example statement."""
    import json
    import random

    from spo_cli.benchmark.generator import FAMILIES

    for name, make in FAMILIES.items():
        spec = make(random.Random(f"families/{name}"))
        typer.echo(json.dumps({"family": name, "example": spec.story, "tags": spec.tags}))


@app.command("path")
def path(
    config: str = ConfigOpt,
    seed: Optional[int] = SeedOpt,
    cache_dir: Optional[str] = CacheOpt,
) -> None:
    """Print the paths of a built benchmark as JSON (exit 1 if it is not built; see `build`)."""
    import json

    from spo_cli.benchmark.cache import BenchmarkPaths, cache_root, entry_name, is_complete
    from spo_cli.errors import SpoError

    cfg = _config(config, seed)
    root = cache_root(cache_dir) / entry_name(cfg)
    if not is_complete(root, cfg):
        raise SpoError(f"the '{cfg.name}' benchmark is not built at {root}; run `spo benchmark build --config {cfg.name}`")
    typer.echo(json.dumps(BenchmarkPaths.at(root).as_dict()))
