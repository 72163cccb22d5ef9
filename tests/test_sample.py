"""spo_cli.sampling: the sampling math, the hf backend's log-probs against a teacher-forced pass,
determinism, EOS and stop strings, prompt formatting and the tokenizer fingerprint.

All on a tiny random-weight Llama (tests/tinymodel_util.py), fp32 on CPU."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from spo_cli.errors import BadInput
from spo_cli.sampling import SampleOptions, format_prompt, sample_seed, tokenizer_fingerprint
from spo_cli.sampling.hf import HFSampler, draw_tokens, load_model, top_p_filter
from spo_cli.schema import trajectory_id, validate_trajectory
from spo_cli.tokens import logprobs_at, teacher_forced_logprobs
from tests.tinymodel_util import build_tiny_model, build_tiny_tokenizer, one_thread  # noqa: F401 (autouse)

PROMPTS = [
    "Add two numbers.",
    "Write a program that reads n integers and prints the maximum and the minimum of them.",
    "Reverse a string.",
    "def add(a, b):",
    "Given an array of n numbers, output their sum modulo n.\nInput: n, then the numbers.",
]


def problems(k: int = len(PROMPTS)) -> list[dict]:
    return [{"id": f"p{i}", "prompt": PROMPTS[i % len(PROMPTS)], "tests": []} for i in range(k)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    model, tok = load_model(str(path), device="cpu", dtype="float32")
    return path, model, tok


@pytest.fixture(scope="module")
def tiny_chat(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tinychat") / "model", chat_template=True)
    return load_model(str(path), device="cpu", dtype="float32")


def teacher_forced(model, rec: dict) -> torch.Tensor:
    """log pi(x_t | x_<t) of the response tokens from one unpadded forward pass (spo_cli.tokens,
    itself tested against a loop in tests/test_tokens.py)."""
    return torch.tensor(teacher_forced_logprobs(model, [(rec["prompt_ids"], rec["response_ids"])])[0])


# ----------------------------------------------------------------------------- pure functions


def test_top_p_filter_matches_a_loop():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(6, 40, generator=g) * 2
    scores[0, :3] = 5.0  # ties at the top
    for p in (0.05, 0.3, 0.5, 0.9, 0.999, 1.0):
        got = top_p_filter(scores, p)
        for b in range(scores.shape[0]):
            probs = torch.softmax(scores[b], -1).tolist()
            order = sorted(range(len(probs)), key=lambda i: -scores[b, i].item())
            kept, mass = set(), 0.0
            for i in order:
                if mass >= p and p < 1.0:
                    break
                kept.add(i)
                mass += probs[i]
            for i in range(len(probs)):
                if i in kept:
                    assert got[b, i] == scores[b, i]
                else:
                    assert got[b, i] == float("-inf")


def test_draw_tokens_samples_the_tempered_nucleus():
    # One row per draw, all from one seeded generator: frequencies match softmax(logits/T) on the
    # top-p nucleus (renormalised), and nothing outside the nucleus is ever drawn.
    logits = torch.tensor([2.0, 1.5, 1.0, 0.0, -1.0, -3.0])
    draws = 20000
    for T, p in ((1.0, 1.0), (0.5, 1.0), (1.5, 0.8)):
        g = torch.Generator().manual_seed(7)
        batch = logits.expand(draws, -1).clone()
        tok = draw_tokens(batch, torch.full((draws,), T), p, [g] * draws, torch.empty(draws, 6))
        want = torch.softmax(top_p_filter(logits[None] / T, p), -1)[0]
        freq = torch.bincount(tok, minlength=6).float() / draws
        assert (freq - want).abs().max() < 0.015, (T, p, freq, want)
        assert torch.all(freq[want == 0] == 0)


def test_temperature_zero_is_argmax_and_raw_logprobs():
    logits = torch.randn(4, 30, generator=torch.Generator().manual_seed(3))
    tok = draw_tokens(logits, torch.zeros(4), 0.9, [torch.Generator()] * 4, torch.empty(4, 30))
    assert torch.equal(tok, logits.argmax(-1))
    lp = logprobs_at(logits, tok)  # the log-prob a sampler records for the drawn token
    assert torch.allclose(lp, torch.log_softmax(logits, -1).max(-1).values)


def test_sample_seed_is_a_function_of_seed_problem_and_index():
    assert sample_seed(0, "a", 0) == sample_seed(0, "a", 0)
    assert len({sample_seed(s, p, k) for s in (0, 1) for p in ("a", "b") for k in range(3)}) == 12
    assert 0 <= sample_seed(123, "x", 5) < 2**63


# ----------------------------------------------------------------------------- hf backend


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9), (1.3, 0.5), (0.0, 1.0)])
def test_logprobs_equal_teacher_forced_forward(tiny, temperature, top_p):
    _, model, tok = tiny
    # batch_size 4 with 3 samples of 5 problems: batches mix problems of different prompt
    # lengths (left padding) and split a problem's samples across batches.
    opts = SampleOptions(n=3, temperature=temperature, top_p=top_p, max_new_tokens=24, batch_size=4)
    recs = HFSampler(model, tok, opts).sample(problems())
    assert len(recs) == 15
    worst = 0.0
    for r in recs:
        assert len(r["logprobs"]) == len(r["response_ids"]) >= 1
        worst = max(worst, (teacher_forced(model, r) - torch.tensor(r["logprobs"])).abs().max().item())
    assert worst <= 1e-4


def test_logprobs_are_raw_not_tempered(tiny):
    # At T=0.5, top-p 0.5 the distribution drawn from is much sharper than the model's; the
    # record must carry the model's (raw) log-prob, which is lower than the tempered one.
    _, model, tok = tiny
    opts = SampleOptions(n=2, temperature=0.5, top_p=0.5, max_new_tokens=8)
    r = HFSampler(model, tok, opts).sample(problems(1))[0]
    ids = torch.tensor([r["prompt_ids"] + r["response_ids"]])
    with torch.no_grad():
        logits = model(ids).logits[0, len(r["prompt_ids"]) - 1:-1].float()
    tempered = torch.log_softmax(top_p_filter(logits / 0.5, 0.5), -1)
    tempered = tempered.gather(1, torch.tensor(r["response_ids"])[:, None]).squeeze(1)
    raw = torch.tensor(r["logprobs"])
    assert torch.all(raw < tempered - 1e-3)


def test_temperature_range_draws_per_sample(tiny):
    _, model, tok = tiny
    opts = SampleOptions(n=6, temperature_range=(0.2, 1.2), max_new_tokens=12, batch_size=5)
    recs = HFSampler(model, tok, opts).sample(problems(3))
    temps = [r["sampler"]["temperature"] for r in recs]
    assert all(0.2 <= t <= 1.2 for t in temps)
    assert len(set(temps)) == len(temps)  # one draw per sample
    for r in recs:
        assert (teacher_forced(model, r) - torch.tensor(r["logprobs"])).abs().max() <= 1e-4


def test_same_seed_same_output_and_batching_does_not_matter(tiny):
    _, model, tok = tiny
    base = SampleOptions(n=3, temperature_range=(0.5, 1.5), top_p=0.95, max_new_tokens=16, seed=5)
    a = HFSampler(model, tok, base).sample(problems())
    b = HFSampler(model, tok, base).sample(problems())
    assert [r["response_ids"] for r in a] == [r["response_ids"] for r in b]
    assert [r["logprobs"] for r in a] == [r["logprobs"] for r in b]
    assert [r["id"] for r in a] == [r["id"] for r in b]
    # Another batch size, and fewer problems: each (problem, k) sample is unchanged.
    c = HFSampler(model, tok, base.with_(batch_size=2)).sample(problems()[1:3])
    assert [r["response_ids"] for r in c] == [r["response_ids"] for r in a[3:9]]
    # Another seed: different samples.
    d = HFSampler(model, tok, base.with_(seed=6)).sample(problems())
    assert [r["response_ids"] for r in d] != [r["response_ids"] for r in a]


def test_records_are_valid_trajectories(tiny):
    path, model, tok = tiny
    opts = SampleOptions(n=2, temperature=0.8, top_p=0.9, max_new_tokens=6, source="ref", policy_version=7)
    recs = HFSampler(model, tok, opts, model_name="tiny").sample(problems(2))
    assert [(r["problem_id"], r["sampler"]["index"]) for r in recs] == [("p0", 0), ("p0", 1), ("p1", 0), ("p1", 1)]
    for r in recs:
        validate_trajectory(r)
        assert r["id"] == trajectory_id(r["problem_id"], r["response"])
        assert r["source"] == "ref" and r["policy_version"] == 7
        assert r["reward"] is None and r["verdict"] is None
        assert r["tokenizer"] == tokenizer_fingerprint(tok)
        assert r["sampler"] == {"model": "tiny", "temperature": 0.8, "top_p": 0.9, "seed": 0,
                                "index": r["sampler"]["index"], "backend": "hf", "max_new_tokens": 6}
        assert r["finish_reason"] == "length" and len(r["response_ids"]) == 6
        assert r["response"] == tok.decode(r["response_ids"], skip_special_tokens=True,
                                           clean_up_tokenization_spaces=False)
        assert r["prompt_ids"] == tok(r["prompt"])["input_ids"]  # plain template, BOS added


def test_eos_ends_a_sample_and_is_kept_in_ids_not_text(tiny):
    _, model, tok = tiny
    model = copy.deepcopy(model)
    eos = tok.eos_token_id
    # Make EOS likely: its output row becomes 3x the row of the greedy first token.
    first = HFSampler(model, tok, SampleOptions(temperature=0, max_new_tokens=1)).sample(problems(1))[0]
    with torch.no_grad():
        model.lm_head.weight[eos] = 3 * model.lm_head.weight[first["response_ids"][0]]
    greedy = HFSampler(model, tok, SampleOptions(temperature=0, max_new_tokens=10)).sample(problems(1))[0]
    assert greedy["response_ids"] == [eos] and greedy["response"] == ""
    assert greedy["finish_reason"] == "stop"
    recs = HFSampler(model, tok, SampleOptions(n=8, temperature=1.0, max_new_tokens=40, batch_size=3)).sample(problems())
    stopped = [r for r in recs if r["finish_reason"] == "stop"]
    assert stopped and any(len(r["response_ids"]) > 1 for r in stopped)  # rows finish at different steps
    for r in recs:
        ids = r["response_ids"]
        assert eos not in ids[:-1]
        assert (ids[-1] == eos) == (r["finish_reason"] == "stop")
        assert tok.eos_token not in r["response"]
        assert (teacher_forced(model, r) - torch.tensor(r["logprobs"])).abs().max() <= 1e-4


def test_stop_strings_end_at_the_completing_token(tiny):
    _, model, tok = tiny
    opts = SampleOptions(n=2, temperature=0.9, max_new_tokens=30, seed=3)
    full = HFSampler(model, tok, opts).sample(problems(3))
    # Pick, per sample, a stop string that first appears in the middle of its text.
    stops = set()
    for r in full:
        text = r["response"]
        for i in range(8, len(text) - 3):
            s = text[i:i + 2]
            if s.isprintable() and "\ufffd" not in s and text.find(s) == i:
                stops.add(s)
                break
    assert stops
    cut = HFSampler(model, tok, opts.with_(stop=tuple(sorted(stops)))).sample(problems(3))
    n_stopped = 0
    for f, c in zip(full, cut):
        ids = c["response_ids"]
        assert f["response_ids"][:len(ids)] == ids  # same draws up to the stop
        if c["finish_reason"] == "stop":
            n_stopped += 1
            assert any(s in c["response"] for s in stops)
            shorter = tok.decode(ids[:-1], skip_special_tokens=True, clean_up_tokenization_spaces=False)
            assert not any(s in shorter for s in stops)  # ended at the first completing token
        else:
            assert ids == f["response_ids"]
    assert n_stopped >= len(stops)


def test_train_mode_is_restored(tiny):
    _, model, tok = tiny
    model.train()
    try:
        HFSampler(model, tok, SampleOptions(max_new_tokens=2)).sample(problems(1))
        assert model.training
    finally:
        model.eval()


def test_prompt_longer_than_the_context_is_bad_input(tiny):
    _, model, tok = tiny
    long = [{"id": "long", "prompt": "def add(a, b): " * 400, "tests": []}]
    with pytest.raises(BadInput, match="'long'.*context"):
        HFSampler(model, tok, SampleOptions(max_new_tokens=2)).sample(long)


def test_iter_sample_streams_in_input_order(tiny):
    _, model, tok = tiny
    opts = SampleOptions(n=2, max_new_tokens=4, batch_size=2)
    s = HFSampler(model, tok, opts)
    streamed = list(s.iter_sample(iter(problems()), window_rows=4))
    whole = s.sample(problems())
    assert [(r["problem_id"], r["response_ids"]) for r in streamed] == [
        (r["problem_id"], r["response_ids"]) for r in whole]


def test_options_are_checked():
    for bad in ({"n": 0}, {"top_p": 0}, {"top_p": 1.5}, {"temperature": -1},
                {"temperature_range": (1.0, 0.5)}, {"max_new_tokens": 0}, {"stop": ("",)},
                {"template": "no placeholder"}):
        with pytest.raises(ValueError):
            SampleOptions(**bad)


# ----------------------------------------------------------------------------- prompts


def test_plain_template_system_and_template(tiny):
    _, _, tok = tiny
    p = {"id": "x1", "prompt": "Add two numbers.", "tests": []}
    text, ids = format_prompt(p, tok)
    assert text == "Add two numbers." and ids[0] == tok.bos_token_id
    text, _ = format_prompt(p, tok, system="You write Python.", template="Task {problem_id}: {prompt}\nAnswer {x}:\n")
    assert text == "You write Python.\n\nTask x1: Add two numbers.\nAnswer {x}:\n"


def test_chat_template_is_used_when_present(tiny_chat):
    model, tok = tiny_chat
    p = {"id": "x", "prompt": "Add two numbers.", "tests": []}
    text, ids = format_prompt(p, tok, system="Be brief.")
    assert text == "<s><|system|>\nBe brief.\n<|user|>\nAdd two numbers.\n<|assistant|>\n"
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1  # BOS once, from the template
    msgs = {"id": "m", "prompt": [{"role": "user", "content": "Hi"}], "tests": []}
    assert format_prompt(msgs, tok, template="Q: {prompt}")[0] == "<s><|user|>\nQ: Hi\n<|assistant|>\n"
    plain, _ = format_prompt(p, tok, use_chat_template=False)
    assert plain == "Add two numbers."
    rec = HFSampler(model, tok, SampleOptions(max_new_tokens=3)).sample([p])[0]
    assert rec["prompt"].startswith("<s><|user|>") and rec["prompt_ids"] == tok(rec["prompt"], add_special_tokens=False)["input_ids"]


def test_tokenizer_fingerprint(tmp_path):
    a = build_tiny_tokenizer()
    fp = tokenizer_fingerprint(a)
    assert fp.startswith("tok-") and len(fp) == 20
    a.save_pretrained(tmp_path / "t")
    from transformers import AutoTokenizer

    b = AutoTokenizer.from_pretrained(tmp_path / "t")
    assert tokenizer_fingerprint(b) == fp  # survives save and load
    b(["a", "longer text"], padding=True)  # padding state is not identity
    b.chat_template = "{{ messages }}"  # nor is the chat template
    assert tokenizer_fingerprint(b) == fp
    assert tokenizer_fingerprint(build_tiny_tokenizer(vocab_size=300)) != fp
    c = build_tiny_tokenizer()
    c.add_special_tokens({"additional_special_tokens": ["<tool>"]})
    assert tokenizer_fingerprint(c) != fp


def test_seed_derivation_is_stable():
    # Pinned: changing the derivation silently would change every run's samples.
    assert sample_seed(0, "p0", 0) == sample_seed(0, "p0", 0)
    assert math.isfinite(float(sample_seed(2**40, "é", 10**6)))


def test_options_can_change_between_calls(tiny):
    # The trainer keeps one sampler and moves seed and policy_version on between calls.
    _, model, tok = tiny
    s = HFSampler(model, tok, SampleOptions(n=2, max_new_tokens=8))
    a = s.sample(problems(2))
    s.opts = s.opts.with_(seed=1, policy_version=2, system="Be brief.")
    b = s.sample(problems(2))
    assert all(r["policy_version"] == 2 and r["sampler"]["seed"] == 1 for r in b)
    assert all(r["prompt"].startswith("Be brief.\n\n") for r in b)
    assert [r["response_ids"] for r in a] != [r["response_ids"] for r in b]
