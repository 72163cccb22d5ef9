"""The `hf` backend: batched sampling with a transformers causal LM, on CPU or GPU.

Its own decoding loop rather than `model.generate`, because it needs three things generate does
not give: a temperature per row (online SPO draws one per sample), a random generator per row
(so a sample does not depend on its batch, see base.py), and the raw model's log-prob of every
sampled token without keeping the logits of every step. The loop itself is the standard one:

- rows are sorted by prompt length (longest first) and cut into batches of `batch_size`, so
  little compute goes to padding; prompts are LEFT-padded, with position ids counted from each
  row's first real token and an attention mask over the padding;
- the prompt of a batch is run once per distinct prompt (the n samples of one problem share it)
  and the KV cache is then copied out to the rows;
- each step: raw log-probs = log_softmax(logits) in fp32 (recorded), then temperature and top-p
  shape the distribution the token is drawn from (Gumbel-max with each row's generator;
  temperature 0 = argmax);
- a row ends on an EOS token (the model's generation config and the tokenizer's; kept in
  response_ids, with its log-prob), on a stop string (the token that completes it is kept), or at
  max_new_tokens; finished rows leave the batch (their KV cache rows are dropped).

The recorded `logprobs` are of the raw model (temperature 1, no top-p), see base.py; a
teacher-forced forward pass of the same model on prompt_ids + response_ids gives the same numbers
(tests/test_sample.py holds them to 1e-4 in fp32, tests/test_tokens.py the trainer's).

Departure from the paper: none in substance; the paper does not describe its sampler.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from spo_cli.errors import BadInput
from spo_cli.sampling.base import Generation, Row, SampleOptions, Sampler
from spo_cli.tokens import decode_response, eos_token_ids, inference, logprobs_at, teacher_forced_logprobs

# ----------------------------------------------------------------------------- the math
# The recorded log-prob of a drawn token is spo_cli.tokens.logprobs_at (raw model, fp32), the
# same function the trainer's teacher-forced pass uses.


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering: keep the most likely tokens while the probability mass before them
    (in descending order) is below top_p; set the rest to -inf. Always keeps the top token.

    scores (B, V) (temperature-scaled logits) -> (B, V)
    """
    if top_p >= 1.0:
        return scores
    sorted_scores, order = torch.sort(scores, dim=-1, descending=True, stable=True)  # (B, V); ties by index
    probs = torch.softmax(sorted_scores, dim=-1)  # (B, V)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # (B, V)
    drop_sorted = mass_before >= top_p  # (B, V); column 0 has mass 0 < top_p: never dropped
    drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
    return scores.masked_fill(drop, float("-inf"))


def draw_tokens(logits: torch.Tensor, temperature: torch.Tensor, top_p: float,
                generators: Sequence[torch.Generator], noise: torch.Tensor) -> torch.Tensor:
    """One token per row from softmax(logits / T) restricted to the top-p nucleus.

    Gumbel-max: argmax(scores - log E) with E ~ Exp(1) drawn from each row's own generator is an
    exact draw from softmax(scores). Rows with T == 0 take the argmax of the logits.
    logits (B, V) fp32, temperature (B,), noise (>=B, V) scratch -> tokens (B,)
    """
    B = logits.shape[0]
    greedy = temperature <= 0  # (B,)
    scores = logits / temperature.clamp_min(1e-6)[:, None]  # (B, V)
    scores = top_p_filter(scores, top_p)
    e = noise[:B]
    for j, g in enumerate(generators):
        e[j].exponential_(generator=g)
    e.clamp_min_(torch.finfo(e.dtype).tiny)  # E == 0 would give -inf - -inf = nan on masked tokens
    tokens = (scores - e.log()).argmax(dim=-1)  # (B,)
    if bool(greedy.any()):
        tokens = torch.where(greedy, logits.argmax(dim=-1), tokens)
    return tokens


# ----------------------------------------------------------------------------- model plumbing


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise BadInput(f"--dtype must be auto, float32, bfloat16 or float16, got {dtype!r}") from None


def load_model(path: str, *, device: str = "auto", dtype: str = "auto"):
    """(model, tokenizer) from a local Hugging Face checkpoint directory; nothing is downloaded."""
    import os

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not os.path.isdir(path):
        raise BadInput("not a model directory", path=str(path))
    dev = pick_device(device)
    dt = pick_dtype(dtype, dev)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dt, local_files_only=True)
    except (OSError, ValueError) as e:
        raise BadInput(f"cannot load a causal LM and tokenizer: {e}", path=str(path)) from None
    return model.to(dev).eval(), tokenizer


def _new_cache(model: Any):
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # transformers < 4.56
        return DynamicCache()


class HFSampler(Sampler):
    """Sampling with a live transformers model (the trainer calls this in-process):

        sampler = HFSampler(model, tokenizer, SampleOptions(n=4, temperature_range=(0.2, 1.2)))
        trajectories = sampler.sample(problems)          # list of Trajectory dicts
    """

    backend = "hf"

    def __init__(self, model: Any, tokenizer: Any, opts: SampleOptions | None = None, *,
                 model_name: str | None = None):
        model = getattr(model, "module", model)  # DDP / accelerate wrappers
        name = model_name or getattr(model.config, "_name_or_path", None) or type(model).__name__
        super().__init__(tokenizer, opts, model_name=name)
        self.model = model
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        self.eos = eos_token_ids(getattr(model, "generation_config", None), model.config, tokenizer)
        self.max_positions = getattr(model.config, "max_position_embeddings", None)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = pad if pad is not None else (min(self.eos) if self.eos else 0)

    @classmethod
    def from_pretrained(cls, path: str, opts: SampleOptions | None = None, *, device: str = "auto",
                        dtype: str = "auto", model_name: str | None = None) -> HFSampler:
        model, tokenizer = load_model(path, device=device, dtype=dtype)
        return cls(model, tokenizer, opts, model_name=model_name or str(path))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def score(self, prompt_ids: Sequence[int], response_ids: Sequence[int]) -> list[float]:
        """Teacher-forced raw log-probs of the response tokens (the same numbers as sampling)."""
        return teacher_forced_logprobs(self.model, [(prompt_ids, response_ids)], pad_id=self.pad_id)[0]

    # ------------------------------------------------------------------------- new weights
    def weights_spec(self) -> dict:
        from spo_cli.serve.weights import spec_of

        return spec_of(self.model.state_dict())

    def load_weights(self, tensors: dict) -> None:
        from spo_cli.serve.weights import apply

        apply(self.model, tensors)

    @property
    def weights_dtype(self) -> str:
        return str(next(iter(self.model.parameters())).dtype).replace("torch.", "")

    # ------------------------------------------------------------------------- decoding
    def _generate(self, rows: Sequence[Row]) -> list[Generation]:
        budgets = [self.row_budget(r) for r in rows]
        # Longest prompts first; ties keep input order, so the n samples of a problem stay together.
        order = sorted(range(len(rows)), key=lambda i: (-len(rows[i].prompt_ids), i))
        out: list[Generation | None] = [None] * len(rows)
        bs = self.opts.batch_size
        with inference(self.model):
            for start in range(0, len(order), bs):
                idx = order[start:start + bs]
                gens = self._generate_batch([rows[i] for i in idx], [budgets[i] for i in idx])
                for i, g in zip(idx, gens):
                    out[i] = g
        return out  # type: ignore[return-value]

    def _forward(self, ids, mask, pos, cache, keep_last: bool):
        kw = {self._cache_kw: cache, "use_cache": True}
        if keep_last and self._keep_kw:
            kw[self._keep_kw] = 1
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, **kw).logits
        return logits[:, -1, :].float()  # (B, V)

    def _stopped(self, ids: list[int], window: int) -> bool:
        """Does a stop string end in the last `window` tokens? (Checked after every token, so a
        stop string that ended earlier was already caught.)"""
        tail = decode_response(self.tokenizer, ids[-window:])
        return any(s in tail for s in self.opts.stop)

    def _generate_batch(self, rows: Sequence[Row], budgets: Sequence[int]) -> list[Generation]:
        dev = self.device
        # Distinct prompts of the batch, prefilled once each.
        slot: dict[tuple[int, ...], int] = {}
        src = [slot.setdefault(tuple(r.prompt_ids), len(slot)) for r in rows]
        prompts = list(slot)
        U, P = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((U, P), self.pad_id, dtype=torch.long)
        mask = torch.zeros((U, P), dtype=torch.long)
        for u, p in enumerate(prompts):
            ids[u, P - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[u, P - len(p):] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        pos = (mask.cumsum(-1) - 1).clamp_min(0)  # (U, P): positions count real tokens only
        cache = _new_cache(self.model)
        logits = self._forward(ids, mask, pos, cache, keep_last=True)  # (U, V)
        if src != list(range(U)):
            sel = torch.tensor(src, device=dev)
            cache.reorder_cache(sel)
            logits, mask, pos = logits[sel], mask[sel], pos[sel]
        last_pos = pos[:, -1]  # (B,)

        B = len(rows)
        temps = torch.tensor([r.temperature for r in rows], dtype=torch.float32, device=dev)
        gens = []
        for r in rows:
            g = torch.Generator(device=dev)
            g.manual_seed(r.seed)
            gens.append(g)
        noise = torch.empty((B, logits.shape[-1]), dtype=torch.float32, device=dev)
        active = list(range(B))  # batch position -> row
        resp: list[list[int]] = [[] for _ in rows]
        lps: list[list[float]] = [[] for _ in rows]
        finish: list[str | None] = [None] * B
        stops = bool(self.opts.stop)
        # Tokens that surely cover the longest stop string: a character is at most 4 byte tokens.
        window = 4 * max((len(s) for s in self.opts.stop), default=0) + 2
        while True:
            tok = draw_tokens(logits, temps, self.opts.top_p, gens, noise)  # (b,)
            lp = logprobs_at(logits, tok)  # (b,)
            keep = []
            for j, (t, l) in enumerate(zip(tok.tolist(), lp.tolist())):
                ri = active[j]
                resp[ri].append(t)
                lps[ri].append(l)
                if t in self.eos or (stops and self._stopped(resp[ri], window)):
                    finish[ri] = "stop"
                elif len(resp[ri]) >= budgets[ri]:
                    finish[ri] = "length"
                else:
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(active):  # drop finished rows from the batch and its KV cache
                sel = torch.tensor(keep, device=dev)
                cache.reorder_cache(sel)
                tok, mask, last_pos, temps = tok[sel], mask[sel], last_pos[sel], temps[sel]
                gens = [gens[j] for j in keep]
                active = [active[j] for j in keep]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            last_pos = last_pos + 1
            logits = self._forward(tok[:, None], mask, last_pos[:, None], cache, keep_last=False)
        return [Generation(resp[i], lps[i], finish[i] or "length") for i in range(B)]
