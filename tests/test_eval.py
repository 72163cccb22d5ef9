"""`spo eval`: pass@k against an independent computation, the jackknife standard error, grouping
of judged trajectories, checkpoint steps, the plot, and the command on tiny checkpoints."""

from __future__ import annotations

import json
import math
import random
from itertools import combinations

import orjson
import pytest
from typer.testing import CliRunner

from spo_cli.cli import app
from spo_cli.core.estimators import jackknife_pass_at_k_stderr
from spo_cli.errors import BadInput
from spo_cli.evaluate import (
    checkpoint_step,
    default_plot_path,
    evaluate_models,
    evaluate_trajectories,
    pass_at_k_report,
    plot_report,
)
from spo_cli.schema import new_trajectory
from spo_cli.streams import read_records, write_records
from tests.tinymodel_util import build_tiny_model, one_thread  # noqa: F401 (autouse fixture)


def judged(pid, ok, i, model="m", version=None):
    t = new_trajectory(problem_id=pid, prompt="p", response=f"r{i}", sampler={"model": model},
                       policy_version=version)
    t["reward"], t["verdict"] = (1.0, "OK") if ok else (0.0, "WA")
    return t


def brute_pass_at_k(n, c, k):
    """The probability that a random k-subset of the n samples holds a correct one, by enumeration."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 2, 1), (6, 2, 3), (8, 1, 5), (7, 7, 2), (9, 3, 4)])
def test_pass_at_k_matches_enumeration(n, c, k):
    rep = pass_at_k_report({"p": (n, c)}, [k])
    assert rep["per_problem"][0][f"pass@{k}"]["mean"] == pytest.approx(brute_pass_at_k(n, c, k))


@pytest.mark.parametrize("n,c,k", [(10, 3, 1), (20, 7, 10), (6, 2, 3), (5, 5, 2), (5, 0, 2)])
def test_jackknife_stderr_against_leave_one_out_by_hand(n, c, k):
    samples = [1] * c + [0] * (n - c)
    loo = []
    for i in range(n):
        rest = samples[:i] + samples[i + 1:]
        loo.append(brute_pass_at_k(n - 1, sum(rest), k) if n <= 10 else
                   1 - math.comb(n - 1 - sum(rest), k) / math.comb(n - 1, k))
    mean = sum(loo) / n
    want = math.sqrt((n - 1) / n * sum((x - mean) ** 2 for x in loo))
    assert jackknife_pass_at_k_stderr(n, c, k) == pytest.approx(want, abs=1e-12)
    if k == 1:
        p = c / n
        assert jackknife_pass_at_k_stderr(n, c, 1) == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)))
    assert math.isnan(jackknife_pass_at_k_stderr(3, 1, 3))


def test_report_overall_is_the_mean_over_problems_with_its_stderr():
    counts = {"a": (20, 0), "b": (20, 5), "c": (20, 20), "d": (20, 1)}
    rep = pass_at_k_report(counts, [1, 10])
    per = [c / 20 for _, c in counts.values()]
    m = sum(per) / 4
    sd = math.sqrt(sum((x - m) ** 2 for x in per) / 3)
    assert rep["pass@1"]["mean"] == pytest.approx(m) and rep["pass@1"]["stderr"] == pytest.approx(sd / 2)
    assert rep["problems"] == 4 and rep["samples"] == 80
    single = pass_at_k_report({"a": (4, 1)}, [1])
    assert single["pass@1"]["stderr"] is None  # undefined across one problem: null, not NaN


def test_evaluate_trajectories_groups_and_counts():
    trajs = []
    for v, p_ok in ((100, 0.2), (200, 0.6)):
        for pid in ("a", "b", "c"):
            for i in range(10):
                trajs.append(judged(pid, random.Random(f"{v}{pid}{i}").random() < p_ok, i,
                                    model=f"run/step-{v}", version=v))
    je = judged("a", False, 99, model="run/step-100", version=100)
    je["reward"], je["verdict"] = None, "JE"
    short = judged("z", True, 0, model="run/step-200", version=200)  # 1 sample: no pass@10
    random.Random(0).shuffle(trajs)
    rep = evaluate_trajectories(trajs + [je, short], [1, 10])
    assert [m["step"] for m in rep["models"]] == [100, 200] and rep["judge_errors"] == 1
    m100, m200 = rep["models"]
    want = {pid: sum(t["reward"] for t in trajs if t["problem_id"] == pid and t["policy_version"] == 100)
            for pid in "abc"}
    assert {r["problem_id"]: r["c"] for r in m100["per_problem"]} == want
    assert m200["problems"] == 4 and m200["pass@10"]["problems"] == 3 and m200["pass@1"]["problems"] == 4
    assert next(r for r in m200["per_problem"] if r["problem_id"] == "z")["pass@10"] is None
    unjudged = judged("a", True, 1)
    unjudged["reward"] = unjudged["verdict"] = None
    with pytest.raises(BadInput, match="not judged"):
        evaluate_trajectories([unjudged])


def test_checkpoint_step(tmp_path):
    a = tmp_path / "step-000100"
    a.mkdir()
    assert checkpoint_step(a, 7) == 100
    (a / "spo_checkpoint.json").write_text(json.dumps({"step": 123, "policy_version": 3}))
    assert checkpoint_step(a, 7) == 123  # the file wins over the name
    b = tmp_path / "final"
    b.mkdir()
    assert checkpoint_step(b, 7) == 7
    (b / "spo_checkpoint.json").write_text("{oops")
    with pytest.raises(BadInput, match="spo_checkpoint.json"):
        checkpoint_step(b, 0)
    assert default_plot_path([a, b]) == tmp_path / "pass_at_k.png"
    assert default_plot_path([a]) is None


def test_plot_is_a_png(tmp_path):
    rep = {"ks": [1, 10], "models": [
        {"model": "x", "step": s, "pass@1": {"mean": 0.1 * i, "stderr": 0.01},
         "pass@10": {"mean": 0.2 * i, "stderr": None}} for i, s in enumerate((300, 100, 200))]}
    path = plot_report(rep, tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]  # no temporary file left


def test_evaluate_models_with_a_scripted_policy():
    from tests.test_pts import PROBLEM, ScriptedSampler, trusted_judge

    kept = []
    rep = evaluate_models(["a/step-5", "a/step-9"], [PROBLEM], n=40, ks=[1, 10],
                          sampler_factory=lambda m, o: ScriptedSampler(o), judge=trusted_judge,
                          on_samples=kept.extend)
    assert [m["step"] for m in rep["models"]] == [5, 9]
    assert len(kept) == 80 and all(t["source"] == "eval" and t["sampler"]["temperature"] == 0.4 for t in kept)
    m = rep["models"][0]
    c = sum(t["reward"] for t in kept[:40])
    assert m["per_problem"][0]["n"] == 40 and m["per_problem"][0]["c"] == c
    assert m["pass@1"]["mean"] == pytest.approx(c / 40)
    assert abs(m["pass@1"]["mean"] - 0.18) < 4 * math.sqrt(0.18 * 0.82 / 40)
    with pytest.raises(BadInput, match="pass@10 needs at least 10"):
        evaluate_models(["a"], [PROBLEM], n=5, ks=[1, 10])


# --------------------------------------------------------------------------------- CLI

PROBLEMS = [
    {"id": "add", "prompt": "Add two numbers.", "tests": [{"input": "1 2\n", "output": "3\n"}]},
    {"id": "rev", "prompt": "Reverse a string.", "tests": [{"input": "ab\n", "output": "ba\n"}]},
]


def run(*args):
    return CliRunner().invoke(app, ["eval", *args])


def test_cli_on_judged_trajectories(tmp_path):
    src = tmp_path / "t.jsonl.zst"
    write_records(src, [judged("a", i < 3, i) for i in range(10)] + [judged("b", i < 9, i) for i in range(10)])
    r = run("--trajectories", str(src), "-k", "1,5")
    assert r.exit_code == 0, r.stderr
    rep = orjson.loads(r.stdout)  # exactly one JSON object on stdout
    (m,) = rep["models"]
    assert m["pass@1"]["mean"] == pytest.approx((0.3 + 0.9) / 2) and set(rep["ks"]) == {1, 5}
    assert "pass@k" in r.stderr  # the table, on stderr
    r = run("--trajectories", str(src), "-k", "1,x")
    assert r.exit_code == 2


def test_cli_checkpoints_of_a_run(tmp_path):
    run_dir = tmp_path / "run"
    a = build_tiny_model(run_dir / "step-000010", seed=1)
    b = build_tiny_model(run_dir / "step-000020", seed=2)
    (b / "spo_checkpoint.json").write_text(json.dumps({"step": 25}))
    probs = tmp_path / "problems.jsonl"
    write_records(probs, PROBLEMS)
    samples = tmp_path / "samples.jsonl"
    r = run("--model", str(a), str(b), "-p", str(probs), "-n", "3", "-k", "1,2", "--max-new-tokens", "6",
            "--samples-out", str(samples), "--jobs", "2")
    assert r.exit_code == 0, r.stderr
    rep = orjson.loads(r.stdout)
    assert [m["step"] for m in rep["models"]] == [10, 25] and rep["n"] == 3
    assert rep["plot"] == str(run_dir.resolve() / "pass_at_k.png") and (run_dir / "pass_at_k.png").exists()
    assert rep["sandbox"].startswith("namespaces")
    kept = list(read_records(samples, "trajectory"))
    assert len(kept) == 2 * 2 * 3 and all(t["verdict"] is not None for t in kept)
    for m in rep["models"]:  # random models never pass: 0, with the counts to show for it
        assert m["pass@1"]["mean"] == 0.0 and [p["n"] for p in m["per_problem"]] == [3, 3]
    r = run("--model", str(a), "-p", str(probs), "-n", "3", "-k", "1,10")
    assert r.exit_code == 2 and "n >= 10" in r.stderr
