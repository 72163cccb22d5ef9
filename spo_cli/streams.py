"""Streaming readers and writers of JSONL records (DESIGN.md, "Streams and files").

Reading
- A spec is `-` (stdin), a file, a directory of shards, a glob, or a list of those.
- Compression is detected by magic bytes (zstd, gzip, else plain), never by name.
- Input is decoded in bounded pieces (a walker of the zstd frame and block headers feeds the
  decoder a few blocks at a time; zlib with max_length) and split into lines in C, so memory
  stays flat however large the file and however well it compresses.
- Integrity: a checksummed zstd frame's records are yielded only once its checksum has been
  verified, a gzip member's once its CRC has; the decoded bytes held back meanwhile are at most
  one frame, MAX_VERIFIED_FRAME (8 MiB; the frames spo writes hold about 1 MiB). So a corrupt
  frame is reported before any of its records are read, after every record of the complete
  frames before it. Not caught before its records are read: damage inside a frame larger than
  MAX_VERIFIED_FRAME (another tool's single-frame file; its checksum is still checked at its
  end, then the error); damage in a frame without a checksum, unless it breaks zstd's structure;
  damage to plain JSONL (unless it breaks a line).
- A truncated compressed stream yields every record of the complete frames before the break (a
  checksummed frame cut short cannot be verified: its records are not yielded), then raises.
- A bad line raises BadInput naming file, line and problem; with skip_invalid it is counted and
  reported instead (see ReadStats).
- Parquet and Arrow files (detected by their magic bytes) are read by spo_cli.tables, one record
  batch at a time, each row a record; a bad row is named by file and row (numbered from 1).
- A problem the importers find unusable (no usable tests) is skipped and counted, never an error:
  ReadStats.unusable, and a line on stderr when the caller keeps no ReadStats of its own.

Writing
- Compression follows the target's name (`.zst`, `.gz`), also when stdout is redirected to a
  named file (`spo judge ... > traj.jsonl.zst`); a pipe or terminal gets plain JSONL unless
  `compress="zstd"` is asked for.
- Compressed output is a sequence of frames (zstd, each with its checksum and content size) or
  members (gzip, each with its CRC): one per flush, about CHUNK (1 MiB) of JSON each, so a
  reader verifies each before it yields its records, and a pipe reader gets each flush at once.
- A named file is written under a hidden temporary name in the same directory and renamed into
  place on success (after fsync), so no reader ever sees half a file. On an error or Ctrl-C the
  temporary file is removed, except for BadInput: the input stopped at a record boundary, so what
  was written is complete and valid, and it is kept (nothing processed is lost).
- A directory target grows by a new, uniquely named shard, added atomically: any number of
  writers (cron jobs, workers) can add to one corpus at once, and readers skip hidden files.
"""

from __future__ import annotations

import glob as _glob
import io
import itertools
import os
import socket
import stat
import sys
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import zstandard

from spo_cli import tables
from spo_cli.errors import BadInput, RecordError, Unusable
from spo_cli.schema import _FAST, validate

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20
SHARD_SUFFIXES = (".jsonl", ".jsonl.zst", ".jsonl.gz", ".json", ".zst", ".gz", ".jsonl.zstd") + tables.SUFFIXES

Spec = str | os.PathLike | Sequence[str | os.PathLike] | None


# ----------------------------------------------------------------------------- paths


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def _shards(directory: Path) -> list[str]:
    out = []
    for p in sorted(directory.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue  # hidden: temporary files of writers in progress
        if tables.is_metadata_file(p):
            continue  # the `datasets` library's JSON beside its Arrow shards (issue 16)
        if p.name.endswith(SHARD_SUFFIXES):
            out.append(str(p))
    return out


def expand(spec: Spec) -> list[str]:
    """The list of sources a spec names ('-' for stdin), in a stable order."""
    if spec is None:
        return ["-"]
    if isinstance(spec, (list, tuple)):
        out: list[str] = []
        for s in spec:
            out.extend(expand(s))
        return out
    s = os.fspath(spec)
    if s == "-":
        return ["-"]
    p = Path(s)
    if p.is_dir():
        return _shards(p)
    if p.exists():
        return [s]
    if _is_glob(s):
        matches = sorted(m for m in _glob.glob(s, recursive=True) if not Path(m).name.startswith("."))
        files: list[str] = []
        for m in matches:
            files.extend(_shards(Path(m)) if Path(m).is_dir() else [m])
        if not files:
            raise BadInput("no files match this pattern", path=s)
        return files
    raise BadInput("no such file or directory", path=s)


# ----------------------------------------------------------------------------- decoding


class _Damaged(Exception):
    """A compressed stream that is cut short or corrupt; the message says which and where."""


class _Joined(io.RawIOBase):
    """`head` (already read, to sniff the format), then the rest of `f`: a raw stream."""

    def __init__(self, head: bytes, f: IO[bytes]):
        self._head, self._f = memoryview(head), f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._f.readinto(b)  # straight into the caller's buffer: no intermediate copy

    def read(self, n: int = -1) -> bytes:
        if self._head:
            n = len(self._head) if n < 0 else min(n, len(self._head))
            data, self._head = bytes(self._head[:n]), self._head[n:]
            return data
        return self._f.read(n)


class _ZstdFrames:
    """Cuts a zstd stream into pieces along its frame and block headers (RFC 8878), so that the
    decoder knows where each frame ends, whether it carries a checksum and its declared size, and
    never gets more than BLOCKS_PER_PIECE blocks at once (each decodes to at most 128 KiB: bounded
    output however well the input compresses). Only headers are looked at: a few Python
    operations per block of up to 128 KiB."""

    BLOCKS_PER_PIECE = 8

    def __init__(self):
        self._skip = 0  # content bytes to pass over before the next header
        self._hdr = b""  # header bytes gathered so far
        self._need = 4  # header bytes the current state needs
        self._state = "magic"
        self._carry = b""  # the start of a frame header cut off by the end of the last data
        self._kind = "zstd"
        self._fcs = 0  # bytes of the content-size field
        self.checksum = False  # whether the current frame carries one
        self.content_size: int | None = None  # the current frame's, when its header gives it
        self.frame = 0  # frames begun so far (skippable ones included)
        self.frame_at = 0  # the byte offset of the current frame
        self.offset = 0  # bytes of the stream taken so far

    def between_frames(self) -> bool:
        return self._state == "magic" and not self._hdr and not self._skip and not self._carry

    def pieces(self, data: bytes) -> Iterator[tuple[memoryview, str, bool]]:
        """(piece, kind, ends_frame) covering `data` in order; kind is 'zstd' (decode it), 'skip'
        (a skippable frame) or 'unknown' (not a zstd frame: the rest of the stream). A frame's
        first bytes are held back until its header is complete (then its kind is known)."""
        base = self.offset - len(self._carry)  # the stream offset of data[0]
        if self._carry:
            data, self._carry = self._carry + data, b""
        self.offset = base + len(data)
        view = memoryview(data)
        pos = start = blocks = 0
        end = len(data)
        while pos < end:
            if self._skip:
                take = min(self._skip, end - pos)
                self._skip -= take
                pos += take
                if not self._skip and self._state == "magic":  # the end of a frame's last part
                    yield view[start:pos], self._kind, True
                    start, blocks = pos, 0
                elif not self._skip and blocks >= self.BLOCKS_PER_PIECE:
                    yield view[start:pos], self._kind, False
                    start, blocks = pos, 0
                continue
            take = self._need - len(self._hdr)
            self._hdr += data[pos : pos + take]
            pos += take
            if len(self._hdr) < self._need:
                break
            hdr, self._hdr = self._hdr, b""
            blocks += self._header(hdr, base + pos)
            if self._state == "unknown":
                yield view[start:], "unknown", False
                return
            if self._state == "magic" and not self._skip:  # a frame ended with this header
                yield view[start:pos], self._kind, True
                start, blocks = pos, 0
        if self._state in ("descriptor", "header_rest") or (self._state == "magic" and self._hdr):
            # the next frame's header is not complete: keep its bytes back and read it again
            # whole with the next data, so its kind, checksum and size are known with its first piece
            cut = end - len(self._hdr) if self._state == "magic" else self.frame_at - base
            if self._state != "magic":
                self.frame -= 1
            self._carry, self._hdr, self._state, self._need = data[cut:end], b"", "magic", 4
            end = cut
        if start < end:
            yield view[start:end], self._kind, False

    def _header(self, h: bytes, at: int) -> int:
        """Take one complete header; return 1 if it was a block header, else 0."""
        state = self._state
        if state == "magic":
            self.frame += 1
            self.frame_at = at - 4
            if h == ZSTD_MAGIC:
                self._kind, self._state, self._need = "zstd", "descriptor", 1
            elif h[0] & 0xF0 == 0x50 and h[1:] == b"\x2a\x4d\x18":  # a skippable frame
                self._kind, self._state, self._need = "skip", "skippable", 4
            else:
                self._kind, self._state = "unknown", "unknown"
        elif state == "skippable":
            self._skip = int.from_bytes(h, "little")
            self._state, self._need = "magic", 4
        elif state == "descriptor":
            d = h[0]
            single = bool(d & 0x20)
            self.checksum = bool(d & 0x04)
            self._fcs = (1 if single else 0, 2, 4, 8)[d >> 6]
            self.content_size = None
            rest = (0 if single else 1) + (0, 1, 2, 4)[d & 0x03] + self._fcs
            self._state, self._need = ("header_rest", rest) if rest else ("block", 3)
        elif state == "header_rest":
            if self._fcs:
                self.content_size = int.from_bytes(h[-self._fcs:], "little") + (256 if self._fcs == 2 else 0)
            self._state, self._need = "block", 3
        elif state == "block":
            b = int.from_bytes(h, "little")
            btype, size = (b >> 1) & 3, b >> 3
            self._skip = 1 if btype == 1 else size  # RLE blocks carry one byte
            if b & 1:  # the last block of the frame
                self._state, self._need = ("checksum", 4) if self.checksum else ("magic", 4)
            return 1
        elif state == "checksum":
            self._state, self._need = "magic", 4
        return 0


# The most decoded bytes of one checksummed frame held back until its checksum is verified. Frames
# spo writes hold about CHUNK bytes (one flush); a larger frame (another tool's single-frame file)
# is passed on as it decodes, and its checksum is still checked at its end.
MAX_VERIFIED_FRAME = 8 * CHUNK


def _zstd_chunks(raw: _Joined) -> Iterator[bytes]:
    """Decoded bytes of a zstd stream in bounded pieces. A checksummed frame's bytes come out only
    once its checksum has been verified; _Damaged when the stream is corrupt or ends inside a
    frame (by then the bytes of every complete frame before it have come out).

    A checksummed frame that declares its size (up to MAX_VERIFIED_FRAME; spo's frames do) is
    gathered compressed and decoded in one call straight into a buffer of that size; any other
    frame goes through a streaming decoder, piece by piece."""
    frames = _ZstdFrames()
    dctx = zstandard.ZstdDecompressor()
    whole: list[memoryview] | None = None  # compressed pieces of a frame decoded in one call
    whole_size = 0
    dobj = None  # the streaming decoder of the current frame, or None
    held: list[bytes] = []  # its decoded, not yet verified output
    held_size = 0
    try:
        while data := raw.read(CHUNK):
            for piece, kind, ends in frames.pieces(data):
                if kind == "skip":
                    continue
                if kind == "unknown":
                    raise _Damaged(f"corrupt zstd stream (no zstd frame at byte {frames.frame_at})")
                if whole is None and dobj is None:  # a new frame, its header in this piece
                    size = frames.content_size
                    if frames.checksum and size is not None and size <= MAX_VERIFIED_FRAME:
                        whole, whole_size = [], 0
                    else:
                        dobj, held_size = dctx.decompressobj(), 0 if frames.checksum else MAX_VERIFIED_FRAME
                if whole is not None:
                    whole.append(piece)
                    whole_size += len(piece)
                    if ends:
                        out = dctx.decompress(b"".join(whole) if len(whole) > 1 else whole[0])
                        whole = None
                        if out:
                            yield out
                        continue
                    if whole_size <= MAX_VERIFIED_FRAME + (1 << 16):
                        continue
                    # far more compressed bytes than the size it declares: decode it as it comes
                    dobj, held_size, pending, whole = dctx.decompressobj(), 0, whole, None
                else:
                    pending = (piece,)
                for p in pending:
                    out = dobj.decompress(p)
                    if not out:
                        continue
                    if held_size < MAX_VERIFIED_FRAME:
                        held.append(out)
                        held_size += len(out)
                    else:  # too large to hold (or nothing to verify): pass it on
                        yield from held
                        held.clear()
                        yield out
                if ends:
                    if not dobj.eof or dobj.unused_data:
                        raise _Damaged(f"corrupt zstd stream (frame {frames.frame} at byte "
                                       f"{frames.frame_at}: its blocks do not end where its headers say)")
                    yield from held  # verified: zstd checked the checksum at the frame's end
                    held.clear()
                    dobj = None
    except zstandard.ZstdError as e:
        raise _Damaged(f"corrupt zstd stream (frame {frames.frame} at byte {frames.frame_at}: {e})") from None
    if not frames.between_frames():
        raise _Damaged("truncated zstd stream (ended inside a frame)")


def _gzip_chunks(raw: _Joined) -> Iterator[bytes]:
    """Decoded bytes of a gzip stream in bounded pieces; concatenated members read through. A
    member's bytes come out once its CRC has been verified (members up to MAX_VERIFIED_FRAME;
    a larger one is passed on as it decodes, its CRC checked at its end); _Damaged when the
    stream is corrupt or ends inside a member."""
    obj = zlib.decompressobj(wbits=47)
    started = False
    held: list[bytes] = []
    held_size = 0
    try:
        while data := raw.read(CHUNK):
            while data:
                out = obj.decompress(data, CHUNK)  # bounded output; the rest stays in the tail
                started = True
                if out:
                    if held_size < MAX_VERIFIED_FRAME:
                        held.append(out)
                        held_size += len(out)
                    else:
                        yield from held
                        held.clear()
                        yield out
                if obj.eof:  # zlib checked the member's CRC and length
                    yield from held
                    held.clear()
                    held_size = 0
                    data = obj.unused_data
                    obj = zlib.decompressobj(wbits=47)
                    started = False
                else:
                    data = obj.unconsumed_tail
    except zlib.error as e:
        raise _Damaged(f"corrupt gzip stream ({e})") from None
    if started and not obj.eof:
        raise _Damaged("truncated gzip stream (ended inside a member)")


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of a stream of decoded chunks, each with its b"\\n" except perhaps the last; split
    in C (BytesIO shares each chunk's bytes, so nothing is copied but the lines themselves)."""
    rest = b""  # a line begun in the last chunk
    for chunk in chunks:
        if rest:
            chunk, rest = rest + chunk, b""
        if not chunk.endswith(b"\n"):
            cut = chunk.rfind(b"\n") + 1
            chunk, rest = chunk[:cut], chunk[cut:]
        yield from io.BytesIO(chunk)
    if rest:
        yield rest


def _line_reader(f: IO[bytes]) -> Iterator[bytes]:
    """Lines of the decoded input, split in C, in bounded memory."""
    head = f.read(CHUNK)
    raw = _Joined(head, f)
    if head.startswith(ZSTD_MAGIC):
        return _lines(_zstd_chunks(raw))
    if head.startswith(GZIP_MAGIC):
        return _lines(_gzip_chunks(raw))
    return io.BufferedReader(raw, CHUNK)


def _describe_json_error(line: bytes, e: Exception) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as u:
        return f"not valid UTF-8 (byte 0x{line[u.start]:02x} at column {u.start + 1})"
    msg = str(e)
    return f"malformed JSON ({msg})"


@dataclass
class ReadStats:
    """Counts of what a read saw; `skipped` holds (path, line, reason) of the first few invalid."""

    records: int = 0
    invalid: int = 0
    duplicates: int = 0
    # duplicates dropped although they carried PTS targets ("mc"/"pivotal") by source: an annotated
    # copy read after its plain original is lost, which a training run must say out loud
    dropped_targets: dict[str, int] = field(default_factory=dict)
    examples: list[tuple[str, int | None, str]] = field(default_factory=list)
    unusable: int = 0  # problems skipped because they have no usable tests
    unusable_examples: list[tuple[str, int | None, str]] = field(default_factory=list)

    def note_invalid(self, path: str, line: int | None, reason: str) -> None:
        self.invalid += 1
        if len(self.examples) < 5:
            self.examples.append((path, line, reason))

    def note_unusable(self, path: str, line: int | None, reason: str) -> None:
        self.unusable += 1
        if len(self.unusable_examples) < 5:
            self.unusable_examples.append((path, line, reason))

    def unusable_summary(self) -> str:
        path, line, reason = self.unusable_examples[0]
        where = f"{path}:{line}" if line is not None else path
        return f"{self.unusable} problems without usable tests skipped (first: {where}: {reason})"

    def summary(self) -> str:
        parts = [f"{self.records} records"]
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates dropped")
        if self.invalid:
            first = self.examples[0]
            where = f"{first[0]}:{first[1]}" if first[1] is not None else first[0]
            parts.append(f"{self.invalid} invalid skipped (first: {where}: {first[2]})")
        if self.unusable:
            parts.append(self.unusable_summary())
        return ", ".join(parts)


def _open_source(src: str) -> tuple[IO[bytes], bool]:
    if src == "-":
        return sys.stdin.buffer, False
    try:
        return open(src, "rb"), True
    except OSError as e:
        raise BadInput(f"cannot open: {e.strerror}", path=src) from None


def _same(row: dict) -> dict:
    return row


def _iter_source(src: str, kind: str | None, skip_invalid: bool, stats: ReadStats,
                 normalize: Any, seen: set | None, report: bool = False) -> Iterator[dict]:
    name = "<stdin>" if src == "-" else src
    f, close = _open_source(src)
    loads = orjson.loads
    # problems are validated by the importers (spo_cli.importers.to_problem), once
    fast = _FAST[kind] if kind and kind != "problem" else None
    count = dups = lineno = 0
    try:
        # Parquet / Arrow (issue 16): rows instead of lines, each already a dict, numbered as rows.
        columnar = tables.sniff_file(f)
        if columnar is not None:
            lines, loads = tables.iter_rows(src, f, columnar), _same
        else:
            lines = _line_reader(f)
        try:
            for line in lines:  # each ends with b"\n", except perhaps the last
                lineno += 1
                try:
                    rec = loads(line)
                    if normalize is not None:
                        rec = normalize(rec, lineno)
                    if fast is not None and (type(rec) is not dict or not fast(rec)):
                        validate(rec, kind)  # the slow path: raises with the reason
                except (orjson.JSONDecodeError, RecordError) as e:
                    # a row of a columnar file is named in the message: "path: row 7: ..."
                    at, row = (None, f"row {lineno}: ") if columnar is not None else (lineno, "")
                    if isinstance(e, Unusable):
                        stats.note_unusable(name, at, f"{row}{e}")
                        continue
                    if isinstance(e, RecordError):
                        reason = f"{row}invalid {kind} record: {e}"
                    elif line.isspace():
                        continue  # a blank line
                    elif not line.endswith(b"\n"):  # the last line, cut short
                        reason = _describe_json_error(line, e) + " (last line, no newline: truncated?)"
                    else:
                        reason = _describe_json_error(line, e)
                    if not skip_invalid:
                        raise BadInput(reason, path=name, line=at) from None
                    stats.note_invalid(name, at, reason)
                    continue
                if seen is not None:
                    rid = rec.get("id")
                    if rid is not None:
                        if rid in seen:
                            dups += 1
                            if rec.get("mc") or rec.get("pivotal"):
                                stats.dropped_targets[name] = stats.dropped_targets.get(name, 0) + 1
                            continue
                        seen.add(rid)
                count += 1
                yield rec
        except (_Damaged, tables.Damaged) as e:
            # Every complete line of the verified part before the damage has been yielded.
            if columnar is not None:
                if not skip_invalid:
                    raise BadInput(f"{e}; {lineno} rows read before it", path=name) from None
                stats.note_invalid(name, None, f"{e}; {lineno} rows read before it")
            elif not skip_invalid:
                raise BadInput(f"{e}; {lineno} complete lines read before it", path=name,
                               line=lineno + 1) from None
            else:
                stats.note_invalid(name, lineno + 1, str(e))
    finally:
        stats.records += count
        stats.duplicates += dups
        if close:
            f.close()
        if report and stats.unusable:  # the caller keeps no counts: say it here, once per source
            from spo_cli.console import info

            info(f"spo: {stats.unusable_summary()}")


def read_records(spec: Spec, kind: str | None = None, *, skip_invalid: bool = False,
                 dedup: bool = False, stats: ReadStats | None = None) -> Iterator[dict]:
    """Stream records from a spec (see module docstring).

    kind: None (any JSON object per line or row), "problem" (also maps the layouts of public
    datasets onto the Problem record: spo_cli.importers), "trajectory" or "value": each record is
    validated.
    dedup: drop trajectories whose id was already seen (keeps a set of ids: memory grows with the
    number of distinct trajectories, ~100 bytes each, not with the file).
    Paths are resolved at once (a missing file raises here); records are read lazily.
    """
    normalize = None
    if kind == "problem":
        from spo_cli.importers import to_problem

        normalize = to_problem
    elif kind is None:
        normalize = _require_object
    seen: set[str] | None = set() if dedup else None
    sources = expand(spec)  # eager: a missing file is reported before anything is read
    # Without the caller's stats, each source counts on its own and reports its skipped problems.
    gens = (_iter_source(src, kind, skip_invalid, stats if stats is not None else ReadStats(),
                         normalize, seen, stats is None) for src in sources)
    return itertools.chain.from_iterable(gens)


def _require_object(rec: Any, lineno: int) -> dict:
    if not isinstance(rec, dict):
        raise RecordError(None, f"a record must be a JSON object, got {type(rec).__name__}")
    return rec


def index_by(records: Iterable[dict], key: str, what: str = "record") -> dict[str, dict]:
    """A dict of records by a key field; a duplicate key is an error (problems, values)."""
    out: dict[str, dict] = {}
    for rec in records:
        k = rec[key]
        if k in out:
            raise BadInput(f"duplicate {what} {key} {k!r}")
        out[k] = rec
    return out


# ----------------------------------------------------------------------------- writing

COMPRESSIONS = ("none", "zstd", "gzip")


def compression_for_name(name: str) -> str:
    n = name.lower()
    if n.endswith((".zst", ".zstd")):
        return "zstd"
    if n.endswith(".gz"):
        return "gzip"
    return "none"


def _stdout_target_name() -> str | None:
    """The file stdout is redirected to, if it is a regular file (Linux /proc)."""
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.readlink(f"/proc/self/fd/{fd}")
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


class RecordWriter:
    """Writes records as JSON lines to a binary file object, optionally compressed.

    Lines are batched (for throughput) and pushed downstream at least every `flush_s` seconds, so
    a pipeline stage reading our stdout sees records promptly. Compressed, each push is one whole
    zstd frame (with its checksum) or gzip member (with its CRC) of at most about CHUNK bytes of
    JSON: a reader verifies each before it hands on its records.
    """

    def __init__(self, f: IO[bytes], compress: str = "none", level: int = 3, flush_s: float = 0.5,
                 name: str = "<stdout>"):
        if compress not in COMPRESSIONS:
            raise BadInput(f"unknown compression {compress!r} (choose {', '.join(COMPRESSIONS)})")
        self.name = name
        self.count = 0
        self._f = f
        self._buf: list[bytes] = []
        self._size = 0
        self._flush_s = flush_s
        self._last = time.monotonic()
        self._wrote = False
        self.compress = compress
        if compress == "zstd":
            # the frame checksum (xxh64) lets a reader tell a corrupt frame from a valid one
            self._frame = zstandard.ZstdCompressor(level=level, write_checksum=True).compress
        elif compress == "gzip":
            self._frame = lambda data: zlib.compress(data, 6, wbits=31)
        else:
            self._frame = None

    def write(self, record: dict) -> None:
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)
        self._buf.append(line)
        self._size += len(line)
        self.count += 1
        if self._size >= CHUNK or (self.count & 63) == 0 and time.monotonic() - self._last > self._flush_s:
            self.flush()

    def write_many(self, records: Iterable[dict]) -> None:
        for r in records:
            self.write(r)

    def flush(self) -> None:
        """Push buffered records downstream (a complete frame or member, readable at once)."""
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            self._size = 0
            self._f.write(self._frame(data) if self._frame is not None else data)
            self._wrote = True
        self._f.flush()
        self._last = time.monotonic()

    def finish(self) -> None:
        """Flush; a compressed output that got no records still gets one (empty) frame, so it is
        a valid .zst / .gz file."""
        self.flush()
        if self._frame is not None and not self._wrote:
            self._f.write(self._frame(b""))
            self._wrote = True
        self._f.flush()


def fsync_dir(d: Path) -> None:
    """Make a rename in directory `d` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def shard_name(prefix: str = "shard", suffix: str = ".jsonl.zst") -> str:
    """A shard name no other writer can pick: time, host, pid and a random part."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    host = socket.gethostname().split(".")[0].replace("-", "")[:16] or "host"
    return f"{prefix}-{stamp}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


@contextmanager
def open_writer(spec: str | os.PathLike | None = "-", compress: str | None = None, *,
                level: int = 3, shard_prefix: str = "shard") -> Iterator[RecordWriter]:
    """A RecordWriter for `spec`: '-'/None = stdout, a file (atomic), or a directory (new shard).

    compress: None = by the target's name ('.zst', '.gz'; stdout: by the name of the file it is
    redirected to, plain for a pipe or terminal), or one of 'none', 'zstd', 'gzip'.
    """
    target = "-" if spec is None else os.fspath(spec)
    if target == "-":
        algo = compress or compression_for_name(_stdout_target_name() or "")
        w = RecordWriter(sys.stdout.buffer, algo, level)
        try:
            yield w
        finally:
            # Also on errors: records already produced are complete; end the frame cleanly.
            try:
                w.finish()
            except BrokenPipeError:
                raise
            except (OSError, ValueError):
                pass
        return

    path = Path(target)
    if path.is_dir() or target.endswith(os.sep):
        path.mkdir(parents=True, exist_ok=True)
        suffix = {"zstd": ".jsonl.zst", "gzip": ".jsonl.gz", "none": ".jsonl"}[compress or "zstd"]
        path = path / shard_name(shard_prefix, suffix)
    algo = compress or compression_for_name(path.name)
    parent = path.parent
    if not parent.exists():
        raise BadInput("directory does not exist", path=str(parent))
    tmp = parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    f = open(tmp, "wb")
    w = RecordWriter(f, algo, level, flush_s=float("inf"), name=str(path))
    w.path = path  # type: ignore[attr-defined]
    ok = False
    try:
        yield w
        ok = True
    except BadInput:
        ok = True  # the input stopped at a record boundary: keep what was written, then re-raise
        raise
    finally:
        try:
            if ok:
                w.finish()
                os.fsync(f.fileno())
                f.close()
                os.replace(tmp, path)
                fsync_dir(parent)
            else:
                f.close()
        finally:
            if not ok or tmp.exists():
                try:
                    tmp.unlink()
                except FileNotFoundError:
                    pass


def write_records(spec: str | os.PathLike | None, records: Iterable[dict],
                  compress: str | None = None) -> int:
    """Write all records to spec (see open_writer); return how many."""
    with open_writer(spec, compress) as w:
        for r in records:
            w.write(r)
        return w.count


def add_shard(corpus_dir: str | os.PathLike, records: Iterable[dict], *, prefix: str = "shard",
              compress: str = "zstd") -> Path:
    """Atomically add a new uniquely named shard holding `records` to a corpus directory."""
    d = Path(corpus_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open_writer(str(d) + os.sep, compress, shard_prefix=prefix) as w:
        for r in records:
            w.write(r)
        return w.path  # type: ignore[attr-defined]
