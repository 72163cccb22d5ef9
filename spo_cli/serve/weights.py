"""Policy weights on the wire and on shared storage: safetensors only, checked before use.

    data = encode(state_dict, dtype=torch.bfloat16, meta={"policy_version": "10"})   # bytes
    tensors = decode(data)                  # WeightsError unless it is valid safetensors
    check_fits(tensors, expected)           # WeightsError unless names, shapes, dtypes fit
    apply(model, tensors)                   # copy into the live model (no_grad)

Large models are written and sent without ever holding them whole (the publishing side of an
FSDP learner gathers one tensor at a time, spo_cli/train/processes.py):

    write_stream(path, spec, tensors)       # a file, written tensor by tensor as `tensors` yields them
    n, chunks = stream_file(path, torch.bfloat16)   # its bytes as a payload, cast tensor by tensor

safetensors is a flat header (8 bytes of length, then JSON: name -> dtype, shape, byte range)
followed by raw little-endian tensor bytes; reading it runs no code, unlike a pickle (torch.save),
which can run anything. Because the header only needs names, shapes and dtypes, a file can be
written before its tensors exist: that is what write_stream does (the safetensors library writes
only from tensors in memory). Files written here are read back by the library (tests check it).
A payload is accepted only if it parses, holds exactly the model's tensors with the model's
shapes, every tensor is a floating dtype, and every value is finite. Anything else is rejected
before the model is touched, so a bad payload leaves the worker on its previous weights.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import torch

Spec = Mapping[str, tuple[tuple[int, ...], torch.dtype]]

# safetensors' names of the dtypes a state dict holds
_CODES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
_DTYPES = {v: k for k, v in _CODES.items()}
CHUNK = 16 << 20  # bytes handed to a writer or a socket at a time


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
    Tensors that share storage (tied embeddings) become separate copies, as safetensors needs.
    Holds the whole model: for small models and tests; learners publish with write_stream."""
    out = {}
    for k, v in state_dict.items():
        t = v.detach()
        out[k] = t.to(device="cpu", dtype=dtype or t.dtype, copy=True).contiguous()
    return out


def _cast(dtype: torch.dtype, to: torch.dtype | None) -> torch.dtype:
    """The dtype a tensor is written in: floating tensors take `to`, others keep theirs."""
    return to if to is not None and dtype.is_floating_point else dtype


def header(spec: Spec, dtype: torch.dtype | None = None, meta: Mapping[str, str] | None = None) -> bytes:
    """The safetensors header (length prefix included) of tensors named and shaped as `spec`, in
    its order, floating ones cast to `dtype` if given. Padded with spaces to 8 bytes, so that the
    tensor data starts aligned (as the safetensors library writes it)."""
    entries: dict = {}
    if meta:
        entries["__metadata__"] = {str(k): str(v) for k, v in meta.items()}
    offset = 0
    for name, (shape, dt) in spec.items():
        dt = _cast(dt, dtype)
        if dt not in _CODES:
            raise WeightsError(f"tensor {name!r}: dtype {dt} cannot be written as safetensors")
        n = torch.empty((), dtype=dt).element_size()
        for s in shape:
            n *= int(s)
        entries[name] = {"dtype": _CODES[dt], "shape": [int(s) for s in shape], "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text


def _size(spec: Spec, dtype: torch.dtype | None) -> int:
    return sum(torch.empty((), dtype=_cast(dt, dtype)).element_size() * _numel(shape) for shape, dt in spec.values())


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _bytes(t: torch.Tensor) -> memoryview:
    """The raw bytes of a CPU tensor (C order, native = little-endian byte order), without a copy."""
    t = t.detach().contiguous()
    return memoryview(t.reshape(-1).view(torch.uint8).numpy()) if t.numel() else memoryview(b"")


def _chunks(data: memoryview) -> Iterator[memoryview]:
    for i in range(0, len(data), CHUNK):
        yield data[i:i + CHUNK]


def encoded(spec: Spec, tensors: Iterable[tuple[str, torch.Tensor]], dtype: torch.dtype | None = None,
            meta: Mapping[str, str] | None = None) -> Iterator[bytes | memoryview]:
    """The bytes of a safetensors payload, produced as `tensors` yields (name, tensor) in the order
    of `spec` (each cast to `dtype` if given): the header first, then each tensor's bytes in
    bounded chunks. Only one tensor is held at a time (and dropped before the next is asked for)."""
    yield header(spec, dtype, meta)
    names = iter(spec)
    for name, t in tensors:
        want = next(names, None)
        if name != want:
            raise WeightsError(f"tensor {name!r} came where {want!r} was announced")
        shape, dt = spec[name]
        if tuple(t.shape) != tuple(shape):
            raise WeightsError(f"tensor {name!r} has shape {tuple(t.shape)}, announced {tuple(shape)}")
        t = t.to(device="cpu", dtype=_cast(dt, dtype))
        yield from _chunks(_bytes(t))
        del t
    rest = next(names, None)
    if rest is not None:
        raise WeightsError(f"tensor {rest!r} was announced but never came")


def encode(tensors: Mapping[str, torch.Tensor], dtype: torch.dtype | None = None,
           meta: Mapping[str, str] | None = None) -> bytes:
    """safetensors bytes of CPU tensors (cast to `dtype` if given)."""
    return b"".join(encoded(spec_of(tensors), tensors.items(), dtype, meta))


def write_stream(path: str | os.PathLike, spec: Spec, tensors: Iterable[tuple[str, torch.Tensor]],
                 dtype: torch.dtype | None = None, meta: Mapping[str, str] | None = None) -> Path:
    """Write a safetensors file as `tensors` yields (name, tensor) in the order of `spec`, one at a
    time, atomically (temporary name, then rename): a reader never sees half a file, and memory
    holds one tensor however large the model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            for chunk in encoded(spec, tensors, dtype, meta):
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_file(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike, dtype: torch.dtype | None = None,
               meta: Mapping[str, str] | None = None) -> Path:
    """Write a payload of tensors in memory atomically (temporary name, then rename)."""
    return write_stream(path, spec_of(tensors), tensors.items(), dtype, meta)


def file_spec(path: str | os.PathLike) -> tuple[dict[str, tuple[tuple[int, ...], torch.dtype]], dict[str, str]]:
    """name -> (shape, dtype) of a safetensors file, in its order, and its metadata (header only)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n < 2 or n > p.stat().st_size - 8:
                raise WeightsError(f"{p}: not a safetensors file (bad header length)")
            head = json.loads(f.read(n))
    except (OSError, ValueError) as e:
        raise WeightsError(f"{p}: not a readable safetensors file: {e}") from None
    meta = head.pop("__metadata__", None) or {}
    try:
        items = sorted(head.items(), key=lambda kv: kv[1]["data_offsets"][0])
        spec = {k: (tuple(v["shape"]), _DTYPES[v["dtype"]]) for k, v in items}
    except (KeyError, TypeError, IndexError) as e:
        raise WeightsError(f"{p}: unexpected safetensors header ({type(e).__name__}: {e})") from None
    return spec, meta


def stream_file(path: str | os.PathLike, dtype: torch.dtype | None = None,
                meta: Mapping[str, str] | None = None) -> tuple[int, Iterator[bytes | memoryview]]:
    """A safetensors file as a payload: (its length in bytes, the bytes in bounded chunks), floating
    tensors cast to `dtype` if given, tensor by tensor (the file is memory-mapped, not read whole).
    `meta` replaces the file's metadata if given."""
    from safetensors import safe_open

    spec, file_meta = file_spec(path)
    meta = file_meta if meta is None else meta
    length = len(header(spec, dtype, meta)) + _size(spec, dtype)

    def tensors() -> Iterator[tuple[str, torch.Tensor]]:
        with safe_open(str(path), framework="pt") as f:
            for name in spec:
                yield name, f.get_tensor(name)

    return length, encoded(spec, tensors(), dtype, meta)


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
