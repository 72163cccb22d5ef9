"""Code that runs INSIDE vLLM's worker processes: how new policy weights get into a live engine.

vLLM mixes this class into its worker class when the engine is created with
`worker_extension_cls="spo_cli.sampling.vllm_worker.WeightsExtension"` (the mechanism vLLM's RL
examples and TRL's `vllm-serve` use), so its methods can be called from the process that holds
the `vllm.LLM` with `llm.collective_rpc("spo_load_weights", args=(path,))`: every worker (one per
tensor-parallel rank) runs it on its own copy of the model.

`spo_load_weights` streams a safetensors file, one tensor at a time, into the worker's
`reload_weights(weights_iterator=...)`: vLLM's in-place reload, which takes checkpoint (Hugging
Face) names, fuses them as the model needs (q/k/v into qkv_proj, gate/up into gate_up_proj),
shards them for tensor parallelism, re-runs each layer's post-load processing (on CPU: the packed
GEMM weights; on GPU: quantisation, if any) layer by layer, and copies the results into the
tensors the engine already uses (so compiled graphs and CUDA graphs stay valid). The file is read
lazily (memory-mapped), so a worker never holds a second copy of the whole model. The caller
resets the prefix cache afterwards: cached KV blocks were computed with the old weights.

This module imports nothing heavy at import time: it is imported by every vLLM worker.
"""

from __future__ import annotations


def _tensors(path: str):
    """(name, tensor) of a safetensors file, one at a time, on CPU."""
    from safetensors import safe_open

    with safe_open(path, framework="pt", device="cpu") as f:
        for name in f.keys():  # noqa: SIM118 - safe_open is not iterable
            yield name, f.get_tensor(name)


def _not_rotary(record) -> bool:
    """Drop vLLM's "RotaryEmbedding: Failed to load weights" on every reload: a rotary embedding
    holds only its cos/sin cache, computed from the config, which no checkpoint carries (vLLM puts
    the cache back as it was). The same warning about any other layer still shows."""
    return not (record.msg == "%s: Failed to load weights" and record.args == ("RotaryEmbedding",))


class WeightsExtension:
    """Methods added to vLLM's worker class (see the module docstring)."""

    def spo_load_weights(self, path: str) -> int:
        """Load the tensors of the safetensors file `path` (Hugging Face names) into this
        worker's model in place; returns how many tensors the file held."""
        count = 0

        def counted():
            nonlocal count
            for item in _tensors(path):
                count += 1
                yield item

        import inspect
        import logging

        # vLLM's worker passes reload_weights(*args, **kwargs) on to its model runner's (under the
        # engine's config): the runner's signature, where there is one, says whether an iterator
        # is taken.
        reload = getattr(self, "reload_weights", None)
        runner = getattr(getattr(self, "model_runner", None), "reload_weights", None) or reload
        if reload is None or "weights_iterator" not in inspect.signature(runner).parameters:
            # An older vLLM without in-place reload from an iterator: the model's own loader, as
            # TRL's vllm-serve does (right on GPU, where weights are not repacked after loading;
            # not run here).
            self.model_runner.model.load_weights(weights=counted())  # type: ignore[attr-defined]
            return count
        log = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
        log.addFilter(_not_rotary)
        try:
            reload(weights_iterator=counted(), is_checkpoint_format=True)
        finally:
            log.removeFilter(_not_rotary)
        return count
