"""Drive a Trainer: progress display, metrics JSONL (and TensorBoard), checkpoints, signals."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from spo_cli.console import err, info, progress
from spo_cli.train.config import TrainConfig

KEY_METRICS = ("loss", "reward_online", "reward_offline", "kl_ref", "entropy", "q_terminal_err")


def _trim_metrics(path: Path, step: int) -> None:
    """On resume, drop metric lines past the checkpoint's step (they will be redone)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_bytes().splitlines():
        try:
            if orjson.loads(line).get("step", 0) <= step:
                keep.append(line)
        except orjson.JSONDecodeError:
            break  # a torn last line from a crash
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(b"".join(line + b"\n" for line in keep))
    os.replace(tmp, path)


def run(cfg: TrainConfig, *, resume: bool = False, quiet_stdout: bool = False,
        make_trainer: Callable[..., Any] | None = None) -> list[dict]:
    """Train to cfg.steps; return the metrics of the steps run here.

    make_trainer(cfg, resume=...) builds the learner (default: the synchronous Trainer; `spo train
    --async` passes its AsyncTrainer). Every process of a distributed run calls this; only the
    main one logs, writes metrics and prints.
    """
    import torch

    from spo_cli.hw import resolve_threads
    from spo_cli.train.loop import Trainer

    if cfg.threads > 0 or int(os.environ.get("WORLD_SIZE", "1") or 1) == 1:
        torch.set_num_threads(resolve_threads(cfg.threads))  # launched processes: the launcher's choice
    trainer = (make_trainer or Trainer)(cfg, resume=resume)
    history: list[dict] = []
    tb = None
    try:
        if not trainer.processes.is_main:
            for _ in trainer.steps():
                pass
            return history
        c, out = trainer.run.cfg, trainer.run.out
        metrics_path = out / "metrics.jsonl"
        if resume:
            _trim_metrics(metrics_path, trainer.run.step)
            info(f"resuming {out} at step {trainer.run.step}")
        if c.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                tb = SummaryWriter(str(out / "tb"))
            except ImportError:
                err.print("warning: --tensorboard needs the tensorboard package; logging to metrics.jsonl only")
        info(trainer.describe())
        with open(metrics_path, "ab") as mf, progress() as bar:
            task = bar.add_task("train", total=c.steps, completed=trainer.run.step)
            for m in trainer.steps():
                line = orjson.dumps(m)
                mf.write(line + b"\n")
                mf.flush()
                if not quiet_stdout:
                    sys.stdout.buffer.write(line + b"\n")
                    sys.stdout.flush()
                if tb is not None:
                    for k, v in m.items():
                        if isinstance(v, (int, float)) and k != "step":
                            tb.add_scalar(("losses/" if "loss" in k else "charts/") + k, v, m["step"])
                history.append(m)
                bar.update(task, completed=m["step"],
                           description=f"train {_shown(m, '.3g')} {trainer.progress_note(m)}".rstrip())
    finally:
        trainer.flush_rollouts()
        trainer.close()
        if tb is not None:
            tb.close()
    last = history[-1] if history else {}
    info(f"done: {_shown(last, '.4g')} | checkpoint {trainer.run.ckpt_root / 'latest'}")
    return history


def _shown(m: dict, fmt: str) -> str:
    return " ".join(f"{k}={m[k]:{fmt}}" for k in KEY_METRICS if isinstance(m.get(k), (int, float)))
