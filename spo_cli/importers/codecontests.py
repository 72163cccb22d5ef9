"""CodeContests (deepmind/code_contests) rows as Problem records.

The Hugging Face dataset's columns (its Parquet shards and `datasets` cache, ARROW_SCHEMA below):
`name`, `description`; three test sets `public_tests`, `private_tests`, `generated_tests`, each a
struct of two lists {input: [str], output: [str]}; `solutions` and `incorrect_solutions`, structs
{language: [int], solution: [str]} with the languages of LANGUAGES; `time_limit` {seconds, nanos};
`memory_limit_bytes`; `source` and `difficulty` (class labels), `cf_contest_id`, `cf_index`,
`cf_points`, `cf_rating`, `cf_tags`, `is_description_translated`, `untranslated_description`,
`input_file`, `output_file`. JSON lines of the same rows read the same.

Mapped: name -> id; description -> prompt; all three test sets -> tests (in that order), the public
ones also -> public_tests; Python 3 solutions -> solutions / incorrect_solutions; time_limit ->
seconds; memory_limit_bytes -> memory_limit_mb (MiB, rounded down). Kept under meta: every other
column as it is, time_limit and memory_limit_bytes as stored too, and how many solutions there
are in each other language (`solutions_by_language`, `incorrect_solutions_by_language`).

Dropped: the programs in languages other than Python 3 (C++, Java, Python 2; only their counts
are kept). They are most of the dataset's bytes, no use to a Python judge, and every command
that indexes problems would hold them in memory.

Skipped (counted, see spo_cli.errors.Unusable): a problem with no tests at all, and one whose
program must read `input_file` / write `output_file` instead of stdin/stdout (the judge gives a
program stdin only).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from spo_cli.errors import RecordError, Unusable
from spo_cli.importers._common import meta

LANGUAGES = {0: "UNKNOWN_LANGUAGE", 1: "PYTHON", 2: "CPP", 3: "PYTHON3", 4: "JAVA"}
"""The dataset's `language` class label (Python 2 is PYTHON)."""
CC_PYTHON3 = 3
CC_PYTHON2 = 1
TEST_SETS = ("public_tests", "private_tests", "generated_tests")
CONSUMED = {"name", "description", *TEST_SETS, "solutions", "incorrect_solutions"}


def arrow_schema():
    """The Hugging Face dataset's schema, as its Parquet shards hold it (for files written to look
    like the download: tests, the benchmark's shard, bench/io.py)."""
    import pyarrow as pa

    tests = pa.struct([("input", pa.list_(pa.string())), ("output", pa.list_(pa.string()))])
    sols = pa.struct([("language", pa.list_(pa.int64())), ("solution", pa.list_(pa.string()))])
    return pa.schema([
        ("name", pa.string()), ("description", pa.string()),
        ("public_tests", tests), ("private_tests", tests), ("generated_tests", tests),
        ("source", pa.int64()), ("difficulty", pa.int64()),
        ("solutions", sols), ("incorrect_solutions", sols),
        ("cf_contest_id", pa.int64()), ("cf_index", pa.string()), ("cf_points", pa.float32()),
        ("cf_rating", pa.int32()), ("cf_tags", pa.list_(pa.string())),
        ("is_description_translated", pa.bool_()), ("untranslated_description", pa.string()),
        ("time_limit", pa.struct([("seconds", pa.int64()), ("nanos", pa.int64())])),
        ("memory_limit_bytes", pa.int64()), ("input_file", pa.string()), ("output_file", pa.string()),
    ])


def _tests(block: Any, field: str) -> list[dict]:
    if block is None:
        return []
    if not isinstance(block, dict):
        raise RecordError(field, "must be an object {input: [...], output: [...]}")
    ins, outs = block.get("input") or [], block.get("output") or []
    if not isinstance(ins, list) or not isinstance(outs, list):
        raise RecordError(field, "input and output must be lists")
    if len(ins) != len(outs):
        raise RecordError(field, f"has {len(ins)} inputs but {len(outs)} outputs")
    return [{"input": i, "output": o} for i, o in zip(ins, outs)]


def test_origin(row: dict, k: int) -> tuple[str, int]:
    """Which test set and which item of it the k-th of the mapped tests came from (to name the
    row's own field when a test is bad: the strings are checked once, by the schema)."""
    for field in TEST_SETS:
        block = row.get(field)
        n = len(block.get("input") or []) if isinstance(block, dict) else 0
        if k < n:
            return field, k
        k -= n
    return "tests", k


def _language(lang: Any) -> str:
    return LANGUAGES.get(lang, str(lang)) if isinstance(lang, int) else str(lang)


def _solutions(block: Any, field: str) -> tuple[list[str], dict[str, int]]:
    """(the Python 3 programs, how many programs in each other language) of a solutions block."""
    if not block:
        return [], {}
    if isinstance(block, list):  # already a list of programs
        return [s for s in block if isinstance(s, str)], {}
    if not isinstance(block, dict):
        raise RecordError(field, "must be an object {language: [...], solution: [...]}")
    langs, sols = block.get("language") or [], block.get("solution") or []
    if len(langs) != len(sols):
        raise RecordError(field, f"has {len(langs)} languages but {len(sols)} solutions")
    counts = Counter(langs)
    python3: list = []
    for key in (CC_PYTHON3, "PYTHON3"):  # the class label, or its name in a JSON export
        if key in counts:  # one comparison a program: hundreds of them a row
            python3 += [s for la, s in zip(langs, sols) if la == key]
    others = {_language(la): n for la, n in counts.items() if la != CC_PYTHON3 and la != "PYTHON3"}
    return python3, others


def from_codecontests(row: dict) -> dict:
    for f in ("input_file", "output_file"):
        if isinstance(row.get(f), str) and row[f].strip():
            raise Unusable(f"the program must use the file {row[f].strip()!r} ({f}); the judge "
                           "gives programs stdin and stdout only")
    public = _tests(row.get("public_tests"), "public_tests")
    tests = public + _tests(row.get("private_tests"), "private_tests") + _tests(
        row.get("generated_tests"), "generated_tests")
    if not tests:
        raise Unusable("no tests (public_tests, private_tests and generated_tests are all empty)")
    if not isinstance(row.get("description"), str):
        raise RecordError("description", "missing (the problem statement)")
    solutions, other = _solutions(row.get("solutions"), "solutions")
    incorrect, other_incorrect = _solutions(row.get("incorrect_solutions"), "incorrect_solutions")
    extra = {"solutions_by_language": other, "incorrect_solutions_by_language": other_incorrect}
    out: dict[str, Any] = {
        "id": str(row["name"]),
        "prompt": row["description"],
        "tests": tests,
        "public_tests": public,
        "solutions": solutions,
        "incorrect_solutions": incorrect,
        "meta": meta("codecontests", row, CONSUMED, **{k: v for k, v in extra.items() if v}),
    }
    tl = row.get("time_limit")
    time_limit = None
    if isinstance(tl, dict):
        time_limit = float(tl.get("seconds") or 0) + float(tl.get("nanos") or 0) / 1e9
    elif isinstance(tl, (int, float)) and not isinstance(tl, bool):
        time_limit = float(tl)
    if time_limit:
        out["time_limit"] = time_limit
    mem = row.get("memory_limit_bytes")
    if mem:
        out["memory_limit_mb"] = max(1, int(mem) // (1 << 20))
    return out
