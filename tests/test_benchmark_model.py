"""The tiny reference model, its tokenizer and chat template, the SFT data, the cache (keys,
atomic builds, locking) and the `spo benchmark` command."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spo_cli.benchmark import cache
from spo_cli.benchmark.generator import iter_problems
from spo_cli.benchmark.tinymodel import (
    TinyConfig,
    collate,
    get_config,
    lr_at,
    prompt_ids,
    sample_epoch,
    sft_pools,
    train_tokenizer,
)
from spo_cli.streams import read_records
from spo_cli.tokens import response_ids

# A config small enough to build in a few seconds: for the cache mechanics, not for quality.
MICRO = TinyConfig(
    name="micro", n_train=40, n_heldout=10, vocab_size=384, hidden_size=32, num_layers=1, num_heads=2,
    intermediate_size=64, steps=3, batch_size=4, warmup=1, threads=1, families=("coins", "caesar", "linear"),
)


@pytest.fixture(scope="module")
def rows():
    return list(iter_problems(0, "train", 60))


@pytest.fixture
def threads():
    """Torch threads for sampling on the CPU as spo_cli.hw chooses them (one on a busy machine,
    where two collapse throughput), restored afterwards."""
    import torch

    from spo_cli.hw import resolve_threads

    before = torch.get_num_threads()
    torch.set_num_threads(resolve_threads())
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok(rows):
    texts = [r["description"] for r in rows] + [s for r in rows for s in r["solutions"]["solution"]]
    return train_tokenizer(texts, 384)


def test_chat_template_and_special_tokens(tok):
    text = tok.apply_chat_template([{"role": "user", "content": "P"}], add_generation_prompt=True, tokenize=False)
    assert text == "<|bos|><|user|>\nP\n<|assistant|>\n"
    ids = prompt_ids(tok, "P")
    assert ids[0] == tok.bos_token_id and tok.decode(ids) == text
    assert {tok.bos_token, tok.eos_token, tok.pad_token} == {"<|bos|>", "<|eos|>", "<|pad|>"}
    r = response_ids(tok, "print(1)\n")
    assert r[-1] == tok.eos_token_id and tok.decode(r, skip_special_tokens=True) == "print(1)\n"
    # A full conversation renders the assistant turn ended by eos.
    full = tok.apply_chat_template(
        [{"role": "user", "content": "P"}, {"role": "assistant", "content": "A"}], tokenize=False
    )
    assert full == "<|bos|><|user|>\nP\n<|assistant|>\nA<|eos|>\n"


def test_tokenizer_round_trips_programs(tok, rows):
    for r in rows[:20]:
        for s in r["solutions"]["solution"]:
            assert tok.decode(tok(s, add_special_tokens=False)["input_ids"]) == s


def test_sft_batches_put_loss_on_the_response_only(tok, rows):
    pools = sft_pools(rows, tok, 512)
    ex = sample_epoch(pools, random.Random(0), 0.2)
    ids, mask, labels = collate(ex[:4], tok.pad_token_id)
    for i, e in enumerate(ex[:4]):
        n = len(e.prompt) + len(e.response)
        assert ids[i, :n].tolist() == e.prompt + e.response
        assert mask[i].sum() == n
        assert (labels[i, : len(e.prompt)] == -100).all() and (labels[i, n:] == -100).all()
        assert labels[i, len(e.prompt) : n].tolist() == e.response
        assert e.response[-1] == tok.eos_token_id


def test_sft_mixes_in_wrong_programs_at_the_configured_rate(tok, rows):
    pools = sft_pools(rows, tok, 512)
    rng = random.Random(1)
    wrong = [e.wrong for _ in range(20) for e in sample_epoch(pools, rng, 0.2)]
    assert 0.15 < sum(wrong) / len(wrong) < 0.25
    by_prompt = {tuple(p): (good, bad) for p, good, bad in pools}
    for e in sample_epoch(pools, rng, 0.2)[:30]:
        good, bad = by_prompt[tuple(e.prompt)]
        assert e.response in (bad if e.wrong else good)


def test_lr_schedule_warms_up_then_decays():
    cfg = get_config("default")
    lrs = [lr_at(s, cfg) for s in range(cfg.steps)]
    assert lrs[0] < lrs[cfg.warmup - 1] == pytest.approx(cfg.lr)
    assert all(a >= b for a, b in zip(lrs[cfg.warmup:], lrs[cfg.warmup + 1:]))
    assert lrs[-1] == pytest.approx(cfg.lr * cfg.min_lr_ratio, rel=1e-2)


def test_configs_name_known_families():
    from spo_cli.benchmark.generator import FAMILIES

    for cfg in (get_config("default"), get_config("toy")):
        assert set(cfg.families or FAMILIES) <= set(FAMILIES)


def test_cache_key_covers_config_but_not_threads():
    base = get_config("default")
    assert cache.cache_key(base) == cache.cache_key(get_config("default", threads=1))
    assert cache.cache_key(base) != cache.cache_key(get_config("default", seed=1))
    assert cache.cache_key(base) != cache.cache_key(get_config("default", steps=base.steps + 1))
    assert cache.cache_key(base) != cache.cache_key(get_config("toy"))


def test_micro_build_is_a_loadable_hf_directory_and_is_reused(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    events = []
    paths = cache.ensure_benchmark(MICRO, tmp_path, on_event=lambda k, d: events.append(k))
    assert paths.root.parent == tmp_path and cache.is_complete(paths.root, MICRO)
    assert "step" in events
    train = list(read_records(paths.train_problems))
    heldout = list(read_records(paths.heldout_problems))
    assert len(train) == MICRO.n_train and len(heldout) == MICRO.n_heldout
    assert {r["family"] for r in train + heldout} == set(MICRO.families)
    tok = AutoTokenizer.from_pretrained(paths.model_dir)
    model = AutoModelForCausalLM.from_pretrained(paths.model_dir)
    assert tok.eos_token_id == model.config.eos_token_id and tok.pad_token_id == model.config.pad_token_id
    assert tok.apply_chat_template([{"role": "user", "content": "x"}], add_generation_prompt=True,
                                   tokenize=False).endswith("<|assistant|>\n")
    info = json.loads((paths.root / "build.json").read_text())
    assert info["key"] == cache.cache_key(MICRO) and info["sft"]["steps"] == MICRO.steps
    # Reuse: nothing is rebuilt.
    events.clear()
    again = cache.ensure_benchmark(MICRO, tmp_path, on_event=lambda k, d: events.append(k))
    assert again == paths and events == []
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [paths.root.name]


def test_stale_or_half_built_entries_are_rebuilt(tmp_path, monkeypatch):
    root = tmp_path / cache.entry_name(MICRO)
    # A directory without build.json (say, copied by hand) is not complete.
    (root / "model").mkdir(parents=True)
    (root / "train.jsonl").write_text("")
    assert not cache.is_complete(root, MICRO)
    # A leftover temp dir of a killed build is cleaned up by the next build.
    leftover = tmp_path / f".{root.name}.tmp-99999-deadbeef"
    leftover.mkdir()
    paths = cache.ensure_benchmark(MICRO, tmp_path)
    assert cache.is_complete(paths.root, MICRO) and not leftover.exists()
    # A build.json of another key is stale.
    info = json.loads((root / "build.json").read_text())
    info["key"] = "0" * 12
    (root / "build.json").write_text(json.dumps(info))
    assert not cache.is_complete(root, MICRO)
    cache.ensure_benchmark(MICRO, tmp_path)
    assert cache.is_complete(root, MICRO)


def test_a_failing_build_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt  # like Ctrl-C in the middle of training

    monkeypatch.setattr(cache, "build_model", boom)
    with pytest.raises(KeyboardInterrupt):
        cache.ensure_benchmark(MICRO, tmp_path)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_concurrent_callers_build_once(tmp_path, monkeypatch):
    calls = []
    real = cache.build_into

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(cache, "build_into", counting)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.ensure_benchmark(MICRO, tmp_path)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 2 and results[0] == results[1]


def test_cache_dir_defaults_to_env_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SPO_CACHE", str(tmp_path / "c"))
    assert cache.cache_root() == tmp_path / "c"
    assert cache.cache_root(tmp_path / "d") == tmp_path / "d"
    monkeypatch.delenv("SPO_CACHE")
    assert cache.cache_root() == Path.home() / ".cache" / "spo"


def test_toy_model_samples_programs(toy_benchmark, threads):
    """The toy model, trained by the toolkit, writes program-shaped text for held-out statements."""
    from spo_cli.sampling import SampleOptions, make_sampler

    probs = list(read_records(toy_benchmark.heldout_problems, "problem"))[:6]
    sampler = make_sampler("hf", str(toy_benchmark.model_dir), SampleOptions(n=2, temperature=0.4, max_new_tokens=160))
    trajs = sampler.sample(probs)
    texts = [t["response"] for t in trajs]
    assert sum(len(t["response_ids"]) for t in trajs) > 0 and len(texts) == 12
    # Program-shaped text (the toy is too small to be often right; the default model is measured in bench/).
    assert sum("input()" in t and "print(" in t for t in texts) >= len(texts) // 2
    info = json.loads((toy_benchmark.root / "build.json").read_text())
    assert info["sft"]["final_loss"] < 1.5  # far below the ~6 of an untrained model


# ---------------------------------------------------------------------------------------------
# The command


def _app():
    from spo_cli.cli import app

    return app


def test_cli_problems_writes_codecontests_rows_to_stdout():
    res = CliRunner().invoke(_app(), ["benchmark", "problems", "--split", "heldout", "-n", "5"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(lines) == 5 and all("/heldout/" in r["name"] for r in lines)
    assert lines == list(iter_problems(0, "heldout", 5))


def test_cli_problems_as_problem_records_and_to_a_file(tmp_path):
    out = tmp_path / "p.jsonl.zst"
    res = CliRunner().invoke(_app(), ["benchmark", "problems", "-n", "3", "--as-problem", "-f", "coins",
                                      "-o", str(out)])
    assert res.exit_code == 0, res.output
    from spo_cli.streams import read_records

    recs = list(read_records(str(out), kind="problem"))
    assert len(recs) == 3 and all(r["id"].endswith("-coins") and r["tests"] for r in recs)


def test_cli_rejects_bad_options():
    res = CliRunner().invoke(_app(), ["benchmark", "problems", "--split", "test"])
    assert res.exit_code == 2
    res = CliRunner().invoke(_app(), ["benchmark", "problems", "-f", "nope"])
    assert res.exit_code == 2 and "unknown families" in res.output
    res = CliRunner().invoke(_app(), ["benchmark", "build", "--config", "huge"])
    assert res.exit_code == 2


def test_cli_families_lists_them():
    from spo_cli.benchmark.generator import FAMILIES

    res = CliRunner().invoke(_app(), ["benchmark", "families"])
    assert res.exit_code == 0
    assert [json.loads(x)["family"] for x in res.stdout.splitlines()] == list(FAMILIES)


def test_cli_build_and_path_reuse_the_cached_toy(toy_benchmark):
    env = {"SPO_CACHE": str(toy_benchmark.root.parent)}
    res = CliRunner().invoke(_app(), ["benchmark", "build", "--config", "toy"], env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.splitlines()[-1]) == toy_benchmark.as_dict()
    res = CliRunner().invoke(_app(), ["benchmark", "path", "--config", "toy"], env=env)
    assert res.exit_code == 0 and json.loads(res.stdout) == toy_benchmark.as_dict()
    res = CliRunner().invoke(_app(), ["benchmark", "path", "--config", "toy", "--seed", "12345"], env=env)
    assert res.exit_code == 1 and "not built" in res.output


def test_cli_build_into_a_directory(tmp_path, monkeypatch):
    from spo_cli.benchmark import tinymodel

    monkeypatch.setitem(tinymodel.CONFIGS, "micro", MICRO)
    res = CliRunner().invoke(_app(), ["benchmark", "build", "--config", "micro", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model_dir"] == str(tmp_path / "b" / "model")
    assert cache.is_complete(tmp_path / "b", MICRO)


@pytest.mark.slow
def test_default_model_solves_some_heldout_problems(default_benchmark, threads):
    """The default reference model is useful: greedy-ish sampling solves some held-out problems."""
    from spo_cli.evaluate import evaluate_models

    seen, probs = set(), []
    for p in read_records(default_benchmark.heldout_problems, "problem"):  # one problem per family
        if p["meta"]["family"] not in seen:
            seen.add(p["meta"]["family"])
            probs.append(p)
    res = evaluate_models([str(default_benchmark.model_dir)], probs, n=4, ks=(1, 4), temperature=0.4,
                          max_new_tokens=160)["models"][0]
    assert res["pass@4"]["mean"] > 0.0
    assert res["pass@1"]["mean"] < 1.0
