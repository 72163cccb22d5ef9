"""From trajectory records to padded tensors, and the per-token log-probs of a model on them.

An `Example` is what the learner needs of one trajectory: token ids of the formatted prompt and
of the response, the reward, V_hat of its problem, the data source, and what was recorded with it
(behaviour log-probs, cached reference log-probs, Monte-Carlo targets, policy version).

Token ids and log-probs come from spo_cli.tokens, the one definition shared with the sampler and
PTS: records whose `tokenizer` fingerprint matches the policy's keep their ids; anything else
(offline text, human solutions, another model's samples) is re-tokenised: the prompt formatted
from the problem as the sampler formats it, the response ended with EOS unless it was cut at the
token budget (the EOS rule, spo_cli/tokens.py). Recorded log-probs, reference log-probs and mc
targets of foreign ids are dropped (they are of another tokenisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from spo_cli.errors import BadInput
from spo_cli.judge.outcome import judged_reward


@dataclass
class Example:
    problem_id: str
    prompt_ids: list[int]
    response_ids: list[int]
    reward: float
    v_hat: float
    source: str
    logprobs: list[float] | None = None  # behaviour policy (raw model), per response token
    ref_logprobs: list[float] | None = None  # cached reference log-probs, per response token
    mc: list | None = None  # [[token_index, p_hat, n_rollouts], ...]
    policy_version: int = 0
    record: dict | None = None  # the trajectory it came from (online rollouts are saved)


class Tokenizing:
    """Turns trajectory records into Examples for one policy tokenizer (ids by spo_cli.tokens)."""

    def __init__(self, tokenizer: Any, formatter: Any, fingerprint: str, problems: dict[str, dict] | None,
                 max_len: int):
        from spo_cli.tokens import Tokens

        self.tokens = Tokens(tokenizer, formatter, fingerprint)
        self.problems = problems or {}
        self.max_len = max_len
        self.truncated = 0

    def __call__(self, rec: dict, v_hat: float, source: str | None = None) -> Example:
        reward = judged_reward(rec)
        if reward is None:
            raise BadInput(f"trajectory {rec.get('id')!r} of problem {rec['problem_id']!r} is a judge error "
                           "(reward null): there is nothing to learn from it")
        ids = self.tokens.trajectory(rec, self.problems.get(rec["problem_id"]))
        p_ids, r_ids = ids.prompt_ids, ids.response_ids
        if ids.reused:
            logprobs, ref, mc = rec.get("logprobs"), rec.get("ref_logprobs"), rec.get("mc")
        else:
            logprobs = ref = mc = None  # they belong to another tokenisation
        budget = self.max_len - len(p_ids)
        if budget < 1:
            raise BadInput(f"the prompt of problem {rec['problem_id']} has {len(p_ids)} tokens, "
                           f"more than --max-len {self.max_len}")
        if len(r_ids) > budget:
            # A cut response loses its ending: its reward no longer belongs to the kept tokens
            # exactly, but dropping it would bias the data towards short answers. Keep and count.
            self.truncated += 1
            r_ids = r_ids[:budget]
            logprobs = logprobs[:budget] if logprobs else logprobs
            ref = ref[:budget] if ref else ref
            mc = [m for m in mc if m[0] <= budget] if mc else mc
        return Example(
            problem_id=rec["problem_id"], prompt_ids=p_ids, response_ids=r_ids, reward=float(reward),
            v_hat=float(v_hat), source=source or rec.get("source") or "offline",
            logprobs=list(logprobs) if logprobs is not None and len(logprobs) == len(r_ids) else None,
            ref_logprobs=list(ref) if ref is not None and len(ref) == len(r_ids) else None,
            mc=mc, policy_version=int(rec.get("policy_version") or 0), record=rec,
        )


@dataclass
class Batch:
    """Padded tensors of a list of Examples (right padding; prompt then response in each row).

    input_ids, attention: (B, L); mask: (B, L-1) True where position t+1 is a response token,
    i.e. the layout of `logits[:, :-1]` predicting `input_ids[:, 1:]`.
    """

    examples: list[Example]
    input_ids: Tensor  # (B, L)
    attention: Tensor  # (B, L)
    mask: Tensor  # (B, L-1) bool
    reward: Tensor  # (B,)
    v_hat: Tensor  # (B,)
    ref_logp: Tensor | None  # (B, L-1) cached reference log-probs (when every row has them)
    behaviour_logp: Tensor | None  # (B, L-1) recorded behaviour log-probs (when every row has them)

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())


def _scatter(values: Sequence[Sequence[float]], examples: Sequence[Example], shape: tuple[int, int]) -> Tensor:
    out = torch.zeros(shape, dtype=torch.float32)
    for i, (v, ex) in enumerate(zip(values, examples)):
        start = len(ex.prompt_ids) - 1
        out[i, start:start + len(v)] = torch.tensor(v, dtype=torch.float32)
    return out


def collate(examples: Sequence[Example], pad_id: int, device: torch.device | str = "cpu") -> Batch:
    from spo_cli.tokens import pack

    L = max(len(e.prompt_ids) + len(e.response_ids) for e in examples)
    ids, att, mask = pack([e.prompt_ids for e in examples], [e.response_ids for e in examples], pad_id)
    ref = None
    if all(e.ref_logprobs is not None for e in examples):
        ref = _scatter([e.ref_logprobs for e in examples], examples, (len(examples), L - 1)).to(device)
    beh = None
    if all(e.logprobs is not None for e in examples):
        beh = _scatter([e.logprobs for e in examples], examples, (len(examples), L - 1)).to(device)
    return Batch(
        examples=list(examples), input_ids=ids.to(device), attention=att.to(device), mask=mask.to(device),
        reward=torch.tensor([e.reward for e in examples], dtype=torch.float32, device=device),
        v_hat=torch.tensor([e.v_hat for e in examples], dtype=torch.float32, device=device),
        ref_logp=ref, behaviour_logp=beh,
    )


def token_logprobs(model: Any, batch: Batch, *, with_entropy: bool = False,
                   entropy_rows: int = 2) -> tuple[Tensor, Tensor | None]:
    """log pi(x_t | x_<t) of every next token of the batch, from one forward pass (raw model,
    T = 1, fp32): spo_cli.tokens.forward_logprobs, the same distribution the sampler records.

    -> logp (B, L-1) and, if asked, the detached entropy (R, L-1) of the first R = entropy_rows rows.
    """
    from spo_cli.tokens import forward_logprobs

    return forward_logprobs(model, batch.input_ids, batch.attention, with_entropy=with_entropy,
                            entropy_rows=entropy_rows)
