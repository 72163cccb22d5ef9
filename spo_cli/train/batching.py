"""From trajectory records to padded tensors, and the per-token log-probs of a model on them.

An `Example` is what the learner needs of one trajectory: token ids of the formatted prompt and
of the response, the reward, V_hat of its problem, the data source, and what was recorded with it
(behaviour log-probs, cached reference log-probs, Monte-Carlo targets, policy version).

Tokenisation follows the sampler exactly: records whose `tokenizer` fingerprint matches the
policy's keep their ids; anything else (offline text, human solutions, another model's samples)
is re-tokenised: the prompt is formatted from the problem with the same PromptFormatter the
sampler uses, and the response is tokenised and ended with EOS, so the policy learns to stop.
Recorded log-probs of foreign ids are dropped (they are of another tokenisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from spo_cli.errors import BadInput


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
    """Turns trajectory records into Examples for one policy tokenizer."""

    def __init__(self, tokenizer: Any, formatter: Any, fingerprint: str, problems: dict[str, dict] | None,
                 max_len: int):
        self.tokenizer = tokenizer
        self.formatter = formatter
        self.fingerprint = fingerprint
        self.problems = problems or {}
        self.max_len = max_len
        self.eos = tokenizer.eos_token_id
        self._prompt_cache: dict[str, list[int]] = {}
        self.truncated = 0

    def prompt_ids(self, rec: dict) -> list[int]:
        pid = rec["problem_id"]
        problem = self.problems.get(pid)
        if problem is not None:
            ids = self._prompt_cache.get(pid)
            if ids is None:
                ids = self.formatter(problem)[1]
                self._prompt_cache[pid] = ids
            return ids
        prompt = rec["prompt"]
        if isinstance(prompt, list):
            return list(self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True))
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def __call__(self, rec: dict, v_hat: float, source: str | None = None) -> Example:
        reward = rec.get("reward")
        if reward is None:
            raise BadInput(f"trajectory {rec.get('id')} of problem {rec['problem_id']} is not judged (reward null)")
        same = rec.get("tokenizer") == self.fingerprint and rec.get("response_ids") is not None \
            and rec.get("prompt_ids") is not None
        if same:
            p_ids, r_ids = list(rec["prompt_ids"]), list(rec["response_ids"])
            logprobs, ref = rec.get("logprobs"), rec.get("ref_logprobs")
            mc = rec.get("mc")
        else:
            p_ids = self.prompt_ids(rec)
            r_ids = list(self.tokenizer(rec["response"], add_special_tokens=False)["input_ids"])
            if self.eos is not None:
                r_ids.append(self.eos)
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
    lengths = [len(e.prompt_ids) + len(e.response_ids) for e in examples]
    L = max(lengths)
    ids = torch.full((len(examples), L), pad_id, dtype=torch.long)
    att = torch.zeros((len(examples), L), dtype=torch.long)
    mask = torch.zeros((len(examples), L - 1), dtype=torch.bool)
    for i, e in enumerate(examples):
        seq = e.prompt_ids + e.response_ids
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        att[i, : len(seq)] = 1
        p = len(e.prompt_ids)
        mask[i, p - 1: p - 1 + len(e.response_ids)] = True
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
    """log pi(x_t | x_<t) of every next token, from one forward pass (raw model, T = 1, fp32).

    -> logp (B, L-1) and, if asked, the entropy of the next-token distribution (R, L-1) of the
    first R = entropy_rows rows, detached: a metric, estimated on a few rows because a full-vocab
    pass over the whole batch costs as much as the loss itself.
    This is the same distribution the sampler records (spo_cli/sampling/base.py).
    """
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention, use_cache=False)
    logits = out.logits  # (B, L, V), contiguous: flattening it is a view, not a copy
    if logits.dtype != torch.float32:
        logits = logits.float()
    # log_softmax at the taken token only, through the fused cross-entropy kernel (no (B, L, V)
    # log-prob tensor, and the cheapest backward torch has for it). Position t predicts token
    # t+1; the last position predicts nothing (ignored) and is dropped.
    target = torch.nn.functional.pad(batch.input_ids[:, 1:], (0, 1), value=-100)  # (B, L)
    logp = -torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(),
                                              reduction="none").view_as(target)[:, :-1]
    logits = logits[:, :-1]
    ent = None
    if with_entropy:
        with torch.no_grad():
            few = logits[:entropy_rows].detach()  # (R, L-1, V)
            logp_few = torch.log_softmax(few, dim=-1)
            ent = -(logp_few.exp() * logp_few).sum(-1)  # (R, L-1)
    return logp, ent
