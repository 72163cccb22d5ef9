"""ppo.py: the PPO baseline's pieces against plain loops over tokens, gradients, extreme inputs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spo_cli.core.ppo import (
    gae,
    importance_weights,
    kl_penalized_rewards,
    last_token_mask,
    masked_whiten,
    ppo_policy_loss,
    ppo_value_loss,
)
from tests.tinymodel_util import one_thread  # noqa: F401 (autouse fixture: one torch thread)

F64 = torch.float64


def rows(seed: int, b: int = 6, t: int = 9):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(b, t, generator=g) < 0.6
    mask[0] = False
    mask[1] = True
    mask[2] = torch.arange(t) >= 4  # left-padded
    def lp():
        return -3 * torch.rand(b, t, generator=g, dtype=F64)
    return g, mask, lp(), lp(), lp(), torch.rand(b, generator=g, dtype=F64)


def positions(mask_row) -> list[int]:
    return [t for t, m in enumerate(mask_row.tolist()) if m]


@pytest.mark.parametrize("seed", range(3))
def test_kl_rewards_and_gae_match_a_loop(seed):
    beta, gamma, lam = 0.2, 0.97, 0.9
    g, mask, old, ref, _, reward = rows(seed)
    values = torch.randn(mask.shape, generator=g, dtype=F64)
    r = kl_penalized_rewards(reward, old, ref, mask, beta)
    adv, ret = gae(r, values, mask, gamma, lam)
    for i in range(mask.shape[0]):
        pos = positions(mask[i])
        want_r = {t: -beta * (old[i, t].item() - ref[i, t].item()) for t in pos}
        if pos:
            want_r[pos[-1]] += reward[i].item()
        a_next, v_next = 0.0, 0.0
        want_a = {}
        for t in reversed(pos):  # textbook GAE over the response tokens only
            delta = want_r[t] + gamma * v_next - values[i, t].item()
            a_next = delta + gamma * lam * a_next
            v_next = values[i, t].item()
            want_a[t] = a_next
        for t in range(mask.shape[1]):
            assert r[i, t].item() == pytest.approx(want_r.get(t, 0.0), abs=1e-12)
            assert adv[i, t].item() == pytest.approx(want_a.get(t, 0.0), abs=1e-12)
            want_ret = want_a[t] + values[i, t].item() if t in want_a else 0.0
            assert ret[i, t].item() == pytest.approx(want_ret, abs=1e-12)


def test_gae_with_lambda_one_is_the_reward_to_go_minus_value():
    g, mask, old, ref, _, reward = rows(7)
    r = kl_penalized_rewards(reward, old, ref, mask, 0.1)
    values = torch.randn(mask.shape, generator=g, dtype=F64)
    adv, ret = gae(r, values, mask, 1.0, 1.0)
    to_go = r.flip(-1).cumsum(-1).flip(-1)  # padding holds 0 reward
    assert torch.allclose(ret, torch.where(mask, to_go, 0.0))
    assert torch.allclose(adv, torch.where(mask, to_go - values, 0.0))


def test_last_token_mask():
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 0]])
    assert last_token_mask(mask).int().tolist() == [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]


@pytest.mark.parametrize("seed", range(3))
def test_policy_value_losses_whitening_and_weights_match_a_loop(seed):
    eps, max_w = 0.2, 3.0
    g, mask, logp, old, beh, _ = rows(seed)
    adv = torch.randn(mask.shape, generator=g, dtype=F64)
    stale = torch.tensor([True, False, True, True, False, True])
    w = importance_weights(old, beh, mask, stale=stale, max_weight=max_w)
    pl = ppo_policy_loss(logp, old, adv, mask, eps, weights=w)
    values, v_old, ret = (torch.randn(mask.shape, generator=g, dtype=F64) for _ in range(3))
    vl = ppo_value_loss(values, v_old, ret, mask, eps)
    white = masked_whiten(adv, mask)
    tok, pol, val, clipped, kl, seen = 0, 0.0, 0.0, 0, 0.0, []
    for i in range(mask.shape[0]):
        for t in range(mask.shape[1]):
            if not mask[i, t]:
                assert w[i, t] == 1.0 and pl.per_token[i, t] == 0.0 and white[i, t] == 0.0
                continue
            wt = min(math.exp(old[i, t].item() - beh[i, t].item()), max_w) if stale[i] else 1.0
            assert w[i, t].item() == pytest.approx(wt, rel=1e-12)
            rho = math.exp(logp[i, t].item() - old[i, t].item())
            a = adv[i, t].item()
            loss_t = -min(rho * a, min(max(rho, 1 - eps), 1 + eps) * a) * wt
            assert pl.per_token[i, t].item() == pytest.approx(loss_t, rel=1e-12, abs=1e-15)
            v, vo, rr = values[i, t].item(), v_old[i, t].item(), ret[i, t].item()
            vc = vo + min(max(v - vo, -eps), eps)
            val += 0.5 * max((v - rr) ** 2, (vc - rr) ** 2)
            pol += loss_t
            clipped += abs(rho - 1) > eps
            kl += (rho - 1) - math.log(rho)
            tok += 1
            seen.append(a)
    assert pl.loss.item() == pytest.approx(pol / tok, rel=1e-12)
    assert vl.item() == pytest.approx(val / tok, rel=1e-12)
    assert pl.clip_frac.item() == pytest.approx(clipped / tok)
    assert pl.approx_kl.item() == pytest.approx(kl / tok, rel=1e-12)
    mean = sum(seen) / len(seen)
    std = math.sqrt(sum((x - mean) ** 2 for x in seen) / len(seen))
    assert white[mask].tolist() == pytest.approx([(x - mean) / std for x in seen], rel=1e-6)


def test_policy_loss_gradient_is_the_policy_gradient_inside_the_clip_and_zero_outside():
    mask = torch.ones(1, 4, dtype=torch.bool)
    old = torch.zeros(1, 4, dtype=F64)
    logp = torch.tensor([[0.0, 0.5, -0.5, 0.1]], dtype=F64, requires_grad=True)  # rho = 1, e^.5, e^-.5, e^.1
    adv = torch.tensor([[1.0, 1.0, -1.0, -2.0]], dtype=F64)
    pl = ppo_policy_loss(logp, old, adv, mask, clip_eps=0.2)
    (grad,) = torch.autograd.grad(pl.loss, logp)
    # token 0: -A rho / n; token 1 clipped (A > 0, rho > 1.2); token 2 clipped (A < 0, rho < 0.8); token 3 inside
    assert grad[0].tolist() == pytest.approx([-0.25, 0.0, 0.0, 2.0 * math.exp(0.1) / 4])


def test_gradcheck_policy_and_value_losses():
    g, mask, logp, old, _, _ = rows(5)
    adv = torch.randn(mask.shape, generator=g, dtype=F64)
    # keep every ratio strictly inside or outside the clip region (the kink is not differentiable)
    x = (old + 0.05 * torch.randn(mask.shape, generator=g, dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda lp: ppo_policy_loss(lp, old, adv, mask, 0.2).loss, (x,))
    values = torch.randn(mask.shape, generator=g, dtype=F64)
    v_old = values + 0.05 * torch.randn(mask.shape, generator=g, dtype=F64)
    ret = torch.randn(mask.shape, generator=g, dtype=F64)
    v = values.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda vv: ppo_value_loss(vv, v_old, ret, mask, 0.2), (v,))


logprob = st.one_of(st.floats(-1e-7, 0.0), st.floats(-30.0, 0.0), st.floats(-1e4, -1e3))


@settings(max_examples=50, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), b=st.integers(1, 3), t=st.integers(1, 6), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_no_nan_or_inf_on_extreme_inputs(data, b, t, dtype):
    def lp():
        return torch.tensor(data.draw(st.lists(logprob, min_size=b * t, max_size=b * t)), dtype=dtype).view(b, t)

    logp, old, ref, beh = lp(), lp(), lp(), lp()
    kind = data.draw(st.sampled_from(["empty", "full", "random"]))
    mask = {"empty": torch.zeros(b, t, dtype=torch.bool), "full": torch.ones(b, t, dtype=torch.bool)}.get(kind)
    if mask is None:
        mask = torch.tensor(data.draw(st.lists(st.booleans(), min_size=b * t, max_size=b * t))).view(b, t)
    reward = torch.tensor(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=b, max_size=b)), dtype=dtype)
    r = kl_penalized_rewards(reward, old, ref, mask, data.draw(st.sampled_from([1e-3, 0.1, 10.0])))
    adv, ret = gae(r, torch.zeros_like(r), mask, 1.0, data.draw(st.sampled_from([0.0, 0.95, 1.0])))
    adv = masked_whiten(adv, mask)
    w = importance_weights(old, beh, mask)
    leaf = logp.clone().requires_grad_()
    pl = ppo_policy_loss(leaf, old, adv, mask, 0.2, weights=w)
    vals = torch.zeros_like(r, requires_grad=True)
    vl = ppo_value_loss(vals, torch.zeros_like(r), ret, mask)
    grads = torch.autograd.grad(pl.loss + vl, (leaf, vals))
    for x in (r, adv, ret, w, pl.loss, pl.clip_frac, pl.approx_kl, vl, *grads):
        assert torch.isfinite(x).all()
