"""`spo train`: SPO (or the PPO baseline) on any mix of offline corpora and online rollouts.

The options are generated from spo_cli.train.config.TrainConfig, so the config written into the
run directory, the --help text and the man page all come from one place.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import List, Optional

import typer

from spo_cli.train.config import FIELD_DOCS, TrainConfig

SHORT = {"model": ["--model", "-m"], "out": ["--out", "-o"], "problems": ["--problems", "-p"]}


def _options() -> list[inspect.Parameter]:
    params = []
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        names = SHORT.get(f.name, [flag])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_ = FIELD_DOCS.get(f.name, "")
        if isinstance(default, list):
            ann, opt = Optional[List[str]], typer.Option(None, *names, help=help_ + " (repeatable)")
        elif isinstance(default, bool):
            ann, opt = bool, typer.Option(default, f"{flag}/--no-{flag[2:]}", help=help_)
        else:
            ann, opt = type(default), typer.Option(default, *names, help=help_)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann))
    params.append(inspect.Parameter(
        "resume", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
        default=typer.Option(False, "--resume", help="Continue the run in --out from its latest checkpoint, "
                             "exactly as if it had not stopped.")))
    from spo_cli.train import launch  # the --async options (spo_cli/train/launch.py)

    return params + launch.options()


def main(**kwargs) -> None:
    """Train a policy with SPO (or PPO) from offline corpora and/or online rollouts.

    Writes a run directory: config.json, metrics.jsonl (one JSON object per step), checkpoints/
    (Hugging Face model directories plus optimiser, scheduler, RNG and data position, written
    atomically) and corpus/ (the online rollouts, as offline data for the next run). Metrics also
    stream to stdout as JSON lines; a progress display goes to stderr.

    Example (half-online SPO on the built-in benchmark):
    spo train -m MODEL -p train.jsonl --values values.jsonl --offline corpus/ --offline-ratio 0.5
    """
    from spo_cli.train.launch import launch, take_options
    from spo_cli.train.run import run

    resume = kwargs.pop("resume")
    async_opts = take_options(kwargs)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    values = {}
    for k, v in kwargs.items():
        if isinstance(fields[k].default, list) or fields[k].default is dataclasses.MISSING:
            v = list(v) if v else fields[k].default_factory()  # type: ignore[misc]
        values[k] = v
    if async_opts is not None:
        return launch(TrainConfig(**values), async_opts, resume=resume)
    run(TrainConfig(**values), resume=resume)


main.__signature__ = inspect.Signature(_options())  # type: ignore[attr-defined]
