"""GRPO's group-relative advantages, the k3 KL estimate and RFT's NLL against plain loops."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from spo_cli.core.grpo import group_advantages, group_ids, k3_kl, nll_sum, zero_std_groups


def _loop_advantages(rewards: list[float], keys: list[str], scale: str) -> list[float]:
    out = []
    batch_std = statistics.stdev(rewards) if len(rewards) > 1 else 0.0
    for r, k in zip(rewards, keys):
        group = [x for x, kk in zip(rewards, keys) if kk == k]
        mean = sum(group) / len(group)
        std = statistics.stdev(group) if len(group) > 1 else 0.0
        div = {"group": std + 1e-4, "batch": batch_std + 1e-4, "none": 1.0}[scale]
        out.append((r - mean) / div)
    return out


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_match_a_loop(scale):
    g = torch.Generator().manual_seed(0)
    keys = [f"p{int(i)}" for i in torch.randint(4, (13,), generator=g)]  # groups of unequal size, interleaved
    rewards = torch.randint(2, (13,), generator=g).float()
    rewards[3] = 0.5  # a partial reward
    got = group_advantages(rewards, group_ids(keys), scale)
    want = _loop_advantages(rewards.tolist(), keys, scale)
    assert got.shape == (13,) and got.dtype == torch.float32
    for a, b in zip(got.tolist(), want):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)


def test_degenerate_groups_get_no_advantage():
    keys = ["a", "a", "a", "b", "c", "c"]
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    adv = group_advantages(rewards, group_ids(keys), "group")
    assert adv[:4].tolist() == [0.0, 0.0, 0.0, 0.0]  # all-equal group; a group of one
    assert adv[4] < 0 < adv[5] and math.isclose(float(adv[5]), 0.5 / (math.sqrt(0.5) + 1e-4), rel_tol=1e-6)
    assert zero_std_groups(rewards, group_ids(keys)) == pytest.approx(2 / 3)
    assert group_ids(["x", "y", "x", "z"]).tolist() == [0, 1, 0, 2]
    with pytest.raises(ValueError, match="scale must be one of"):
        group_advantages(rewards, group_ids(keys), "std")


def test_k3_kl_is_nonnegative_zero_at_equality_and_masked():
    g = torch.Generator().manual_seed(1)
    logp = (-torch.rand(3, 5, generator=g) * 3).requires_grad_()
    ref = -torch.rand(3, 5, generator=g) * 3
    mask = torch.tensor([[0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    kl = k3_kl(logp, ref, mask)
    d = ref - logp.detach()
    want = torch.where(mask, d.exp() - d - 1, 0.0)
    assert torch.allclose(kl, want, atol=1e-6) and bool((kl >= 0).all())
    assert k3_kl(ref, ref, mask).abs().max() < 1e-7
    kl.sum().backward()
    assert logp.grad is not None and bool((logp.grad[~mask] == 0).all())
    # its expectation under the policy is KL(pi || ref): check on a categorical distribution
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.2, 0.6])
    exact = float((p * (p / q).log()).sum())
    expected_k3 = float((p * ((q / p) - (q / p).log() - 1)).sum())
    assert math.isclose(exact, expected_k3, rel_tol=1e-6)


def test_nll_sum_is_the_masked_negative_log_likelihood():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -9.0, -0.25]])
    mask = torch.tensor([[False, True, True], [True, False, True]])
    assert nll_sum(logp, mask).tolist() == [5.0, 0.75]
