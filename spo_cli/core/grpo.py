"""The GRPO and RFT baselines (docs/math.md §12, §13): group-relative advantages, the k3 KL
estimate, token-level aggregation, and rejection-sampling fine-tuning's NLL.

Same padded layout as spo.py and ppo.py: (B, T) tensors with a response `mask` of any layout.
Typical use in a trainer (the policy loss is ppo.ppo_policy_loss: GRPO is PPO's clipped surrogate
with a per-sequence advantage in place of GAE, and no value model):

    adv = group_advantages(reward, group_ids(problem_ids), scale="group")      # (B,)
    pl = ppo_policy_loss(logp, logp_old, adv[:, None].expand_as(mask), mask, clip_eps=0.2)
    per_token = pl.per_token + kl_coef * k3_kl(logp, ref_logp, mask)           # (B, T)
    loss = per_token.sum() / n_tokens_of_the_step                              # DAPO / TRL's default

Choices (the variant is TRL's GRPOTrainer with its defaults, so that the baseline is the one users
run; docs/math.md §12 says why):
- A group is the samples of one prompt in a step (all rows with the same problem id); groups may
  differ in size (judge errors drop rows; a prompt drawn twice in a step forms one larger group).
- A_i = (r_i - mean_group r) / (std + 1e-4) with the unbiased std of the group ("group", TRL's
  default scale_rewards), of the whole step's rewards ("batch"), or no division ("none", Dr. GRPO).
  A group of one has advantage 0.
- The k3 estimate of KL(pi_theta || pi_ref) per token: exp(d) - d - 1 with d = log pi_ref - log
  pi_theta (non-negative, unbiased on tokens the policy sampled); TRL's default coefficient is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from spo_cli.core.masked import as_bool
from spo_cli.core.ppo import LOG_RATIO_CLAMP

SCALES = ("group", "batch", "none")
STD_EPS = 1e-4  # TRL's: added to the std before dividing


def group_ids(keys: Sequence[object]) -> Tensor:
    """Consecutive group numbers, in order of first appearance, for per-row keys (e.g. problem ids). -> (B,) long"""
    seen: dict[object, int] = {}
    return torch.tensor([seen.setdefault(k, len(seen)) for k in keys], dtype=torch.long)


def group_advantages(reward: Tensor, groups: Tensor, scale: str = "group") -> Tensor:
    """GRPO's advantage of each sequence: its reward minus its group's mean, over a std   (docs/math.md §12).

    reward: (B,) float, groups: (B,) long group numbers (group_ids) -> (B,) detached.
    scale: "group" (unbiased std within the group), "batch" (unbiased std over all B rewards) or
    "none". A group of one, or one whose rewards are all equal, gets 0.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    r = reward.detach().to(torch.float64)
    g = groups.to(r.device)
    n_groups = int(g.max()) + 1 if g.numel() else 0
    count = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, g, torch.ones_like(r))
    mean = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, g, r) / count
    centred = r - mean[g]
    if scale == "none":
        adv = centred
    elif scale == "group":
        ss = torch.zeros(n_groups, dtype=r.dtype, device=r.device).index_add_(0, g, centred.square())
        std = (ss / (count - 1).clamp(min=1)).sqrt()  # unbiased; 0 for a group of one
        adv = centred / (std[g] + STD_EPS)
    else:
        std = r.std() if r.numel() > 1 else r.new_zeros(())
        adv = centred / (std + STD_EPS)
    return adv.to(reward.dtype if reward.is_floating_point() else torch.float32)


def zero_std_groups(reward: Tensor, groups: Tensor) -> float:
    """The share of groups whose rewards are all equal (they teach GRPO nothing)."""
    if not groups.numel():
        return 0.0
    n_groups = int(groups.max()) + 1
    lo = torch.full((n_groups,), float("inf")).scatter_reduce(0, groups.cpu(), reward.detach().cpu().float(), "amin")
    hi = torch.full((n_groups,), float("-inf")).scatter_reduce(0, groups.cpu(), reward.detach().cpu().float(), "amax")
    return float((lo == hi).float().mean())


def k3_kl(logp: Tensor, ref_logp: Tensor, mask: Tensor) -> Tensor:
    """Per-token k3 estimate of KL(pi_theta || pi_ref): exp(d) - d - 1, d = log pi_ref - log pi_theta.

    (B, T) -> (B, T), >= 0, 0 off the response; the gradient flows into logp only.
    """
    dtype = torch.promote_types(logp.dtype, torch.float32)
    d = (ref_logp.detach().to(dtype) - logp.to(dtype)).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return torch.where(as_bool(mask), torch.expm1(d) - d, 0.0)


def nll_sum(logp: Tensor, mask: Tensor) -> Tensor:
    """RFT: the negative log-likelihood of the response tokens, summed per sequence   (docs/math.md §13).

    logp, mask: (B, T) -> (B,). Dividing the batch's sum by its number of response tokens gives the
    token-mean SFT loss (every token of the kept responses weighs the same).
    """
    dtype = torch.promote_types(logp.dtype, torch.float32)
    return -torch.where(as_bool(mask), logp.to(dtype), 0.0).sum(-1)
