"""Columnar input: Parquet and Arrow files read as records, one record batch at a time (issue 16).

Datasets are downloaded as Parquet shards (`train-00000-of-00039.parquet`) or kept in the Arrow
files of the `datasets` cache and of `save_to_disk`; spo_cli.streams hands such sources here, so
every command that reads records reads them as it reads JSON lines.

Detection is by content (the first bytes), never by name:
- Parquet: `PAR1`.
- Arrow IPC file format, which Feather V2 is: `ARROW1`.
- Arrow IPC stream format (the `.arrow` files `datasets` writes): the continuation marker
  `FF FF FF FF`, then the schema message.
- Feather V1 (`FEA1`, written by pyarrow before 0.17 / 2020) cannot be read by batch: refused,
  with what to do instead.

Streaming: a Parquet file through `ParquetFile.iter_batches` with buffered column reads and no
pre-buffering (pyarrow's default reads ahead whole column chunks: measured, +35 MB on 4x the
data), an Arrow file one record batch at a time from an ordinary (not memory-mapped) file. At most
BATCH_ROWS rows are Python objects at once. Memory is bounded by the batch and the file's own
pieces, not by the file: for Parquet a batch plus the row group being decoded (writers make them
of 100 to 10,000 rows), for Arrow one record batch as the file holds it (`datasets` writes 1,000
rows or fewer per batch). tests/test_tables.py checks it on 30 MB against 120 MB.

Rows come out as plain Python values (`to_pylist`: a struct is a dict, a list a list). Columns of
a type JSON has no form for are cast first: binary to UTF-8 text (a value that is not UTF-8 is an
error naming the column), decimals to floats, durations to integers in their unit. Dates and
timestamps stay `datetime` values (orjson writes them as ISO 8601).

Parquet and the Arrow file format keep their index at the end, so they need a seekable file: from
stdin only the Arrow stream format can be read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any

from spo_cli.errors import BadInput

PARQUET_MAGIC = b"PAR1"
ARROW_FILE_MAGIC = b"ARROW1"
ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"
FEATHER_V1_MAGIC = b"FEA1"
SUFFIXES = (".parquet", ".arrow", ".feather", ".ipc")
"""Names of columnar shards in a directory (reading a named file never depends on its name)."""

BATCH_ROWS = 256  # rows turned into Python objects at once
READ_BUFFER = 1 << 20  # bytes of one Parquet column read at once (else a whole column chunk)


class Damaged(Exception):
    """A columnar file that is corrupt or cut short; the message says what pyarrow found."""


def sniff(head: bytes) -> str | None:
    """The columnar format of a source from its first bytes: 'parquet', 'arrow' (IPC file),
    'arrow-stream', 'feather-v1', or None (not columnar: JSON lines, maybe compressed).

    >>> sniff(b"PAR1\\x15\\x04"), sniff(b"ARROW1\\x00\\x00"), sniff(b"\\xff\\xff\\xff\\xff\\x10\\x01")
    ('parquet', 'arrow', 'arrow-stream')
    >>> sniff(b'{"id": 1}'), sniff(b"\\x28\\xb5\\x2f\\xfd")
    (None, None)
    """
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(ARROW_FILE_MAGIC):
        return "arrow"
    if head.startswith(ARROW_STREAM_MAGIC):
        return "arrow-stream"
    if head.startswith(FEATHER_V1_MAGIC):
        return "feather-v1"
    return None


def sniff_file(f: IO[bytes]) -> str | None:
    """sniff() on an open binary file without consuming anything from it."""
    peek = getattr(f, "peek", None)
    if peek is not None:
        head = peek(8)[:8]
    elif f.seekable():
        pos = f.tell()
        head = f.read(8)
        f.seek(pos)
    else:
        return None
    return sniff(head)


def iter_rows(src: str, f: IO[bytes], fmt: str, *, batch_rows: int = BATCH_ROWS) -> Iterator[dict]:
    """The rows of a columnar source as dicts. `src` is its path ('-' for stdin, then `f` is read);
    raises BadInput for what cannot be read at all, Damaged for a file that breaks part-way."""
    import pyarrow as pa

    name = "<stdin>" if src == "-" else src
    if fmt == "feather-v1":
        raise BadInput("a Feather V1 file (before 2020) cannot be read batch by batch; re-save it "
                       "as Feather V2 or Parquet (pyarrow.feather.write_feather(read_table(...)))",
                       path=name)
    if src == "-" and fmt != "arrow-stream":
        what = "Parquet" if fmt == "parquet" else "an Arrow IPC file"
        raise BadInput(f"{what} cannot be read from stdin (its index is at the end of the file); "
                       "give its path", path=name)
    try:
        batches, schema = _open(src, f, fmt, pa)
        plain = _plain_cast(schema, pa)
        for batch in batches:
            if plain is not None:
                try:
                    batch = batch.cast(plain)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                    raise BadInput(f"a column cannot be read as plain data: {e}", path=name) from None
            if batch.num_rows <= batch_rows:
                yield from batch.to_pylist()
            else:  # an Arrow file's own batches may be larger
                for start in range(0, batch.num_rows, batch_rows):
                    yield from batch.slice(start, batch_rows).to_pylist()
    except (pa.ArrowException, OSError) as e:
        raise Damaged(f"corrupt or truncated {_FORMAT_NAMES[fmt]} file ({e})") from None


_FORMAT_NAMES = {"parquet": "Parquet", "arrow": "Arrow IPC", "arrow-stream": "Arrow IPC stream"}


def _open(src: str, f: IO[bytes], fmt: str, pa: Any):
    """(an iterator of record batches, the schema)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(src, buffer_size=READ_BUFFER, pre_buffer=False)
        return pf.iter_batches(batch_size=BATCH_ROWS), pf.schema_arrow
    if fmt == "arrow":
        reader = pa.ipc.open_file(pa.OSFile(src))
        return (reader.get_batch(i) for i in range(reader.num_record_batches)), reader.schema
    reader = pa.ipc.open_stream(f if src == "-" else pa.OSFile(src))
    return reader, reader.schema


def _plain_type(t: Any, pa: Any) -> Any:
    """`t` with every type JSON cannot hold replaced by one it can (see the module docstring)."""
    types = pa.types
    if types.is_binary(t) or types.is_fixed_size_binary(t):
        return pa.string()
    if types.is_large_binary(t):
        return pa.large_string()
    if types.is_decimal(t):
        return pa.float64()
    if types.is_duration(t):
        return pa.int64()
    if types.is_struct(t):
        return pa.struct([f.with_type(_plain_type(f.type, pa)) for f in t])
    if types.is_list(t):
        return pa.list_(t.value_field.with_type(_plain_type(t.value_type, pa)))
    if types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_plain_type(t.value_type, pa)))
    if types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(_plain_type(t.value_type, pa)))
    if types.is_map(t):
        return pa.map_(_plain_type(t.key_type, pa), _plain_type(t.item_type, pa))
    return t


def _plain_cast(schema: Any, pa: Any) -> Any:
    """The schema to cast batches to, or None when they are plain already (the usual case)."""
    fields = [f.with_type(_plain_type(f.type, pa)) for f in schema]
    if all(a.type == b.type for a, b in zip(fields, schema)):
        return None
    return pa.schema(fields, metadata=schema.metadata)


def is_metadata_file(path: os.PathLike | str) -> bool:
    """The JSON files `datasets` keeps beside its Arrow shards (save_to_disk, the cache): a
    directory of shards holds them, but they are not records."""
    return os.path.basename(os.fspath(path)) in ("dataset_info.json", "state.json", "dataset_dict.json")
