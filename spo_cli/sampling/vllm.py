"""The `vllm` backend: the same options and records as `hf`, on vLLM's offline engine (GPU).

UNVERIFIED: vLLM is not installed where this was written (no GPU). It is written against vLLM's
public API (`vllm.LLM`, `SamplingParams`, `RequestOutput`) and its mapping from vLLM's outputs to
our records is unit-tested with stand-in objects (tests/test_sample_vllm.py); run it on a GPU
(and compare its logprobs with a teacher-forced pass, as the hf tests do) before trusting it.

How it maps onto vLLM:
- one request per sample (SamplingParams n=1) with the sample's own seed and temperature from
  base.py, so a sample is the same whatever else is in the batch, a per-sample random temperature
  needs nothing special, and vLLM's prefix cache shares the prompt between a problem's n samples;
- prompts go in as token ids (`{"prompt_token_ids": ids}`), formatted exactly as for `hf`;
- `logprobs=0` asks for the sampled token's log-prob only; `include_stop_str_in_output=True`
  keeps the token that completes a stop string, like `hf`; the response text is decoded from
  the token ids with our tokenizer (EOS kept in the ids, not in the text), like `hf`;
- which distribution: vLLM's V1 engine has `logprobs_mode` (vLLM >= 0.10.1): "raw_logprobs"
  (its default) is log_softmax of the model's logits before temperature, penalties, top-k/top-p,
  exactly our definition (base.py); "processed_logprobs" would be of the temperature/top-p-shaped
  distribution instead. We ask for "raw_logprobs" explicitly and refuse a vLLM that cannot take
  it, because older engines (V0) reported log-probs after temperature scaling.
- In bf16 the engine's logits differ from an fp32 teacher-forced pass by bf16 rounding, as any
  bf16 sampler's would.
"""

from __future__ import annotations

from typing import Any, Sequence

from spo_cli.errors import SpoError
from spo_cli.sampling.base import Generation, Row, Sampler, SampleOptions

LOGPROBS_MODE = "raw_logprobs"


def _entry_logprob(entry: Any) -> float:
    """A vLLM Logprob object (has .logprob) or a bare float."""
    return float(getattr(entry, "logprob", entry))


def generation_from_output(request_output: Any) -> Generation:
    """Our Generation from one vLLM RequestOutput of an n=1 request.

    Reads outputs[0].token_ids, .logprobs (one mapping token id -> Logprob per generated token;
    with logprobs=0 it holds just the sampled token) and .finish_reason ("stop" or "length").
    """
    outs = getattr(request_output, "outputs", None)
    if not outs:
        raise SpoError(f"vLLM returned no completion for request {getattr(request_output, 'request_id', '?')}")
    comp = outs[0]
    ids = [int(t) for t in comp.token_ids]
    if comp.logprobs is None:
        raise SpoError("vLLM returned no logprobs (SamplingParams(logprobs=0) was not honoured)")
    positions = list(comp.logprobs)
    if len(positions) != len(ids):
        raise SpoError(f"vLLM returned {len(positions)} logprob entries for {len(ids)} tokens")
    lps = []
    for step, (entry, tok) in enumerate(zip(positions, ids)):
        try:
            lps.append(_entry_logprob(entry[tok]))
        except (KeyError, IndexError, TypeError):
            raise SpoError(f"vLLM did not report the sampled token's logprob at step {step}") from None
    reason = "length" if comp.finish_reason == "length" else "stop"
    return Generation(ids, lps, reason, meta={"stop_reason": getattr(comp, "stop_reason", None)})


class VLLMSampler(Sampler):
    """Sampling with a `vllm.LLM` (build one with from_pretrained, or pass your own, created
    with logprobs_mode="raw_logprobs")."""

    backend = "vllm"

    def __init__(self, llm: Any, tokenizer: Any, opts: SampleOptions | None = None, *,
                 model_name: str | None = None, eos_ids: Sequence[int] = ()):
        super().__init__(tokenizer, opts, model_name=model_name)
        self.llm = llm
        self.eos = sorted(set(eos_ids))

    @classmethod
    def from_pretrained(cls, path: str, opts: SampleOptions | None = None, *, dtype: str = "auto",
                        model_name: str | None = None, **engine_kwargs: Any) -> "VLLMSampler":
        try:
            import vllm
        except ImportError:
            raise SpoError("--backend vllm needs vLLM (pip install 'spo-cli[vllm]', on a GPU machine)") from None
        from transformers import AutoTokenizer, GenerationConfig

        opts = opts or SampleOptions()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        kwargs = {"model": str(path), "tokenizer": str(path), "seed": opts.seed,
                  "dtype": {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(dtype, dtype),
                  "logprobs_mode": LOGPROBS_MODE, **engine_kwargs}
        try:
            llm = vllm.LLM(**kwargs)
        except TypeError as e:
            if "logprobs_mode" in str(e):
                raise SpoError(f"this vLLM ({getattr(vllm, '__version__', '?')}) has no logprobs_mode; "
                               "vLLM >= 0.10.1 is needed to record raw-model log-probs") from None
            raise
        from spo_cli.tokens import eos_token_ids

        try:
            gc = GenerationConfig.from_pretrained(path, local_files_only=True)
        except OSError:
            gc = None
        eos = eos_token_ids(gc, tokenizer)
        return cls(llm, tokenizer, opts, model_name=model_name or str(path), eos_ids=sorted(eos))

    def sampling_params(self, row: Row) -> dict:
        """The SamplingParams arguments of a row (a dict, so it is testable without vLLM)."""
        o = self.opts
        return {
            "n": 1,
            "temperature": row.temperature,
            "top_p": o.top_p,
            "seed": row.seed,
            "max_tokens": o.max_new_tokens,
            "stop": list(o.stop) or None,
            "stop_token_ids": list(self.eos) or None,
            "include_stop_str_in_output": True,
            "logprobs": 0,
            "skip_special_tokens": True,
        }

    def _generate(self, rows: Sequence[Row]) -> list[Generation]:
        from vllm import SamplingParams

        prompts = [{"prompt_token_ids": list(r.prompt_ids)} for r in rows]
        params = [SamplingParams(**self.sampling_params(r)) for r in rows]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        if len(outputs) != len(rows):
            raise SpoError(f"vLLM returned {len(outputs)} outputs for {len(rows)} requests")
        return [generation_from_output(o) for o in outputs]
