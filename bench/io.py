"""Read and write throughput of spo's record streams against the bare floor, and peak memory.

    python bench/io.py            # 1,000,000 trajectories (~3 KB of JSON each), 3 repetitions,
                                  # and 3,000 CodeContests problems in a Parquet file
    python bench/io.py --quick    # 50,000 trajectories and 300 problems, under a minute

Floor, measured in the same run on the same file:
- read:  zstandard stream decompression + a line iterator + orjson.loads, nothing else;
- write: orjson.dumps + zstandard stream compression (level 3), nothing else.
Ours: spo_cli.streams.read_records(path, "trajectory") (magic-byte detection, each zstd frame's
checksum verified before its records are yielded, line numbers, schema validation) and
open_writer(path) (a checksummed frame per ~1 MiB of JSON, atomic temp file + rename + fsync).
Parquet (issue 16), on one file of CodeContests rows in the Hugging Face schema:
- floor: pyarrow.parquet.ParquetFile(path).iter_batches(batch_size) + RecordBatch.to_pylist();
- ours:  read_records(path, "problem"): magic-byte detection, the same batches as plain rows,
  each row mapped onto a Problem record by the CodeContests importer and validated.
Repetitions alternate floor and ours; figures are medians. On a shared machine whose speed drifts
between repetitions, the *_paired ratios (the median over repetitions of floor time / our time,
each pair measured back to back) are the steadier ones, and for Parquet the ratio of CPU times
(parquet_vs_floor_cpu: both sides run the same pyarrow reader, so its threads count alike). Peak RSS of a read is measured in fresh
processes on the full file and on a tenth of it: equal peaks mean memory does not grow with size.

People-facing lines go to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from spo_cli.schema import trajectory_id  # noqa: E402
from spo_cli.streams import open_writer, read_records  # noqa: E402


def realistic_records(n: int, seed: int = 0):
    """Trajectories shaped like real ones: a ~600-char prompt, a ~500-char program, 160 token ids
    and 160 behaviour log-probs, sampler info, judge fields. 1,024 templates (more
    than zstd's window holds, so compression is realistic, not 100x), fresh ids."""
    import random

    rng = random.Random(seed)
    templates = []
    for _ in range(1024):
        prompt = " ".join(rng.choice(["read", "n", "integers", "print", "the", "sum", "of", "each",
                                      "query", "modulo", "10^9+7", "line"]) for _ in range(110))
        response = "\n".join(f"x{i} = int(input()) * {rng.randint(1, 99)}" for i in range(22))
        ids = [rng.randrange(32000) for _ in range(160)]
        lps = [-rng.expovariate(2.0) for _ in range(160)]
        templates.append((prompt, response, ids, lps))
    for i in range(n):
        prompt, response, ids, lps = templates[i % 1024]
        pid = f"problem-{i % 5000}"
        resp = f"{response}\n# {i}"
        yield {
            "id": trajectory_id(pid, resp), "problem_id": pid, "prompt": prompt, "response": resp,
            "response_ids": ids, "tokenizer": "bpe-768-3f2a", "logprobs": lps, "reward": float(i % 3 == 0),
            "verdict": "OK" if i % 3 == 0 else "WA", "tests_passed": 10 if i % 3 == 0 else 3,
            "tests_total": 10, "source": "online", "policy_version": i // 1000,
            "sampler": {"model": "tiny", "temperature": 0.7, "top_p": 0.95, "seed": i},
            "created": 1764000000.0 + i,
        }


def codecontests_rows(n: int, seed: int = 0):
    """CodeContests rows shaped like the real ones (deepmind/code_contests), whose bytes are mostly
    solutions: a ~1.5 KB statement; 2 public, ~10 private and ~80 generated tests with inputs of
    10 B to 2 KB; ~150 correct and ~100 incorrect solutions of 200 B to 1.5 KB, one in ten in
    Python 3, the rest C++, Java or Python 2; the Codeforces fields. 64 templates, fresh names."""
    import random

    rng = random.Random(seed)
    words = ["read", "n", "integers", "print", "the", "minimum", "number", "of", "moves", "array",
             "query", "modulo", "10^9+7", "each", "test", "case", "string", "graph", "edges"]

    def tests(k):
        ins = [" ".join(str(rng.randrange(10**6)) for _ in range(int(rng.expovariate(1 / 40)) + 2)) + "\n"
               for _ in range(k)]
        return {"input": ins, "output": [f"{rng.randrange(10**9)}\n" for _ in range(k)]}

    def sols(k):
        langs = [rng.choice((2, 2, 2, 2, 2, 4, 4, 1, 1, 3)) for _ in range(k)]
        return {"language": langs, "solution": [
            "\n".join(f"x{i} = int(input()) * {rng.randint(1, 99)}" for i in range(rng.randint(8, 60)))
            for _ in langs]}

    templates = []
    for _ in range(64):
        templates.append({
            "description": " ".join(rng.choice(words) for _ in range(250)),
            "public_tests": tests(2), "private_tests": tests(rng.randint(5, 15)),
            "generated_tests": tests(rng.randint(40, 120)), "source": 2, "difficulty": rng.randint(7, 12),
            "solutions": sols(rng.randint(50, 250)), "incorrect_solutions": sols(rng.randint(20, 180)),
            "cf_index": "A", "cf_points": 500.0, "cf_rating": rng.randrange(800, 3000, 100),
            "cf_tags": ["math", "greedy"], "is_description_translated": False,
            "untranslated_description": "", "time_limit": {"seconds": 2, "nanos": 0},
            "memory_limit_bytes": 256 << 20, "input_file": "", "output_file": "",
        })
    for i in range(n):
        yield {"name": f"{1000 + i}_A. Problem {i}", "cf_contest_id": 1000 + i, **templates[i % 64]}


def write_parquet(path: Path, n: int, row_group: int = 100) -> None:
    """n CodeContests rows in the Hugging Face schema, row groups of `row_group` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spo_cli.importers.codecontests import arrow_schema

    schema = arrow_schema()
    with pq.ParquetWriter(path, schema) as w:
        rows = []
        for r in codecontests_rows(n):
            rows.append(r)
            if len(rows) == row_group:
                w.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            w.write_table(pa.Table.from_pylist(rows, schema=schema))


def floor_parquet(path: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, rows) of the bare pyarrow loop."""
    import pyarrow.parquet as pq

    from spo_cli.tables import BATCH_ROWS

    t, c = time.perf_counter(), time.process_time()
    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
        for _ in batch.to_pylist():
            n += 1
    return time.perf_counter() - t, time.process_time() - c, n


def ours_parquet(path: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, problems) of read_records(path, "problem")."""
    t, c = time.perf_counter(), time.process_time()
    n = 0
    for _ in read_records(path, "problem"):
        n += 1
    return time.perf_counter() - t, time.process_time() - c, n


def floor_write(path: Path, n: int) -> float:
    t = time.perf_counter()
    dumps = orjson.dumps
    with open(path, "wb") as f:
        w = zstandard.ZstdCompressor(level=3).stream_writer(f)
        for r in realistic_records(n):
            w.write(dumps(r) + b"\n")
        w.flush(zstandard.FLUSH_FRAME)
    return time.perf_counter() - t


def ours_write(path: Path, n: int) -> float:
    t = time.perf_counter()
    with open_writer(path) as w:
        for r in realistic_records(n):
            w.write(r)
    return time.perf_counter() - t


def floor_read(path: Path) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    loads = orjson.loads
    with open(path, "rb") as f:
        reader = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(f), 1 << 20)
        for line in reader:
            loads(line)
            n += 1
    return time.perf_counter() - t, n


def ours_read(path: Path) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    for _ in read_records(path, "trajectory"):
        n += 1
    return time.perf_counter() - t, n


PEAK = (
    "import resource, sys\n"
    "sys.path.insert(0, sys.argv[2])\n"
    "from spo_cli.streams import read_records\n"
    "n = sum(1 for _ in read_records(sys.argv[1], 'trajectory'))\n"
    "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
)


def peak_rss_mb(path: Path) -> tuple[int, float]:
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.check_output([sys.executable, "-c", PEAK, str(path), root]).split()
    return int(out[0]), float(out[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50,000 records (under a minute)")
    ap.add_argument("-n", type=int, default=None, help="number of trajectories")
    ap.add_argument("--problems", type=int, default=None, help="CodeContests problems in the Parquet file")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()
    n = args.n or (50_000 if args.quick else 1_000_000)
    n_problems = args.problems or (300 if args.quick else 3_000)
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        d = Path(d)
        fw, ow, fr, orr = [], [], [], []
        for rep in range(args.reps):
            a, b = d / "floor.jsonl.zst", d / "ours.jsonl.zst"
            fw.append(floor_write(a, n))
            ow.append(ours_write(b, n))
            t, na = floor_read(b)
            fr.append(t)
            t, nb = ours_read(b)
            orr.append(t)
            assert na == nb == n, (na, nb, n)
            log(f"rep {rep + 1}/{args.reps}: write floor {n / fw[-1]:,.0f}/s ours {n / ow[-1]:,.0f}/s | "
                f"read floor {n / fr[-1]:,.0f}/s ours {n / orr[-1]:,.0f}/s")
        size_mb = (d / "ours.jsonl.zst").stat().st_size / 2**20
        json_mb = sum(len(orjson.dumps(r)) + 1 for r in realistic_records(1000)) / 1000 * n / 2**20
        # peak memory: the full file and a tenth of it, each read in a fresh process
        tenth = d / "tenth.jsonl.zst"
        ours_write(tenth, max(1, n // 10))
        n_full, rss_full = peak_rss_mb(d / "ours.jsonl.zst")
        n_tenth, rss_tenth = peak_rss_mb(tenth)

        pq_path = d / "train-00000-of-00001.parquet"
        write_parquet(pq_path, n_problems)
        pq_mb = pq_path.stat().st_size / 2**20
        pf, po, pfc, poc = [], [], [], []
        for rep in range(max(args.reps, 5)):  # short runs: a few more pairs
            t, c, na = floor_parquet(pq_path)
            pf.append(t)
            pfc.append(c)
            t, c, nb = ours_parquet(pq_path)
            po.append(t)
            poc.append(c)
            assert na == nb == n_problems, (na, nb, n_problems)
            log(f"rep {rep + 1}: Parquet read floor {n_problems / pf[-1]:,.0f} problems/s "
                f"ours {n_problems / po[-1]:,.0f}/s")

    med = statistics.median
    result = {
        "records": n,
        "json_mb": round(json_mb, 1),
        "zst_mb": round(size_mb, 1),
        "read_per_s": round(n / med(orr)),
        "read_floor_per_s": round(n / med(fr)),
        "write_per_s": round(n / med(ow)),
        "write_floor_per_s": round(n / med(fw)),
        "read_vs_floor": round(med(fr) / med(orr), 3),
        "write_vs_floor": round(med(fw) / med(ow), 3),
        "read_vs_floor_paired": round(med([f / o for f, o in zip(fr, orr)]), 3),
        "write_vs_floor_paired": round(med([f / o for f, o in zip(fw, ow)]), 3),
        "peak_rss_mb": round(rss_full, 1),
        "peak_rss_mb_tenth_file": round(rss_tenth, 1),
        "parquet_problems": n_problems,
        "parquet_mb": round(pq_mb, 1),
        "parquet_read_per_s": round(n_problems / med(po)),
        "parquet_floor_per_s": round(n_problems / med(pf)),
        "parquet_vs_floor": round(med(pf) / med(po), 3),
        "parquet_vs_floor_paired": round(med([f / o for f, o in zip(pf, po)]), 3),
        "parquet_vs_floor_cpu": round(med(pfc) / med(poc), 3),
        "reps": args.reps,
    }
    log(f"read {result['read_vs_floor']}x floor (paired {result['read_vs_floor_paired']}x), write "
        f"{result['write_vs_floor']}x floor (paired {result['write_vs_floor_paired']}x), "
        f"peak RSS {rss_full:.0f} MB on {n_full:,} records vs {rss_tenth:.0f} MB on {n_tenth:,}; "
        f"Parquet problems {result['parquet_vs_floor']}x floor (paired {result['parquet_vs_floor_paired']}x, "
        f"CPU {result['parquet_vs_floor_cpu']}x)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
