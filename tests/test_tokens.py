"""spo_cli.tokens, the one home of text -> token ids -> raw-model log-probs: each function against a
plain loop or the rule it states, the EOS rule, fingerprint reuse, PTS and the trainer agreeing on
the ids of a trajectory, and the promise of spo_cli/sampling/base.py: the log-probs `spo sample`
records equal the trainer's (Tokenizing + collate + token_logprobs) on the same records.

Models: the tiny random Llama of tests/tinymodel_util.py, and the toy benchmark model (trained,
so its samples end with EOS as well as at the token budget)."""

from __future__ import annotations

import orjson
import pytest
import torch
from typer.testing import CliRunner

from spo_cli.cli import app
from spo_cli.sampling import SampleOptions
from spo_cli.sampling.hf import HFSampler, load_model
from spo_cli.sampling.prompts import PromptFormatter, format_prompt, tokenizer_fingerprint
from spo_cli.schema import new_trajectory
from spo_cli.tokens import (
    IGNORE,
    Tokens,
    decode_response,
    eos_token_ids,
    forward_logprobs,
    is_complete,
    logprobs_at,
    pack,
    response_ids,
    teacher_forced_logprobs,
)
from spo_cli.train.batching import Tokenizing, collate, token_logprobs
from tests.tinymodel_util import build_tiny_model, build_tiny_tokenizer, one_thread  # noqa: F401 (autouse)

PROBLEMS = [
    {"id": "add", "prompt": "Add two numbers.", "tests": []},
    {"id": "rev", "prompt": "Reverse a string, then print it twice.", "tests": []},
    {"id": "max", "prompt": "Given an array of n numbers, output the maximum and the minimum.", "tests": []},
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    model, tok = load_model(str(path), device="cpu", dtype="float32")
    return path, model, tok


def loop_logprobs(model, seq: list[int]) -> list[float]:
    """log pi(seq[t+1] | seq[:t+1]) for every t, one unpadded forward pass per position."""
    out = []
    with torch.no_grad():
        for t in range(len(seq) - 1):
            logits = model(torch.tensor([seq[: t + 1]])).logits[0, -1].double()
            out.append(torch.log_softmax(logits, -1)[seq[t + 1]].item())
    return out


# ----------------------------------------------------------------------------- log-probs


def test_logprobs_at_is_log_softmax_at_the_target():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 40, generator=g) * 3  # (B, L, V)
    targets = torch.randint(40, (3, 5), generator=g)
    targets[1, 2] = IGNORE
    got = logprobs_at(logits, targets)
    for b in range(3):
        for t in range(5):
            want = 0.0 if targets[b, t] == IGNORE else torch.log_softmax(logits[b, t].double(), -1)[targets[b, t]].item()
            assert got[b, t].item() == pytest.approx(want, abs=1e-5)
    assert got.dtype == torch.float32
    # bf16 logits are computed in fp32 (the same numbers as their fp32 upcast)
    half = logits.bfloat16()
    assert torch.equal(logprobs_at(half, targets), logprobs_at(half.float(), targets))
    # one step of a sampler: (B, V) logits, (B,) tokens
    assert torch.allclose(logprobs_at(logits[:, 0], targets[:, 0]), got[:, 0])


def test_pack_layout():
    ids, att, mask = pack([[1, 2, 3], [4]], [[5, 6], [7, 8, 9]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 5, 6], [4, 7, 8, 9, 0]]
    assert att.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    # mask[t]: position t predicts a response token
    assert mask.tolist() == [[False, False, True, True], [True, True, True, False]]
    with pytest.raises(ValueError, match="prompt token"):
        pack([[]], [[1]], pad_id=0)


def test_forward_logprobs_on_a_padded_batch_equals_a_loop(tiny):
    _, model, _ = tiny
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(3, 300, (n,), generator=g).tolist() for n in (9, 4, 7)]
    ids, att, _ = pack([s[:2] for s in seqs], [s[2:] for s in seqs], pad_id=2)
    with torch.no_grad():
        logp, ent = forward_logprobs(model, ids, att, with_entropy=True, entropy_rows=2)
    assert logp.shape == (3, 8) and ent.shape == (2, 8)
    for i, s in enumerate(seqs):
        want = loop_logprobs(model, s)
        assert logp[i, : len(want)].tolist() == pytest.approx(want, abs=1e-4)
    with torch.no_grad():
        p = torch.softmax(model(torch.tensor([seqs[0]])).logits[0, :-1].double(), -1)
    assert ent[0].tolist() == pytest.approx((-(p * p.log()).sum(-1)).tolist(), abs=1e-4)


def test_teacher_forced_logprobs_batches_and_restores_train_mode(tiny):
    _, model, _ = tiny
    pairs = [([1, 10, 11], [12, 13, 14, 2]), ([1, 20], []), ([1, 30, 31, 32, 33], [34])]
    model.train()
    try:
        got = teacher_forced_logprobs(model, pairs, pad_id=0, batch_size=2)
        assert model.training
    finally:
        model.eval()
    assert [len(x) for x in got] == [4, 0, 1]
    for (p, r), lps in zip(pairs, got):
        assert lps == pytest.approx(loop_logprobs(model, p + r)[len(p) - 1:], abs=1e-4)


# ----------------------------------------------------------------------------- ids and the EOS rule


def test_eos_rule_for_text():
    tok = build_tiny_tokenizer()
    body = tok("print(1)\n", add_special_tokens=False)["input_ids"]
    assert response_ids(tok, "print(1)\n") == body + [tok.eos_token_id]  # complete: ends with EOS
    assert response_ids(tok, "print(1)\n", complete=False) == body  # cut at the budget: no EOS
    assert decode_response(tok, response_ids(tok, "print(1)\n")) == "print(1)\n"
    assert is_complete({}) and is_complete({"finish_reason": "stop"})
    assert not is_complete({"finish_reason": "length"})


def test_eos_ids_from_every_source():
    class C:
        def __init__(self, v):
            self.eos_token_id = v

    assert eos_token_ids(C(2), C([2, 7]), None, C(None)) == {2, 7}


def test_trajectory_ids_reuse_or_retokenise(tiny):
    _, _, tok = tiny
    fmt = PromptFormatter(tok)
    tokens = Tokens(tok, fmt)
    assert tokens.fingerprint == tokenizer_fingerprint(tok)
    problem = PROBLEMS[0]
    text, p_ids = format_prompt(problem, tok)
    # the same tokenizer: the record's ids, whatever they are (a sample cut without EOS stays so)
    own = new_trajectory(problem_id="add", prompt=text, response="x", prompt_ids=p_ids,
                         response_ids=[40, 41], tokenizer=tokens.fingerprint, finish_reason="length")
    t = tokens.trajectory(own, problem)
    assert t.reused and t.prompt_ids == p_ids and t.response_ids == [40, 41] and t.prompt_text == text
    # another tokenizer (or none): re-tokenised; the prompt as the sampler formats it, EOS appended
    foreign = {**own, "tokenizer": "tok-0000000000000000", "response": "print(1)\n", "finish_reason": None}
    t = tokens.trajectory(foreign, problem)
    assert not t.reused and t.prompt_ids == p_ids and t.prompt_text == text
    assert t.response_ids == response_ids(tok, "print(1)\n") and t.response_ids[-1] == tok.eos_token_id
    # ... but not to a generation that was cut at its budget
    t = tokens.trajectory({**foreign, "finish_reason": "length"}, problem)
    assert t.response_ids == response_ids(tok, "print(1)\n", complete=False)
    # without the problem: the record's formatted prompt text, tokenised as format_prompt did it
    # (the plain template's ids start with BOS, which its text does not show)
    t = tokens.trajectory(foreign)
    assert t.prompt_ids == p_ids and p_ids[0] == tok.bos_token_id
    # chat messages are formatted
    t = tokens.trajectory({**foreign, "prompt": [{"role": "user", "content": problem["prompt"]}]})
    assert t.prompt_ids == p_ids


def test_tokenizing_keeps_own_numbers_and_drops_foreign_ones(tiny):
    _, _, tok = tiny
    fp = tokenizer_fingerprint(tok)
    text, p_ids = format_prompt(PROBLEMS[0], tok)
    rec = new_trajectory(problem_id="add", prompt=text, response="print(1)\n", prompt_ids=p_ids,
                         response_ids=[40, 41, 2], tokenizer=fp, logprobs=[-1.0, -2.0, -3.0],
                         ref_logprobs=[-1.5, -2.5, -3.5], mc=[[1, 0.5, 4]], reward=1.0, verdict="OK")
    tz = Tokenizing(tok, PromptFormatter(tok), fp, {"add": PROBLEMS[0]}, max_len=512)
    ex = tz(rec, -0.3)
    assert ex.response_ids == [40, 41, 2] and ex.logprobs == [-1.0, -2.0, -3.0] and ex.mc == [[1, 0.5, 4]]
    ex = tz({**rec, "tokenizer": "tok-other"}, -0.3)
    assert ex.response_ids == response_ids(tok, "print(1)\n") and ex.prompt_ids == p_ids
    assert ex.logprobs is None and ex.ref_logprobs is None and ex.mc is None


def test_pts_and_the_trainer_give_a_trajectory_the_same_ids(tiny):
    """A human solution searched by PTS is stamped with the reference tokenizer's ids; the trainer
    keeps them. They must be the ids the trainer gives the same text itself (EOS included)."""
    from spo_cli.pts import PrefixRollouts, PTSOptions, pivotal_token_search

    _, model, tok = tiny
    problem = {"id": "dbl", "prompt": "Read n, print 2n.", "tests": [{"input": "3\n", "output": "6\n"}]}
    human = new_trajectory(problem_id="dbl", prompt=problem["prompt"], response="n = int(input())\nprint(2 * n)\n",
                           source="human", reward=1.0, verdict="OK")

    def judge(trajs, problems_by_id):  # a stand-in: only the ids matter here
        return [{**t, "reward": 0.0, "verdict": "WA"} for t in trajs]

    rollouts = PrefixRollouts(HFSampler(model, tok, SampleOptions(max_new_tokens=4)))
    (searched,) = pivotal_token_search([human], {"dbl": problem}, rollouts, judge,
                                       PTSOptions(n_rollouts=1, budget=4, p_range=None, max_new_tokens=4))
    assert searched["pts"]["retokenized"] and searched["tokenizer"] == tokenizer_fingerprint(tok)
    tz = Tokenizing(tok, PromptFormatter(tok), tokenizer_fingerprint(tok), {"dbl": problem}, max_len=512)
    kept, fresh = tz(searched, 0.0), tz(human, 0.0)
    assert kept.prompt_ids == fresh.prompt_ids
    assert kept.response_ids == fresh.response_ids and kept.response_ids[-1] == tok.eos_token_id
    assert kept.ref_logprobs == pytest.approx(teacher_forced_logprobs(model, [(fresh.prompt_ids, fresh.response_ids)])[0])


# ----------------------------------------------------------------------------- the promise




@pytest.mark.parametrize("args", [
    ["--temperature", "1.0"],
    ["--temperature", "0.4", "--top-p", "0.95"],
    ["--temperature-range", "0.2,1.2", "--top-p", "0.5"],
])
def test_spo_sample_logprobs_equal_the_trainers(toy, args):
    model_dir, problems_file, problems, model, tok = toy
    r = CliRunner().invoke(app, ["sample", "-m", model_dir, "-p", problems_file, "-n", "3", "--max-new-tokens", "40",
                                 "--seed", "5", "--batch-size", "5", "--device", "cpu", "--dtype", "float32", *args])
    assert r.exit_code == 0, r.stderr
    recs = [{**orjson.loads(line), "reward": 1.0} for line in r.stdout.splitlines()]
    assert len(recs) == 18
    # both ways a sample ends occur: EOS (kept, with its log-prob) and the token budget
    ends = {x["finish_reason"] for x in recs}
    assert ends == {"stop", "length"}, ends
    assert all(x["response_ids"][-1] == tok.eos_token_id for x in recs if x["finish_reason"] == "stop")
    # the trainer's view of the same records, in one right-padded batch
    fp = tokenizer_fingerprint(tok)
    tz = Tokenizing(tok, PromptFormatter(tok), fp, {p["id"]: p for p in problems}, max_len=512)
    examples = [tz(x, 0.0) for x in recs]
    assert all(e.response_ids == x["response_ids"] and e.prompt_ids == x["prompt_ids"] for e, x in zip(examples, recs))
    batch = collate(examples, tok.pad_token_id)
    with torch.no_grad():
        logp, _ = token_logprobs(model, batch)
    assert batch.behaviour_logp is not None  # every record's own log-probs were kept
    diff = (logp - batch.behaviour_logp)[batch.mask].abs()
    assert diff.numel() == sum(len(x["response_ids"]) for x in recs)
    assert diff.max().item() <= 1e-4
