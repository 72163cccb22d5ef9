"""Monte-Carlo estimators: the soft value of a prompt (docs/math.md §7) and pass@k (section 10).

Plain float64 numpy, so the numbers `spo estimate-v` and `spo eval` report are exact to the last
digit and need no tensor library.

Where this module chooses (the paper is silent):
- Standard errors use the delta method with the unbiased (ddof=1) sample variance. They are NaN
  when they are undefined (fewer than two samples, or fewer than two problems), and 0 when every
  sample agrees (e.g. p_hat = 0 with K = 800): the delta method cannot see the uncertainty of an
  all-failed estimate, so report K and p_hat next to V_hat.
- pass@k with k > n is an error (the unbiased estimator does not exist), not 1.0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike


class Estimate(NamedTuple):
    value: float
    stderr: float


def soft_value(rewards: ArrayLike, beta: float, r_max: float = 1.0) -> float:
    """V_hat(x0) = beta log (1/K) sum_k exp(r_k / beta), r_k = reward_k - r_max (docs/math.md §7).

    `rewards`: (K,) judge rewards of K samples from pi_ref, each in [0, 1]. Computed with
    logsumexp, so it is finite for any beta > 0 (binary: V_hat = -1 when every sample failed).
    Biased low for small K (Jensen).
    """
    r = _rewards(rewards, beta) - r_max  # (K,)
    x = r / beta
    m = x.max()
    return float(beta * (m + math.log(np.mean(np.exp(x - m)))))


def soft_value_stderr(rewards: ArrayLike, beta: float, r_max: float = 1.0) -> float:
    """Delta-method standard error of `soft_value`: beta * sd(w) / (sqrt(K) * mean(w)), w = exp(r/beta).

    Computed as sd(w / mean(w)) so nothing overflows or underflows for small beta. NaN for K < 2.
    """
    r = _rewards(rewards, beta) - r_max  # (K,)
    if r.size < 2:
        return math.nan
    x = r / beta
    m = x.max()
    w = np.exp(x - m)  # (K,) rescaled exp(r/beta), max 1
    w = w / w.mean()
    return float(beta * w.std(ddof=1) / math.sqrt(r.size))


def soft_value_binary(p_hat: ArrayLike, beta: float) -> np.ndarray | float:
    """V_hat = beta log(p_hat + (1 - p_hat) e^{-1/beta}) for a binary reward (success r = 0, failure r = -1).

    Also the Monte-Carlo Q target of a prefix whose continuations succeed with probability p_hat
    (docs/math.md §6, `mc`). Evaluated as beta * logaddexp(log p, log(1-p) - 1/beta): finite for
    every p in [0, 1] and every beta > 0.
    """
    p = np.asarray(p_hat, dtype=np.float64)
    _check_beta(beta)
    if np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
        raise ValueError(f"p_hat must lie in [0, 1], got {p_hat!r}")
    with np.errstate(divide="ignore"):
        v = beta * np.logaddexp(np.log(p), np.log1p(-p) - 1.0 / beta)
    return float(v) if v.ndim == 0 else v


def soft_value_binary_stderr(p_hat: float, k: int, beta: float) -> float:
    """Delta-method standard error of `soft_value_binary` from K binary samples.

    dV/dp = beta (1 - e^{-1/beta}) / (p + (1-p) e^{-1/beta}), sd(p_hat) = sqrt(p(1-p)/(K-1))
    (the ddof=1 variance, so it equals `soft_value_stderr` on the same 0/1 rewards). NaN for K < 2.
    """
    if k < 2:
        return math.nan
    if p_hat in (0.0, 1.0):
        return 0.0  # every sample agreed (see the module note)
    v = soft_value_binary(p_hat, beta)
    # p + (1-p) e^{-1/beta} = exp(v / beta); the numerator's e^{-1/beta} is taken the same way.
    dv_dp = beta * -math.expm1(-1.0 / beta) / math.exp(v / beta)
    return float(dv_dp * math.sqrt(p_hat * (1.0 - p_hat) / (k - 1)))


def pass_at_k(n: ArrayLike, c: ArrayLike, k: int) -> np.ndarray | float:
    """Unbiased pass@k per problem: 1 - C(n-c, k) / C(n, k) (docs/math.md §10).

    Evaluated stably as 1 - prod_{i=n-c+1..n} (1 - k/i), and 1.0 when n - c < k. `n` (samples)
    and `c` (correct) are ints or equal-length arrays; returns a float or a float64 array.
    """
    n_arr, c_arr = np.broadcast_arrays(np.asarray(n), np.asarray(c))
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out = np.empty(n_arr.shape, dtype=np.float64)
    for idx, (ni, ci) in enumerate(zip(n_arr.ravel().tolist(), c_arr.ravel().tolist())):
        if ni != int(ni) or ci != int(ci) or not 0 <= ci <= ni:
            raise ValueError(f"need integers 0 <= c <= n, got n={ni}, c={ci}")
        if k > ni:
            raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={ni}")
        ni, ci = int(ni), int(ci)
        if ni - ci < k:
            out.flat[idx] = 1.0
        else:
            out.flat[idx] = 1.0 - float(np.prod(1.0 - k / np.arange(ni - ci + 1, ni + 1)))
    return float(out) if out.ndim == 0 else out


def pass_at_k_mean(n: ArrayLike, c: ArrayLike, k: int) -> Estimate:
    """Mean pass@k over problems and its standard error across problems (sd / sqrt(P), ddof=1).

    The standard error treats the problems as a sample from a population of problems; it is NaN
    for a single problem.
    """
    per_problem = np.atleast_1d(pass_at_k(n, c, k))  # (P,)
    if per_problem.size == 0:
        raise ValueError("pass@k of an empty set of problems")
    mean = float(per_problem.mean())
    if per_problem.size < 2:
        return Estimate(mean, math.nan)
    return Estimate(mean, float(per_problem.std(ddof=1) / math.sqrt(per_problem.size)))


def _check_beta(beta: float) -> None:
    if not (beta > 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be a positive finite number, got {beta!r}")


def _rewards(rewards: ArrayLike, beta: float) -> np.ndarray:
    _check_beta(beta)
    r = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if r.size == 0:
        raise ValueError("no rewards: the soft value needs at least one sample")
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards must be finite numbers")
    return r
