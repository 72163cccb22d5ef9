"""Atomic, complete checkpoints that load as ordinary Hugging Face models.

    run/checkpoints/step-000100/
        config.json, model.safetensors, generation_config.json, tokenizer files   <- from_pretrained
        spo_checkpoint.json    step, policy version, data position, config fingerprint, files
        trainer_state.pt       optimiser, scheduler, RNG states (tensors + plain data; loaded
                               with torch.load(weights_only=True), so no code is unpickled)
        behaviour.safetensors  the behaviour policy's weights, when it lags the policy
        value_model/           PPO's value model (safetensors)
    run/checkpoints/latest     a symlink to the newest complete checkpoint

A checkpoint is written into a hidden temporary directory and renamed into place, then `latest` is
replaced atomically: a run killed at any moment leaves the previous checkpoint intact, and a
directory without `spo_checkpoint.json` is never taken for a checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spo_cli.errors import BadInput
from spo_cli.streams import fsync_dir

MARKER = "spo_checkpoint.json"
FORMAT = 1


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


def save(ckpt_root: Path, step: int, *, model: Any, tokenizer: Any, trainer_state: dict, meta: dict,
         extra_models: dict[str, Any] | None = None, extra_tensors: dict[str, dict[str, torch.Tensor]] | None = None,
         keep: int | None = None) -> Path:
    """Write checkpoint `step-{step:06d}` atomically; return its path."""
    from safetensors.torch import save_file

    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        for sub, m in (extra_models or {}).items():
            m.save_pretrained(tmp / sub, safe_serialization=True) if hasattr(m, "save_pretrained") else \
                save_file({k: v.detach().cpu().clone().contiguous() for k, v in m.state_dict().items()},
                          str(_mk(tmp / sub) / "model.safetensors"))
        for fname, tensors in (extra_tensors or {}).items():
            # clone: tied weights share storage, which safetensors refuses
            save_file({k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()}, str(tmp / fname))
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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # `latest` is a relative symlink, replaced atomically: `spo eval -m run/checkpoints/latest` works
    latest_tmp = ckpt_root / f".latest.tmp-{os.getpid()}"
    latest_tmp.unlink(missing_ok=True)
    os.symlink(name, latest_tmp)
    os.replace(latest_tmp, ckpt_root / "latest")
    if keep:
        done = sorted(p for p in ckpt_root.glob("step-*") if (p / MARKER).exists() and not p.is_symlink())
        for old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


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
