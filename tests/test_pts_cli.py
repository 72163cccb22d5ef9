"""`spo pts` on the command line with a tiny random model and the real judge: output layout,
rollouts kept as trajectories, selection errors. (The search's correctness: tests/test_pts.py.)"""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from spo_cli.cli import app
from spo_cli.schema import new_trajectory, validate_trajectory
from spo_cli.streams import read_records, write_records
from spo_cli.values import value_record
from tests.tinymodel_util import build_tiny_model, one_thread  # noqa: F401 (autouse fixture)

PROBLEM = {"id": "dbl", "prompt": "Read n, print 2n.",
           "tests": [{"input": "3\n", "output": "6\n"}, {"input": "5\n", "output": "10\n"}]}
GOOD = "n = int(input())\nprint(n * 2)\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pts")
    model = build_tiny_model(d / "model")
    write_records(d / "problems.jsonl", [PROBLEM])
    good = new_trajectory(problem_id="dbl", prompt=PROBLEM["prompt"], response=GOOD, source="human",
                          reward=1.0, verdict="OK")
    bad = new_trajectory(problem_id="dbl", prompt=PROBLEM["prompt"], response="print(1)\n",
                         source="human", reward=0.0, verdict="WA")
    write_records(d / "traj.jsonl", [good, bad])
    write_records(d / "values.jsonl", [value_record("dbl", [1.0, 0.0, 0.0, 1.0], 0.1)])
    write_records(d / "novalues.jsonl", [value_record("other", [1.0], 0.1)])
    return d, str(model)


def run(*args):
    return CliRunner().invoke(app, ["pts", *args])


def test_pts_writes_mc_targets_and_rollouts(files, tmp_path):
    d, model = files
    out, roll = tmp_path / "pts.jsonl.zst", tmp_path / "rollouts"
    r = run(str(d / "traj.jsonl"), "-m", model, "-p", str(d / "problems.jsonl"), "--values",
            str(d / "values.jsonl"), "-n", "3", "--max-new-tokens", "12", "-o", str(out),
            "--rollouts-out", str(roll) + "/", "--jobs", "2")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""  # the data went to the file
    assert "1 trajectories searched (2 read; skipped: 1 failed" in r.stderr and "rollouts in" in r.stderr
    (rec,) = read_records(out, "trajectory")
    validate_trajectory(rec)
    T = len(rec["response_ids"])
    assert rec["source"] == "pts" and rec["pts"]["source"] == "human" and rec["pts"]["retokenized"]
    assert rec["reward"] == 1.0 and rec["response"] == GOOD
    assert len(rec["ref_logprobs"]) == T and rec["logprobs"] is None  # human: no behaviour log-probs
    ks = [k for k, _, _ in rec["mc"]]
    assert ks == sorted(set(ks)) and ks[0] == 0 and all(0 <= k < T for k in ks)
    assert rec["mc"][0] == [0, 0.5, 4]  # p(0) from the value record
    assert all(n == 3 for _, _, n in rec["mc"][1:])
    # a random model never finishes the program: p jumps at a token somewhere (|delta| >= p_gap)
    assert rec["pivotal"] and all(abs(p["delta"]) >= 0.2 for p in rec["pivotal"])
    for p in rec["pivotal"]:
        assert p["token_id"] == rec["response_ids"][p["index"]]
    rolls = list(read_records(roll, "trajectory"))
    assert len(rolls) == rec["pts"]["rollouts"] == 3 * (len(rec["mc"]) - 1)
    for x in rolls:
        assert x["source"] == "pts-rollout" and x["verdict"] is not None
        assert x["judge"]["sandbox"].startswith("namespaces")  # the real, isolated judge
        k = x["pts_prefix"]["k"]
        assert x["response_ids"][:k] == rec["response_ids"][:k] and len(x["response_ids"]) <= max(12, T)


def test_pts_to_stdout_and_selection_errors(files):
    d, model = files
    common = [str(d / "traj.jsonl"), "-m", model, "-p", str(d / "problems.jsonl"), "-n", "2",
              "--max-new-tokens", "6", "--split", "token", "--budget", "4"]
    r = run(*common, "--values", str(d / "novalues.jsonl"))
    assert r.exit_code == 2 and "no value (p_hat) for problem 'dbl'" in r.stderr
    r = run(*common)
    assert r.exit_code == 2 and "--values" in r.stderr
    r = run(*common, "--missing-value", "guess")
    assert r.exit_code == 2 and "unknown policy" in r.stderr
    r = run(*common, "--p-range", "0,1", "--all-trajectories")
    assert r.exit_code == 0, r.stderr
    recs = [orjson.loads(line) for line in r.stdout.splitlines()]
    assert len(recs) == 2 and all(x["pts"]["rollouts"] <= 4 for x in recs)
    assert all("ref_logprobs" not in x for x in recs)  # token split: no reference pass needed
