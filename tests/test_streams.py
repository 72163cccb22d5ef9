"""Record streams: round trips, compression detection, corrupt input, atomicity, concurrency."""

from __future__ import annotations

import gzip
import random
import signal
import subprocess
import sys
import time
import zlib

import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spo_cli import streams
from spo_cli.errors import BadInput
from spo_cli.schema import new_trajectory, new_value
from spo_cli.streams import (
    CHUNK,
    MAX_VERIFIED_FRAME,
    ReadStats,
    expand,
    open_writer,
    read_records,
    write_records,
)

SUFFIXES = [".jsonl", ".jsonl.zst", ".jsonl.gz"]

# ----------------------------------------------------------------------------- strategies

text = st.text(max_size=40)  # includes non-ASCII, newlines, NUL: JSON escapes them
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
tests_st = st.lists(st.fixed_dictionaries({"input": text, "output": text}), max_size=4)
extra = st.dictionaries(st.text(min_size=1, max_size=8).map(lambda s: "x_" + s),
                        st.one_of(st.none(), st.integers(-10**6, 10**6), text, st.lists(st.integers(-2**63, 2**63 - 1), max_size=3)),
                        max_size=3)

problems = st.builds(
    lambda pid, prompt, tests, tl, mem, sols, ex: {
        "id": pid, "prompt": prompt, "tests": tests, "time_limit": tl, "memory_limit_mb": mem,
        "solutions": sols, "meta": {"k": 1}, **ex},
    st.text(min_size=1, max_size=20), text, tests_st,
    st.floats(min_value=0.01, max_value=100), st.integers(1, 4096), st.lists(text, max_size=3), extra,
)

trajectories = st.builds(
    lambda pid, prompt, resp, ids, lps, reward, verdict, ver, mc, ex: new_trajectory(
        problem_id=pid, prompt=prompt, response=resp, response_ids=ids, logprobs=lps, reward=reward,
        verdict=verdict, policy_version=ver, source="online", mc=mc,
        sampler={"model": "m", "temperature": 0.4, "top_p": 0.95, "seed": 1}, **ex),
    st.text(min_size=1, max_size=20), text, text,
    st.lists(st.integers(0, 50000), max_size=20),
    st.lists(st.floats(max_value=0.0, allow_nan=False, allow_infinity=False), max_size=20),
    st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)),
    st.sampled_from([None, "OK", "WA", "TLE", "MLE", "RE", "CE", "JE"]),
    st.integers(0, 10**6),
    st.one_of(st.none(), st.lists(st.tuples(st.integers(0, 100), st.floats(0, 1), st.integers(1, 64)).map(list), max_size=3)),
    extra,
)

values = st.builds(
    lambda pid, v, p, k, beta, se, ex: new_value(problem_id=pid, v=v, p_hat=p, k=k, beta=beta, stderr=se, **ex),
    st.text(min_size=1, max_size=20), st.floats(-10, 0), st.floats(0, 1), st.integers(1, 10000),
    st.floats(min_value=1e-3, max_value=10), st.one_of(st.none(), st.floats(0, 1)), extra,
)

KIND_STRATEGY = {"problem": problems, "trajectory": trajectories, "value": values}


@pytest.mark.parametrize("kind", list(KIND_STRATEGY))
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_every_record_type_and_compression(tmp_path, kind, suffix):
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(KIND_STRATEGY[kind], max_size=12))
    def check(records):
        path = tmp_path / f"r{suffix}"
        write_records(path, records)
        assert list(read_records(path, kind)) == records
        raw = path.read_bytes()
        if suffix == ".jsonl.zst" and records:
            assert raw.startswith(b"\x28\xb5\x2f\xfd")
        if suffix == ".jsonl.gz" and records:
            assert raw.startswith(b"\x1f\x8b")

    check()


def test_compression_is_detected_by_content_not_name(tmp_path):
    recs = [{"id": str(i)} for i in range(100)]
    lying = tmp_path / "actually-zstd.jsonl"
    lying.write_bytes(zstandard.ZstdCompressor().compress(b"".join(orjson.dumps(r) + b"\n" for r in recs)))
    assert list(read_records(lying)) == recs
    gz = tmp_path / "noext"
    gz.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in recs)))
    assert list(read_records(gz)) == recs


def test_concatenated_frames_and_members_read_through(tmp_path):
    a, b = [{"n": 1}], [{"n": 2}]
    for suffix in (".jsonl.zst", ".jsonl.gz"):
        pa, pb = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
        write_records(pa, a)
        write_records(pb, b)
        cat = tmp_path / f"cat{suffix}"
        cat.write_bytes(pa.read_bytes() + pb.read_bytes())
        assert list(read_records(cat)) == a + b


def test_paths_directories_and_globs(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    write_records(d / "b.jsonl", [{"n": 2}])
    write_records(d / "a.jsonl.zst", [{"n": 1}])
    (d / ".a.jsonl.tmp-1-x").write_text('{"n": "partial')  # a writer in progress: invisible
    (d / "README.txt").write_text("not a shard")
    assert [r["n"] for r in read_records(d)] == [1, 2]
    assert [r["n"] for r in read_records(str(d / "*.jsonl*"))] == [1, 2]
    assert [r["n"] for r in read_records([d / "b.jsonl", d / "a.jsonl.zst"])] == [2, 1]
    with pytest.raises(BadInput, match="no files match"):
        expand(str(tmp_path / "nothing*.jsonl"))
    with pytest.raises(BadInput, match="no such file"):
        expand(str(tmp_path / "missing.jsonl"))


def test_dedup_by_id(tmp_path):
    t1 = new_trajectory(problem_id="p", prompt="x", response="a")
    t2 = new_trajectory(problem_id="p", prompt="x", response="b")
    t1_again = new_trajectory(problem_id="p", prompt="other prompt text", response="a")
    assert t1["id"] == t1_again["id"] and t1["id"] != t2["id"]
    write_records(tmp_path / "a.jsonl", [t1, t2])
    write_records(tmp_path / "b.jsonl.zst", [t1_again, t2])
    stats = ReadStats()
    got = list(read_records(tmp_path, "trajectory", dedup=True, stats=stats))
    assert [g["response"] for g in got] == ["a", "b"]
    assert stats.duplicates == 2
    assert len(list(read_records(tmp_path, "trajectory"))) == 4


# ----------------------------------------------------------------------------- bad input


def _write_compressed(path, data: bytes):
    """Write raw bytes, compressed as the name says (.zst / .gz / plain)."""
    if path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    elif path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def _lines(n):
    return [orjson.dumps({"i": i, "pad": "x" * 200}) + b"\n" for i in range(n)]


@pytest.mark.parametrize(
    "bad, expect",
    [
        (b'{"i": 5, "unterminated\n', "malformed JSON"),
        (b'{"i": \xff\xfe}\n', "not valid UTF-8 (byte 0xff at column 7)"),
        (b"[1, 2]\n", "must be a JSON object"),
        (b"nul\x00l\n", "malformed JSON"),
    ],
)
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_bad_line_names_file_and_line_after_yielding_all_before(tmp_path, bad, expect, suffix):
    data = b"".join(_lines(5)) + bad + b"".join(_lines(3))
    path = _write_compressed(tmp_path / f"bad{suffix}", data)
    got = []
    with pytest.raises(BadInput) as ei:
        for r in read_records(path):
            got.append(r["i"])
    assert got == [0, 1, 2, 3, 4]
    assert ei.value.line == 6 and ei.value.path == str(path)
    assert expect in str(ei.value) and f"{path}:6:" in str(ei.value)
    stats = ReadStats()
    assert [r["i"] for r in read_records(path, skip_invalid=True, stats=stats)] == [0, 1, 2, 3, 4, 0, 1, 2]
    assert stats.invalid == 1 and stats.examples[0][1] == 6


_ODD_VALUES = [None, True, False, 0, 1, 3, -1, 0.5, 1.5, float("nan"), "", "OK", "MAYBE", [], [1, 2],
               [[1, 0.5, 4]], [[1, 2]], {}, {"a": 1}]
_ABSENT = object()


def _fast_and_generic(rec, kind):
    from spo_cli.errors import RecordError
    from spo_cli.schema import _FAST, _validate_field_by_field

    try:
        _validate_field_by_field(rec, kind)
        valid = True
    except RecordError:
        valid = False
    return _FAST[kind](rec), valid


def _valid_base(kind):
    base = {"trajectory": new_trajectory(problem_id="p", prompt="x", response="a", reward=1.0),
            "value": new_value(problem_id="p", v=-0.1, p_hat=0.5, k=4, beta=0.1),
            "problem": {"id": "p", "description": "d", "tests": [{"input": "", "output": ""}]}}[kind]
    return orjson.loads(orjson.dumps(base))


@pytest.mark.parametrize("kind", ["trajectory", "value", "problem"])
def test_the_fast_check_agrees_with_the_field_by_field_validation(kind):
    # The read path trusts the fast check (decided once per record shape); it must accept exactly
    # what the field-by-field validation accepts: every field, absent or set to each odd value.
    from spo_cli.schema import _PLAN

    names = [name for name, *_ in _PLAN[kind]] + ["tests", "test_code", "unknown_extra"]
    checked = 0
    for name in names:
        for value in [_ABSENT] + _ODD_VALUES:
            rec = _valid_base(kind)
            if value is _ABSENT:
                rec.pop(name, None)
            else:
                rec[name] = value
            for _ in range(2):  # the second call answers from the remembered shape
                fast, valid = _fast_and_generic(rec, kind)
                assert fast == valid, (name, value, fast, valid)
            checked += not valid
    assert checked > len(names)  # the odd values do make records invalid


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["trajectory", "value", "problem"]), st.data())
def test_the_fast_check_agrees_on_several_changes_at_once(kind, data):
    from spo_cli.schema import _PLAN

    rec = _valid_base(kind)
    names = [name for name, *_ in _PLAN[kind]] + ["tests", "test_code", "unknown_extra"]
    for name in data.draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        value = data.draw(st.sampled_from([_ABSENT] + _ODD_VALUES))
        if value is _ABSENT:
            rec.pop(name, None)
        else:
            rec[name] = value
    fast, valid = _fast_and_generic(rec, kind)
    assert fast == valid, rec


def test_missing_and_mistyped_fields_name_the_field(tmp_path):
    good = new_trajectory(problem_id="p", prompt="x", response="a")
    no_pid = {k: v for k, v in good.items() if k != "problem_id"}
    bad_reward = dict(good, reward=1.5)
    bool_ver = dict(good, policy_version=True)
    p = tmp_path / "t.jsonl"
    for rec, msg in [(no_pid, "field 'problem_id': missing"),
                     (bad_reward, "field 'reward': must be in [0, 1]"),
                     (bool_ver, "field 'policy_version': must be integer or null, got bool"),
                     (dict(good, verdict="MAYBE"), "field 'verdict': must be one of")]:
        write_records(p, [good, rec])
        with pytest.raises(BadInput, match=r":2: invalid trajectory record: " + msg.replace("[", r"\[").replace("]", r"\]")):
            list(read_records(p, "trajectory"))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_line_numbers_stay_exact_across_chunks_blank_lines_and_bad_records(tmp_path, suffix):
    # Validated reads decode a whole chunk at once and fall back to line by line on any doubt:
    # line numbers, blank lines and the records before an error must come out the same.
    good = [orjson.dumps(new_trajectory(problem_id=f"p{i}", prompt="x" * 300, response=str(i)))
            for i in range(6000)]
    lines = []
    for i, g in enumerate(good):
        lines.append(g)
        if i % 997 == 0:
            lines.append(b"")  # a blank line now and then, in different chunks
    bad_at = 4500
    # line bad_at, deep inside a later chunk:
    lines.insert(bad_at - 1, orjson.dumps(dict(orjson.loads(good[0]), reward=2.0)))
    data = b"\n".join(lines) + b"\n"
    path = _write_compressed(tmp_path / f"many{suffix}", data)
    before = sum(1 for line in lines[: bad_at - 1] if line)
    got = []
    with pytest.raises(BadInput) as ei:
        for r in read_records(path, "trajectory"):
            got.append(r)
    assert ei.value.line == bad_at and "field 'reward'" in str(ei.value)
    assert [r["response"] for r in got] == [str(i) for i in range(before)]
    stats = ReadStats()
    rest = list(read_records(path, "trajectory", skip_invalid=True, stats=stats))
    assert [r["response"] for r in rest] == [str(i) for i in range(6000)]
    assert stats.records == 6000 and stats.invalid == 1 and stats.examples[0][1] == bad_at


@pytest.mark.parametrize("fmt", ["zstd", "zstd+checksum", "gzip"])
def test_a_file_that_inflates_thousands_fold_is_read_in_bounded_memory(tmp_path, fmt):
    # 64 MiB of blank (space-filled) lines compress to a few KB; decoding must stay bounded: by the
    # largest frame held back for its checksum (MAX_VERIFIED_FRAME), whatever the file's size.
    import tracemalloc

    data = (b" " * 1023 + b"\n") * 65536 + b'{"a": 1}\n'
    path = tmp_path / "bomb"
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=fmt.endswith("checksum")).compress(data)
                     if fmt.startswith("zstd") else gzip.compress(data))
    assert path.stat().st_size < 300_000
    tracemalloc.start()
    try:
        assert list(read_records(path)) == [{"a": 1}]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_VERIFIED_FRAME + 6 * 2**20, f"peak {peak / 2**20:.1f} MiB"


# ----------------------------------------------------------------------------- integrity


def _frames(raw: bytes, fmt: str) -> list[tuple[int, int, int, bytes]]:
    """(start, end, header size, decoded bytes) of each zstd frame / gzip member of a file."""
    out, pos = [], 0
    while pos < len(raw):
        if fmt == "zstd":
            d = zstandard.ZstdDecompressor().decompressobj()
            header = zstandard.frame_header_size(raw[pos:])
        else:
            d = zlib.decompressobj(wbits=31)
            header = 10  # gzip's fixed header (no name, comment or extra field)
        body = d.decompress(raw[pos:])
        end = len(raw) - len(d.unused_data)
        out.append((pos, end, header, body))
        pos = end
    return out


def _framed_file(tmp_path, suffix, groups=5, per=200, seed=0):
    """A file our writer wrote in `groups` flushes of `per` records; its records, raw bytes and
    frames (members)."""
    rng = random.Random(seed)
    recs = [{"i": i, "pad": rng.randbytes(150).hex()} for i in range(groups * per)]
    path = tmp_path / f"framed{suffix}"
    with open_writer(path) as w:
        for g in range(groups):
            w.write_many(recs[g * per : (g + 1) * per])
            w.flush()
    raw = path.read_bytes()
    return path, recs, raw, _frames(raw, "zstd" if suffix.endswith(".zst") else "gzip")


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".jsonl.gz"])
def test_the_writer_puts_each_flush_in_its_own_checksummed_frame(tmp_path, suffix):
    path, recs, raw, frames = _framed_file(tmp_path, suffix)
    assert [body.count(b"\n") for *_, body in frames] == [200] * 5
    assert b"".join(body for *_, body in frames) == b"".join(orjson.dumps(r) + b"\n" for r in recs)
    if suffix.endswith(".zst"):
        assert all(zstandard.get_frame_parameters(raw[s:e]).has_checksum for s, e, *_ in frames)
    # 3 MB of records without flushes: frames of about CHUNK bytes each
    big = tmp_path / f"big{suffix}"
    write_records(big, ({"i": i, "pad": "x" * 1000} for i in range(3000)))
    sizes = [len(body) for *_, body in _frames(big.read_bytes(), "zstd" if suffix.endswith(".zst") else "gzip")]
    assert len(sizes) == 3 and all(CHUNK <= s < CHUNK + 1100 for s in sizes[:-1])
    # no records: still one valid (empty) frame
    write_records(tmp_path / f"empty{suffix}", [])
    assert [body for *_, body in _frames((tmp_path / f"empty{suffix}").read_bytes(),
                                        "zstd" if suffix.endswith(".zst") else "gzip")] == [b""]
    assert list(read_records(tmp_path / f"empty{suffix}")) == []


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("suffix", [".jsonl.zst", ".jsonl.gz"])
def test_a_corrupt_frame_is_reported_before_any_of_its_records(tmp_path, monkeypatch, suffix, seed):
    # Seeded damage (1 to 64 bytes changed) inside the compressed data of frame 3 of 5: the records
    # of frames 1 and 2 come out, nothing of frame 3, then the error naming the file and the line.
    # The input is read in 4 KiB pieces (as from a pipe), so frame 3 decodes in many steps and its
    # first records are decoded long before its checksum is reached.
    path, recs, raw, frames = _framed_file(tmp_path, suffix, per=1000, seed=seed)
    monkeypatch.setattr(streams, "CHUNK", 4096)
    start, end, header, body = frames[2]
    assert len(body) > 2 * 128 * 1024  # three zstd blocks: the first decodes before the damage
    lo, hi = (start + end) // 2, end - (4 if suffix.endswith(".zst") else 8)
    rng = random.Random(1000 + seed)
    bad = bytearray(raw)
    for k in rng.sample(range(lo, hi), rng.randint(1, 64)):
        bad[k] ^= rng.randint(1, 255)
    path.write_bytes(bytes(bad))
    got = []
    with pytest.raises(BadInput) as ei:
        for r in read_records(path):
            got.append(r)
    assert got == recs[:2000]
    what = f"corrupt zstd stream (frame 3 at byte {start}" if suffix.endswith(".zst") else "corrupt gzip stream"
    assert ei.value.path == str(path) and ei.value.line == 2001 and what in str(ei.value)
    stats = ReadStats()
    assert list(read_records(path, skip_invalid=True, stats=stats)) == recs[:2000]
    assert stats.invalid == 1 and stats.examples[0][1] == 2001 and what in stats.examples[0][2]


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".jsonl.gz"])
def test_a_damaged_checksum_or_header_withholds_the_frame(tmp_path, monkeypatch, suffix):
    path, recs, raw, frames = _framed_file(tmp_path, suffix, per=1000)
    monkeypatch.setattr(streams, "CHUNK", 4096)
    start, end, header, _ = frames[3]
    for where in (end - 1, start + header, start):  # the checksum / CRC, a block header, the magic
        bad = bytearray(raw)
        bad[where] ^= 0x10
        path.write_bytes(bytes(bad))
        got = []
        with pytest.raises(BadInput, match="corrupt|truncated") as ei:
            for r in read_records(path):
                got.append(r)
        assert got == recs[:3000] and ei.value.line == 3001, where


def test_frames_cut_anywhere_in_the_input_decode_the_same(tmp_path):
    # The frame walker sees the input in arbitrary pieces: headers and magic numbers cut anywhere.
    from spo_cli.streams import _zstd_chunks

    rng = random.Random(7)
    body = b"".join(orjson.dumps({"i": i, "pad": rng.randbytes(40).hex() if i % 2 else "z" * 300}) + b"\n"
                    for i in range(400))
    parts = [zstandard.ZstdCompressor(write_checksum=True).compress(body[:9000]),
             b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"skip!",
             zstandard.ZstdCompressor(write_content_size=False, level=1).compress(body[9000:40000]),
             zstandard.ZstdCompressor(write_checksum=True).compress(b""),
             zstandard.ZstdCompressor(write_checksum=True, level=5).compress(body[40000:])]
    stream = b"".join(parts)

    class Trickle:
        def __init__(self, data, sizes):
            self.data, self.sizes = data, sizes

        def read(self, n):
            k = self.sizes()
            out, self.data = self.data[:k], self.data[k:]
            return out

    for sizes in (lambda: 1, lambda: rng.randint(1, 9), lambda: rng.randint(1, 5000)):
        assert b"".join(_zstd_chunks(Trickle(stream, sizes))) == body


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".jsonl.gz"])
def test_a_frame_too_large_to_hold_is_still_checked_at_its_end(tmp_path, suffix):
    # Another tool's file may be one huge frame: past MAX_VERIFIED_FRAME it is passed on as it
    # decodes (memory stays bounded), so records before damage deep inside it come out, then the
    # error: what the README says is not caught before the records are read.
    rng = random.Random(3)
    recs = [{"i": i, "pad": rng.randbytes(400).hex()} for i in range(24000)]  # ~20 MB of JSON
    body = b"".join(orjson.dumps(r) + b"\n" for r in recs)
    one = (zstandard.ZstdCompressor(write_checksum=True).compress(body) if suffix.endswith(".zst")
           else gzip.compress(body))
    path = tmp_path / f"one{suffix}"
    path.write_bytes(one)
    assert list(read_records(path)) == recs
    bad = bytearray(one)
    bad[len(one) - 100] ^= 0x01
    path.write_bytes(bytes(bad))
    got = []
    with pytest.raises(BadInput, match="corrupt"):
        for r in read_records(path):
            got.append(r)
    assert got == recs[: len(got)] and len(got) * 820 > MAX_VERIFIED_FRAME


def test_a_frame_far_larger_than_it_declares_is_refused_in_bounded_memory(tmp_path):
    # A checksummed frame declaring 100 bytes, followed by 9 MiB of raw blocks: gathering it for a
    # one-call decode stops past MAX_VERIFIED_FRAME, and the streaming decoder rejects it.
    import tracemalloc

    block = (128 * 1024 << 3).to_bytes(3, "little") + b"x" * 128 * 1024  # a raw, not last, block
    good = zstandard.ZstdCompressor(write_checksum=True).compress(b'{"a": 1}\n')
    frame = (good
             + b"\x28\xb5\x2f\xfd\xa4" + (100).to_bytes(4, "little") + block * 72
             + (1).to_bytes(3, "little") + b"\0\0\0\0")  # an empty last block and a checksum
    path = tmp_path / "liar.jsonl.zst"
    path.write_bytes(frame)
    got = []
    tracemalloc.start()
    try:
        with pytest.raises(BadInput, match=rf"corrupt zstd stream \(frame 2 at byte {len(good)}:") as ei:
            for r in read_records(path):
                got.append(r)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [{"a": 1}] and ei.value.line == 2
    assert peak < 2 * MAX_VERIFIED_FRAME + 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_zstd_frame_walker_tells_a_cut_frame_from_a_complete_one(tmp_path):
    # Frames with and without checksums and content sizes, a skippable frame, RLE and raw blocks.
    rng = random.Random(11)
    recs = [{"i": i, "pad": "z" * 500 if i % 2 else rng.randbytes(200).hex()} for i in range(3000)]
    body = b"".join(orjson.dumps(r) + b"\n" for r in recs)
    half = len(body) // 2
    cut_at = body.rindex(b"\n", 0, half) + 1
    frames = (zstandard.ZstdCompressor(write_checksum=True).compress(body[:cut_at])
              + b"\x50\x2a\x4d\x18" + (5).to_bytes(4, "little") + b"skip!"
              + zstandard.ZstdCompressor(write_content_size=False, level=1).compress(body[cut_at:]))
    path = tmp_path / "multi.jsonl.zst"
    path.write_bytes(frames)
    assert [r["i"] for r in read_records(path)] == list(range(3000))
    for cut in (len(frames) - 1, len(frames) - 4, len(frames) // 2, 30):
        path.write_bytes(frames[:cut])
        got = []
        with pytest.raises(BadInput, match="truncated zstd stream"):
            for r in read_records(path):
                got.append(r["i"])
        assert got == list(range(len(got)))  # a prefix, in order, nothing invented


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".jsonl.gz"])
def test_truncated_stream_yields_every_complete_frame_then_errors(tmp_path, suffix):
    n = 20000
    rng = random.Random(5)
    recs = [{"i": i, "pad": rng.randbytes(40).hex()} for i in range(n)]  # incompressible-ish: many blocks
    path = tmp_path / f"full{suffix}"
    write_records(path, recs)
    raw = path.read_bytes()
    frames = _frames(raw, "zstd" if suffix.endswith(".zst") else "gzip")
    assert len(frames) >= 2
    cut_at = len(raw) * 2 // 3
    complete = sum(body.count(b"\n") for s, e, _, body in frames if e <= cut_at)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(raw[:cut_at])
    got = []
    with pytest.raises(BadInput, match="truncated") as ei:
        for r in read_records(cut):
            got.append(r)
    # Exactly the records of the frames complete before the cut (the cut frame cannot be verified).
    assert got == recs[:complete] and ei.value.line == complete + 1


def test_truncated_plain_file_last_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"i": 0}\n{"i": 1}\n{"i": 2, "x": "cut he')
    got = []
    with pytest.raises(BadInput, match=r"t.jsonl:3: .*no newline: truncated"):
        for r in read_records(path):
            got.append(r["i"])
    assert got == [0, 1]


# ----------------------------------------------------------------------------- atomic writes


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.jsonl.zst"
    with pytest.raises(RuntimeError):
        with open_writer(target) as w:
            w.write({"a": 1})
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        with open_writer(target) as w:
            w.write({"a": 1})
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_bad_input_keeps_what_was_written(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"i": 0}\n{"i": 1}\n{oops\n{"i": 3}\n')
    out = tmp_path / "out.jsonl.zst"
    with pytest.raises(BadInput):
        with open_writer(out) as w:
            for r in read_records(src):
                w.write(r)
    assert list(read_records(out)) == [{"i": 0}, {"i": 1}]


def test_existing_file_is_replaced_only_on_success(tmp_path):
    target = tmp_path / "out.jsonl"
    write_records(target, [{"v": "old"}])
    with pytest.raises(RuntimeError):
        with open_writer(target) as w:
            w.write({"v": "new"})
            raise RuntimeError
    assert list(read_records(target)) == [{"v": "old"}]


WRITER = r"""
import sys, os
from spo_cli.streams import open_writer
target = sys.argv[1]
with open_writer(target) as w:
    i = 0
    while True:
        w.write({"i": i, "pad": "y" * 300})
        i += 1
        if i % 500 == 0:
            w.flush()
            print(i, flush=True)
        if i == 100000:
            break
print("done", flush=True)
"""


@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_random_points_never_leaves_a_visible_partial_file(tmp_path, seed):
    import random

    rng = random.Random(seed)
    target = tmp_path / ("out.jsonl.zst" if seed % 2 else "out.jsonl")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    # Let it write a random amount (it always writes: it prints progress), then SIGKILL.
    wanted = rng.randint(1, 20)
    for _ in range(wanted):
        line = proc.stdout.readline()
        if not line or line.startswith("done"):
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    visible = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    if visible:  # it finished before the kill: then the file is complete
        assert len(list(read_records(target))) == 100000
    # readers of the directory never see the temporary file
    assert list(read_records(tmp_path)) == ([] if not visible else list(read_records(target)))


def test_sigterm_removes_the_temporary_file(tmp_path):
    script = WRITER.replace("import sys, os", "import sys, os, signal\nsignal.signal(signal.SIGTERM, lambda s, f: sys.exit(143))")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "o.jsonl")], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 143
    assert list(tmp_path.iterdir()) == []


SHARDER = r"""
import sys
from spo_cli.streams import add_shard
corpus, writer, shards, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for s in range(shards):
    add_shard(corpus, ({"id": f"{writer}-{s}-{i}", "writer": writer, "shard": s, "i": i, "pad": "z" * 100}
                       for i in range(per)))
"""


def test_eight_concurrent_shard_writers_lose_and_interleave_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    shards, per = 5, 400
    procs = [subprocess.Popen([sys.executable, "-c", SHARDER, str(corpus), str(w), str(shards), str(per)])
             for w in range(8)]
    # A reader running meanwhile only ever sees whole shards.
    seen_sizes = set()
    while any(p.poll() is None for p in procs):
        for shard in list(corpus.glob("*.jsonl.zst")) if corpus.exists() else []:
            n = len(list(read_records(shard)))
            seen_sizes.add(n)
        time.sleep(0.05)
    assert all(p.returncode == 0 for p in procs)
    assert seen_sizes <= {per}
    files = sorted(corpus.iterdir())
    assert len(files) == 8 * shards and not any(f.name.startswith(".") for f in files)
    for f in files:
        recs = list(read_records(f))
        # each shard holds exactly one writer's one batch, in order: nothing interleaved
        assert len({(r["writer"], r["shard"]) for r in recs}) == 1
        assert [r["i"] for r in recs] == list(range(per))
    ids = [r["id"] for r in read_records(corpus)]
    assert len(ids) == len(set(ids)) == 8 * shards * per


def test_memory_stays_flat_while_streaming(tmp_path):
    """Reading a file ~40x larger than the chunk size does not grow memory with the file."""
    path = tmp_path / "big.jsonl.zst"
    write_records(path, ({"i": i, "pad": "q" * 400} for i in range(100_000)))
    code = (
        "import resource, sys\nfrom spo_cli.streams import read_records\n"
        "n = sum(1 for _ in read_records(sys.argv[1]))\n"
        "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    small = tmp_path / "small.jsonl.zst"
    write_records(small, ({"i": i, "pad": "q" * 400} for i in range(1000)))
    n_big, rss_big = map(int, subprocess.check_output([sys.executable, "-c", code, str(path)]).split())
    n_small, rss_small = map(int, subprocess.check_output([sys.executable, "-c", code, str(small)]).split())
    assert (n_big, n_small) == (100_000, 1000)
    # 100x more records (~40 MB of JSON) cost less than 16 MB more peak memory.
    assert rss_big - rss_small < 16 * 1024, (rss_big, rss_small)
