"""`spo train`: SPO (or the PPO baseline) on any mix of offline corpora and online rollouts.

The options are generated (spo_cli.commands._options) from the configs in spo_cli.train.config
(TrainConfig; with --async also AsyncConfig and LaunchConfig), so the config written into the run
directory, the --help text and the man page all come from one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spo_cli.commands._options import Cli, Options, cli, signature
from spo_cli.train.config import AsyncConfig, LaunchConfig, TrainConfig


@dataclass
class Switches:
    resume: bool = field(default=False, metadata=cli("--resume"))
    """Continue the run in --out from its latest checkpoint, exactly as if it had not stopped."""
    async_: bool = field(default=False, metadata=cli("--async"))
    """Learn from rollout workers (spo sample --serve) asynchronously; learners launched with
    accelerate. See docs/async.md."""


TRAIN = Options(TrainConfig, {"model": Cli(("--model", "-m")), "out": Cli(("--out", "-o")),
                              "problems": Cli(("--problems", "-p"))})
SWITCHES, ASYNC, LAUNCH = Options(Switches), Options(AsyncConfig), Options(LaunchConfig)


def main(**kwargs) -> None:
    """Train a policy with SPO (or PPO) from offline corpora and/or online rollouts.

    Writes a run directory: config.json, metrics.jsonl (one JSON object per step), checkpoints/
    (Hugging Face model directories plus optimiser, scheduler, RNG and data position, written
    atomically) and corpus/ (the online rollouts, as offline data for the next run). Metrics also
    stream to stdout as JSON lines; a progress display goes to stderr. Several learner processes
    (DDP, or FSDP2 sharding) are launched with accelerate: --num-processes, --accelerate-config,
    --accelerate-arg.

    Example (half-online SPO on the built-in benchmark):
    spo train -m MODEL -p train.jsonl --values values.jsonl --offline corpus/ --offline-ratio 0.5
    """
    from spo_cli.errors import BadInput
    from spo_cli.train.launch import launch

    switches, cfg, acfg, lcfg = SWITCHES.take(kwargs), TRAIN.take(kwargs), ASYNC.take(kwargs), LAUNCH.take(kwargs)
    if not switches.async_ and ASYNC.changed(acfg):
        raise BadInput(f"{ASYNC.changed(acfg)[0]} needs --async")
    launch(cfg, acfg if switches.async_ else None, lcfg, resume=switches.resume)


main.__signature__ = signature(TRAIN, SWITCHES, ASYNC, LAUNCH)  # type: ignore[attr-defined]
