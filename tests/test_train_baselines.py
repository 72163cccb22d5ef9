"""spo train's baselines (--algo grpo, --algo rft) and --clip-per-sequence: tiny-budget runs end to
end, exact resume, the gradients they are defined by, and clear refusals."""

from __future__ import annotations

import json

import pytest
import torch

from spo_cli.errors import BadInput
from spo_cli.schema import new_trajectory
from spo_cli.streams import read_records, write_records
from spo_cli.train.run import run
from tests.test_train import cfg, make_world, resume_equals_uninterrupted, weights


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory)


def _grads(policy) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}


def _examples(trainer, specs, *, with_logprobs=False, seed=0):
    """Examples of random responses: specs = [(problem_id, reward), ...]; behaviour log-probs = the
    current policy's (so GRPO's ratio is 1) when asked."""
    from spo_cli.train.batching import Example, collate, token_logprobs

    g = torch.Generator().manual_seed(seed)
    out = []
    for pid, reward in specs:
        n = int(torch.randint(3, 9, (1,), generator=g))
        out.append(Example(problem_id=pid, prompt_ids=[1, 7, 9], response_ids=torch.randint(5, 100, (n,), generator=g).tolist(),
                           reward=reward, v_hat=-0.3, source="online"))
    if with_logprobs:
        run_ = trainer.run
        for e in out:
            b = collate([e], run_.tokenizer.pad_token_id, run_.device)
            with torch.no_grad():
                lp, _ = token_logprobs(run_.policy, b)
            e.logprobs = lp[0][b.mask[0]].tolist()
    return out


# ---------------------------------------------------------------------- GRPO
def test_grpo_runs_online_end_to_end(world, tmp_path):
    c = cfg(world, tmp_path / "run", algo="grpo", offline_ratio=0.0, offline=[], values=[], online_n=2, steps=2)
    hist = run(c, quiet_stdout=True)
    assert [h["step"] for h in hist] == [1, 2]
    for key in ("loss", "clip_frac", "kl_ref", "kl_k3", "entropy", "advantage_abs", "zero_std_groups",
                "reward_online", "sample_tokens"):
        assert key in hist[-1], key
    assert all(h["groups"] >= 1 for h in hist)  # 2 problems x 2 samples a step (one group if drawn twice)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["algo"] == "grpo" and saved["model_update_interval"] == 1  # on-policy
    assert (tmp_path / "run" / "checkpoints" / "step-000002" / "model.safetensors").exists()
    assert not (tmp_path / "run" / "checkpoints" / "step-000002" / "value_model").exists()  # no value model
    assert len(list(read_records(tmp_path / "run" / "corpus", "trajectory"))) == 8


def test_grpo_gradient_is_the_group_relative_policy_gradient(world, tmp_path):
    """With pi_old = pi_theta (one pass, TRL's default) the loss's gradient is
    -(1/N) sum_i A_i sum_t grad log pi(y_it), A_i = (r_i - mean_group) / (std_group + 1e-4)."""
    from spo_cli.core.grpo import group_advantages, group_ids
    from spo_cli.train.batching import collate, token_logprobs
    from spo_cli.train.loop import Trainer

    trainer = Trainer(cfg(world, tmp_path / "run", algo="grpo", offline_ratio=0.0, offline=[], values=[],
                          online_n=2, grad_accum=2))
    try:
        specs = [("p0", 1.0), ("p0", 0.0), ("p1", 0.0), ("p0", 1.0), ("p1", 1.0), ("p2", 0.0)]
        ex = _examples(trainer, specs, with_logprobs=True)
        out = trainer.learn(ex)
        got = _grads(trainer.run.policy)
        assert out["groups"] == 3 and out["zero_std_groups"] == pytest.approx(1 / 3)  # p2 alone
        assert out["clip_frac"] == 0.0 and abs(out["approx_kl"]) < 1e-6

        policy = trainer.run.policy
        policy.zero_grad(set_to_none=True)
        adv = group_advantages(torch.tensor([r for _, r in specs]), group_ids([p for p, _ in specs]), "group")
        b = collate(ex, trainer.run.tokenizer.pad_token_id, trainer.run.device)
        logp, _ = token_logprobs(policy, b)
        manual = -(adv.unsqueeze(-1) * torch.where(b.mask, logp, 0.0)).sum() / b.mask.sum()
        manual.backward()
        want = _grads(policy)
        assert set(got) == set(want)
        assert all(torch.allclose(got[k], want[k], atol=1e-6, rtol=1e-4) for k in want)
        assert any(want[k].abs().max() > 0 for k in want)
    finally:
        trainer.close()


def test_grpo_refusals(world, tmp_path):
    base = dict(algo="grpo", offline_ratio=0.0, offline=[], values=[])
    with pytest.raises(BadInput, match="GRPO learns from on-policy rollouts only"):
        run(cfg(world, tmp_path / "a", algo="grpo"), quiet_stdout=True)
    with pytest.raises(BadInput, match="--online-n must be >= 2"):
        run(cfg(world, tmp_path / "b", **base, online_n=1), quiet_stdout=True)
    with pytest.raises(BadInput, match="--grpo-scale must be one of group, batch, none"):
        run(cfg(world, tmp_path / "c", **base, grpo_scale="std"), quiet_stdout=True)
    with pytest.raises(BadInput, match="--clip-per-sequence needs a loss that is a sum over sequences"):
        run(cfg(world, tmp_path / "d", **base, clip_per_sequence=True), quiet_stdout=True)
    assert not any((tmp_path / x).exists() for x in "abcd")  # refused before anything was written


# ---------------------------------------------------------------------- RFT
def test_rft_learns_only_from_correct_trajectories(world, tmp_path):
    from spo_cli.train.loop import Trainer

    trainer = Trainer(cfg(world, tmp_path / "run", algo="rft", values=[]))
    try:
        good = _examples(trainer, [("p0", 1.0), ("p1", 1.0)], seed=1)
        bad = _examples(trainer, [("p2", 0.0), ("p3", 0.0)], seed=2)
        mixed = trainer.learn([good[0], bad[0], good[1], bad[1]])
        g_mixed = _grads(trainer.run.policy)
        trainer.run.policy.zero_grad(set_to_none=True)
        alone = trainer.learn(good)
        g_alone = _grads(trainer.run.policy)
        assert mixed["rft_kept"] == 0.5 and alone["rft_kept"] == 1.0
        assert mixed["loss"] == pytest.approx(alone["loss"]) and mixed["tokens"] == alone["tokens"]
        assert all(torch.allclose(g_mixed[k], g_alone[k], atol=1e-7) for k in g_alone)
        # the loss is the token mean of the correct responses' negative log-likelihood
        from spo_cli.train.batching import collate, token_logprobs

        b = collate(good, trainer.run.tokenizer.pad_token_id, trainer.run.device)
        with torch.no_grad():
            lp, _ = token_logprobs(trainer.run.policy, b)
        assert alone["loss"] == pytest.approx(float(-lp[b.mask].mean()), rel=1e-5)
        trainer.run.policy.zero_grad(set_to_none=True)
        nothing = trainer.learn(bad)
        assert nothing["rft_kept"] == 0.0 and nothing["loss"] == 0.0
        assert not _grads(trainer.run.policy)
    finally:
        trainer.close()


def test_rft_offline_run_moves_the_policy_and_needs_no_values(world, tmp_path):
    d, model = world
    hist = run(cfg(world, tmp_path / "run", algo="rft", values=[]), quiet_stdout=True)
    assert [h["step"] for h in hist] == [1, 2]
    assert sum(h["rft_kept"] for h in hist) == 1.0  # one epoch of a half-correct corpus: 4 of 8 kept
    before, after = weights(__import__("pathlib").Path(model)), weights(tmp_path / "run" / "checkpoints" / "step-000002")
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("algo", ["rft", "grpo"])
def test_resume_equals_uninterrupted(world, tmp_path, algo):
    kw = dict(algo=algo, values=[], batch_size=4, online_n=2, deterministic=True, save_every=2)
    kw.update(offline_ratio=0.5, model_update_interval=3) if algo == "rft" else kw.update(offline_ratio=0.0, offline=[])
    wa = resume_equals_uninterrupted(world, tmp_path, **kw)
    if algo == "rft":
        before = weights(__import__("pathlib").Path(world[1]))
        assert any(not torch.equal(before[k], wa[k]) for k in wa)


# ---------------------------------------------------------------------- --clip-per-sequence
@pytest.mark.parametrize("algo", ["spo", "rft"])
def test_clip_per_sequence_clips_each_sequences_gradient(world, tmp_path, algo):
    """g = sum_i w_i clip(grad loss_i, c): checked against one backward pass per sequence by hand;
    with a large c it is the ordinary batch gradient."""
    from spo_cli.train.loop import Trainer

    extra = {} if algo == "spo" else {"values": []}
    specs = [("p0", 1.0), ("p1", 1.0), ("p2", 1.0), ("p3", 1.0)]

    def grads_of(**kw):
        t = Trainer(cfg(world, tmp_path / f"r{len(list(tmp_path.iterdir()))}", algo=algo, **extra, **kw))
        try:
            ex = _examples(t, specs, seed=5)
            return t.learn(ex), _grads(t.run.policy), t, ex
        finally:
            t.close()

    plain_m, plain, _, _ = grads_of(grad_accum=2)
    big_m, big, _, _ = grads_of(clip_per_sequence=True, max_grad_norm=1e9)
    assert all(torch.allclose(plain[k], big[k], atol=1e-6, rtol=1e-4) for k in plain)
    assert big_m["loss"] == pytest.approx(plain_m["loss"], rel=1e-5) and big_m["seq_clipped"] == 0.0
    c = big_m["seq_grad_norm_max"] / 3  # clips at least the largest
    small_m, small, t, ex = grads_of(clip_per_sequence=True, max_grad_norm=c)
    assert 0 < small_m["seq_clipped"] <= 1
    # by hand: each sequence alone, its gradient clipped to c, weighted (spo: 1/B; rft: its token share)
    n_tok = sum(len(e.response_ids) for e in ex)
    want: dict[str, torch.Tensor] = {}
    for e in ex:
        t.run.policy.zero_grad(set_to_none=True)
        t.run.cfg.clip_per_sequence = False
        t.learn([e])
        g = _grads(t.run.policy)
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in g.values()])))
        w = 1 / len(ex) if algo == "spo" else len(e.response_ids) / n_tok
        for k, v in g.items():
            want[k] = want.get(k, 0) + w * min(1.0, c / (norm + 1e-6)) * v
    assert all(torch.allclose(small[k], want[k], atol=1e-7, rtol=1e-4) for k in want)
    total = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in small.values()])))
    assert total <= c * (1 + 1e-5)  # an average of vectors no longer than c


def test_clip_per_sequence_run_and_refusals(world, tmp_path):
    hist = run(cfg(world, tmp_path / "run", clip_per_sequence=True, max_grad_norm=0.5), quiet_stdout=True)
    assert len(hist) == 2 and all(0 <= h["seq_clipped"] <= 1 and h["grad_norm"] <= 0.5 + 1e-6 for h in hist)
    with pytest.raises(BadInput, match="--clip-per-sequence clips at --max-grad-norm"):
        run(cfg(world, tmp_path / "a", clip_per_sequence=True, max_grad_norm=0.0), quiet_stdout=True)
    with pytest.raises(BadInput, match="not --algo ppo"):
        run(cfg(world, tmp_path / "b", algo="ppo", offline_ratio=0.0, offline=[], clip_per_sequence=True),
            quiet_stdout=True)


def test_rft_corpus_of_failures_only_trains_nothing(world, tmp_path):
    d, model = world
    bad = [new_trajectory(problem_id=f"p{i}", prompt="x", response=f"print({i})", reward=0.0, verdict="WA",
                          source="offline") for i in range(4)]
    write_records(tmp_path / "bad.jsonl", bad)
    hist = run(cfg(world, tmp_path / "run", algo="rft", values=[], offline=[str(tmp_path / "bad.jsonl")]),
               quiet_stdout=True)
    assert all(h["rft_kept"] == 0.0 and h["loss"] == 0.0 for h in hist)
    before, after = weights(__import__("pathlib").Path(model)), weights(tmp_path / "run" / "checkpoints" / "step-000002")
    assert all(torch.equal(before[k], after[k]) for k in before)
