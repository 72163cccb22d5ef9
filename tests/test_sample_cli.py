"""`spo sample` on the command line: records on stdout (or -o), people on stderr, options, errors."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from typer.testing import CliRunner

from spo_cli.cli import app
from spo_cli.commands.sample import _unescape
from spo_cli.schema import validate_trajectory
from spo_cli.streams import read_records, write_records
from tests.tinymodel_util import build_tiny_model, one_thread  # noqa: F401 (autouse fixture)

PROBLEMS = [
    {"id": "add", "prompt": "Add two numbers.", "tests": [{"input": "1 2\n", "output": "3\n"}]},
    {"id": "rev", "prompt": "Reverse a string.", "tests": [{"input": "ab\n", "output": "ba\n"}]},
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny") / "model"))


@pytest.fixture()
def problems_file(tmp_path):
    p = tmp_path / "problems.jsonl"
    write_records(p, PROBLEMS)
    return str(p)


def run(*args, input=None):
    return CliRunner().invoke(app, ["sample", *args], input=input)


def lines(out: str) -> list[dict]:
    return [orjson.loads(l) for l in out.splitlines()]


def test_records_on_stdout_summary_on_stderr(model_dir, problems_file):
    r = run("-m", model_dir, "-p", problems_file, "-n", "2", "--max-new-tokens", "5", "--seed", "3")
    assert r.exit_code == 0, r.stderr
    recs = lines(r.stdout)
    assert [(x["problem_id"], x["sampler"]["index"]) for x in recs] == [("add", 0), ("add", 1), ("rev", 0), ("rev", 1)]
    for x in recs:
        validate_trajectory(x)
        assert x["source"] == "online" and x["policy_version"] == 0
        assert x["sampler"]["seed"] == 3 and x["sampler"]["temperature"] == 1.0 and x["sampler"]["model"] == model_dir
        assert len(x["response_ids"]) == len(x["logprobs"]) <= 5
    assert "4 trajectories for 2 problems" in r.stderr


def test_output_file_and_determinism(model_dir, problems_file, tmp_path):
    out = tmp_path / "traj.jsonl.zst"
    args = ["-m", model_dir, "-p", problems_file, "-n", "3", "--max-new-tokens", "6",
            "--temperature-range", "0.2,1.2", "--top-p", "0.9", "--ref", "--policy-version", "4"]
    r = run(*args, "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert out.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd by name
    a = list(read_records(str(out), "trajectory"))
    b = lines(run(*args).stdout)
    assert [(x["id"], x["response_ids"], x["logprobs"]) for x in a] == [(x["id"], x["response_ids"], x["logprobs"]) for x in b]
    assert all(x["source"] == "ref" and x["policy_version"] == 4 for x in a)
    assert all(0.2 <= x["sampler"]["temperature"] <= 1.2 for x in a)


def test_stdin_other_layouts_template_and_system(model_dir, tmp_path):
    cc = {"name": "cc/1", "description": "Print the sum.", "public_tests": {"input": ["1 2\n"], "output": ["3\n"]}}
    tpl = tmp_path / "tpl.txt"
    tpl.write_text("Problem {problem_id}:\n{prompt}\nSolution in Python:\n")
    r = run("-m", model_dir, "--max-new-tokens", "3", "--template", str(tpl), "--system", "Be brief.",
            input=orjson.dumps(cc).decode() + "\n")
    assert r.exit_code == 0, r.stderr
    (x,) = lines(r.stdout)
    assert x["problem_id"] == "cc/1"
    assert x["prompt"] == "Be brief.\n\nProblem cc/1:\nPrint the sum.\nSolution in Python:\n"


@pytest.mark.parametrize("args,msg", [
    (["--temperature", "0.5", "--temperature-range", "0.1,1"], "not both"),
    (["--temperature-range", "abc"], "LO,HI"),
    (["--top-p", "0"], "top_p"),
    (["-n", "0"], "n must be"),
    (["--backend", "tpu"], "hf or vllm"),
])
def test_usage_errors_exit_2(model_dir, problems_file, args, msg):
    r = run("-m", model_dir, "-p", problems_file, *args)
    assert r.exit_code == 2 and msg in r.stderr and r.stdout == ""


def test_bad_input_exit_2(model_dir, tmp_path, problems_file):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(orjson.dumps(PROBLEMS[0]).decode() + "\n{\"id\": \n")
    r = run("-m", model_dir, "-p", str(bad), "--max-new-tokens", "2")
    assert r.exit_code == 2 and f"{bad}:2" in r.stderr
    # The problem read before the bad line is still sampled and written, then exit 2.
    assert [x["problem_id"] for x in lines(r.stdout)] == ["add"]
    r = run("-m", str(tmp_path / "nope"), "-p", problems_file)
    assert r.exit_code == 2 and "not a model directory" in r.stderr
    tpl = tmp_path / "t.txt"
    tpl.write_text("no placeholder")
    r = run("-m", model_dir, "-p", problems_file, "--template", str(tpl))
    assert r.exit_code == 2 and "{prompt}" in r.stderr


def test_unescape_stop_strings():
    assert _unescape(r"\n```") == "\n```"
    assert _unescape(r"a\tb\\n") == "a\tb\\n"
    assert _unescape("plain") == "plain"


def test_pipe_gets_only_jsonl(model_dir, problems_file):
    # A real process: stdout carries the records and nothing else, even with progress forced on.
    r = subprocess.run([sys.executable, "-m", "spo_cli", "sample", "-m", model_dir, "-p", problems_file,
                        "--max-new-tokens", "3", "--stop", r"\n", "--threads", "1"],
                       capture_output=True, env={**os.environ, "SPO_PROGRESS": "1"})
    assert r.returncode == 0, r.stderr.decode()
    assert len([orjson.loads(l) for l in r.stdout.splitlines()]) == 2
    assert b"spo sample:" in r.stderr
