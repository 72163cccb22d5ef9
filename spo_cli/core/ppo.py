"""The PPO baseline (docs/math.md §9): KL-regularised per-token reward, GAE, clipped losses,
importance weights for stale behaviour policies.

Same padded layout as spo.py: (B, T) tensors with a response `mask` of any layout. Typical use:

    rewards = kl_penalized_rewards(reward, logp_old, ref_logp, mask, beta)   # (B, T)
    adv, ret = gae(rewards, values_old, mask, gamma=1.0, lam=0.95)
    w = importance_weights(logp_old, behaviour_logp, mask, stale=stale_rows)   # (B, T) or None
    pl = ppo_policy_loss(logp, logp_old, masked_whiten(adv, mask), mask, clip_eps=0.2, weights=w)
    vl = ppo_value_loss(values, values_old, ret, mask, clip_eps=0.2)
    (pl.loss + vf_coef * vl).backward()

Choices (the paper names the pieces, not these details):
- The task reward is used as the judge writes it ([0, 1], no shift): with a value model a
  constant shift changes nothing but the value targets.
- GAE runs over response tokens only; padding between or after them is skipped (the recursion
  carries through it), and the value after the last response token is 0 (terminal).
- Importance weights are per token, pi_now(x_t|x_<t) / pi_behaviour(x_t|x_<t) from the
  log-probs the workers record, optionally truncated at `max_weight`, applied only to the rows
  flagged stale (more than one policy version behind); they multiply the clipped per-token loss
  (the decoupled PPO of Hilton et al. 2021: clip against pi_old, correct pi_old vs behaviour).
- Losses average over all response tokens of the batch (token mean), like cleanrl.
- Log-ratios are clamped to +-20 before exp (a numerical guard; exp(20) ~ 5e8), so no inf or
  NaN leaves a loss even for wildly different policies.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spo_cli.core.masked import as_bool, token_mean

LOG_RATIO_CLAMP = 20.0


def last_token_mask(mask: Tensor) -> Tensor:
    """True at the last response token of each row (no True in an empty row). (B, T) -> (B, T) bool"""
    m = as_bool(mask)
    count = m.long().cumsum(-1)  # (B, T)
    return m & (count == count[:, -1:]) if m.shape[-1] else m


def kl_penalized_rewards(reward: Tensor, logp_old: Tensor, ref_logp: Tensor, mask: Tensor, beta: float) -> Tensor:
    """Per-token reward r_t = -beta log(pi_old/pi_ref)(x_t), plus the task reward at the last token.

    reward: (B,) judge reward; logp_old, ref_logp, mask: (B, T) -> (B, T), 0 off the response.
    A row without response tokens gets no reward (there is no token to credit).   (docs/math.md §9)
    """
    m = as_bool(mask)
    dtype = torch.promote_types(logp_old.dtype, torch.float32)
    kl = -beta * (logp_old.to(dtype) - ref_logp.to(dtype))  # (B, T)
    r = torch.where(m, kl, kl.new_zeros(()))
    return (r + torch.where(last_token_mask(m), reward.to(dtype).unsqueeze(-1), r.new_zeros(()))).detach()


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) over the response tokens.

    delta_t = r_t + gamma V_{t'} - V_t with t' the next response position (V = 0 after the last),
    A_t = delta_t + gamma lam A_{t'}. rewards, values (value of the state before token t), mask:
    (B, T) -> (advantages, returns = advantages + values), both (B, T), detached, 0 off the response.
    The recursion runs backwards over T (one vectorised step per position, over the whole batch).
    """
    m = as_bool(mask)
    r, v = rewards.detach(), values.detach().to(rewards.dtype)
    adv = torch.zeros_like(r)
    next_v = r.new_zeros(r.shape[0])  # (B,) value of the next response state
    next_a = r.new_zeros(r.shape[0])  # (B,) advantage of the next response token
    for t in range(r.shape[-1] - 1, -1, -1):
        delta = r[:, t] + gamma * next_v - v[:, t]
        a_t = delta + gamma * lam * next_a
        mt = m[:, t]
        adv[:, t] = torch.where(mt, a_t, 0.0)
        next_v = torch.where(mt, v[:, t], next_v)
        next_a = torch.where(mt, a_t, next_a)
    returns = torch.where(m, adv + v, 0.0)
    return adv, returns


def masked_whiten(x: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """(x - mean) / std over the response tokens of the whole batch; 0 off the response. (B, T)"""
    m = as_bool(mask)
    n = m.sum().clamp(min=1)
    mean = torch.where(m, x, 0.0).sum() / n
    var = torch.where(m, (x - mean).square(), 0.0).sum() / n
    return torch.where(m, (x - mean) * torch.rsqrt(var + eps), 0.0)


def importance_weights(
    logp_now: Tensor,
    logp_behaviour: Tensor,
    mask: Tensor,
    stale: Tensor | None = None,
    max_weight: float | None = None,
) -> Tensor:
    """Per-token weight pi_now(x_t|x_<t) / pi_behaviour(x_t|x_<t) for stale rollouts   (docs/math.md §9).

    logp_now: the learner's current log-probs (no gradient), logp_behaviour: those the workers
    recorded, mask: (B, T). stale: optional (B,) bool, rows more than one policy version behind;
    other rows get weight 1. max_weight: optional truncation. -> (B, T), detached, 1 off the response.
    """
    m = as_bool(mask)
    if stale is not None:
        m = m & as_bool(stale).unsqueeze(-1)
    log_w = (logp_now.detach() - logp_behaviour.detach()).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    w = log_w.exp()
    if max_weight is not None:
        w = w.clamp(max=max_weight)
    return torch.where(m, w, 1.0)


class PolicyLoss(NamedTuple):
    loss: Tensor  # () token mean of per_token
    per_token: Tensor  # (B, T) weighted clipped surrogate loss, 0 off the response
    clip_frac: Tensor  # () fraction of response tokens whose ratio was clipped
    approx_kl: Tensor  # () token mean of (rho - 1) - log rho, an estimate of KL(pi_old || pi_theta)


def ppo_policy_loss(
    logp: Tensor,
    logp_old: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_eps: float = 0.2,
    weights: Tensor | None = None,
) -> PolicyLoss:
    """Clipped surrogate: -min(rho A, clip(rho, 1-eps, 1+eps) A), rho = pi_theta/pi_old (Schulman et al. 2017).

    All (B, T); `weights` (B, T) multiplies each token's loss (importance weights, see
    `importance_weights`). Advantages and weights are treated as constants.
    """
    m = as_bool(mask)
    dtype = torch.promote_types(logp.dtype, torch.float32)
    log_rho = (logp.to(dtype) - logp_old.to(dtype).detach()).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    rho = log_rho.exp()
    a = advantages.detach().to(dtype)
    surrogate = torch.minimum(rho * a, rho.clamp(1.0 - clip_eps, 1.0 + clip_eps) * a)
    per_token = -surrogate
    if weights is not None:
        per_token = per_token * weights.detach().to(dtype)
    per_token = torch.where(m, per_token, 0.0)
    with torch.no_grad():
        clipped = ((rho - 1.0).abs() > clip_eps) & m
        clip_frac = clipped.sum() / m.sum().clamp(min=1)
        approx_kl = token_mean((rho - 1.0) - log_rho, m)
    return PolicyLoss(token_mean(per_token, m), per_token, clip_frac, approx_kl)


def ppo_value_loss(values: Tensor, values_old: Tensor, returns: Tensor, mask: Tensor, clip_eps: float = 0.2) -> Tensor:
    """Clipped value loss: 0.5 max((V - R)^2, (V_old + clip(V - V_old, +-eps) - R)^2), token mean.

    All (B, T); the gradient flows into `values` only.
    """
    m = as_bool(mask)
    v_old, ret = values_old.detach(), returns.detach()
    v_clipped = v_old + (values - v_old).clamp(-clip_eps, clip_eps)
    per_token = 0.5 * torch.maximum((values - ret).square(), (v_clipped - ret).square())
    return token_mean(per_token, m)
