"""The learning algorithms of `spo train --algo`: what each needs from the run, and its step.

    ALGORITHMS["spo"]   Soft Policy Optimization: --loss objectives (spo_cli/core/spo.py) against
                        V_hat(x0) from --values; learns from any trajectory, online or offline
    ALGORITHMS["ppo"]   the PPO baseline (spo_cli/core/ppo.py): a value model, GAE on the
                        KL-penalised reward, clipped ratios; fresh online rollouts only
    ALGORITHMS["grpo"]  the GRPO baseline (spo_cli/core/grpo.py, docs/math.md §12): advantages
                        relative to the other samples of the same prompt, no value model; fresh
                        online rollouts only; TRL's GRPOTrainer defaults
    ALGORITHMS["rft"]   rejection-sampling fine-tuning (docs/math.md §13): supervised learning on
                        the correct trajectories of the step (corpus and/or the policy's own)

The algorithm is chosen once, when the run is configured (spo_cli/train/setup.py); set-up gives it
what its entry asks for, and the loop calls its `step` on each batch of Examples. Another algorithm
is one more entry: a step function and what it needs.

A step computes the loss on the step's examples in --grad-accum micro-batches, backpropagates it
(gradients averaged over the micro-batches) and returns its metrics; the loop then clips the
gradients and steps the optimiser. Metrics of micro-batches are averaged; `tokens` is a sum.
With --clip-per-sequence (spo, rft) every sequence is its own micro-batch and its gradient is
clipped to --max-grad-norm before the average (docs/math.md §14); the loop's clip then never acts.

Where PPO departs from the paper, or chooses where it is silent: on-policy rollouts every step
(interval 1), the behaviour log-probs the sampler recorded serve as pi_old, advantages are whitened
over the batch, and the value model is a copy of the reference model's transformer with a scalar
head (zero-initialised). Rows more than one policy version stale (asynchronous rollouts) get the
decoupled-PPO correction (docs/math.md §9). KL to the reference (metric `kl_ref`) is the mean
over rows of sum_t log pi_theta/pi_ref on the batch's own tokens: an estimate of
KL(pi_theta || pi_ref) only on rows the policy sampled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    step: Callable[[Run, list[Example]], dict]
    """Loss on the step's examples, backpropagated; returns the step's metrics."""
    uses_values: bool = False
    """Needs V_hat(x0) per problem (--values, --missing-value)."""
    objective: Callable[[TrainConfig], Any] | None = None
    """Builds the run's loss from the config (SPO: --loss), kept as run.objective."""
    value_model: bool = False
    """Trains a value model beside the policy (saved with each checkpoint)."""
    on_policy: bool = False
    """Learns from fresh online rollouts only: no offline data, behaviour refreshed every step."""
    per_sequence_loss: bool = False
    """The loss is a weighted sum of per-sequence losses, so --clip-per-sequence applies."""
    check: Callable[[TrainConfig], None] | None = None
    """Raises BadInput for a config this algorithm cannot run (before anything is loaded)."""


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean of x (R, T) over the response tokens of the first R rows of mask (B, T)."""
    m = mask[: x.shape[0]]
    return float(torch.where(m, x, 0.0).sum() / m.sum().clamp(min=1))


def _add(sums: dict, values: dict, w: float) -> None:
    for k, v in values.items():
        sums[k] = sums.get(k, 0.0) + w * v


def _finite(loss: torch.Tensor, run: Run) -> torch.Tensor:
    if not torch.isfinite(loss):
        raise SpoError(f"non-finite loss at step {run.step}: {loss.item()}")
    return loss


def _micro_batches(run: Run, examples: list[Example]) -> list[list[Example]]:
    """The step's examples in --grad-accum micro-batches, or one per sequence with --clip-per-sequence."""
    if run.cfg.clip_per_sequence:
        return [[e] for e in examples]
    size = -(-len(examples) // run.cfg.grad_accum)
    return [examples[i:i + size] for i in range(0, len(examples), size)]


PartLoss = Callable[[list[Example]], tuple[torch.Tensor, float, dict]]


def _backward(run: Run, parts: list[list[Example]], part_loss: PartLoss) -> dict:
    """Backpropagate sum over parts of weight * loss, where part_loss(part) -> (loss, weight, metrics)
    and the weights sum to 1; the metrics are averaged with the same weights.

    With --clip-per-sequence (each part one sequence) the gradient of each part's loss is clipped
    to --max-grad-norm before it is weighted: g = sum_i w_i clip(grad loss_i), docs/math.md §14.
    """
    cfg = run.cfg
    sums: dict[str, float] = {}
    clip = cfg.max_grad_norm if cfg.clip_per_sequence else 0.0
    if clip > 0 and torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_world_size() > 1:
        raise BadInput("--clip-per-sequence runs in one learner process only (its gradients bypass DDP's sync)")
    params = [p for p in run.policy.parameters() if p.requires_grad] if clip > 0 else []
    acc: list[torch.Tensor | None] = [None] * len(params)
    norms: list[float] = []
    for part in parts:
        loss, weight, metrics = part_loss(part)
        loss = _finite(loss, run)
        if clip > 0:
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            norm = float(torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in grads if g is not None]))) \
                if any(g is not None for g in grads) else 0.0
            norms.append(norm)
            f = weight * min(1.0, clip / (norm + 1e-6))
            for i, g in enumerate(grads):
                if g is not None:
                    acc[i] = g * f if acc[i] is None else acc[i].add_(g, alpha=f)
        else:
            (loss * weight).backward()
        _add(sums, metrics, weight)
    for p, a in zip(params, acc):
        if a is not None:
            p.grad = a if p.grad is None else p.grad + a
    if norms:
        sums.update({"seq_grad_norm_max": max(norms), "seq_grad_norm_mean": sum(norms) / len(norms),
                     "seq_clipped": sum(n > clip for n in norms) / len(norms)})
    return sums


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


def spo_step(run: Run, examples: list[Example]) -> dict:
    """SPO: the run's objective on each micro-batch (docs/math.md), with the reference log-probs from
    the trajectories' cache or the reference model. The batch loss is the mean over sequences."""
    from spo_cli.core.spo import SPOBatch, mc_tensors, terminal_q

    cfg = run.cfg

    def part_loss(part: list[Example]) -> tuple[torch.Tensor, float, dict]:
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
        loss = run.objective(sb)
        with torch.no_grad():
            mask = batch.mask
            q_t = terminal_q(logp.detach(), ref, mask, batch.v_hat, cfg.beta)  # (B,)
            diff = torch.where(mask, logp.detach() - ref, 0.0)
            metrics = {
                "loss": loss.item(),
                "kl_ref": diff.sum(-1).mean().item(),
                "entropy": _masked_mean(ent, mask),
                "q_terminal_err": (q_t - (batch.reward - 1.0)).abs().mean().item(),
                "q_terminal": q_t.mean().item(),
            }
        return loss, len(part) / len(examples), metrics

    sums = _backward(run, _micro_batches(run, examples), part_loss)
    sums["tokens"] = sum(len(e.response_ids) for e in examples)
    return sums


# ---------------------------------------------------------------------- PPO
class ValueModel(torch.nn.Module):
    """PPO's value model: a transformer (a copy of the reference's) with a scalar head."""

    def __init__(self, backbone: torch.nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = torch.nn.Linear(backbone.config.hidden_size, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        # FSDP wraps each decoder layer in its own unit, as for the policy (spo_cli/train/processes.py)
        self._no_split_modules = list(getattr(backbone, "_no_split_modules", None) or [])

    @classmethod
    def from_reference(cls, model_dir: str) -> ValueModel:
        from transformers import AutoModel

        return cls(AutoModel.from_pretrained(model_dir, dtype=torch.float32))

    def forward(self, input_ids, attention_mask):  # -> (B, L) value of the state after each token
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        return self.head(h.to(self.head.weight.dtype)).float().squeeze(-1)  # (FSDP bf16: the head computes in bf16)


def ppo_step(run: Run, examples: list[Example]) -> dict:
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
    now = None
    if run.procs.must_run(bool(stale.any())):  # under FSDP every process runs it if one needs it
        with torch.no_grad(), run.autocast():
            now, _ = token_logprobs(run.policy, batch)
    if bool(stale.any()):
        # Decoupled PPO (docs/math.md §9): clip against the current policy (pi_old), and correct
        # pi_old vs the stale behaviour policy with per-token importance weights.
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


# ---------------------------------------------------------------------- GRPO
def check_grpo(cfg: TrainConfig) -> None:
    from spo_cli.core.grpo import SCALES

    if cfg.grpo_scale not in SCALES:
        raise BadInput(f"--grpo-scale must be one of {', '.join(SCALES)}, got {cfg.grpo_scale!r}")
    if cfg.online_n < 2:
        raise BadInput("GRPO compares the samples of a prompt with each other: --online-n must be >= 2")
    if cfg.ppo_epochs != 1:
        raise BadInput("GRPO makes one pass over each batch (TRL's num_iterations 1): leave --ppo-epochs at 1")
    if cfg.grpo_kl < 0:
        raise BadInput(f"--grpo-kl must be >= 0, got {cfg.grpo_kl}")


def grpo_step(run: Run, examples: list[Example]) -> dict:
    """GRPO (docs/math.md §12): each rollout's advantage is its reward relative to the other samples
    of its prompt in this step; PPO's clipped surrogate on it at every token (pi_old: the behaviour
    log-probs the sampler recorded), plus --grpo-kl times the k3 KL to the reference; token-level
    mean over the step's batch (TRL's default loss_type "dapo")."""
    from spo_cli.core.grpo import group_advantages, group_ids, k3_kl, zero_std_groups
    from spo_cli.core.ppo import ppo_policy_loss

    cfg = run.cfg
    batch = collate(examples, run.tokenizer.pad_token_id, run.device)
    if batch.behaviour_logp is None:
        raise SpoError("GRPO needs behaviour log-probs on every rollout")
    ref = run.ref_logp(batch)  # (B, L-1)
    groups = group_ids([e.problem_id for e in examples])  # (B,)
    adv = group_advantages(batch.reward, groups, cfg.grpo_scale).to(run.device)  # (B,)
    adv_t = adv.unsqueeze(-1).expand_as(batch.mask)  # (B, L-1): the sequence's advantage at every token
    n_tok = max(1, batch.n_tokens)
    index = {id(e): i for i, e in enumerate(examples)}

    def part_loss(part: list[Example]) -> tuple[torch.Tensor, float, dict]:
        rows = torch.tensor([index[id(e)] for e in part], device=run.device)
        sub = collate(part, run.tokenizer.pad_token_id, run.device)
        width = sub.mask.shape[1]
        with run.autocast():
            logp, ent = token_logprobs(run.policy, sub, with_entropy=True)
        pl = ppo_policy_loss(logp, batch.behaviour_logp[rows, :width], adv_t[rows, :width], sub.mask, cfg.clip)
        per_token = pl.per_token
        kl = k3_kl(logp, ref[rows, :width], sub.mask)
        if cfg.grpo_kl > 0:
            per_token = per_token + cfg.grpo_kl * kl
        part_tok = max(1, sub.n_tokens)
        loss = per_token.sum() / part_tok  # weighted by part_tok / n_tok: the token mean of the step
        with torch.no_grad():
            diff = torch.where(sub.mask, logp.detach() - ref[rows, :width], 0.0)
            metrics = {"loss": loss.item(), "clip_frac": pl.clip_frac.item(), "approx_kl": pl.approx_kl.item(),
                       "kl_ref": diff.sum(-1).mean().item(), "kl_k3": float(kl.sum() / part_tok),
                       "entropy": _masked_mean(ent, sub.mask)}
        return loss, sub.n_tokens / n_tok, metrics

    sums = _backward(run, _micro_batches(run, examples), part_loss)
    sums["tokens"] = batch.n_tokens
    sums["advantage_abs"] = float(adv.abs().mean())
    sums["zero_std_groups"] = zero_std_groups(batch.reward, groups)
    sums["groups"] = int(groups.max()) + 1 if groups.numel() else 0
    return sums


# ---------------------------------------------------------------------- RFT
def rft_step(run: Run, examples: list[Example]) -> dict:
    """Rejection-sampling fine-tuning (docs/math.md §13): the negative log-likelihood of the correct
    trajectories of the step (reward 1: the corpus's and the policy's own), token mean; the other
    trajectories are rejected (they weigh nothing). No reference model in the loss (kl_ref is a metric)."""
    from spo_cli.core.grpo import nll_sum
    from spo_cli.judge.outcome import is_success

    kept = [e for e in examples if is_success(e.reward)]
    metrics = {"rft_kept": len(kept) / len(examples), "tokens": sum(len(e.response_ids) for e in kept)}
    if not kept:
        return {**metrics, "loss": 0.0}  # nothing to learn from: the optimiser step changes nothing
    n_tok = max(1, metrics["tokens"])

    def part_loss(part: list[Example]) -> tuple[torch.Tensor, float, dict]:
        batch = collate(part, run.tokenizer.pad_token_id, run.device)
        with run.autocast():
            logp, ent = token_logprobs(run.policy, batch, with_entropy=True)
        part_tok = max(1, batch.n_tokens)
        loss = nll_sum(logp, batch.mask).sum() / part_tok
        with torch.no_grad():
            ref = run.ref_logp(batch)
            diff = torch.where(batch.mask, logp.detach() - ref, 0.0)
            m = {"loss": loss.item(), "kl_ref": diff.sum(-1).mean().item(), "entropy": _masked_mean(ent, batch.mask)}
        return loss, batch.n_tokens / n_tok, m

    size = -(-len(kept) // run.cfg.grad_accum)
    parts = [[e] for e in kept] if run.cfg.clip_per_sequence else [kept[i:i + size] for i in range(0, len(kept), size)]
    return {**_backward(run, parts, part_loss), **metrics}


# ---------------------------------------------------------------------- the table
ALGORITHMS: dict[str, Algorithm] = {
    "spo": Algorithm("spo", spo_step, uses_values=True, objective=build_objective, per_sequence_loss=True),
    "ppo": Algorithm("ppo", ppo_step, value_model=True, on_policy=True),
    "grpo": Algorithm("grpo", grpo_step, on_policy=True, check=check_grpo),
    "rft": Algorithm("rft", rft_step, per_sequence_loss=True),
}


def algorithm(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise BadInput(f"--algo must be one of {', '.join(ALGORITHMS)}, got {name!r}") from None
