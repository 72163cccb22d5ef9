"""spo sample on the built-in benchmark's trained toy model: the prompt format the model was
trained with is the one the sampler produces, the model stops by itself with EOS, and the
behaviour log-probs equal a teacher-forced pass. (The toy model is built once into the cache,
well under a minute, and shared with the rest of the suite.)"""

from __future__ import annotations

from itertools import islice

import pytest
import torch

from spo_cli.sampling import SampleOptions
from spo_cli.sampling.hf import HFSampler
from spo_cli.streams import read_records
from tests.tinymodel_util import one_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def toy():
    from spo_cli.benchmark import ensure_toy

    return ensure_toy()


def test_toy_model_samples_in_its_own_format(toy):
    from spo_cli.benchmark.tinymodel import prompt_ids

    problems = list(islice(read_records(toy.heldout_problems, "problem"), 4))
    s = HFSampler.from_pretrained(str(toy.model_dir), SampleOptions(n=2, temperature=0.4, top_p=0.95, max_new_tokens=256),
                                  device="cpu", dtype="float32")
    recs = s.sample(problems)
    assert len(recs) == 8
    eos = s.tokenizer.eos_token_id
    for p, r in zip([p for p in problems for _ in range(2)], recs):
        assert r["prompt_ids"] == prompt_ids(s.tokenizer, p["prompt"])  # the trained format
        ids = torch.tensor([r["prompt_ids"] + r["response_ids"]])
        with torch.no_grad():
            logp = s.model(ids).logits[0].float().log_softmax(-1)
        P = len(r["prompt_ids"])
        tf = logp[P - 1:-1].gather(1, torch.tensor(r["response_ids"])[:, None]).squeeze(1)
        assert (tf - torch.tensor(r["logprobs"])).abs().max() <= 1e-4
        assert s.tokenizer.eos_token not in r["response"]
    stopped = [r for r in recs if r["finish_reason"] == "stop"]
    assert len(stopped) >= 6 and all(r["response_ids"][-1] == eos for r in stopped)
    assert sum("input()" in r["response"] for r in recs) >= 4  # it writes stdin programs
