"""`spo estimate-v` and the Value loader: the estimate against closed forms and an independent
computation, its standard error, streaming memory, missing-value policies, and the CLI as a pipe
stage."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import tracemalloc

import numpy as np
import orjson
import pytest

from spo_cli.core.estimators import soft_value_binary, soft_value_binary_stderr
from spo_cli.errors import BadInput
from spo_cli.schema import new_trajectory, validate_value
from spo_cli.streams import read_records, write_records
from spo_cli.values import (
    EstimateStats,
    MissingValue,
    estimate_values,
    load_values,
    parse_missing_value,
    value_record,
)


def judged(pid: str, reward, i: int = 0, **kw) -> dict:
    t = new_trajectory(problem_id=pid, prompt="p", response=f"r{i}", source="ref", **kw)
    t["reward"] = reward
    t["verdict"] = None if reward is None else ("OK" if reward == 1.0 else "WA")
    return t


def by_pid(recs):
    return {r["problem_id"]: r for r in recs}


# --------------------------------------------------------------------------------- the math

@pytest.mark.parametrize("beta", [0.05, 0.1, 1.0, 10.0])
@pytest.mark.parametrize("c,k", [(0, 7), (1, 10), (13, 40), (40, 40), (399, 800)])
def test_binary_rewards_give_the_closed_form(c, k, beta):
    rewards = [1.0] * c + [0.0] * (k - c)
    random.Random(c * 1000 + k).shuffle(rewards)
    rec = value_record("p", rewards, beta)
    validate_value(rec)
    p = c / k
    assert rec["k"] == k and rec["p_hat"] == pytest.approx(p) and rec["beta"] == beta
    assert rec["v"] == pytest.approx(soft_value_binary(p, beta), rel=1e-12, abs=1e-12)
    assert rec["stderr"] == pytest.approx(soft_value_binary_stderr(p, k, beta), rel=1e-9, abs=1e-12)
    if c == 0:
        assert rec["v"] == pytest.approx(-1.0)  # finite: docs/math.md §7


def test_random_rewards_match_an_independent_computation():
    rng = np.random.default_rng(0)
    trajs, truth = [], {}
    for j in range(12):
        k = int(rng.integers(2, 60))
        rewards = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=k).tolist()
        truth[f"p{j}"] = rewards
        trajs += [judged(f"p{j}", r, i) for i, r in enumerate(rewards)]
    random.Random(1).shuffle(trajs)  # problems interleaved, any order
    for beta in (0.1, 0.7):
        got = by_pid(estimate_values(iter(trajs), beta))
        assert set(got) == set(truth)
        for pid, rewards in truth.items():
            # plain Python, no numpy, no logsumexp trick (beta is large enough not to underflow)
            mean_w = sum(math.exp((r - 1.0) / beta) for r in rewards) / len(rewards)
            v = beta * math.log(mean_w)
            w = [math.exp((r - 1.0) / beta) / mean_w for r in rewards]
            sd = math.sqrt(sum((x - 1.0) ** 2 for x in w) / (len(w) - 1))
            assert got[pid]["v"] == pytest.approx(v, rel=1e-10)
            assert got[pid]["k"] == len(rewards)
            assert got[pid]["p_hat"] == pytest.approx(sum(r == 1.0 for r in rewards) / len(rewards))
            assert got[pid]["stderr"] == pytest.approx(beta * sd / math.sqrt(len(rewards)), rel=1e-9)


def test_small_beta_does_not_underflow():
    rec = value_record("p", [0.0] * 799 + [1.0], 0.001)  # exp(-1000) underflows a naive mean
    assert rec["v"] == pytest.approx(0.001 * math.log(1 / 800), rel=1e-9)


def test_stderr_shrinks_as_one_over_sqrt_k():
    rng = np.random.default_rng(7)
    beta, p = 0.1, 0.3
    scaled = []
    for k in (100, 400, 1600, 6400):
        rec = value_record("p", (rng.random(k) < p).astype(float).tolist(), beta)
        scaled.append(rec["stderr"] * math.sqrt(k))
    # stderr * sqrt(K) is the same constant (the closed form's) for every K
    const = soft_value_binary_stderr(p, 10**9, beta) * math.sqrt(10**9)
    for s in scaled:
        assert s == pytest.approx(const, rel=0.12)
    # and it is calibrated: the spread of V_hat over repeated draws matches the reported stderr
    k = 400
    vs, ses = [], []
    for _ in range(300):
        rec = value_record("p", (rng.random(k) < p).astype(float).tolist(), beta)
        vs.append(rec["v"])
        ses.append(rec["stderr"])
    assert np.std(vs, ddof=1) == pytest.approx(np.mean(ses), rel=0.15)


def test_streaming_memory_does_not_grow_with_trajectories():
    def stream(k, problems=500):
        for i in range(k * problems):
            yield {"problem_id": f"p{i % problems}", "reward": float(i % 3 == 0), "verdict": "OK"}

    def peak(k):
        tracemalloc.start()
        n = 0
        for rec in estimate_values(stream(k), 0.1):
            n += rec["k"]
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert n == 500 * k
        return top

    small, large = peak(4), peak(400)
    # 100x the trajectories of the same 500 problems: the memory of a count per distinct reward
    # per problem, plus one problem's K rewards at a time, not 100x.
    assert large < 2 * small


def test_unjudged_is_an_error_and_judge_errors_are_counted():
    trajs = [judged("a", 1.0, 0), judged("a", 0.0, 1), judged("a", None, 2)]
    with pytest.raises(BadInput, match="problem 'a'.*not judged"):
        list(estimate_values(trajs, 0.1))
    je = judged("a", None, 3)
    je["verdict"] = "JE"
    stats = EstimateStats()
    (rec,) = estimate_values([trajs[0], trajs[1], je], 0.1, stats=stats)
    assert rec["k"] == 2 and stats.judge_errors == 1
    # the same record as the end-to-end path builds: judge_errors on the problem that had them
    assert rec == value_record("a", [1.0, 0.0], 0.1, judge_errors=1) and rec["judge_errors"] == 1
    (clean,) = estimate_values(trajs[:2], 0.1)
    assert "judge_errors" not in clean


def test_source_filter():
    trajs = [judged("a", 1.0, 0), judged("a", 0.0, 1, ), judged("b", 0.0, 2)]
    trajs[1]["source"] = "online"
    stats = EstimateStats()
    got = by_pid(estimate_values(trajs, 0.1, sources=["ref"], stats=stats))
    assert got["a"]["k"] == 1 and got["a"]["p_hat"] == 1.0 and stats.skipped_source == 1


# --------------------------------------------------------------------------------- loading

@pytest.fixture()
def values_file(tmp_path):
    p = tmp_path / "values.jsonl.zst"
    write_records(p, [value_record("a", [1.0, 0.0], 0.1), value_record("b", [0.0, 0.0], 0.1)])
    return p


def test_load_values_and_a_missing_one_names_the_problem(values_file):
    vals = load_values(values_file, beta=0.1)
    assert set(vals) == {"a", "b"} and vals.v("a") == pytest.approx(soft_value_binary(0.5, 0.1))
    with pytest.raises(BadInput, match="no value for problem 'zzz'.*missing-value"):
        vals["zzz"]
    assert "zzz" not in vals


def test_fallback_and_estimate_policies(values_file):
    vals = load_values(values_file, missing="fallback:-0.25", beta=0.1)
    rec = vals["zzz"]
    assert rec["v"] == -0.25 and rec["fallback"] is True and rec["k"] == 0 and "zzz" in vals.fallbacks
    calls = []

    def estimator(pid):
        calls.append(pid)
        return value_record(pid, [1.0, 1.0, 0.0], 0.1)

    vals = load_values(values_file, missing="estimate", beta=0.1, estimator=estimator)
    assert vals.v("new") == pytest.approx(soft_value_binary(2 / 3, 0.1))
    assert vals.v("new") == vals.v("new") and calls == ["new"]  # estimated once, then cached
    with pytest.raises(Exception, match="needs an estimator"):
        load_values(values_file, missing="estimate")


def test_beta_mismatch_and_duplicates_are_refused(values_file, tmp_path):
    with pytest.raises(BadInput, match="beta=0.1, this run uses beta=0.2"):
        load_values(values_file, beta=0.2)
    dup = tmp_path / "dup.jsonl"
    write_records(dup, [value_record("a", [1.0], 0.1), value_record("a", [0.0], 0.1)])
    with pytest.raises(BadInput, match="'a' has two value records"):
        load_values(dup)


@pytest.mark.parametrize("text,want", [
    ("error", MissingValue("error")), (None, MissingValue("error")),
    ("fallback:-0.5", MissingValue("fallback", -0.5)), ("estimate", MissingValue("estimate")),
])
def test_parse_missing_value(text, want):
    assert parse_missing_value(text) == want


@pytest.mark.parametrize("text,msg", [
    ("fallback", "fallback:<v>"), ("fallback:x", "needs a number"), ("fallback:0.5", "<= 0"),
    ("guess", "unknown policy"), ("skip", "not available"),
])
def test_parse_missing_value_errors(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_missing_value(text)


# --------------------------------------------------------------------------------- CLI

def spo(*args, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "-m", "spo_cli", *args], input=stdin,
                          capture_output=True)


def test_cli_pipe_stage():
    trajs = [judged("a", float(i % 4 == 0), i) for i in range(20)] + [judged("b", 0.0, i) for i in range(5)]
    data = b"".join(orjson.dumps(t) + b"\n" for t in trajs)
    r = spo("estimate-v", "--beta", "0.1", stdin=data)
    assert r.returncode == 0, r.stderr
    recs = by_pid(orjson.loads(line) for line in r.stdout.splitlines())
    assert recs["a"]["p_hat"] == 0.25 and recs["a"]["k"] == 20 and recs["b"]["v"] == pytest.approx(-1.0)
    assert recs["a"]["v"] == pytest.approx(soft_value_binary(0.25, 0.1))
    assert b"2 problems from 25 judged trajectories" in r.stderr


def test_cli_unjudged_input_exits_2(tmp_path):
    src = tmp_path / "t.jsonl"
    write_records(src, [judged("a", None, 0)])
    out = tmp_path / "v.jsonl"
    r = spo("estimate-v", str(src), "-o", str(out))
    assert r.returncode == 2 and b"not judged" in r.stderr and r.stdout == b""
    assert not out.exists()


def test_cli_pipe_stage_records_judge_errors_per_problem():
    je = judged("a", None, 9)
    je["verdict"] = "JE"
    trajs = [judged("a", 1.0, 0), judged("a", 0.0, 1), je, judged("b", 0.0, 2)]
    r = spo("estimate-v", stdin=b"".join(orjson.dumps(t) + b"\n" for t in trajs))
    assert r.returncode == 0, r.stderr
    recs = by_pid(orjson.loads(line) for line in r.stdout.splitlines())
    assert recs["a"]["judge_errors"] == 1 and recs["a"]["k"] == 2 and "judge_errors" not in recs["b"]
    assert b"1 trajectories with judge errors" in r.stderr


# --------------------------------------------------------------------------------- resuming


def test_values_output_resumes_a_file_and_refuses_to_mix(tmp_path):
    from spo_cli.estimate_v import ValuesOutput

    out = tmp_path / "values.jsonl.zst"
    probs = [{"id": f"p{i}"} for i in range(4)]
    first = ValuesOutput(out, beta=0.1, k=2)
    assert first.done == set() and first.todo(probs) == probs
    with first:
        first.add(value_record("p0", [1.0, 0.0], 0.1))
        first.save()  # an atomic rewrite: what is saved survives a kill
        assert [v["problem_id"] for v in read_records(out, "value")] == ["p0"]
        first.add(value_record("p1", [0.0, 0.0], 0.1))  # added, not saved: lost on a kill
    again = ValuesOutput(out, beta=0.1, k=2)
    assert again.done == {"p0"} and [p["id"] for p in again.todo(probs)] == ["p1", "p2", "p3"]
    again.add(value_record("p1", [1.0, 1.0], 0.1))
    again.save()
    assert [v["problem_id"] for v in read_records(out, "value")] == ["p0", "p1"]  # the old kept first
    with pytest.raises(BadInput, match=r"beta=0.1, k=2 \(problem 'p0'\).*beta=0.3, k=2.*--fresh"):
        ValuesOutput(out, beta=0.3, k=2)
    with pytest.raises(BadInput, match="beta=0.1, k=2.*k=5"):
        ValuesOutput(out, beta=0.1, k=5)
    fresh = ValuesOutput(out, beta=0.3, k=5, fresh=True)  # starts over: nothing done, file rewritten
    assert fresh.todo(probs) == probs
    fresh.add(value_record("p3", [1.0], 0.3))
    fresh.save()
    assert [v["problem_id"] for v in read_records(out, "value")] == ["p3"]
    with pytest.raises(BadInput, match="'p1' appears twice"):
        again.todo([{"id": "p1"}, {"id": "p1"}])
    out.write_bytes(b"not json\n")
    with pytest.raises(BadInput, match="cannot resume from the existing output.*--fresh"):
        ValuesOutput(out, beta=0.1, k=2)


def test_values_output_grows_a_directory_by_a_shard_per_save(tmp_path, capsysbinary):
    from spo_cli.estimate_v import ValuesOutput

    d = tmp_path / "values"
    d.mkdir()
    out = ValuesOutput(d, beta=0.1, k=1)
    assert out.to_dir
    for batch in (["p0", "p1"], ["p2"]):
        for pid in batch:
            out.add(value_record(pid, [1.0], 0.1))
        out.save()
    out.save()  # nothing new: no empty shard
    assert len(list(d.iterdir())) == 2
    assert ValuesOutput(d, beta=0.1, k=1).done == {"p0", "p1", "p2"}
    with pytest.raises(BadInput, match="--fresh with an output directory that already holds shards"):
        ValuesOutput(d, beta=0.1, k=1, fresh=True)
    # stdout: each record as it is added, nothing to resume from
    with ValuesOutput("-", beta=0.1, k=1) as so:
        so.add(value_record("x", [1.0], 0.1))
        so.save()
    assert [orjson.loads(x)["problem_id"] for x in capsysbinary.readouterr().out.splitlines()] == ["x"]


def test_cli_output_file_is_value_records(tmp_path):
    src = tmp_path / "t.jsonl.zst"
    write_records(src, [judged("a", 1.0, 0), judged("a", 0.0, 1)])
    out = tmp_path / "v.jsonl.gz"
    r = spo("estimate-v", str(src), "-o", str(out), "--beta", "0.5")
    assert r.returncode == 0, r.stderr
    (rec,) = read_records(out, "value")
    assert rec["beta"] == 0.5 and rec["k"] == 2


def test_judge_glue_reuses_repeated_responses_and_names_a_missing_problem():
    from spo_cli.judge.client import Judge

    prob = {"id": "dbl", "prompt": "p", "tests": [{"input": "3\n", "output": "6\n"}]}
    trajs = [new_trajectory(problem_id="dbl", prompt="p", response=r) for r in
             ("print(int(input()) * 2)", "print(5)", "print(int(input()) * 2)")]
    with Judge(jobs=2) as judge:
        out = list(judge(trajs, {"dbl": prob}))
        assert [t["verdict"] for t in out] == ["OK", "WA", "OK"] and [t["reward"] for t in out] == [1.0, 0.0, 1.0]
        assert judge.runs == 2 and judge.memo_hits == 1 and out[2]["judge"]["reused"] is True
        assert [t["id"] for t in out] == [t["id"] for t in trajs]  # input order, fields merged in
        with pytest.raises(BadInput, match="'nope' is not among the problems"):
            list(judge([new_trajectory(problem_id="nope", prompt="p", response="x")], {"dbl": prob}))
