"""Parquet and Arrow input (spo_cli.tables through spo_cli.streams): detected by content, read by
record batch, rows named by file and row when bad, shards in directories and globs as JSONL."""

from __future__ import annotations

import random
import subprocess
import sys
import warnings
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from spo_cli.errors import BadInput
from spo_cli.importers.codecontests import arrow_schema
from spo_cli.streams import ReadStats, expand, read_records
from spo_cli.tables import sniff

ROOT = Path(__file__).resolve().parent.parent


def cc_row(i: int, **over) -> dict:
    """A row as the Hugging Face CodeContests Parquet holds it (arrow_schema())."""
    row = {
        "name": f"{1500 + i}_A. Problem {i}", "description": f"Print {i} plus the number given.",
        "public_tests": {"input": ["1\n"], "output": [f"{i + 1}\n"]},
        "private_tests": {"input": ["2\n"], "output": [f"{i + 2}\n"]},
        "generated_tests": {"input": ["3\n", "4\n"], "output": [f"{i + 3}\n", f"{i + 4}\n"]},
        "source": 2, "difficulty": 7,
        "solutions": {"language": [2, 3, 4], "solution": ["int main(){}", f"print(int(input())+{i})",
                                                          "class Main{}"]},
        "incorrect_solutions": {"language": [3], "solution": ["print(0)"]},
        "cf_contest_id": 1500 + i, "cf_index": "A", "cf_points": 500.0, "cf_rating": 800,
        "cf_tags": ["math"], "is_description_translated": False, "untranslated_description": "",
        "time_limit": {"seconds": 1, "nanos": 500000000}, "memory_limit_bytes": 256 << 20,
        "input_file": "", "output_file": "",
    }
    row.update(over)
    return row


def write_parquet(path: Path, rows: list[dict], row_group: int | None = None) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), path, row_group_size=row_group)
    return path


def write_arrow_stream(path: Path, rows: list[dict], schema=None, batch: int = 1000) -> Path:
    """As the `datasets` library writes its cache and save_to_disk files: the IPC stream format."""
    table = pa.Table.from_pylist(rows, schema=schema)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        for b in table.to_batches(max_chunksize=batch):
            w.write_batch(b)
    return path


def test_sniff_by_content_not_name(tmp_path):
    assert sniff(b"PAR1\x15\x04") == "parquet" and sniff(b"ARROW1\x00\x00") == "arrow"
    assert sniff(b"\xff\xff\xff\xff\x10\x01") == "arrow-stream" and sniff(b"FEA1....") == "feather-v1"
    assert sniff(b'{"id": "x"}\n') is None and sniff(b"\x28\xb5\x2f\xfd") is None
    # a Parquet file named like JSON lines is still read as Parquet
    p = write_parquet(tmp_path / "problems.jsonl", [cc_row(0)])
    (rec,) = read_records(p, "problem")
    assert rec["id"] == "1500_A. Problem 0" and rec["meta"]["format"] == "codecontests"


def test_codecontests_parquet_shard_maps_every_field(tmp_path):
    p = write_parquet(tmp_path / "train-00000-of-00001.parquet", [cc_row(0), cc_row(1)])
    a, b = read_records(p, "problem")
    assert a["prompt"] == "Print 0 plus the number given."
    assert [t["input"] for t in a["tests"]] == ["1\n", "2\n", "3\n", "4\n"]  # public, private, generated
    assert a["public_tests"] == [{"input": "1\n", "output": "1\n"}]
    assert a["solutions"] == ["print(int(input())+0)"] and a["incorrect_solutions"] == ["print(0)"]
    assert a["time_limit"] == 1.5 and a["memory_limit_mb"] == 256
    m = a["meta"]
    assert m["solutions_by_language"] == {"CPP": 1, "JAVA": 1}
    assert m["time_limit"] == {"seconds": 1, "nanos": 500000000} and m["memory_limit_bytes"] == 256 << 20
    assert m["cf_rating"] == 800 and m["cf_tags"] == ["math"] and m["source"] == 2
    assert b["id"] == "1501_A. Problem 1"


def test_directories_and_globs_of_shards(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for k in range(3):
        write_parquet(d / f"train-0000{k}-of-00003.parquet", [cc_row(10 * k + j) for j in range(4)])
    (d / "README.md").write_text("not a shard")
    ids = [r["id"] for r in read_records(d, "problem")]
    assert len(ids) == 12 and ids[0].startswith("1500_") and ids[-1].startswith("1523_")
    assert [r["id"] for r in read_records(str(d / "train-*.parquet"), "problem")] == ids
    # JSONL and Parquet shards mix in one directory
    (d / "extra.jsonl").write_bytes(orjson.dumps(cc_row(99)) + b"\n")
    assert len(list(read_records(d, "problem"))) == 13


def test_datasets_save_to_disk_directory(tmp_path):
    """TACO is published like this: Arrow stream files beside dataset_info.json and state.json."""
    d = tmp_path / "train"
    d.mkdir()
    rows = [{"question": f"q{i}", "input_output": orjson.dumps({"inputs": ["1\n"], "outputs": ["1\n"]}).decode(),
             "solutions": "[]", "name": f"t{i}", "starter_code": ""} for i in range(5)]
    write_arrow_stream(d / "data-00000-of-00002.arrow", rows[:3], batch=2)
    write_arrow_stream(d / "data-00001-of-00002.arrow", rows[3:])
    (d / "dataset_info.json").write_text('{\n  "features": {}\n}\n')
    (d / "state.json").write_text('{\n  "_data_files": []\n}\n')
    assert [Path(p).name for p in expand(d)] == ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]
    assert [r["id"] for r in read_records(d, "problem")] == [f"t{i}" for i in range(5)]


def test_arrow_file_and_feather_v2(tmp_path):
    rows = [cc_row(i) for i in range(3)]
    table = pa.Table.from_pylist(rows, schema=arrow_schema())
    feather.write_feather(table, tmp_path / "cc.feather")  # Feather V2 = the Arrow IPC file format
    with pa.OSFile(str(tmp_path / "cc.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        for b in table.to_batches(max_chunksize=2):
            w.write_batch(b)
    for name in ("cc.feather", "cc.arrow"):
        assert [r["id"] for r in read_records(tmp_path / name, "problem")] == [r["name"] for r in rows]


def test_feather_v1_is_refused_with_what_to_do(tmp_path):
    p = tmp_path / "old.feather"
    with warnings.catch_warnings():  # pyarrow deprecates writing V1: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        feather.write_feather(pa.table({"id": ["a"], "prompt": ["p"]}), p, version=1)
    with pytest.raises(BadInput, match=r"old.feather: a Feather V1 file .* re-save it"):
        list(read_records(p))


def test_plain_records_and_other_kinds_from_parquet(tmp_path):
    """Not only problems: any record kind can come from a table; binary columns become text."""
    p = tmp_path / "traj.parquet"
    pq.write_table(pa.table({"id": ["t1", "t2"], "problem_id": ["p", "p"], "prompt": ["x", "x"],
                             "response": [b"print(1)", b"print(2)"], "reward": [1.0, None]}), p)
    recs = list(read_records(p, "trajectory"))
    assert [r["response"] for r in recs] == ["print(1)", "print(2)"] and recs[1]["reward"] is None
    assert list(read_records(p)) == recs


def test_a_bad_row_names_file_row_and_field(tmp_path):
    rows = [cc_row(0), cc_row(1), cc_row(2, private_tests={"input": ["1\n", "2\n"], "output": ["3\n"]})]
    p = write_parquet(tmp_path / "train.parquet", rows)
    with pytest.raises(BadInput) as e:
        list(read_records(p, "problem"))
    assert str(e.value) == (f"{p}: row 3: invalid problem record: field 'private_tests': "
                            "has 2 inputs but 1 outputs")
    stats = ReadStats()
    assert len(list(read_records(p, "problem", skip_invalid=True, stats=stats))) == 2
    assert stats.invalid == 1 and stats.examples[0][1] is None and stats.examples[0][2].startswith("row 3: ")
    # a null inside a list of tests (Parquet can hold one; JSON lines rarely do)
    q = write_parquet(tmp_path / "nulls.parquet",
                      [cc_row(0, generated_tests={"input": ["1\n", None], "output": ["2\n", "3\n"]})])
    with pytest.raises(BadInput, match=r"nulls.parquet: row 1: invalid problem record: field "
                                       r"'generated_tests': test 1: input and output must be strings"):
        list(read_records(q, "problem"))


def test_problems_without_usable_tests_are_counted_and_reported(tmp_path):
    empty = {"input": [], "output": []}
    rows = [cc_row(0), cc_row(1, public_tests=empty, private_tests=empty, generated_tests=None),
            cc_row(2), cc_row(3, input_file="input.txt", output_file="output.txt")]
    p = write_parquet(tmp_path / "train.parquet", rows)
    stats = ReadStats()
    assert [r["id"][:4] for r in read_records(p, "problem", stats=stats)] == ["1500", "1502"]
    assert stats.unusable == 2 and stats.records == 2 and stats.invalid == 0
    assert stats.unusable_examples[0] == (str(p), None, "row 2: no tests (public_tests, private_tests "
                                                        "and generated_tests are all empty)")
    assert "'input.txt'" in stats.unusable_examples[1][2]
    r = _spo("records", "cat", "-k", "problem", str(p))
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    assert "2 records, 2 problems without usable tests skipped (first: " in r.stderr
    # a command that keeps no counts of its own still says so, once per file
    r = _spo("records", "solutions", str(p))
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2
    assert r.stderr.count("2 problems without usable tests skipped") == 1, r.stderr
    r = _spo("records", "check", "-k", "problem", str(p))
    assert orjson.loads(r.stdout) == {"records": 2, "invalid": 0, "skipped": 2} and r.returncode == 0


def test_stdin(tmp_path):
    rows = [cc_row(i) for i in range(3)]
    stream = write_arrow_stream(tmp_path / "cc.arrow", rows, schema=arrow_schema())
    r = _spo("records", "cat", "-k", "problem", "-", stdin=stream.read_bytes())
    assert r.returncode == 0, r.stderr
    assert [orjson.loads(x)["id"] for x in r.stdout.splitlines()] == [x["name"] for x in rows]
    parquet = write_parquet(tmp_path / "cc.parquet", rows)
    r = _spo("records", "cat", "-k", "problem", "-", stdin=parquet.read_bytes())
    assert r.returncode == 2 and "Parquet cannot be read from stdin" in r.stderr and "give its path" in r.stderr


def test_a_damaged_file_is_reported_not_a_crash(tmp_path):
    p = write_parquet(tmp_path / "train.parquet", [cc_row(i) for i in range(50)], row_group=10)
    data = p.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match=r"cut.parquet: corrupt or truncated Parquet file"):
        list(read_records(cut, "problem"))
    stream = write_arrow_stream(tmp_path / "s.arrow", [cc_row(i) for i in range(50)], schema=arrow_schema(),
                                batch=10)
    half = tmp_path / "half.arrow"
    half.write_bytes(stream.read_bytes()[: stream.stat().st_size * 3 // 4])
    stats = ReadStats()
    got = list(read_records(half, "problem", skip_invalid=True, stats=stats))
    assert 10 <= len(got) < 50 and stats.invalid == 1
    assert f"{len(got)} rows read before it" in stats.examples[0][2]
    r = _spo("records", "cat", "-k", "problem", str(cut))
    assert r.returncode == 2 and "cut.parquet" in r.stderr


PEAK = (
    "import sys\n"
    "sys.path.insert(0, sys.argv[2])\n"
    "from spo_cli.streams import read_records\n"
    "n = sum(1 for _ in read_records(sys.argv[1], 'problem'))\n"
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would report pytest's own peak
    "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]\n"
    "print(n, hwm)\n"
)


@pytest.mark.parametrize("fmt", ["parquet", "arrow-stream"])
def test_memory_is_bounded_by_the_batch_not_the_file(tmp_path, fmt):
    """The same rows, 30 MB and 120 MB of them, in row groups (Parquet) or record batches (Arrow)
    of 300 rows: the peak memory of reading the larger file is about that of the smaller one."""
    def text(i, k):  # seeded and incompressible: the file is as large as the data
        return random.Random(i * 7 + k).randbytes(1500).hex()

    def rows(start, n):
        return [cc_row(i, description=text(i, 0), generated_tests={
            "input": [text(i, k) for k in range(1, 7)], "output": ["1\n"] * 6})
            for i in range(start, start + n)]

    def write(path, n):
        schema = arrow_schema()
        if fmt == "parquet":
            with pq.ParquetWriter(path, schema) as w:
                for k in range(0, n, 300):
                    w.write_table(pa.Table.from_pylist(rows(k, 300), schema=schema))
        else:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as w:
                for k in range(0, n, 300):
                    w.write_table(pa.Table.from_pylist(rows(k, 300), schema=schema))
        return path

    small, big = write(tmp_path / "small", 1500), write(tmp_path / "big", 6000)
    assert big.stat().st_size - small.stat().st_size > 90 << 20
    out = [subprocess.check_output([sys.executable, "-c", PEAK, str(p), str(ROOT)]).split()
           for p in (big, small)]
    (n_big, kib_big), (n_small, kib_small) = [(int(a), int(b)) for a, b in out]
    assert (n_big, n_small) == (6000, 1500)
    # ~95 MB more data: a reader whose memory grows with the file adds at least that much; one
    # bounded by the batch adds allocator noise (up to ~37 MB seen under load, pyarrow's pool)
    assert kib_big - kib_small < 48 * 1024, (kib_big, kib_small)


def _spo(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "spo_cli", *args], input=stdin, capture_output=True,
                       cwd=ROOT, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
    return r
