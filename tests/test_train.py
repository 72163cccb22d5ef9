"""spo train: a tiny-budget run per objective and for PPO, exact resume, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spo_cli.errors import BadInput
from spo_cli.schema import new_trajectory
from spo_cli.streams import read_records, write_records
from spo_cli.train.config import TrainConfig
from spo_cli.train.run import run
from tests.tinymodel_util import build_tiny_model


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory)


def make_world(tmp_path_factory):
    """A tiny model, four problems and a small judged corpus (shared by the train test modules)."""
    d = tmp_path_factory.mktemp("train")
    model = build_tiny_model(d / "model", chat_template=True)
    problems = [{"id": f"p{i}", "prompt": f"Read a number and print it plus {i}.",
                 "tests": [{"input": "1\n", "output": f"{1 + i}\n"}, {"input": "5\n", "output": f"{5 + i}\n"}],
                 "time_limit": 2} for i in range(4)]
    write_records(d / "problems.jsonl", problems)
    trajs = []
    for i in range(4):
        good = new_trajectory(problem_id=f"p{i}", prompt="x", response=f"print(int(input())+{i})",
                              reward=1.0, verdict="OK", source="human")
        good["mc"] = None
        bad = new_trajectory(problem_id=f"p{i}", prompt="x", response=f"print(int(input())+{i + 1})",
                             reward=0.0, verdict="WA", source="offline")
        trajs += [good, bad]
    write_records(d / "corpus.jsonl", trajs)
    write_records(d / "values.jsonl", [{"problem_id": f"p{i}", "v": -0.3, "k": 10, "beta": 0.1, "p_hat": 0.1}
                                       for i in range(4)])
    return d, str(model)


def cfg(world, out, **kw) -> TrainConfig:
    d, model = world
    base = dict(model=model, out=str(out), problems=[str(d / "problems.jsonl")], values=[str(d / "values.jsonl")],
                offline=[str(d / "corpus.jsonl")], offline_ratio=1.0, batch_size=4, online_n=2, steps=2,
                max_new_tokens=12, lr=1e-3, warmup=0, save_every=100, judge_jobs=1, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.mark.parametrize("loss", ["terminal:ce", "terminal:sq", "nonterminal:sq", "nonterminal:ce",
                                  "advantage", "offline=terminal:ce,human=terminal:sq*2"])
def test_each_objective_trains_offline(world, tmp_path, loss):
    d, model = world
    hist = run(cfg(world, tmp_path / "run", loss=[loss]), quiet_stdout=True)
    assert [h["step"] for h in hist] == [1, 2]
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in hist)
    ck = tmp_path / "run" / "checkpoints" / "step-000002"
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(ck)  # an ordinary HF directory
    before, after = weights(Path(model)), weights(ck)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it learnt something
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2]
    for key in ("loss", "kl_ref", "entropy", "q_terminal_err", "tokens_per_s", "reward_offline"):
        assert key in lines[-1]


def test_mc_objective_uses_pts_targets(world, tmp_path):
    d, model = world
    from transformers import AutoTokenizer

    from spo_cli.sampling.prompts import PromptFormatter, tokenizer_fingerprint

    tok = AutoTokenizer.from_pretrained(model)
    fmt = PromptFormatter(tok)
    recs = []
    for i in range(4):
        text, p_ids = fmt({"id": f"p{i}", "prompt": f"Read a number and print it plus {i}."})
        r_ids = tok(f"print(int(input())+{i})", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        recs.append(new_trajectory(problem_id=f"p{i}", prompt=text, response="", prompt_ids=p_ids,
                                   response_ids=r_ids, tokenizer=tokenizer_fingerprint(tok), reward=1.0,
                                   source="pts", mc=[[1, 0.3, 8], [len(r_ids) // 2, 0.9, 8]]))
    write_records(tmp_path / "pts.jsonl", recs)
    hist = run(cfg(world, tmp_path / "run", offline=[str(tmp_path / "pts.jsonl")], loss=["mc:ce"]),
               quiet_stdout=True)
    assert len(hist) == 2 and hist[0]["loss"] > 0


@pytest.mark.parametrize("algo", ["spo", "ppo"])
def test_online_run_samples_judges_and_saves_rollouts(world, tmp_path, algo):
    extra = {"loss": ["terminal:ce"]} if algo == "spo" else {}
    c = cfg(world, tmp_path / "run", algo=algo, offline_ratio=0.0, offline=[], steps=2, model_update_interval=1,
            **extra)
    hist = run(c, quiet_stdout=True)
    assert len(hist) == 2
    assert all("reward_online" in h and h["sample_tokens"] > 0 for h in hist)
    if algo == "ppo":
        assert "value_loss" in hist[-1] and "clip_frac" in hist[-1]
        assert (tmp_path / "run" / "checkpoints" / "step-000002" / "value_model" / "model.safetensors").exists()
    rollouts = list(read_records(tmp_path / "run" / "corpus", "trajectory"))
    assert len(rollouts) == 8 and all(r["verdict"] is not None for r in rollouts)
    assert {r["policy_version"] for r in rollouts} == {0, 1}


def resume_equals_uninterrupted(world, tmp_path, **kw) -> dict:
    """5 steps in one go, and 2 steps then --resume to 5: the same losses, online rewards, data
    positions, tokens and final weights (bit for bit). Returns the final weights."""
    full = run(cfg(world, tmp_path / "a", steps=5, **kw), quiet_stdout=True)
    part1 = run(cfg(world, tmp_path / "b", steps=2, **kw), quiet_stdout=True)
    part2 = run(cfg(world, tmp_path / "b", steps=5, **kw), resume=True, quiet_stdout=True)
    assert [h["step"] for h in part1 + part2] == [1, 2, 3, 4, 5]
    for x, y in zip(full, part1 + part2):
        assert x["loss"] == y["loss"] and x.get("reward_online") == y.get("reward_online")
        assert x.get("data_position") == y.get("data_position") and x.get("tokens") == y.get("tokens")
    wa, wb = weights(tmp_path / "a/checkpoints/step-000005"), weights(tmp_path / "b/checkpoints/step-000005")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    return wa


def test_resume_equals_uninterrupted(world, tmp_path):
    resume_equals_uninterrupted(world, tmp_path, offline_ratio=0.5, batch_size=4, online_n=2,
                                model_update_interval=3, deterministic=True, save_every=2)
    metrics = [json.loads(l)["step"] for l in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert metrics == [1, 2, 3, 4, 5]


def test_errors_are_clear(world, tmp_path):
    d, model = world
    # a missing value names the problem
    write_records(tmp_path / "v.jsonl", [{"problem_id": "p0", "v": -0.3, "k": 10, "beta": 0.1}])
    with pytest.raises(BadInput, match="no value for problem 'p[123]'"):
        run(cfg(world, tmp_path / "r1", values=[str(tmp_path / "v.jsonl")]), quiet_stdout=True)
    # ... unless a fallback is chosen
    assert len(run(cfg(world, tmp_path / "r1b", values=[str(tmp_path / "v.jsonl")], missing_value="fallback:-0.5"),
                   quiet_stdout=True)) == 2
    # an empty corpus
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.jsonl").write_text("")
    with pytest.raises(BadInput, match="no judged trajectories"):
        run(cfg(world, tmp_path / "r2", offline=[str(tmp_path / "empty")]), quiet_stdout=True)
    # a corrupt checkpoint
    run(cfg(world, tmp_path / "r3", save_every=1), quiet_stdout=True)
    (tmp_path / "r3/checkpoints/step-000002/model.safetensors").unlink()
    with pytest.raises(BadInput, match="incomplete checkpoint: missing model.safetensors"):
        run(cfg(world, tmp_path / "r3", steps=3, save_every=1), resume=True, quiet_stdout=True)
    (tmp_path / "r3/checkpoints/step-000001/trainer_state.pt").write_bytes(b"garbage")
    (tmp_path / "r3/checkpoints/latest").unlink()
    (tmp_path / "r3/checkpoints/latest").symlink_to("step-000001")
    with pytest.raises(BadInput, match="corrupt trainer state"):
        run(cfg(world, tmp_path / "r3", steps=3, save_every=1), resume=True, quiet_stdout=True)
    # a mismatched config
    run(cfg(world, tmp_path / "r4"), quiet_stdout=True)
    with pytest.raises(BadInput, match="different config.*beta"):
        run(cfg(world, tmp_path / "r4", steps=3, beta=0.5), resume=True, quiet_stdout=True)
    # reusing a run directory without --resume
    with pytest.raises(BadInput, match="already holds a run"):
        run(cfg(world, tmp_path / "r4"), quiet_stdout=True)


def test_cli_train_exit_code_and_stdout(world, tmp_path):
    d, model = world
    r = subprocess.run([sys.executable, "-m", "spo_cli", "train", "-m", model, "--offline", str(d / "corpus.jsonl"),
                        "--values", str(d / "values.jsonl"), "--batch-size", "4", "--steps", "1",
                        "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert [x["step"] for x in rows] == [1]
    r = subprocess.run([sys.executable, "-m", "spo_cli", "train", "-m", model, "--offline", str(d / "corpus.jsonl"),
                        "--batch-size", "4", "--steps", "1", "--out", str(tmp_path / "run2")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "no value for problem" in r.stderr and r.stdout == ""


def test_ppo_corrects_stale_rollouts_with_importance_weights(world, tmp_path):
    from spo_cli.train.batching import Example
    from spo_cli.train.loop import Trainer

    c = cfg(world, tmp_path / "run", algo="ppo", offline_ratio=0.0, offline=[], online_n=2)
    trainer = Trainer(c)
    g = torch.Generator().manual_seed(0)

    def ex(version):
        r = torch.randint(5, 100, (6,), generator=g).tolist()
        return Example(problem_id="p0", prompt_ids=[1, 7, 9], response_ids=r, reward=1.0, v_hat=0.0,
                       source="online", logprobs=(-torch.rand(6, generator=g) * 4).tolist(), policy_version=version)

    trainer.run.policy_version = 5
    fresh = trainer.learn([ex(4), ex(5), ex(5), ex(4)])  # the PPO step
    assert fresh["stale_rows"] == 0 and "importance_weight" not in fresh
    trainer.run.optimizer.zero_grad()
    stale = trainer.learn([ex(0), ex(5), ex(1), ex(5)])
    assert stale["stale_rows"] == 2
    # weights pi_now / pi_behaviour of made-up behaviour log-probs: far from 1, finite, truncated
    assert 0 < stale["importance_weight"] <= c.max_importance_weight and stale["importance_weight"] != 1.0
    assert all(torch.isfinite(p.grad).all() for p in trainer.run.policy.parameters() if p.grad is not None)


def test_missing_values_can_be_estimated_on_demand(world, tmp_path):
    from spo_cli.train.loop import Trainer

    c = cfg(world, tmp_path / "run", values=[], missing_value="estimate", value_k=3)
    trainer = Trainer(c)
    try:
        values = trainer.run.values
        v = trainer.run.v_hat("p2")  # estimated from 3 judged reference samples, then cached
        rec = values["p2"]
        assert rec["k"] == 3 and rec["estimated_on_demand"] and -1.0 <= v <= 0.0
        assert values.estimated == {"p2"}
    finally:
        trainer.close()


def test_algorithm_is_chosen_once_from_the_table_and_checked_before_loading(world, tmp_path):
    from spo_cli.train.algos import ALGORITHMS, ppo_step, spo_step
    from spo_cli.train.setup import configure

    assert ALGORITHMS["spo"].step is spo_step and ALGORITHMS["ppo"].step is ppo_step
    with pytest.raises(BadInput, match=r"--algo must be one of spo, ppo, grpo, rft, got 'a2c'"):
        run(cfg(world, tmp_path / "a", algo="a2c"), quiet_stdout=True)
    assert not (tmp_path / "a").exists()  # refused before anything was loaded or written
    with pytest.raises(BadInput, match="PPO learns from on-policy rollouts only"):
        configure(cfg(world, tmp_path / "b", algo="ppo"))  # offline_ratio 1
    # on-policy algorithms refresh the behaviour policy every step, whatever was asked
    c = configure(cfg(world, tmp_path / "c", algo="ppo", offline_ratio=0.0, offline=[], model_update_interval=7))
    assert c.model_update_interval == 1
    with pytest.raises(BadInput, match="--temperature-range"):
        run(cfg(world, tmp_path / "d", offline_ratio=0.0, temperature_range="hot"), quiet_stdout=True)
    assert not (tmp_path / "d").exists()


def test_metrics_count_truncated_and_unjudged_trajectories(world, tmp_path):
    d, model = world
    from transformers import AutoTokenizer

    from spo_cli.sampling.prompts import PromptFormatter

    fmt = PromptFormatter(AutoTokenizer.from_pretrained(model))
    problems = list(read_records(d / "problems.jsonl", "problem"))
    longest = max(len(fmt(p)[1]) for p in problems)
    recs = []
    for i in range(4):
        recs.append(new_trajectory(problem_id=f"p{i}", prompt="x", response="print(1)\n" * 40, reward=1.0,
                                   verdict="OK", source="offline"))  # always cut to fit --max-len
        recs.append(new_trajectory(problem_id=f"p{i}", prompt="x", response="1", reward=0.0, verdict="WA",
                                   source="offline"))  # never cut
    for i in range(3):
        recs.append(new_trajectory(problem_id=f"p{i}", prompt="x", response="2", source="offline"))  # unjudged
    write_records(tmp_path / "corpus.jsonl", recs)
    hist = run(cfg(world, tmp_path / "run", offline=[str(tmp_path / "corpus.jsonl")], max_len=longest + 8, steps=3),
               quiet_stdout=True)
    # 8 judged records, 4 a step: steps 1 and 2 are one epoch (each long response once), step 3 the next
    assert hist[0]["truncated"] + hist[1]["truncated"] == 4
    assert [h["offline_unjudged"] for h in hist] == [3, 3, 6]  # skipped so far, once per epoch read


def test_gradient_checkpointing_trains_the_same(world, tmp_path):
    """--gradient-checkpointing recomputes activations in the backward pass: the same losses and
    weights (to rounding), for the policy and PPO's value model; it may change on --resume."""
    kw = dict(algo="ppo", offline_ratio=0.0, offline=[], steps=2)
    plain = run(cfg(world, tmp_path / "a", **kw), quiet_stdout=True)
    recomputed = run(cfg(world, tmp_path / "b", gradient_checkpointing=True, **kw), quiet_stdout=True)
    for x, y in zip(plain, recomputed):
        for k in ("loss", "value_loss", "grad_norm"):
            assert y[k] == pytest.approx(x[k], rel=1e-5, abs=1e-7), k
    wa, wb = weights(tmp_path / "a/checkpoints/step-000002"), weights(tmp_path / "b/checkpoints/step-000002")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    from spo_cli.train.loop import Trainer

    trainer = Trainer(cfg(world, tmp_path / "b", gradient_checkpointing=False, **kw), resume=True)
    trainer.close()
    assert not trainer.run.policy.is_activation_checkpointing
