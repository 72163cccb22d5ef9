"""Pivotal Token Search: the bisection against the recursive pseudo-code of docs/math.md §8, and
a synthetic problem with one known pivotal token, searched through the real sampler interface.

The synthetic "policy" is scripted (ScriptedSampler, a spo_cli.sampling Sampler whose backend is a
small state machine over a one-token-per-character tokenizer), so every probability is known:

    response = "x = " D "\\nprint(x * 2)\\n" E           the problem: print 14
    D: "7" with probability 0.2, else one of the 9 other digits          <- the pivotal token
    E: end of sequence with probability 0.9, else "print(0)\\n" first (wrong output)

p(prefix) is 0.2 * 0.9 = 0.18 up to the digit, 0.9 after a "7", and 1 for the whole response.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spo_cli.benchmark.execute import passes, run_trusted
from spo_cli.errors import BadInput
from spo_cli.pts import PivotalSearch, PrefixRollouts, PTSOptions, PTSStats, pivotal_token_search, split_point
from spo_cli.sampling.base import Generation, SampleOptions, Sampler

# --------------------------------------------------------------------------------- the policy

HEAD, BODY, EXTRA = "x = ", "\nprint(x * 2)\n", "print(0)\n"
P_RIGHT, P_STOP = 0.2, 0.9
DIGIT_INDEX = len(HEAD)  # response token 4 is the digit
PROBLEM = {"id": "secret", "prompt": "Print twice the secret number.\n",
           "tests": [{"input": "", "output": "14\n"}]}
P_BEFORE, P_AFTER = P_RIGHT * P_STOP, P_STOP


class ScriptedSampler(Sampler):
    """pi_ref as a state machine over characters; `score` gives its exact log-probs."""

    backend = "scripted"

    def __init__(self, opts: SampleOptions | None = None):
        from tests.tinymodel_util import build_tiny_tokenizer

        tok = build_tiny_tokenizer(vocab_size=259)  # 256 bytes + 3 specials: no merges
        super().__init__(tok, opts or SampleOptions(source="ref"), model_name="scripted")
        self.eos = tok.eos_token_id
        self.calls = 0

    def _step(self, text: str, rng: random.Random | None, forced: str | None = None):
        """(next piece: a character or None for EOS, its log-prob) after response text `text`."""
        if len(text) < len(HEAD):
            return HEAD[len(text)], 0.0
        if len(text) == len(HEAD):
            others = [d for d in "0123456789" if d != "7"]
            d = forced if forced is not None else ("7" if rng.random() < P_RIGHT else rng.choice(others))
            return d, math.log(P_RIGHT if d == "7" else (1 - P_RIGHT) / 9) if d in "0123456789" else -50.0
        body = text[len(HEAD) + 1:]
        if len(body) < len(BODY):
            return BODY[len(body)], 0.0
        rest = body[len(BODY):]
        if rest == "":
            stop = (forced is None and rng.random() < P_STOP) or forced == "<eos>"
            return (None, math.log(P_STOP)) if stop else (EXTRA[0], math.log(1 - P_STOP))
        if len(rest) < len(EXTRA):
            return EXTRA[len(rest)], 0.0
        return None, 0.0

    def _split(self, row_ids):
        base = self.rows([PROBLEM], 1)[0].prompt_ids
        assert list(row_ids[:len(base)]) == base, "a prefix must start with the formatted prompt"
        return self.tokenizer.decode(list(row_ids[len(base):]), skip_special_tokens=True)

    def _generate(self, rows):
        self.calls += 1
        out = []
        for row in rows:
            rng = random.Random(row.seed)
            text = self._split(row.prompt_ids)
            ids, lps, finish = [], [], "length"
            while len(ids) < self.opts.max_new_tokens:
                piece, lp = self._step(text, rng)
                if piece is None:
                    ids.append(self.eos)
                    lps.append(lp)
                    finish = "stop"
                    break
                ids += self.tokenizer(piece, add_special_tokens=False)["input_ids"]
                lps.append(lp)
                text += piece
            out.append(Generation(ids, lps, finish))
        return out

    def score(self, prompt_ids, response_ids):
        text, lps = "", []
        for t in response_ids:
            forced = "<eos>" if t == self.eos else self.tokenizer.decode([t])
            piece, lp = self._step(text, None, forced=forced)
            lps.append(lp if (piece is None) == (t == self.eos) else -50.0)
            text += piece or ""
        return lps


def trusted_judge(trajectories, problems_by_id):
    """Runs our own scripted programs in-process (they are ours, not a model's: no sandbox needed)."""
    memo = {}
    for t in trajectories:
        code = t["response"]
        if code not in memo:
            p = problems_by_id[t["problem_id"]]
            res = run_trusted(code, [x["input"] for x in p["tests"]])
            memo[code] = passes(res, [x["output"] for x in p["tests"]])
        ok = memo[code]
        yield {**t, "reward": 1.0 if ok else 0.0, "verdict": "OK" if ok else "WA"}


@pytest.fixture(scope="module")
def sampler():
    return ScriptedSampler()


@pytest.fixture(scope="module")
def successes(sampler):
    trajs = list(trusted_judge(sampler.sample([PROBLEM], 60), {PROBLEM["id"]: PROBLEM}))
    good = [t for t in trajs if t["reward"] == 1.0]
    assert 3 <= len(good) <= 30  # about 0.18 * 60
    assert all(t["response"] == HEAD + "7" + BODY for t in good)
    return good


def test_scripted_policy_has_the_stated_probabilities(sampler):
    trajs = list(trusted_judge(sampler.sample([PROBLEM], 2000), {PROBLEM["id"]: PROBLEM}))
    p = sum(t["reward"] for t in trajs) / len(trajs)
    assert abs(p - P_BEFORE) < 4 * math.sqrt(P_BEFORE * (1 - P_BEFORE) / 2000)
    # the recorded log-probs are the policy's, and score() reproduces them
    for t in trajs[:50]:
        assert sampler.score(t["prompt_ids"], t["response_ids"]) == pytest.approx(t["logprobs"])


# --------------------------------------------------------------------------------- the search

def search(sampler, trajs, opts, **kw):
    stats = PTSStats()
    rollouts = PrefixRollouts(sampler, temperature=opts.temperature, seed=opts.seed)
    out = list(pivotal_token_search(trajs, {PROBLEM["id"]: PROBLEM}, rollouts, trusted_judge, opts,
                                    stats=stats, **kw))
    return out, stats


def sigma(p, n):
    return math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("split", ["logprob", "token"])
def test_finds_exactly_the_pivotal_token(sampler, successes, seed, split):
    N = 64
    opts = PTSOptions(n_rollouts=N, p_gap=0.3, split=split, budget=2000, p_range=None, seed=seed)
    variants = [successes[0], {**successes[0], "id": "another-trajectory-id"}]  # other seeds
    out, stats = search(sampler, variants, opts)
    assert len(out) == 2 and stats.searched == 2
    for rec in out:
        assert [p["index"] for p in rec["pivotal"]] == [DIGIT_INDEX]  # that token and no other
        piv = rec["pivotal"][0]
        assert piv["token"] == "7" and piv["token_id"] == rec["response_ids"][DIGIT_INDEX]
        assert abs(piv["p_before"] - P_BEFORE) <= 4 * sigma(P_BEFORE, N)
        assert abs(piv["p_after"] - P_AFTER) <= 4 * sigma(P_AFTER, N)
        assert piv["delta"] == pytest.approx(piv["p_after"] - piv["p_before"])
        # every estimated boundary is an mc target, with p_hat near the truth on its side
        T = len(rec["response_ids"])
        ks = [k for k, _, _ in rec["mc"]]
        assert ks == sorted(ks) and 0 in ks and DIGIT_INDEX in ks and DIGIT_INDEX + 1 in ks and T not in ks
        for k, p, n in rec["mc"]:
            truth = P_BEFORE if k <= DIGIT_INDEX else P_AFTER
            assert n == N and abs(p - truth) <= 4 * sigma(truth, N)
        assert rec["source"] == "pts" and rec["pts"]["source"] == "ref"
        assert rec["pts"]["rollouts"] == N * len(rec["mc"]) and not rec["pts"]["budget_exhausted"]
        if split == "logprob":  # computed for the split, and kept as the record's cache
            assert rec["ref_logprobs"] == pytest.approx(rec["logprobs"])


def test_p0_from_the_value_record_saves_rollouts(sampler, successes):
    opts = PTSOptions(n_rollouts=64, p_gap=0.3, budget=2000, p_range=(0.1, 0.3))
    values = {PROBLEM["id"]: {"problem_id": PROBLEM["id"], "v": -0.5, "p_hat": 0.18, "k": 800, "beta": 0.1}}
    (rec,), _ = search(sampler, successes[:1], opts, values=values)
    assert rec["mc"][0] == [0, 0.18, 800]
    assert [p["index"] for p in rec["pivotal"]] == [DIGIT_INDEX]
    assert rec["pts"]["rollouts"] == 64 * (len(rec["mc"]) - 1)


def test_selection_by_p_range_and_success(sampler, successes):
    trajs = list(trusted_judge(sampler.sample([PROBLEM], 30), {PROBLEM["id"]: PROBLEM}))
    values = {PROBLEM["id"]: {"problem_id": PROBLEM["id"], "v": -0.5, "p_hat": 0.18, "k": 800, "beta": 0.1}}
    opts = PTSOptions(n_rollouts=8, p_gap=0.3, budget=200)
    out, stats = search(sampler, trajs, opts, values=values)  # 0.18 is outside the default [0.2, 0.8]
    assert out == [] and stats.skipped_range == stats.seen - stats.skipped_failed and stats.skipped_failed > 0
    with pytest.raises(BadInput, match="no value .*'secret'"):
        search(sampler, successes[:1], opts, values={})
    out, stats = search(sampler, successes[:1], opts, values={}, missing="skip")
    assert out == [] and stats.skipped_missing_value == 1
    # estimate: p(0) from rollouts, then the range decides (0.18 is out of [0.5, 1])
    out, stats = search(sampler, successes[:1], PTSOptions(n_rollouts=32, p_gap=0.3, p_range=(0.5, 1.0)),
                        values={}, missing="estimate")
    assert out == [] and stats.dropped_after_estimate == 1 and stats.rollouts == 32


def test_budget_is_respected(sampler, successes):
    opts = PTSOptions(n_rollouts=16, p_gap=0.3, budget=40, p_range=None)
    (rec,), stats = search(sampler, successes[:1], opts)
    assert rec["pts"]["rollouts"] <= 40 and rec["pts"]["budget_exhausted"] and stats.budget_exhausted == 1
    assert len(rec["mc"]) == 2 and rec["pivotal"] == []


def test_rollouts_are_kept_as_trajectories(sampler, successes):
    kept = []
    opts = PTSOptions(n_rollouts=8, p_gap=0.3, budget=400, p_range=None)
    (rec,), stats = search(sampler, successes[:1], opts, on_rollouts=kept.extend)
    assert len(kept) == stats.rollouts == rec["pts"]["rollouts"]
    for r in kept:
        k = r["pts_prefix"]["k"]
        assert r["source"] == "pts-rollout" and r["pts_prefix"]["trajectory"] == rec["id"]
        assert r["response_ids"][:k] == rec["response_ids"][:k]
        assert r["response"] == sampler.decode(r["response_ids"]) and r["reward"] in (0.0, 1.0)
        assert len(r["logprobs"]) == len(r["response_ids"])
    # each prefix's p_hat is the success rate of exactly its rollouts
    for k, p, n in rec["mc"]:
        mine = [r for r in kept if r["pts_prefix"]["k"] == k]
        assert len(mine) == n and sum(r["reward"] for r in mine) / n == pytest.approx(p)


def test_same_seed_same_result_whatever_the_batching(sampler, successes):
    trajs = [{**successes[0], "id": f"t{i}"} for i in range(3)]
    a, _ = search(sampler, trajs, PTSOptions(n_rollouts=16, p_gap=0.3, p_range=None, concurrent=1))
    b, _ = search(sampler, trajs, PTSOptions(n_rollouts=16, p_gap=0.3, p_range=None, concurrent=3))
    key = lambda r: r["id"]  # noqa: E731
    assert sorted(([r["mc"], r["pivotal"]] for r in a), key=str) == sorted(([r["mc"], r["pivotal"]] for r in b), key=str)
    assert sorted(map(key, a)) == sorted(map(key, b))


# --------------------------------------------------------------------------------- pure parts

def recursive_pts(p, T, gap, cum):
    """docs/math.md §8, literally (depth-first, memoised p): (visited boundaries, pivotal)."""
    seen, piv = {0, T}, []

    def sub(a, b):
        if b - a <= 1 or abs(p(a) - p(b)) < gap:
            if b - a == 1 and abs(p(a) - p(b)) >= gap:
                piv.append(a)
            return
        m = split_point(a, b, cum)
        seen.add(m)
        sub(a, m)
        sub(m, b)

    if T:
        sub(0, T)
    return seen, sorted(piv)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40), st.floats(0.05, 0.9),
       st.lists(st.floats(0, 5), min_size=40, max_size=40), st.booleans())
def test_breadth_first_search_equals_the_recursive_pseudocode(ps, gap, surprisal, by_logprob):
    T = len(ps) - 1 if len(ps) > 1 else 1
    ps = (ps + [1.0])[:T + 1]
    cum = [0.0]
    for s in surprisal[:T]:
        cum.append(cum[-1] + s)
    cum = cum if by_logprob else None
    s = PivotalSearch(T, p_gap=gap, surprisal_cum=cum)
    s.known(T, ps[T], 0)
    rounds = 0
    while need := s.pending():
        rounds += 1
        for k in need:
            s.known(k, ps[k], 1)
    seen, piv = recursive_pts(lambda k: ps[k], T, gap, cum)
    assert set(s.est) == seen
    assert [k for k, _, _ in s.pivotal] == piv
    if not by_logprob:
        assert rounds <= T.bit_length() + 1  # one round per depth of a balanced bisection


def test_split_point():
    assert split_point(0, 10, None) == 5 and split_point(3, 5, None) == 4
    cum = [0, 0, 0, 0, 4, 4, 4, 4, 4]  # all the surprisal on token 3
    assert split_point(0, 8, cum) == 4  # halves: every m is equally far; the token midpoint wins
    cum = [0, 1, 2, 3, 4, 10, 11, 12, 13]  # heavy token 4
    assert split_point(0, 8, cum) == 4  # 4 vs 9: |4 - 6.5| < |10 - 6.5|
    cum = [0, 0.1, 0.2, 5, 5.1, 5.2]
    assert split_point(0, 5, cum) == 2  # m = 2 and m = 3 are both 2.4 from the target 2.6: tie
    with pytest.raises(ValueError):
        split_point(2, 3, None)


def test_options_are_checked():
    with pytest.raises(ValueError, match="budget"):
        PTSOptions(n_rollouts=10, budget=5)
    with pytest.raises(ValueError, match="split"):
        PTSOptions(split="middle")
    with pytest.raises(ValueError, match="p_gap"):
        PTSOptions(p_gap=0)


def test_a_repeated_trajectory_is_searched_once(sampler, successes):
    opts = PTSOptions(n_rollouts=8, p_gap=0.3, p_range=None)
    s0 = successes[0]
    out, stats = search(sampler, [s0, dict(s0), {**s0, "id": "other"}], opts)
    assert sorted(r["id"] for r in out) == sorted([s0["id"], "other"]) and stats.duplicates == 1
