"""`spo estimate-v --model`: sample, judge and estimate in one go; equal to the pipe, resumable,
and a kill loses nothing already saved."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import pytest

from spo_cli.streams import read_records, write_records
from spo_cli.values import estimate_problems, estimate_values
from tests.tinymodel_util import build_tiny_model, one_thread  # noqa: F401 (autouse fixture)


def test_end_to_end_equals_the_pipe_and_the_truth():
    from tests.test_pts import P_BEFORE, PROBLEM, ScriptedSampler, trusted_judge

    sampler = ScriptedSampler()
    kept = []
    (e2e,) = estimate_problems([PROBLEM], sampler, trusted_judge, k=400, beta=0.1, on_samples=kept.extend)
    (pipe,) = estimate_values(trusted_judge(sampler.sample([PROBLEM], 400), {PROBLEM["id"]: PROBLEM}), 0.1)
    assert e2e == pipe and len(kept) == 400 and all(t["source"] == "ref" for t in kept)
    assert abs(e2e["p_hat"] - P_BEFORE) < 4 * math.sqrt(P_BEFORE * (1 - P_BEFORE) / 400)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("ev") / "model"))


def problems(n):
    return [{"id": f"p{i:03d}", "prompt": f"Print {i}.", "tests": [{"input": "", "output": f"{i}\n"}]}
            for i in range(n)]


def cli(*args):
    """In-process (the model loads in a moment once torch is imported)."""
    from typer.testing import CliRunner

    from spo_cli.cli import app

    return CliRunner().invoke(app, ["estimate-v", *args])


def test_resume_skips_the_problems_already_done(model_dir, tmp_path):
    probs = tmp_path / "problems.jsonl"
    write_records(probs, problems(3))
    out = tmp_path / "values.jsonl.zst"
    args = ["-m", model_dir, "-p", str(probs), "-k", "2", "--max-new-tokens", "4", "-o", str(out),
            "--jobs", "2"]
    r = cli(*args, "--samples-out", str(tmp_path / "samples"))
    assert r.exit_code == 0, r.stderr
    first = list(read_records(out, "value"))
    assert [v["problem_id"] for v in first] == ["p000", "p001", "p002"]
    assert all(v["k"] == 2 and v["beta"] == 0.1 for v in first)
    assert len(list(read_records(tmp_path / "samples", "trajectory"))) == 6
    write_records(probs, problems(5))
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    assert "resuming, 3 problems already" in r.stderr and "2 new values (5 in all)" in r.stderr
    again = list(read_records(out, "value"))
    assert again[:3] == first and [v["problem_id"] for v in again[3:]] == ["p003", "p004"]
    r = cli(*args)
    assert r.exit_code == 0 and "nothing to do" in r.stderr
    r = cli(*args, "--beta", "0.3")
    assert r.exit_code == 2 and "beta=0.1, k=2" in r.stderr  # no mixing of estimates
    r = cli(*args, "--fresh")
    assert r.exit_code == 0 and "5 new values (5 in all)" in r.stderr


def test_directory_output_grows_by_shards(model_dir, tmp_path):
    probs = tmp_path / "problems.jsonl"
    write_records(probs, problems(4))
    out = tmp_path / "values"
    out.mkdir()
    args = ["-m", model_dir, "-p", str(probs), "-k", "4", "--max-new-tokens", "3", "-o", str(out),
            "--batch-size", "1"]  # 8 sampling batches of 1 = two problems of 4 samples: one shard each
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    assert len(list(out.iterdir())) == 2
    assert sorted(v["problem_id"] for v in read_records(out, "value")) == [f"p{i:03d}" for i in range(4)]
    r = cli(*args)
    assert "nothing to do" in r.stderr and len(list(out.iterdir())) == 2


def test_stdout_streams_values(model_dir, tmp_path):
    import orjson

    probs = tmp_path / "problems.jsonl"
    write_records(probs, problems(2))
    r = cli("-m", model_dir, "-p", str(probs), "-k", "3", "--max-new-tokens", "3", "--beta", "0.5")
    assert r.exit_code == 0, r.stderr
    recs = [orjson.loads(line) for line in r.stdout.splitlines()]
    assert [(v["problem_id"], v["k"], v["beta"], v["v"]) for v in recs] == [("p000", 3, 0.5, -1.0), ("p001", 3, 0.5, -1.0)]


@pytest.mark.slow
def test_a_killed_run_keeps_what_it_finished(model_dir, tmp_path):
    probs = tmp_path / "problems.jsonl"
    write_records(probs, problems(60))
    out = tmp_path / "values.jsonl"
    args = ["-m", model_dir, "-p", str(probs), "-k", "2", "--max-new-tokens", "24", "-o", str(out),
            "--batch-size", "1", "--threads", "1", "--jobs", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "spo_cli", "estimate-v", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("the run ended before it could be killed")
    saved = list(read_records(out, "value"))  # a complete file: the last atomic rewrite
    assert 1 <= len(saved) < 60
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    assert f"resuming, {len(saved)} problems already" in r.stderr
    final = list(read_records(out, "value"))
    assert final[:len(saved)] == saved and sorted(v["problem_id"] for v in final) == [f"p{i:03d}" for i in range(60)]


def test_missing_values_estimated_on_demand(tmp_path):
    from spo_cli.values import load_values, value_estimator, value_record
    from tests.test_pts import P_BEFORE, PROBLEM, ScriptedSampler, trusted_judge

    path = tmp_path / "values.jsonl"
    write_records(path, [value_record("known", [1.0, 0.0], 0.1)])
    est = value_estimator(ScriptedSampler(), trusted_judge, {PROBLEM["id"]: PROBLEM}, k=200, beta=0.1)
    vals = load_values(path, missing="estimate", beta=0.1, estimator=est)
    rec = vals[PROBLEM["id"]]
    assert rec["k"] == 200 and rec["estimated_on_demand"] and abs(rec["p_hat"] - P_BEFORE) < 0.12
    assert vals.estimated == {PROBLEM["id"]} and vals["known"]["k"] == 2
