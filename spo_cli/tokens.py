"""Text -> token ids -> raw-model log-probs: the one home of this job.

The sampler (spo_cli.sampling), the trainer (spo_cli.train.batching), Pivotal Token Search
(spo_cli.pts) and the tiny reference model's SFT (spo_cli.benchmark.tinymodel) all turn text into
token ids and ask a model for log-probs through this module, so they cannot drift apart.

Prompts. A problem's prompt is formatted by spo_cli.sampling.prompts (format_prompt /
PromptFormatter: template, system message, chat template); nothing else formats or tokenises a
prompt. A recorded prompt text is turned back into ids the way format_prompt tokenised it
(PromptFormatter.ids_of).

Responses: the EOS rule. A response's ids end with the EOS token exactly when the response is
complete and was ended by the model:
- sampled (spo sample, a worker, the trainer's online rollouts, PTS rollouts): the ids are what
  was generated. A sample the model ended with EOS keeps it (with its log-prob); one cut by a stop
  string ends with the token that completed the string; one cut at the token budget
  (finish_reason "length") has no EOS.
- re-tokenised from text (another tokenizer, offline text, human solutions, no ids recorded):
  the text's ids, plus EOS unless the record says the response was cut (finish_reason
  "length"). A complete answer ends, so the policy learns to stop; a truncated generation does
  not teach stopping where another model was cut off. `response_ids(..., complete=...)`.
- PTS: a searched trajectory gets its ids by the same rule (trajectory_ids), so a re-tokenised
  complete response carries EOS and its EOS can be a pivotal token like any other; a prefix
  rollout continues the first k < T of those ids and carries what the sampler generated.

Which ids a trajectory has (trajectory_ids / Tokens.trajectory): the record's own prompt_ids and
response_ids when its `tokenizer` fingerprint is this tokenizer's; else re-tokenised as above
(the prompt formatted from its problem when known, else from the record's `prompt`). Per-token
numbers recorded with the old ids (logprobs, ref_logprobs, mc) belong to another tokenisation;
callers drop them when `reused` is False.

Log-probs. Every log-prob in spo is of the RAW model: log softmax(logits)[x_t] at temperature 1,
no top-p, in fp32 (spo_cli/sampling/base.py says why). `logprobs_at` is that formula, through the
fused cross-entropy kernel; the sampler applies it to one step's logits, `forward_logprobs` to a
teacher-forced batch (the trainer's token_logprobs), and `teacher_forced_logprobs` to (prompt,
response) pairs (HFSampler.score, hence PTS). A teacher-forced pass and the sampler's incremental
pass agree to float rounding (tests/test_tokens.py holds `spo sample`'s records to the trainer's
numbers within 1e-4).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

IGNORE = -100  # target id of positions that predict nothing (cross_entropy's ignore_index)


# ----------------------------------------------------------------------------- ids


def eos_token_ids(*sources: Any) -> set[int]:
    """The EOS ids named by any of `sources` (a model's generation config, its config, a
    tokenizer: anything with `eos_token_id`, an int or a list)."""
    ids: set[int] = set()
    for src in sources:
        v = getattr(src, "eos_token_id", None) if src is not None else None
        if v is not None:
            ids.update([v] if isinstance(v, int) else list(v))
    return ids


def response_ids(tokenizer: Any, text: str, *, complete: bool = True) -> list[int]:
    """Token ids of a response text: its tokens, then EOS when the response is complete (the EOS
    rule above). No special tokens are added at the start."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if complete and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids


def is_complete(rec: dict) -> bool:
    """Did the recorded response end on its own (not cut at the token budget)?"""
    return rec.get("finish_reason") != "length"


def decode_response(tokenizer: Any, ids: Sequence[int]) -> str:
    """Response text of token ids: special tokens (EOS) left out, spaces untouched."""
    return tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)


def has_own_ids(rec: dict, fingerprint: str) -> bool:
    """Does the record carry ids of the tokenizer with this fingerprint?"""
    p, r = rec.get("prompt_ids"), rec.get("response_ids")
    return rec.get("tokenizer") == fingerprint and isinstance(p, list) and bool(p) and isinstance(r, list)


@dataclass(frozen=True)
class TrajectoryIds:
    prompt_text: str  # the formatted prompt text the ids are of
    prompt_ids: list[int]
    response_ids: list[int]
    reused: bool  # the record's own ids (same tokenizer); False: re-tokenised


class Tokens:
    """One tokenizer's way of turning trajectories into ids (see the module docstring).

        tokens = Tokens(tokenizer, PromptFormatter(tokenizer))
        t = tokens.trajectory(rec, problem)        # TrajectoryIds
        text, ids = tokens.prompt(problem)         # formatted prompt (memoised by problem id)
    """

    def __init__(self, tokenizer: Any, formatter: Any | None = None, fingerprint: str | None = None):
        from spo_cli.sampling.prompts import PromptFormatter, tokenizer_fingerprint

        self.tokenizer = tokenizer
        self.formatter = formatter if formatter is not None else PromptFormatter(tokenizer)
        self.fingerprint = fingerprint if fingerprint is not None else tokenizer_fingerprint(tokenizer)
        self._prompts: dict[str, tuple[str, list[int]]] = {}

    def prompt(self, problem: dict) -> tuple[str, list[int]]:
        """(text, ids) of the problem's formatted prompt; memoised by problem id."""
        pid = problem.get("id")
        hit = self._prompts.get(pid) if isinstance(pid, str) else None
        if hit is None:
            hit = self.formatter(problem)
            if isinstance(pid, str):
                self._prompts[pid] = hit
        return hit[0], list(hit[1])

    def response(self, text: str, *, complete: bool = True) -> list[int]:
        return response_ids(self.tokenizer, text, complete=complete)

    def trajectory(self, rec: dict, problem: dict | None = None) -> TrajectoryIds:
        """The ids of a trajectory record for this tokenizer: its own when they are this
        tokenizer's, else re-tokenised (prompt from `problem` when given, else from the record's
        `prompt`: messages are formatted, a text is the already formatted prompt)."""
        if has_own_ids(rec, self.fingerprint):
            text = rec.get("prompt")
            if not isinstance(text, str):
                text = self.prompt(problem)[0] if problem is not None else \
                    self.formatter({"id": rec.get("problem_id"), "prompt": text})[0]
            return TrajectoryIds(text, list(rec["prompt_ids"]), list(rec["response_ids"]), True)
        if problem is not None:
            text, p_ids = self.prompt(problem)
        elif isinstance(rec.get("prompt"), list):
            text, p_ids = self.formatter({"id": rec.get("problem_id"), "prompt": rec["prompt"]})
        else:
            text = rec.get("prompt") or ""
            p_ids = self.formatter.ids_of(text)
        return TrajectoryIds(text, list(p_ids), self.response(rec.get("response") or "",
                                                              complete=is_complete(rec)), False)


# ----------------------------------------------------------------------------- log-probs


def logprobs_at(logits: Tensor, targets: Tensor) -> Tensor:
    """log softmax(logits)[target] of the raw model, in fp32, through the fused cross-entropy
    kernel (no log-prob tensor of the vocabulary's size, and torch's cheapest backward for it).
    Targets equal to IGNORE give 0.

    logits (..., V), targets (...) -> (...)
    """
    if logits.dtype != torch.float32:
        logits = logits.float()
    flat = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             reduction="none", ignore_index=IGNORE)
    return -flat.view_as(targets)


def forward_logprobs(model: Any, input_ids: Tensor, attention: Tensor, *, with_entropy: bool = False,
                     entropy_rows: int = 2) -> tuple[Tensor, Tensor | None]:
    """log pi(x_t | x_<t) of every next token of a teacher-forced batch, from one forward pass.

    input_ids, attention (B, L) -> logp (B, L-1): position t predicts token t+1; and, if asked,
    the entropy of the next-token distribution (R, L-1) of the first R = entropy_rows rows,
    detached: a metric, estimated on a few rows because a full-vocab pass over the whole batch
    costs as much as the loss itself.
    """
    out = model(input_ids=input_ids, attention_mask=attention, use_cache=False)
    logits = out.logits  # (B, L, V), contiguous: flattening it is a view, not a copy
    if logits.dtype != torch.float32:
        logits = logits.float()
    # The last position predicts nothing (ignored) and is dropped.
    target = torch.nn.functional.pad(input_ids[:, 1:], (0, 1), value=IGNORE)  # (B, L)
    logp = logprobs_at(logits, target)[:, :-1]  # (B, L-1)
    ent = None
    if with_entropy:
        with torch.no_grad():
            few = logits[:entropy_rows, :-1].detach()  # (R, L-1, V)
            logp_few = torch.log_softmax(few, dim=-1)
            ent = -(logp_few.exp() * logp_few).sum(-1)  # (R, L-1)
    return logp, ent


def pack(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]],
         pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """Prompt + response of each row, right-padded: the layout of every teacher-forced batch.

    -> input_ids (B, L) long, attention (B, L) long, mask (B, L-1) bool: True where position t
    predicts a response token (t + 1 is in the response), i.e. the layout of forward_logprobs.
    """
    lengths = [len(p) + len(r) for p, r in zip(prompts, responses)]
    B, L = len(lengths), max(lengths)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    att = torch.zeros((B, L), dtype=torch.long)
    mask = torch.zeros((B, L - 1), dtype=torch.bool)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        if not p:
            raise ValueError(f"row {i}: a sequence needs at least one prompt token to predict from")
        seq = list(p) + list(r)
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        att[i, : len(seq)] = 1
        mask[i, len(p) - 1: len(p) - 1 + len(r)] = True
    return ids, att, mask


@contextmanager
def eval_mode(model: torch.nn.Module):
    """Eval mode (no dropout) for the duration; the trainer's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextmanager
def inference(model: torch.nn.Module):
    """Eval mode without gradients: torch.inference_mode(), except for a model sharded by FSDP2
    (spo_cli/train/processes.py), whose gathered parameters live in buffers it reuses when it
    trains; made in inference mode they could not be written again. That one gets no_grad()."""
    from torch.distributed.fsdp import FSDPModule

    grad_off = torch.no_grad() if isinstance(model, FSDPModule) else torch.inference_mode()
    with grad_off, eval_mode(model):
        yield


def teacher_forced_logprobs(model: Any, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, pad_id: int = 0,
          batch_size: int = 16) -> list[list[float]]:
    """Teacher-forced raw log-probs of each response token, for (prompt_ids, response_ids) pairs:
    one list per pair (empty for an empty response). Batched, in eval mode, without gradients."""
    dev = next(model.parameters()).device
    out: list[list[float]] = []
    with inference(model):
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            ids, att, mask = pack([p for p, _ in chunk], [r for _, r in chunk], pad_id)
            logp, _ = forward_logprobs(model, ids.to(dev), att.to(dev))  # (b, L-1)
            logp = logp.cpu()
            for i in range(len(chunk)):
                out.append(logp[i][mask[i]].tolist())
    return out
