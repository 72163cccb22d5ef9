"""The learning algorithms of `spo train --algo`: what each needs from the run, and its step.

    ALGORITHMS["spo"]   Soft Policy Optimization: --loss objectives (spo_cli/core/spo.py) against
                        V_hat(x0) from --values; learns from any trajectory, online or offline
    ALGORITHMS["ppo"]   the PPO baseline (spo_cli/core/ppo.py): a value model, GAE on the
                        KL-penalised reward, clipped ratios; fresh online rollouts only

The algorithm is chosen once, when the run is configured (spo_cli/train/setup.py); set-up gives it
what its entry asks for, and the loop calls its `step` on each batch of Examples. Another algorithm
is one more entry: a step function and what it needs.

A step computes the loss on the step's examples in --grad-accum micro-batches, backpropagates it
(gradients averaged over the micro-batches) and returns its metrics; the loop then clips the
gradients and steps the optimiser. Metrics of micro-batches are averaged; `tokens` is a sum.

Where PPO departs from the paper, or chooses where it is silent: on-policy rollouts every step
(interval 1), the behaviour log-probs the sampler recorded serve as pi_old, advantages are whitened
over the batch, and the value model is a copy of the reference model's transformer with a scalar
head (zero-initialised). Rows more than one policy version stale (asynchronous rollouts) get the
decoupled-PPO correction (docs/math.md §9). KL to the reference (metric `kl_ref`) is the mean
over rows of sum_t log pi_theta/pi_ref on the batch's own tokens: an estimate of
KL(pi_theta || pi_ref) only on rows the policy sampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch

from spo_cli.errors import BadInput, SpoError
from spo_cli.train.batching import Example, collate, token_logprobs
from spo_cli.train.config import TrainConfig

if TYPE_CHECKING:
    from spo_cli.train.setup import Run


@dataclass(frozen=True)
class Algorithm:
    """One --algo: its step, and what set-up must give it."""

    name: str
    step: Callable[["Run", list[Example]], dict]
    """Loss on the step's examples, backpropagated; returns the step's metrics."""
    uses_values: bool = False
    """Needs V_hat(x0) per problem (--values, --missing-value)."""
    objective: Callable[[TrainConfig], Any] | None = None
    """Builds the run's loss from the config (SPO: --loss), kept as run.objective."""
    value_model: bool = False
    """Trains a value model beside the policy (saved with each checkpoint)."""
    on_policy: bool = False
    """Learns from fresh online rollouts only: no offline data, behaviour refreshed every step."""


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean of x (R, T) over the response tokens of the first R rows of mask (B, T)."""
    m = mask[: x.shape[0]]
    return float(torch.where(m, x, 0.0).sum() / m.sum().clamp(min=1))


def _add(sums: dict, values: dict, w: float) -> None:
    for k, v in values.items():
        sums[k] = sums.get(k, 0.0) + w * v


def _finite(loss: torch.Tensor, run: "Run") -> torch.Tensor:
    if not torch.isfinite(loss):
        raise SpoError(f"non-finite loss at step {run.step}: {loss.item()}")
    return loss


# ---------------------------------------------------------------------- SPO
def build_objective(cfg: TrainConfig):
    """--loss -> the SPO objective: one spec for every source, or per source (`*=` the rest)."""
    from spo_cli.core.spo import parse_objective

    specs = [s.strip() for s in cfg.loss if s.strip()]
    spec = specs[0] if len(specs) == 1 and "=" not in specs[0] else ",".join(
        s if "=" in s else f"*={s}" for s in specs)
    try:
        return parse_objective(spec, beta=cfg.beta, eps=cfg.eps)
    except ValueError as e:
        raise BadInput(f"--loss: {e}") from None


def spo_step(run: "Run", examples: list[Example]) -> dict:
    """SPO: the run's objective on each micro-batch (docs/math.md), with the reference log-probs from
    the trajectories' cache or the reference model."""
    from spo_cli.core.spo import SPOBatch, mc_tensors, terminal_q

    cfg = run.cfg
    micro = len(examples) // cfg.grad_accum
    sums: dict[str, float] = {}
    n_tok = 0
    for m in range(cfg.grad_accum):
        part = examples[m * micro:(m + 1) * micro]
        batch = collate(part, run.tokenizer.pad_token_id, run.device)
        ref = run.ref_logp(batch)  # (B, L-1)
        with run.autocast():
            logp, ent = token_logprobs(run.policy, batch, with_entropy=True)  # (B, L-1), (R, L-1)
        mc = None
        if any(e.mc for e in part):
            mc = mc_tensors([e.mc for e in part], [len(e.response_ids) for e in part], run.device)
        sb = SPOBatch(logp=logp, ref_logp=ref, mask=batch.mask, reward=batch.reward, v_hat=batch.v_hat,
                      mc_index=mc[0] if mc else None, mc_p=mc[1] if mc else None,
                      mc_valid=mc[2] if mc else None, source=[e.source for e in part])
        loss = _finite(run.objective(sb), run)
        (loss / cfg.grad_accum).backward()
        with torch.no_grad():
            mask = batch.mask
            q_t = terminal_q(logp.detach(), ref, mask, batch.v_hat, cfg.beta)  # (B,)
            diff = torch.where(mask, logp.detach() - ref, 0.0)
            _add(sums, {
                "loss": loss.item(),
                "kl_ref": diff.sum(-1).mean().item(),
                "entropy": _masked_mean(ent, mask),
                "q_terminal_err": (q_t - (batch.reward - 1.0)).abs().mean().item(),
                "q_terminal": q_t.mean().item(),
            }, 1.0 / cfg.grad_accum)
        n_tok += batch.n_tokens
    sums["tokens"] = n_tok
    return sums


# ---------------------------------------------------------------------- PPO
class ValueModel(torch.nn.Module):
    """PPO's value model: a transformer (a copy of the reference's) with a scalar head."""

    def __init__(self, backbone: torch.nn.Module, hidden: int):
        super().__init__()
        self.backbone = backbone
        self.head = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    @classmethod
    def from_reference(cls, model_dir: str, hidden: int) -> "ValueModel":
        from transformers import AutoModel

        return cls(AutoModel.from_pretrained(model_dir, dtype=torch.float32), hidden)

    def forward(self, input_ids, attention_mask):  # -> (B, L) value of the state after each token
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return self.head(h.float()).squeeze(-1)


def ppo_step(run: "Run", examples: list[Example]) -> dict:
    """PPO: advantages from GAE on the KL-penalised reward, then --ppo-epochs passes of the clipped
    policy and value losses over the micro-batches."""
    from spo_cli.core.ppo import (
        gae,
        importance_weights,
        kl_penalized_rewards,
        masked_whiten,
        ppo_policy_loss,
        ppo_value_loss,
    )

    cfg = run.cfg
    batch = collate(examples, run.tokenizer.pad_token_id, run.device)
    if batch.behaviour_logp is None:
        raise SpoError("PPO needs behaviour log-probs on every rollout")
    ref = run.ref_logp(batch)  # (B, L-1)
    behaviour = batch.behaviour_logp  # (B, L-1)
    stale = torch.tensor([run.policy_version - e.policy_version > 1 for e in examples], device=run.device)  # (B,)
    weights = None
    if bool(stale.any()):
        # Decoupled PPO (docs/math.md §9): clip against the current policy (pi_old), and correct
        # pi_old vs the stale behaviour policy with per-token importance weights.
        with torch.no_grad(), run.autocast():
            now, _ = token_logprobs(run.policy, batch)
        old = torch.where(stale.unsqueeze(-1), now.float(), behaviour)
        weights = importance_weights(old, behaviour, batch.mask, stale=stale,
                                     max_weight=cfg.max_importance_weight)
    else:
        old = behaviour  # fresh rollouts: the behaviour policy is the current one
    with torch.no_grad():
        values_old = run.value_model(batch.input_ids, batch.attention)[:, :-1]  # (B, L-1)
        rewards = kl_penalized_rewards(batch.reward, old, ref, batch.mask, cfg.beta)
        adv, ret = gae(rewards, values_old, batch.mask, cfg.gamma, cfg.gae_lambda)
        adv = masked_whiten(adv, batch.mask)
    sums: dict[str, float] = {}
    micro = len(examples) // cfg.grad_accum
    for _epoch in range(cfg.ppo_epochs):
        for m in range(cfg.grad_accum):
            rows = torch.arange(m * micro, (m + 1) * micro, device=run.device)
            sub = collate(examples[m * micro:(m + 1) * micro], run.tokenizer.pad_token_id, run.device)
            width = sub.mask.shape[1]
            with run.autocast():
                logp, ent = token_logprobs(run.policy, sub, with_entropy=True)
                values = run.value_model(sub.input_ids, sub.attention)[:, :-1]
            w = weights[rows, :width] if weights is not None else None
            pl = ppo_policy_loss(logp, old[rows, :width], adv[rows, :width], sub.mask, cfg.clip, weights=w)
            vl = ppo_value_loss(values, values_old[rows, :width], ret[rows, :width], sub.mask, cfg.clip)
            loss = _finite(pl.loss + cfg.vf_coef * vl, run)
            (loss / (cfg.grad_accum * cfg.ppo_epochs)).backward()
            with torch.no_grad():
                diff = torch.where(sub.mask, logp.detach() - ref[rows, :width], 0.0)
                _add(sums, {
                    "loss": loss.item(), "policy_loss": pl.loss.item(), "value_loss": vl.item(),
                    "clip_frac": pl.clip_frac.item(), "approx_kl": pl.approx_kl.item(),
                    "kl_ref": diff.sum(-1).mean().item(),
                    "entropy": _masked_mean(ent, sub.mask),
                }, 1.0 / (cfg.grad_accum * cfg.ppo_epochs))
    sums["tokens"] = batch.n_tokens * cfg.ppo_epochs
    sums["stale_rows"] = float(stale.sum())
    if weights is not None:
        sums["importance_weight"] = float(weights[batch.mask & stale.unsqueeze(-1)].mean())
    return sums


# ---------------------------------------------------------------------- the table
ALGORITHMS: dict[str, Algorithm] = {
    "spo": Algorithm("spo", spo_step, uses_values=True, objective=build_objective),
    "ppo": Algorithm("ppo", ppo_step, value_model=True, on_policy=True),
}


def algorithm(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise BadInput(f"--algo must be one of {', '.join(ALGORITHMS)}, got {name!r}") from None
