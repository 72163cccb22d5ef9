"""spo_cli.judge.outcome: the one answer to "is this record judged / a judge error / a success",
and the callers that must give the same answer (estimate-v, eval, PTS, the offline stream)."""

from __future__ import annotations

import doctest
import importlib
import itertools
import random
from collections import Counter

import numpy as np
import pytest

from spo_cli.errors import BadInput
from spo_cli.judge.outcome import (
    FAILED,
    JUDGE_ERROR,
    OUTCOMES,
    SUCCEEDED,
    UNJUDGED,
    is_success,
    is_usable,
    judged_reward,
    outcome,
)

# the module itself: spo_cli.judge's lazy attribute `outcome` is the function of that name
oc = importlib.import_module("spo_cli.judge.outcome")


def test_doctests():
    assert doctest.testmod(oc).failed == 0


@pytest.mark.parametrize("reward, verdict, want", [
    (1.0, "OK", SUCCEEDED),
    (1, "OK", SUCCEEDED),
    (1.0 - 1e-12, "OK", SUCCEEDED),  # a partial reward summed from fractions
    (0.999, "WA", FAILED),
    (0.0, "WA", FAILED),
    (0, "TLE", FAILED),
    (0.5, "WA", FAILED),  # --partial: half the tests passed
    (None, "JE", JUDGE_ERROR),
    (None, "WA", JUDGE_ERROR),  # any verdict with a null reward: the judge could not score it
    (None, None, UNJUDGED),
])
def test_outcome_of_each_kind(reward, verdict, want):
    rec = {"id": "t", "problem_id": "p", "reward": reward, "verdict": verdict}
    assert outcome(rec) == want
    assert is_usable(rec) == (want in (SUCCEEDED, FAILED))
    if want == UNJUDGED:
        with pytest.raises(BadInput, match="'p'.*not judged"):
            judged_reward(rec)
    else:
        assert judged_reward(rec) == reward


def test_missing_fields_are_unjudged_and_the_message_names_the_record():
    assert outcome({}) == UNJUDGED and not is_usable({})
    with pytest.raises(BadInput, match=r"trajectory 7 \(id 'x', problem 'q'\) is not judged.*spo judge"):
        judged_reward({"id": "x", "problem_id": "q"}, 7)
    with pytest.raises(BadInput, match=r"trajectory 'x' \(problem 'q'\) is not judged"):
        judged_reward({"id": "x", "problem_id": "q", "reward": None, "verdict": None})


def test_is_success_is_elementwise_on_arrays():
    rng = np.random.default_rng(0)
    r = np.concatenate([rng.uniform(0, 1, 50), np.ones(5), np.full(3, 1 - 1e-12)])  # (58,)
    got = is_success(r)
    assert got.dtype == bool and got.tolist() == [is_success(float(x)) for x in r]
    assert got.sum() == 8


def _records(seed: int, n: int = 300) -> list[dict]:
    """Seeded trajectories of every outcome over a few problems."""
    rng = random.Random(seed)
    kinds = [(1.0, "OK"), (0.0, "WA"), (0.0, "TLE"), (None, "JE"), (0.5, "WA"), (1 - 1e-12, "OK")]
    out = []
    for i in range(n):
        reward, verdict = rng.choice(kinds)
        out.append({"id": f"t{i}", "problem_id": f"p{rng.randrange(5)}", "source": "sample",
                    "reward": reward, "verdict": verdict})
    return out


@pytest.mark.parametrize("seed", range(3))
def test_eval_and_estimate_v_count_what_outcome_says(seed):
    """pass@k's (n, c), estimate-v's K and p_hat, and both judge-error counts agree with outcome()."""
    from spo_cli.evaluate import count_correct, evaluate_trajectories
    from spo_cli.values import EstimateStats, estimate_values

    recs = _records(seed)
    want: dict[str, list[int]] = {}
    for t in recs:
        o = outcome(t)
        if o in (SUCCEEDED, FAILED):
            nc = want.setdefault(t["problem_id"], [0, 0])
            nc[0] += 1
            nc[1] += o == SUCCEEDED
    n_je = sum(outcome(t) == JUDGE_ERROR for t in recs)
    stats: Counter = Counter()
    assert count_correct(recs, stats=stats) == {p: tuple(v) for p, v in want.items()}
    assert stats["judge_errors"] == n_je
    report = evaluate_trajectories(recs, ks=(1,), group_by="none")
    assert report["judge_errors"] == n_je
    assert {r["problem_id"]: (r["n"], r["c"]) for r in report["models"][0]["per_problem"]} == \
        {p: tuple(v) for p, v in want.items()}
    est = EstimateStats()
    values = {v["problem_id"]: v for v in estimate_values(recs, beta=0.5, stats=est)}
    assert est.judge_errors == n_je and est.trajectories == sum(n for n, _ in want.values())
    for pid, (n, c) in want.items():
        assert values[pid]["k"] == n and values[pid]["p_hat"] == pytest.approx(c / n)


def test_an_unjudged_record_is_bad_input_for_every_reader_of_outcomes():
    from spo_cli.evaluate import count_correct, evaluate_trajectories
    from spo_cli.values import estimate_values

    recs = _records(0, 20) + [{"id": "u", "problem_id": "p0", "reward": None, "verdict": None}]
    for read in (count_correct, evaluate_trajectories, lambda r: list(estimate_values(r, beta=0.5))):
        with pytest.raises(BadInput, match=r"trajectory 21 \(id 'u', problem 'p0'\) is not judged"):
            read(recs)


def test_the_offline_stream_keeps_exactly_the_usable_records(tmp_path):
    from spo_cli.streams import write_records
    from spo_cli.train.data import OfflineStream

    recs = [{**t, "prompt": "x", "response": "y"} for t in _records(1, 60)]
    recs += [{"id": f"u{i}", "problem_id": "p0", "prompt": "x", "response": "y", "source": "sample",
              "reward": None, "verdict": None} for i in range(4)]
    path = tmp_path / "c.jsonl"
    write_records(path, recs)
    stream = OfflineStream([str(path)], seed=0, buffer=8)
    taken = stream.take(sum(map(is_usable, recs)))
    assert sorted(t["id"] for t in taken) == sorted(t["id"] for t in recs if is_usable(t))
    assert stream.unjudged == sum(not is_usable(t) for t in recs)


def test_the_offline_stream_says_when_pts_targets_are_lost_to_dedup(tmp_path, capsys):
    """PTS annotates corpus trajectories (same ids): listed after the corpus, its copies are dropped
    as duplicates, which must not pass in silence; listed first, they are the ones kept."""
    from spo_cli.streams import write_records
    from spo_cli.train.data import OfflineStream

    recs = [{**t, "prompt": "x", "response": "y"} for t in _records(1, 10) if is_usable(t)]
    write_records(tmp_path / "corpus.jsonl", recs)
    write_records(tmp_path / "pts.jsonl", [{**r, "mc": [[0, 0.5, 8]], "source": "pts"} for r in recs[:3]])
    late = OfflineStream([str(tmp_path / "corpus.jsonl"), str(tmp_path / "pts.jsonl")], seed=0, buffer=4)
    assert not any("mc" in t for t in late.take(len(recs)))
    assert "pts.jsonl: 3 trajectories with PTS targets" in capsys.readouterr().err
    first = OfflineStream([str(tmp_path / "pts.jsonl"), str(tmp_path / "corpus.jsonl")], seed=0, buffer=4)
    assert sum("mc" in t for t in first.take(len(recs))) == 3
    assert "PTS targets" not in capsys.readouterr().err


def test_outcomes_are_exhaustive_and_distinct():
    seen = set()
    for reward, verdict in itertools.product([None, 0.0, 0.5, 1.0], [None, "OK", "WA", "JE"]):
        seen.add(outcome({"reward": reward, "verdict": verdict}))
    assert seen == set(OUTCOMES) and len(OUTCOMES) == 4
