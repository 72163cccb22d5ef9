"""`spo train`: SPO (or the PPO baseline) on any mix of offline corpora and online rollouts.

The options are generated from the configs in spo_cli.train.config (TrainConfig; with --async also
AsyncConfig and LaunchConfig), so the config written into the run directory, the --help text and
the man page all come from one place.
"""

from __future__ import annotations

import inspect

import typer

from spo_cli.commands._config_options import changed, options, take
from spo_cli.train.config import AsyncConfig, LaunchConfig, TrainConfig

SHORT = {"model": ["--model", "-m"], "out": ["--out", "-o"], "problems": ["--problems", "-p"]}


def _options() -> list[inspect.Parameter]:
    def switch(name: str, option) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=option)

    return [
        *options(TrainConfig, names=SHORT),
        switch("resume", typer.Option(False, "--resume", help="Continue the run in --out from its latest "
                                      "checkpoint, exactly as if it had not stopped.")),
        switch("async_", typer.Option(False, "--async", help="Learn from rollout workers (spo sample --serve) "
                                      "asynchronously; learners launched with accelerate. See docs/async.md.")),
        *options(AsyncConfig),
        *options(LaunchConfig),
    ]


def main(**kwargs) -> None:
    """Train a policy with SPO (or PPO) from offline corpora and/or online rollouts.

    Writes a run directory: config.json, metrics.jsonl (one JSON object per step), checkpoints/
    (Hugging Face model directories plus optimiser, scheduler, RNG and data position, written
    atomically) and corpus/ (the online rollouts, as offline data for the next run). Metrics also
    stream to stdout as JSON lines; a progress display goes to stderr.

    Example (half-online SPO on the built-in benchmark):
    spo train -m MODEL -p train.jsonl --values values.jsonl --offline corpus/ --offline-ratio 0.5
    """
    from spo_cli.errors import BadInput
    from spo_cli.train.launch import launch
    from spo_cli.train.run import run

    resume, use_async = kwargs.pop("resume"), kwargs.pop("async_")
    cfg, acfg, lcfg = take(TrainConfig, kwargs), take(AsyncConfig, kwargs), take(LaunchConfig, kwargs)
    if use_async:
        return launch(cfg, acfg, lcfg, resume=resume)
    given = changed(acfg) + changed(lcfg)
    if given:
        raise BadInput(f"{given[0]} needs --async")
    run(cfg, resume=resume)


main.__signature__ = inspect.Signature(_options())  # type: ignore[attr-defined]
