"""Atomic, complete checkpoints that load as ordinary Hugging Face models, in any layout.

    run/checkpoints/step-000100/
        config.json, model.safetensors, generation_config.json, tokenizer files   <- from_pretrained
        optimizer/             the optimiser state: a torch.distributed.checkpoint (DCP) directory,
                               one file per process, keyed by parameter name
        spo_checkpoint.json    step, policy version, data position, config fingerprint, layout, files
        trainer_state.pt       scheduler, RNG states of every process, the data source's state
                               (tensors + plain data; loaded with torch.load(weights_only=True), so
                               no code is unpickled)
        behaviour.safetensors  the behaviour policy's weights, when it lags the policy
        value_model/           PPO's value model (safetensors)
    run/checkpoints/latest     a symlink to the newest complete checkpoint

Every process of a run writes its part (spo_cli/train/processes.py): under FSDP no process ever
holds the whole optimiser state (each writes its shards, 2/3 of a checkpoint's bytes with AdamW)
or the whole model (the weights are gathered one tensor at a time and streamed into
model.safetensors by the main process). So every checkpoint is a plain Hugging Face directory
(`spo eval -m run/checkpoints/latest`, `spo sample -m ...`) however it was trained, and it
resumes in any layout: one process, DDP or FSDP, with any number of processes. DCP re-shards the
optimiser state on loading; the RNG state of a process that did not exist is the main process's.

A checkpoint is written into a hidden temporary directory and renamed into place, then `latest` is
replaced atomically: a run killed at any moment leaves the previous checkpoint intact, and a
directory without `spo_checkpoint.json` is never taken for a checkpoint. Under several processes
the directory must be on storage they all see (as for any distributed checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spo_cli.errors import BadInput
from spo_cli.streams import fsync_dir

MARKER = "spo_checkpoint.json"
FORMAT = 2  # 2: the optimiser state in optimizer/ (DCP), RNG states per process
OPTIMIZER = "optimizer"


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": repr(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
    }


def set_rng_state(state: dict) -> None:
    import ast

    torch.set_rng_state(state["torch"])
    py = ast.literal_eval(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))


def save(ckpt_root: Path, step: int, procs: Any, *, policy: Any, tokenizer: Any, optimizer: Any,
         modules: dict[str, Any], trainer_state: dict, meta: dict, extra_models: dict[str, Any] | None = None,
         extra_weights: dict[str, Any] | None = None, keep: int | None = None) -> Path:
    """Write checkpoint `step-{step:06d}` atomically; return its path. Every process calls it.

    policy: the (wrapped) policy, saved as the Hugging Face model; modules: the models the
    optimiser trains, by name (the keys of its saved state); extra_models: subdirectory -> model
    (value_model/); extra_weights: file name -> model (behaviour.safetensors); trainer_state: the
    main process's plain state (scheduler, data source), to which the RNG states are added."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    final = ckpt_root / name
    tmp = procs.main_only(lambda: _mk(ckpt_root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"))
    try:
        def hf_files() -> None:
            model = procs.unwrap(policy)
            model.config.save_pretrained(tmp)
            if getattr(model, "generation_config", None) is not None:
                model.generation_config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)

        procs.main_only(hf_files)
        procs.together(lambda: procs.save_weights(policy, tmp / "model.safetensors"))
        for sub, m in (extra_models or {}).items():
            procs.together(lambda m=m, sub=sub: procs.save_weights(m, tmp / sub / "model.safetensors"))
        for fname, m in (extra_weights or {}).items():
            procs.together(lambda m=m, fname=fname: procs.save_weights(m, tmp / fname))
        save_optimizer(tmp / OPTIMIZER, procs, modules, optimizer)
        rng = procs.gather(rng_state())
        layout = {"kind": procs.kind, "processes": procs.world}
        return procs.main_only(lambda: _finish(ckpt_root, tmp, final, step, {**trainer_state, "rng": rng},
                                               {**meta, "layout": layout}, keep))
    except BaseException:
        if procs.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _finish(ckpt_root: Path, tmp: Path, final: Path, step: int, trainer_state: dict, meta: dict,
            keep: int | None) -> Path:
    """Main process: the plain state, the marker, fsync, rename into place, `latest`, pruning."""
    torch.save(trainer_state, tmp / "trainer_state.pt")
    files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
    (tmp / MARKER).write_text(json.dumps({"format": FORMAT, "step": step, **meta, "files": files}, indent=1))
    for p in tmp.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    if final.exists():  # a re-run of the same step after a resume: replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(ckpt_root)
    # `latest` is a relative symlink, replaced atomically: `spo eval -m run/checkpoints/latest` works
    latest_tmp = ckpt_root / f".latest.tmp-{os.getpid()}"
    latest_tmp.unlink(missing_ok=True)
    os.symlink(final.name, latest_tmp)
    os.replace(latest_tmp, ckpt_root / "latest")
    if keep:
        done = sorted(p for p in ckpt_root.glob("step-*") if (p / MARKER).exists() and not p.is_symlink())
        for old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _optimizer_state(modules: dict[str, Any], optimizer: Any) -> tuple[Any, dict]:
    """The optimiser's state keyed by parameter name (each process's shards under FSDP), and the
    container that names them: the same names in every layout."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    container = torch.nn.ModuleDict(modules)
    return container, get_optimizer_state_dict(container, optimizer)


@contextlib.contextmanager
def _quiet_single(procs: Any):
    """DCP warns that it runs in one process even when told so (no_dist): that is the intent here."""
    with warnings.catch_warnings():
        if procs.world == 1:
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def save_optimizer(path: Path, procs: Any, modules: dict[str, Any], optimizer: Any) -> None:
    """The optimiser state as a DCP checkpoint; every process writes its own part (collective)."""
    import torch.distributed.checkpoint as dcp

    _, osd = _optimizer_state(modules, optimizer)
    with _quiet_single(procs):
        dcp.save({"optimizer": osd}, checkpoint_id=str(path), no_dist=procs.world == 1)


def load_optimizer(ckpt: Path, procs: Any, modules: dict[str, Any], optimizer: Any) -> None:
    """The checkpoint's optimiser state into `optimizer` (re-sharded for this layout by DCP)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    container, osd = _optimizer_state(modules, optimizer)
    try:
        with _quiet_single(procs):
            dcp.load({"optimizer": osd}, checkpoint_id=str(ckpt / OPTIMIZER), no_dist=procs.world == 1)
        set_optimizer_state_dict(container, optimizer, osd)
    except Exception as e:  # noqa: BLE001 - DCP raises several types for a state that does not fit
        raise BadInput(f"checkpoint optimiser state does not fit this model: {type(e).__name__}: {str(e)[:300]}",
                       path=str(ckpt / OPTIMIZER)) from None


def _mk(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


def latest(ckpt_root: Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    pointer = ckpt_root / "latest"
    if pointer.is_symlink():
        p = ckpt_root / os.readlink(pointer)
        if (p / MARKER).exists():
            return p
    done = sorted(p for p in ckpt_root.glob("step-*") if (p / MARKER).exists()) if ckpt_root.exists() else []
    return done[-1] if done else None


def read_meta(path: Path) -> dict:
    """The checkpoint's metadata, after checking it is complete; BadInput naming what is wrong."""
    marker = path / MARKER
    if not marker.exists():
        raise BadInput(f"not a spo checkpoint (no {MARKER})", path=str(path))
    try:
        meta = json.loads(marker.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"corrupt checkpoint metadata: {e}", path=str(marker)) from None
    if meta.get("format") != FORMAT:
        raise BadInput(f"checkpoint format {meta.get('format')!r}, this spo reads {FORMAT}", path=str(marker))
    missing = [f for f in meta.get("files", []) if not (path / f).is_file()]
    if missing:
        raise BadInput(f"incomplete checkpoint: missing {', '.join(missing[:5])}", path=str(path))
    return meta


def load_trainer_state(path: Path) -> dict:
    try:
        return torch.load(path / "trainer_state.pt", weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any failure here means an unreadable file
        raise BadInput(f"corrupt trainer state: {type(e).__name__}: {e}", path=str(path / "trainer_state.pt")) from None


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"corrupt weights: {e}", path=str(path)) from None
