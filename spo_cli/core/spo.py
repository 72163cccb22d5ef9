"""SPO: the cumulative Q-parameterisation (docs/math.md §4), its losses (5) and objectives (6).

Everything here is a small pure tensor function over a padded batch:

    logp, ref_logp   (B, T)  log pi_theta / log pi_ref of the token taken at each position
    mask             (B, T)  True on response tokens (any layout: left- or right-padded, prompt
                             positions masked out); padding values may be anything finite
    reward           (B,)    judge reward in [0, 1]
    v_hat            (B,)    V_hat(x0), estimated once per prompt before training (estimators.py)

Typical use in a trainer:

    objective = parse_objective("terminal:ce*0.5+mc:ce", beta=0.1)        # once, at configuration
    loss = objective(SPOBatch(logp=..., ref_logp=..., mask=..., reward=..., v_hat=...))
    loss.backward()

Where this module departs from the paper or chooses where it is silent (docs/math.md "choice" points)
---------------------------------------------------------------------------------------------
1. Rewards are shifted inside the objectives: r = reward - r_max (r_max = 1), so r <= 0 and
   exp(r/beta) is a probability. A constant shift leaves advantages and pi* unchanged.
2. Cross-entropy clipping: the log(1 - p) term sees min(y_hat, -eps*beta) in the forward pass
   with a straight-through gradient; the positive term is q * min(y_hat, 0) / beta, so nothing
   pushes y_hat above 0; the target is clipped to min(y, -eps*beta) too (eps a parameter,
   default 1e-3). Consequence: for r in [-eps*beta, 0] the target is q = e^{-eps} and the loss
   is flat for y_hat in [-eps*beta, 0], so Q_theta = r stays a minimiser and pi* is unchanged.
   The gradient at the clip is ~(1 - q)/(eps*beta): a smaller eps makes rare overshoots kick
   hard: on the toy tree of the tests, Adam (lr 0.1) reached KL(pi*||pi_theta) < 1e-5 in 600
   steps at eps = 1e-3 but was still at 3e-3 after 400 steps at eps = 1e-4.
3. Non-terminal (reverse-Q) loss: the per-token losses are averaged over the response tokens of
   a sequence (not summed), so its scale matches the terminal loss; the gradient on A_hat_s is
   still proportional to the number of targets at or after s (earlier tokens get more).
4. Sigmoid warping is sigma(y_hat) vs sigma(y) with BCE and no temperature. `advantage` accepts
   `sig` (the paper's only variant, the default) or `sq`; `ce` is refused because a sum of
   advantages is not a log-probability.
5. MC targets: an entry [k, p_hat, n] of a trajectory's `mc` field refers to the prefix made of
   the first k response tokens, i.e. Q_theta(x_{1:k}) = V_hat + sum_{s<=k} A_hat_s; k = 0 is
   the prompt (V_hat, nothing to learn: skipped) and k = len(response) the whole response. The
   target is y = beta log(p_hat + (1 - p_hat) e^{-1/beta}) (binary reward); under `ce`,
   exp(y/beta) is exactly that mixture q, linear in p_hat and hence an unbiased target. A
   sequence's MC loss is the mean over its entries (n_rollouts is not used as a weight); a
   sequence without entries, or a batch without mc tensors, contributes 0.
6. Per-sequence losses are averaged over the batch with optional per-sequence weights
   (mean of weight * loss). Q at padding positions carries the last response value forward.
7. Log-probs in bf16/fp16 are promoted to float32 before the cumulative sum.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial

import torch
from torch import Tensor

from spo_cli.core.masked import as_bool, row_mean

# ---------------------------------------------------------------------------------------------
# The cumulative Q-parameterisation (docs/math.md §4)
# ---------------------------------------------------------------------------------------------


def advantage_estimates(logp: Tensor, ref_logp: Tensor, mask: Tensor, beta: float) -> Tensor:
    """A_hat_t = beta (log pi_theta(x_t|x_<t) - log pi_ref(x_t|x_<t))   (Eq 11).

    logp, ref_logp, mask: (B, T) -> (B, T), exactly 0 outside the response.
    """
    dtype = torch.promote_types(logp.dtype, torch.float32)
    a = beta * (logp.to(dtype) - ref_logp.to(dtype).detach())  # (B, T)
    return torch.where(as_bool(mask), a, a.new_zeros(()))


def cumulative_q(logp: Tensor, ref_logp: Tensor, mask: Tensor, v_hat: Tensor, beta: float) -> Tensor:
    """Q_theta(x_{1:t}) = V_hat(x0) + sum_{s<=t} A_hat_s at every position t   (Eq 12).

    (B, T) inputs, v_hat (B,) -> (B, T). A padding position holds the value of the last response
    token before it (V_hat before the first one).
    """
    a = advantage_estimates(logp, ref_logp, mask, beta)  # (B, T)
    return v_hat.to(a.dtype).detach().unsqueeze(-1) + a.cumsum(-1)


def terminal_q(logp: Tensor, ref_logp: Tensor, mask: Tensor, v_hat: Tensor, beta: float) -> Tensor:
    """Q_theta(x_{1:T}) = V_hat + sum_t A_hat_t, the Q-value of the whole response   (Eq 12, 13).

    -> (B,). An empty response has Q = V_hat.
    """
    a = advantage_estimates(logp, ref_logp, mask, beta)  # (B, T)
    return v_hat.to(a.dtype).detach() + a.sum(-1)


def reverse_q_targets(a_hat: Tensor, r: Tensor) -> Tensor:
    """y_t = r - sum_{s>t} sg[A_hat_s], the reverse-Q target of Q_theta(x_{1:t})   (docs/math.md §6).

    a_hat: (B, T) advantage estimates (0 off the response), r: (B,) shifted reward -> (B, T), detached.
    """
    a = a_hat.detach()
    later = a.sum(-1, keepdim=True) - a.cumsum(-1)  # (B, T) sum_{s>t} A_hat_s
    return r.to(a.dtype).unsqueeze(-1) - later


def prefix_q(q: Tensor, mask: Tensor, v_hat: Tensor, index: Tensor) -> Tensor:
    """Q_theta after the first `index` response tokens (0 = the prompt, V_hat).

    q: (B, T) from `cumulative_q`, mask: (B, T), v_hat: (B,), index: (B, M) long -> (B, M).
    Raises ValueError if an index exceeds its row's response length.
    """
    count = as_bool(mask).long().cumsum(-1)  # (B, T) response tokens up to and including t
    length = count[:, -1:] if count.shape[-1] else count.new_zeros(count.shape[0], 1)  # (B, 1)
    if index.numel() and bool(((index > length) | (index < 0)).any()):
        raise ValueError("an mc token_index lies outside its response (0 <= index <= response length)")
    v0 = v_hat.to(q.dtype).detach().unsqueeze(-1).expand(index.shape)  # (B, M)
    if not q.shape[-1]:
        return v0
    # position of the index-th response token = first t with count_t >= index
    pos = torch.searchsorted(count, index.clamp(min=1).contiguous())  # (B, M)
    picked = q.gather(-1, pos.clamp(max=q.shape[-1] - 1))  # (B, M)
    return torch.where(index == 0, v0, picked)


def mc_value_target(p_hat: Tensor, beta: float) -> Tensor:
    """y = beta log(p_hat + (1 - p_hat) e^{-1/beta}), the Q target of a prefix that succeeds with p_hat.

    docs/math.md §§6 (`mc`) and 7 (binary reward: success r = 0, failure r = -1). Finite for
    p_hat in [0, 1]: computed as beta * logaddexp(log p, log(1 - p) - 1/beta).
    """
    p = p_hat.clamp(0.0, 1.0)
    return beta * torch.logaddexp(torch.log(p), torch.log1p(-p) - 1.0 / beta)


# ---------------------------------------------------------------------------------------------
# Losses (docs/math.md §5): elementwise, prediction y_hat regressed on a detached target y
# ---------------------------------------------------------------------------------------------


def squared_loss(pred: Tensor, target: Tensor) -> Tensor:
    """(y_hat - y)^2, elementwise; the target is detached."""
    return (pred - target.detach()).square()


def ce_logprob_loss(pred: Tensor, target: Tensor, beta: float, eps: float = 1e-3) -> Tensor:
    """Cross-entropy between log-probabilities: p = exp(y_hat/beta), q = exp(y/beta)   (docs/math.md §5).

    l = -[q * min(y_hat, 0)/beta + (1 - q) * log(1 - exp(y_hat_c/beta))], y_hat_c = min(y_hat, -eps*beta)
    in the forward pass with a straight-through gradient (backward ignores the clip); the target
    is clipped to min(y, -eps*beta). Finite for every finite input. Elementwise.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    limit = -eps * beta
    y = target.detach().clamp(max=limit)
    log_q = y / beta
    q, one_minus_q = log_q.exp(), -torch.expm1(log_q)
    # log(1 - p) at the clipped prediction, with the derivative taken there too (straight-through):
    # value f(y_hat_c) + f'(y_hat_c) * (y_hat - sg[y_hat]). Not y_hat + sg[y_hat_c - y_hat], which
    # cancels catastrophically when |y_hat| >> eps*beta and can land at p = 1 (log 0).
    x_c = pred.detach().clamp(max=limit) / beta  # y_hat_c / beta <= -eps
    slope = -1.0 / (beta * torch.expm1(-x_c))  # d/dy_hat log(1 - exp(y_hat/beta)) at the clip
    log1m_p = torch.log(-torch.expm1(x_c)) + slope * (pred - pred.detach())  # expm1: exact near 0
    return -(q * pred.clamp(max=0.0) / beta + one_minus_q * log1m_p)


def sigmoid_bce_loss(pred: Tensor, target: Tensor) -> Tensor:
    """BCE(sigma(y_hat), sigma(y)): both sides of an equation warped by the sigmoid   (docs/math.md §5).

    Computed from logits (stable for any finite input). Elementwise; the target is detached.
    """
    return torch.nn.functional.binary_cross_entropy_with_logits(
        pred, torch.sigmoid(target.detach()), reduction="none"
    )


# ---------------------------------------------------------------------------------------------
# Batches and objectives (docs/math.md §6)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SPOBatch:
    """One padded batch of trajectories, as the objectives see it.

    mc_index/mc_p/mc_valid: (B, M) sparse Monte-Carlo targets (see `mc_tensors`), needed only by
    the `mc` objective. weight: optional (B,) per-sequence weights. source: optional per-row data
    source names (`online`, `offline`, `pts`, ...) for `SourceObjective`.
    """

    logp: Tensor  # (B, T) log pi_theta of the taken tokens (carries the gradient)
    ref_logp: Tensor  # (B, T) log pi_ref (treated as a constant)
    mask: Tensor  # (B, T) True on response tokens
    reward: Tensor  # (B,) judge reward in [0, 1]
    v_hat: Tensor  # (B,) V_hat(x0)
    mc_index: Tensor | None = None  # (B, M) long
    mc_p: Tensor | None = None  # (B, M) float
    mc_valid: Tensor | None = None  # (B, M) bool
    weight: Tensor | None = None  # (B,)
    source: Sequence[str] | None = None  # B names

    def select(self, rows: Tensor) -> SPOBatch:
        """The sub-batch of the given row indices (a (R,) long tensor)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                v = v.index_select(0, rows.to(v.device))
            elif v is not None:
                v = [v[i] for i in rows.tolist()]
            out[f.name] = v
        return replace(self, **out)


LossFn = Callable[[Tensor, Tensor], Tensor]  # (pred, target) -> elementwise loss
ObjectiveFn = Callable[..., Tensor]  # (batch, loss, *, beta, r_max) -> (B,)


def terminal_objective(batch: SPOBatch, loss: LossFn, *, beta: float, r_max: float = 1.0) -> Tensor:
    """Terminal Q-regression: y_hat = Q_theta(x_{1:T}), y = r   (Eq 13). -> (B,)"""
    pred = terminal_q(batch.logp, batch.ref_logp, batch.mask, batch.v_hat, beta)  # (B,)
    return loss(pred, (batch.reward - r_max).to(pred.dtype))


def nonterminal_objective(batch: SPOBatch, loss: LossFn, *, beta: float, r_max: float = 1.0) -> Tensor:
    """Non-terminal Q-regression on reverse-Q targets: Q_theta(x_{1:t}) vs r - sum_{s>t} sg[A_hat_s].

    Mean over the response tokens of each sequence (0 for an empty response). -> (B,)
    """
    a = advantage_estimates(batch.logp, batch.ref_logp, batch.mask, beta)  # (B, T)
    q = batch.v_hat.to(a.dtype).detach().unsqueeze(-1) + a.cumsum(-1)  # (B, T) Eq 12
    y = reverse_q_targets(a, (batch.reward - r_max).to(a.dtype))  # (B, T)
    return row_mean(loss(q, y), batch.mask)


def advantage_objective(batch: SPOBatch, loss: LossFn, *, beta: float, r_max: float = 1.0) -> Tensor:
    """Advantage regression: y_hat = sum_t A_hat_t, y = r - V_hat   (Eq 13 minus V_hat). -> (B,)"""
    a = advantage_estimates(batch.logp, batch.ref_logp, batch.mask, beta)  # (B, T)
    target = (batch.reward - r_max).to(a.dtype) - batch.v_hat.to(a.dtype)
    return loss(a.sum(-1), target)


def mc_objective(batch: SPOBatch, loss: LossFn, *, beta: float, r_max: float = 1.0) -> Tensor:
    """Regression of Q_theta(x_{1:k}) on sparse Monte-Carlo targets beta log(p_hat + (1-p_hat) e^{-1/beta}).

    Entries with k = 0 (the prompt) are skipped; a sequence without entries contributes 0, and so
    does every sequence of a batch without mc tensors (None), still connected to the graph so that
    backward() works. -> (B,)
    `r_max` is unused: the target already follows the binary convention (success 0, failure -1).
    """
    if batch.mc_index is None or batch.mc_p is None:
        return 0.0 * advantage_estimates(batch.logp, batch.ref_logp, batch.mask, beta).sum(-1)
    q = cumulative_q(batch.logp, batch.ref_logp, batch.mask, batch.v_hat, beta)  # (B, T)
    valid = batch.mc_index > 0
    if batch.mc_valid is not None:
        valid = valid & batch.mc_valid
    index = torch.where(valid, batch.mc_index, torch.zeros_like(batch.mc_index))
    pred = prefix_q(q, batch.mask, batch.v_hat, index)  # (B, M)
    target = mc_value_target(batch.mc_p.to(q.dtype), beta)  # (B, M)
    return row_mean(loss(pred, target), valid)


def mc_tensors(
    mc: Sequence[Sequence[Sequence[float]] | None], lengths: Sequence[int], device: torch.device | str | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Pad trajectories' `mc` fields ([[token_index, p_hat, n_rollouts], ...] or None) into tensors.

    lengths: the response length (tokens) of each trajectory. Returns index (B, M) long,
    p_hat (B, M) float32, valid (B, M) bool. Raises ValueError naming the row and entry of a
    malformed one (index outside 0..length, p_hat outside [0, 1], n_rollouts < 1).
    """
    if len(mc) != len(lengths):
        raise ValueError(f"{len(mc)} mc fields but {len(lengths)} lengths")
    width = max((len(m) for m in mc if m), default=0)
    index = torch.zeros(len(mc), width, dtype=torch.long)
    p = torch.zeros(len(mc), width, dtype=torch.float32)
    valid = torch.zeros(len(mc), width, dtype=torch.bool)
    for i, (entries, length) in enumerate(zip(mc, lengths)):
        for j, entry in enumerate(entries or ()):
            where = f"trajectory {i}, mc entry {j} ({entry!r})"
            if not isinstance(entry, (list, tuple)) or len(entry) != 3:
                raise ValueError(f"{where}: expected [token_index, p_hat, n_rollouts]")
            k, ph, n = entry
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= length:
                raise ValueError(f"{where}: token_index must be an integer in 0..{length} (response length)")
            if not isinstance(ph, (int, float)) or not 0.0 <= ph <= 1.0:
                raise ValueError(f"{where}: p_hat must be a number in [0, 1]")
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{where}: n_rollouts must be a positive integer")
            index[i, j], p[i, j], valid[i, j] = k, float(ph), True
    return index.to(device), p.to(device), valid.to(device)


# The tables a run is configured from: objective name -> function, loss name -> builder.
OBJECTIVES: dict[str, ObjectiveFn] = {
    "terminal": terminal_objective,
    "nonterminal": nonterminal_objective,
    "advantage": advantage_objective,
    "mc": mc_objective,
}
LOSSES: dict[str, Callable[[float, float], LossFn]] = {  # (beta, eps) -> loss
    "sq": lambda beta, eps: squared_loss,
    "ce": lambda beta, eps: partial(ce_logprob_loss, beta=beta, eps=eps),
    "sig": lambda beta, eps: sigmoid_bce_loss,
}
ALLOWED_LOSSES: dict[str, tuple[str, ...]] = {
    "terminal": ("sq", "ce", "sig"),
    "nonterminal": ("sq", "ce", "sig"),
    "advantage": ("sig", "sq"),
    "mc": ("sq", "ce", "sig"),
}
DEFAULT_LOSS: dict[str, str] = {"advantage": "sig"}


@dataclass(frozen=True)
class Term:
    """One weighted objective of a sum, e.g. `terminal:ce*0.5`."""

    objective: str
    loss: str
    weight: float = 1.0

    def __str__(self) -> str:
        w = "" if self.weight == 1.0 else f"*{self.weight:g}"
        return f"{self.objective}:{self.loss}{w}"


@dataclass(frozen=True)
class Objective:
    """A weighted sum of SPO objectives with beta, eps and r_max fixed: call it on an `SPOBatch`.

    objective(batch) -> scalar loss (weighted mean over sequences); .per_sequence(batch) -> (B,);
    .per_term(batch) -> {term: (B,)} for logging. Build with `parse_objective`.
    """

    terms: tuple[Term, ...]
    beta: float
    eps: float = 1e-3
    r_max: float = 1.0
    # (name, weight, objective function, loss function), resolved from the tables once
    _resolved: tuple = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be a positive finite number, got {self.beta!r}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps!r}")
        if not self.terms:
            raise ValueError("an objective needs at least one term")
        for t in self.terms:
            if t.objective not in OBJECTIVES:
                raise ValueError(f"unknown objective {t.objective!r}; choose from {', '.join(OBJECTIVES)}")
            if t.loss not in ALLOWED_LOSSES[t.objective]:
                raise ValueError(
                    f"objective {t.objective!r} takes loss {' or '.join(ALLOWED_LOSSES[t.objective])}, not {t.loss!r}"
                )
            if not (t.weight > 0 and math.isfinite(t.weight)):
                raise ValueError(f"weight of {t.objective}:{t.loss} must be a positive number, got {t.weight!r}")
        resolved = tuple(
            (str(t), t.weight, OBJECTIVES[t.objective], LOSSES[t.loss](self.beta, self.eps)) for t in self.terms
        )
        object.__setattr__(self, "_resolved", resolved)

    def per_term(self, batch: SPOBatch) -> dict[str, Tensor]:
        return {
            name: weight * fn(batch, loss, beta=self.beta, r_max=self.r_max)  # (B,)
            for name, weight, fn, loss in self._resolved
        }

    def per_sequence(self, batch: SPOBatch) -> Tensor:
        return torch.stack(list(self.per_term(batch).values())).sum(0)  # (B,)

    def __call__(self, batch: SPOBatch) -> Tensor:
        return _batch_mean(self.per_sequence(batch), batch.weight)

    def __str__(self) -> str:
        return "+".join(str(t) for t in self.terms)


@dataclass(frozen=True)
class SourceObjective:
    """A different `Objective` per data source (`SPOBatch.source`), with an optional default (`*`).

    Each row is scored by its source's objective on the sub-batch of that source; the scalar is
    the weighted mean over all rows, as for `Objective`.
    """

    by_source: Mapping[str, Objective]
    default: Objective | None = None

    def objective_for(self, source: str) -> Objective:
        obj = self.by_source.get(source, self.default)
        if obj is None:
            raise ValueError(f"no objective for data source {source!r} (configured: {', '.join(self.by_source)})")
        return obj

    def _groups(self, batch: SPOBatch) -> dict[str, Tensor]:
        if batch.source is None:
            raise ValueError("a per-source objective needs SPOBatch.source")
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(batch.source):
            groups.setdefault(s, []).append(i)
        return {s: torch.tensor(rows, dtype=torch.long, device=batch.logp.device) for s, rows in groups.items()}

    def per_sequence(self, batch: SPOBatch) -> Tensor:
        out = batch.logp.new_zeros(batch.logp.shape[0], dtype=torch.promote_types(batch.logp.dtype, torch.float32))
        for source, rows in self._groups(batch).items():
            out = out.index_put((rows,), self.objective_for(source).per_sequence(batch.select(rows)))
        return out  # (B,)

    def per_term(self, batch: SPOBatch) -> dict[str, Tensor]:
        """{source/term: (R,) losses of that source's R rows}."""
        out = {}
        for source, rows in self._groups(batch).items():
            for name, v in self.objective_for(source).per_term(batch.select(rows)).items():
                out[f"{source}/{name}"] = v
        return out

    def __call__(self, batch: SPOBatch) -> Tensor:
        return _batch_mean(self.per_sequence(batch), batch.weight)

    def __str__(self) -> str:
        parts = [f"{s}={o}" for s, o in self.by_source.items()]
        if self.default is not None:
            parts.append(f"*={self.default}")
        return ",".join(parts)


_TERM = re.compile(
    r"^(?:(?P<pre>[0-9.eE+-]+)\s*\*\s*)?(?P<name>[a-z_]+)(?::(?P<loss>[a-z]+))?(?:\s*\*\s*(?P<post>[0-9.eE+-]+))?$"
)


def parse_terms(spec: str) -> tuple[Term, ...]:
    """Parse `terminal:ce*0.5+mc:ce` (or `0.5*terminal:ce+...`) into terms; no defaults beyond DEFAULT_LOSS."""
    terms = []
    # split on '+' that join terms, not on the sign of an exponent such as 1e+3
    for raw in re.split(r"(?<![0-9.][eE])\+", spec):
        text = raw.strip()
        m = _TERM.match(text)
        if not m or (m["pre"] and m["post"]):
            raise ValueError(f"cannot parse objective term {text!r} in {spec!r}; write e.g. terminal:ce*0.5")
        name, loss = m["name"], m["loss"] or DEFAULT_LOSS.get(m["name"])
        if name not in OBJECTIVES:
            raise ValueError(f"unknown objective {name!r} in {spec!r}; choose from {', '.join(OBJECTIVES)}")
        if loss is None:
            raise ValueError(
                f"objective {name!r} needs a loss in {spec!r}: write {name}:"
                + f" or {name}:".join(ALLOWED_LOSSES[name])
            )
        weight_text = m["pre"] or m["post"]
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise ValueError(f"bad weight {weight_text!r} in objective term {text!r}") from None
        terms.append(Term(name, loss, weight))
    return tuple(terms)


def parse_objective(
    spec: str | Mapping[str, str], *, beta: float, eps: float = 1e-3, r_max: float = 1.0
) -> Objective | SourceObjective:
    """Build a callable objective from a spec, once, when a run is configured.

    - `"terminal:ce"`, `"nonterminal:sq"`, `"advantage"` (sigmoid + BCE), `"mc:ce"`,
      weighted sums `"terminal:ce*0.5+mc:ce"` -> `Objective`;
    - per data source: `"online=terminal:ce,offline=terminal:sq+mc:ce,*=terminal:ce"` or a dict
      {source: spec} (`*` is the default for other sources) -> `SourceObjective`.
    Raises ValueError with the offending term on a bad spec.
    """
    if isinstance(spec, str) and "=" not in spec:
        return Objective(parse_terms(spec), beta=beta, eps=eps, r_max=r_max)
    if isinstance(spec, str):
        mapping: dict[str, str] = {}
        for part in re.split(r"[,;]", spec):
            if not part.strip():
                continue
            source, sep, sub = part.partition("=")
            if not sep or not source.strip() or not sub.strip():
                raise ValueError(f"cannot parse {part.strip()!r} in {spec!r}; write source=objective, e.g. online=terminal:ce")
            if source.strip() in mapping:
                raise ValueError(f"data source {source.strip()!r} given twice in {spec!r}")
            mapping[source.strip()] = sub.strip()
    else:
        mapping = dict(spec)
    built = {s: Objective(parse_terms(v), beta=beta, eps=eps, r_max=r_max) for s, v in mapping.items()}
    default = built.pop("*", None)
    return SourceObjective(built, default)


def _batch_mean(per_sequence: Tensor, weight: Tensor | None) -> Tensor:
    if not per_sequence.numel():
        return per_sequence.sum()  # an empty batch contributes 0, not NaN
    if weight is None:
        return per_sequence.mean()
    return (weight.to(per_sequence.dtype).detach() * per_sequence).mean()
