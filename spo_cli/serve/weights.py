"""Policy weights on the wire and on shared storage: safetensors only, checked before use.

    data = encode(state_dict, dtype=torch.bfloat16, meta={"policy_version": "10"})   # bytes
    tensors = decode(data)                  # WeightsError unless it is valid safetensors
    check_fits(tensors, expected)           # WeightsError unless names, shapes, dtypes fit
    apply(model, tensors)                   # copy into the live model (no_grad)

safetensors is a flat header (JSON: name -> dtype, shape, byte range) followed by raw tensor
bytes; reading it runs no code, unlike a pickle (torch.save), which can run anything. A payload
is accepted only if it parses, holds exactly the model's tensors with the model's shapes, every
tensor is a floating dtype, and every value is finite. Anything else is rejected before the
model is touched, so a bad payload leaves the worker on its previous weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch


class WeightsError(ValueError):
    """A weights payload that cannot be used (the message says why)."""


def spec_of(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """name -> (shape, dtype): what a payload must match."""
    return {k: (tuple(v.shape), v.dtype) for k, v in state_dict.items()}


def payload_bytes(spec: Mapping[str, tuple[tuple[int, ...], torch.dtype]], dtype: torch.dtype = torch.float32) -> int:
    """Size of the tensor data of a payload in `dtype` (header not included)."""
    item = torch.empty((), dtype=dtype).element_size()
    n = 0
    for shape, _ in spec.values():
        k = 1
        for s in shape:
            k *= s
        n += k
    return n * item


def snapshot(state_dict: Mapping[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """CPU copies of a state dict (training may go on changing the originals), optionally cast.
    Tensors that share storage (tied embeddings) become separate copies, as safetensors needs."""
    out = {}
    for k, v in state_dict.items():
        t = v.detach()
        if hasattr(t, "full_tensor"):  # a DTensor (FSDP2): the whole tensor
            t = t.full_tensor()
        out[k] = t.to(device="cpu", dtype=dtype or t.dtype, copy=True).contiguous()
    return out


def encode(tensors: Mapping[str, torch.Tensor], dtype: torch.dtype | None = None,
           meta: Mapping[str, str] | None = None) -> bytes:
    """safetensors bytes of CPU tensors (cast to `dtype` if given)."""
    from safetensors.torch import save

    data = {k: (v if dtype is None or v.dtype == dtype else v.to(dtype)).contiguous() for k, v in tensors.items()}
    return save(data, metadata={k: str(v) for k, v in (meta or {}).items()})


def write_file(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike, dtype: torch.dtype | None = None,
               meta: Mapping[str, str] | None = None) -> Path:
    """Write a payload atomically (temporary name, then rename): a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(encode(tensors, dtype, meta))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def decode(data: bytes | bytearray | memoryview) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors payload; WeightsError for anything that is not one."""
    from safetensors.torch import load

    if len(data) < 8:
        raise WeightsError(f"not a safetensors payload ({len(data)} bytes)")
    header = int.from_bytes(bytes(data[:8]), "little")
    if header < 2 or header > len(data) - 8:
        raise WeightsError("not a safetensors payload (bad header length)")
    try:
        return load(bytes(data))
    except Exception as e:  # noqa: BLE001 - the library raises several types for bad input
        raise WeightsError(f"not a valid safetensors payload: {type(e).__name__}: {str(e)[:200]}") from None


def read_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; WeightsError naming the file if it is not one."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"no such weights file: {p}")
    try:
        return load_file(str(p))
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{p}: not a valid safetensors file: {type(e).__name__}: {str(e)[:200]}") from None


def check_fits(tensors: Mapping[str, torch.Tensor], spec: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
               *, check_finite: bool = True) -> None:
    """WeightsError unless `tensors` holds exactly the tensors of `spec` with the same shapes, in
    floating dtypes (any: they are cast on apply), with finite values."""
    missing = [k for k in spec if k not in tensors]
    extra = [k for k in tensors if k not in spec]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]!r})")
        if extra:
            parts.append(f"{len(extra)} unknown (e.g. {extra[0]!r})")
        raise WeightsError("the payload does not fit this model: " + ", ".join(parts))
    for k, (shape, _) in spec.items():
        t = tensors[k]
        if tuple(t.shape) != shape:
            raise WeightsError(f"tensor {k!r} has shape {tuple(t.shape)}, the model's is {shape}")
        if not t.dtype.is_floating_point:
            raise WeightsError(f"tensor {k!r} has dtype {t.dtype}, expected a floating dtype")
        if check_finite and not bool(torch.isfinite(t).all()):
            raise WeightsError(f"tensor {k!r} holds NaN or inf")


@torch.no_grad()
def apply(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy checked tensors into the model in place (cast to each parameter's dtype and device)."""
    sd = model.state_dict()
    for k, v in tensors.items():
        sd[k].copy_(v)
