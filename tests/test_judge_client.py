"""spo_cli.judge.client: the memoising Judge (with the real sandbox), its handling of judge errors,
`rollouts` (sample, judge, drop judge errors) and `open_pool`'s one way of failing."""

from __future__ import annotations

import pytest

import spo_cli.judge.client as client
from spo_cli.errors import BadInput, SpoError
from spo_cli.judge.client import Judge, Rollouts, open_pool, rollouts
from spo_cli.judge.runner import JudgeOptions
from spo_cli.judge.sandbox import SandboxUnavailable
from spo_cli.sampling.base import Generation, SampleOptions, Sampler
from spo_cli.schema import new_trajectory

DOUBLE = {"id": "dbl", "prompt": "Read n, print 2n.", "tests": [{"input": "3\n", "output": "6\n"},
                                                                 {"input": "5\n", "output": "10\n"}]}
SQUARE = {"id": "sq", "prompt": "Read n, print n squared.", "tests": [{"input": "4\n", "output": "16\n"}]}
PROBLEMS = {p["id"]: p for p in (DOUBLE, SQUARE)}
GOOD = {"dbl": "print(2 * int(input()))\n", "sq": "print(int(input()) ** 2)\n"}
WRONG = "print(0)\n"
FLAKY = "# the judge fails on this one\nprint(0)\n"


def traj(pid: str, response: str, **kw) -> dict:
    return new_trajectory(problem_id=pid, prompt=PROBLEMS[pid]["prompt"], response=response, **kw)


def test_judge_memoises_and_keeps_input_order(pool):
    trajs = [traj("dbl", GOOD["dbl"]), traj("sq", WRONG), traj("dbl", GOOD["dbl"], source="human"),
             traj("sq", GOOD["sq"]), traj("dbl", WRONG)]
    judge = Judge(2, pool=pool)
    out = list(judge(trajs, PROBLEMS))
    assert [(t["problem_id"], t["response"], t.get("source")) for t in out] == \
        [(t["problem_id"], t["response"], t.get("source")) for t in trajs]  # input order, fields kept
    assert [t["verdict"] for t in out] == ["OK", "WA", "OK", "OK", "WA"]
    assert [t["reward"] for t in out] == [1.0, 0.0, 1.0, 1.0, 0.0]
    # the repeated (problem, response) ran once; the same text for another problem did not count
    assert judge.runs == 4 and judge.memo_hits == 1 and out[2]["judge"]["reused"]
    again = list(judge([traj("sq", GOOD["sq"]), traj("dbl", WRONG)], PROBLEMS))
    assert judge.runs == 4 and judge.memo_hits == 3
    assert [t["verdict"] for t in again] == ["OK", "WA"] and all(t["judge"]["reused"] for t in again)
    # a borrowed pool stays open when the judge closes
    judge.close()
    assert list(Judge(1, pool=pool)([traj("sq", WRONG)], PROBLEMS))[0]["verdict"] == "WA"


def test_a_trajectory_of_an_unknown_problem_is_bad_input(pool):
    with pytest.raises(BadInput, match="trajectory 2 .*'nope' is not among the problems"):
        list(Judge(1, pool=pool)([traj("sq", WRONG), {**traj("sq", WRONG), "problem_id": "nope"}], PROBLEMS))


def fake_judge_stream(calls: list):
    """judge_stream's stand-in: FLAKY gets a judge error (JE, reward null), the rest pass."""
    def judge_stream(trajs, problems_by_id, opts, jobs, pool=None):
        for t in trajs:
            calls.append(t["response"])
            je = t["response"] == FLAKY
            yield {**t, "reward": None if je else 1.0, "verdict": "JE" if je else "OK", "tests_passed": 0,
                   "tests_total": 1, "judge": {"detail": "runner died"} if je else {}}
    return judge_stream


def test_judge_errors_are_not_memoised(monkeypatch):
    calls: list = []
    monkeypatch.setattr(client, "judge_stream", fake_judge_stream(calls))
    judge = Judge(1, pool=object())
    out = list(judge([traj("sq", FLAKY), traj("sq", FLAKY), traj("sq", WRONG)], PROBLEMS))
    assert [t["verdict"] for t in out] == ["JE", "JE", "OK"] and out[1]["reward"] is None
    assert calls == [FLAKY, WRONG]  # a duplicate in one call takes the first's verdict, even JE
    out = list(judge([traj("sq", FLAKY), traj("sq", WRONG)], PROBLEMS))
    assert calls == [FLAKY, WRONG, FLAKY]  # the JE is judged again, the verdict is reused
    assert out[1]["judge"]["reused"] and not out[0]["judge"].get("reused")


class FixedSampler(Sampler):
    """A backend that answers sample k of problem p with responses[p][k] (byte tokens)."""

    backend = "fixed"

    def __init__(self, responses: dict[str, list[str]]):
        from tests.tinymodel_util import build_tiny_tokenizer

        super().__init__(build_tiny_tokenizer(vocab_size=259), SampleOptions(n=2), model_name="fixed")
        self.responses = responses

    def _generate(self, rows):
        out = []
        for r in rows:
            ids = self.tokenizer(self.responses[r.problem["id"]][r.index], add_special_tokens=False)["input_ids"]
            out.append(Generation(ids + [self.tokenizer.eos_token_id], [-0.5] * (len(ids) + 1), "stop"))
        return out


def test_rollouts_sample_judge_and_drop_judge_errors(monkeypatch):
    calls: list = []
    monkeypatch.setattr(client, "judge_stream", fake_judge_stream(calls))
    sampler = FixedSampler({"dbl": [GOOD["dbl"], FLAKY], "sq": [WRONG, GOOD["sq"]]})
    r = rollouts(sampler, [DOUBLE, SQUARE, DOUBLE], Judge(1, pool=object()))
    assert isinstance(r, Rollouts)
    assert [(t["problem_id"], t["sampler"]["index"]) for t in r.judged] == \
        [("dbl", 0), ("dbl", 1), ("sq", 0), ("sq", 1), ("dbl", 0), ("dbl", 1)]  # problem order
    assert [t["response"] for t in r.usable] == [GOOD["dbl"], WRONG, GOOD["sq"], GOOD["dbl"]]
    assert r.judge_errors == 2 and all(t["verdict"] == "JE" for t in r.judged if t not in r.usable)
    assert r.tokens == sum(len(t["response_ids"]) for t in r.judged) and r.sample_s >= 0 and r.judge_s >= 0
    assert len(rollouts(sampler, [SQUARE], Judge(1, pool=object()), n=1).judged) == 1


def test_rollouts_with_the_real_judge(pool):
    sampler = FixedSampler({"dbl": [GOOD["dbl"], WRONG], "sq": [GOOD["sq"], GOOD["sq"]]})
    r = rollouts(sampler, [DOUBLE, SQUARE], Judge(2, pool=pool))
    assert [t["reward"] for t in r.usable] == [1.0, 0.0, 1.0, 1.0] and r.judge_errors == 0
    assert r.judged[3]["judge"]["reused"]  # the same program for the same problem ran once


def test_open_pool_passes_the_options_and_names_why_it_cannot(monkeypatch):
    made = []

    class Pool:
        def __init__(self, size, **kw):
            made.append((size, kw))

    monkeypatch.setattr(client, "SandboxPool", Pool)
    opts = JudgeOptions(python="/usr/bin/python3", unsafe_no_isolation=True, sandbox="bwrap", memory="rlimit")
    assert isinstance(open_pool(opts, 3), Pool)
    assert made == [(3, {"python": "/usr/bin/python3", "unsafe_no_isolation": True, "sandbox": "bwrap",
                         "memory": "rlimit"})]

    def refuse(size, **kw):
        raise SandboxUnavailable("no process isolation works here (pretend). Refusing ...")

    monkeypatch.setattr(client, "SandboxPool", refuse)
    with pytest.raises(SpoError, match=r"^cannot judge: no process isolation works here \(pretend\)") as e:
        open_pool(JudgeOptions())
    assert e.value.exit_code == 1 and not isinstance(e.value, BadInput)
    judge = Judge(1)  # a judge opens its pool on first use, the same way
    with pytest.raises(SpoError, match="cannot judge"):
        list(judge([traj("sq", WRONG)], PROBLEMS))
