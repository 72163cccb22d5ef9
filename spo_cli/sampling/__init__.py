"""Sampling trajectories from a model: `spo sample` and the in-process API the trainer calls.

    from spo_cli.sampling import SampleOptions, HFSampler
    sampler = HFSampler(model, tokenizer, SampleOptions(n=4, temperature_range=(0.2, 1.2), top_p=0.95))
    trajectories = sampler.sample(problems)   # list of Trajectory dicts (raw-model logprobs)

Backends: `hf` (transformers; CPU or GPU) and `vllm` (vLLM's engine: run here on its CPU build,
written for its GPU one). Both take the same SampleOptions, write the same records and take new
weights in place (Sampler.load_weights, for rollout workers). base.py says which distribution the
recorded log-probs are of (the raw model's) and how samples are seeded.
"""

from spo_cli.sampling.base import (
    Generation,
    Row,
    SampleOptions,
    Sampler,
    parse_temperature_range,
    sample_seed,
    sample_temperature,
)
from spo_cli.sampling.prompts import PromptFormatter, format_prompt, tokenizer_fingerprint

__all__ = [
    "Generation", "Row", "SampleOptions", "Sampler", "parse_temperature_range", "sample_seed",
    "sample_temperature", "PromptFormatter", "format_prompt", "tokenizer_fingerprint",
    "HFSampler", "VLLMSampler", "make_sampler",
]


def __getattr__(name: str):
    # The backends import torch / vllm: load them only when asked for.
    if name == "HFSampler":
        from spo_cli.sampling.hf import HFSampler

        return HFSampler
    if name == "VLLMSampler":
        from spo_cli.sampling.vllm import VLLMSampler

        return VLLMSampler
    if name == "make_sampler":
        return make_sampler
    raise AttributeError(name)


def make_sampler(backend: str, model_path: str, opts: SampleOptions, *, device: str = "auto",
                 dtype: str = "auto", model_name: str | None = None) -> Sampler:
    """A sampler for a checkpoint directory with the chosen backend ('hf' or 'vllm')."""
    from spo_cli.errors import BadInput

    if backend == "hf":
        from spo_cli.sampling.hf import HFSampler

        return HFSampler.from_pretrained(model_path, opts, device=device, dtype=dtype, model_name=model_name)
    if backend == "vllm":
        from spo_cli.sampling.vllm import VLLMSampler

        return VLLMSampler.from_pretrained(model_path, opts, dtype=dtype, model_name=model_name)
    raise BadInput(f"--backend must be hf or vllm, got {backend!r}")
