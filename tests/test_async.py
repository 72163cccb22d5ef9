"""spo train --async: the learner against real rollout workers on 127.0.0.1.

Fast tests run one learner process in this process with two in-process workers (threads behind
real HTTP servers). The slow end-to-end test runs the real commands: two learner processes under
`accelerate launch` (gloo) and two `spo sample --serve` processes; it kills a worker mid-run, then
kills the learners and resumes them. Every process gets one torch thread (OMP_NUM_THREADS=1):
on a shared 2-core machine more only spin against each other.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from spo_cli.errors import BadInput, SpoError
from spo_cli.schema import new_trajectory
from spo_cli.streams import read_records, write_records
from spo_cli.train.async_loop import AsyncConfig, AsyncTrainer, run_async
from spo_cli.train.config import TrainConfig
from tests.tinymodel_util import build_tiny_model, one_thread  # noqa: F401 - one torch thread
from tests.waiting import wait_until

N_PROBLEMS = 4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("async")
    model = build_tiny_model(d / "model", chat_template=True)
    problems = [{"id": f"p{i}", "prompt": f"Read a number and print it plus {i}.",
                 "tests": [{"input": "1\n", "output": f"{1 + i}\n"}], "time_limit": 2} for i in range(N_PROBLEMS)]
    write_records(d / "problems.jsonl", problems)
    trajs = [new_trajectory(problem_id=f"p{i}", prompt="x", response=f"print(int(input())+{i})", reward=1.0,
                            verdict="OK", source="human") for i in range(N_PROBLEMS)]
    write_records(d / "corpus.jsonl", trajs)
    write_records(d / "values.jsonl", [{"problem_id": f"p{i}", "v": -0.3, "k": 10, "beta": 0.1, "p_hat": 0.1}
                                       for i in range(N_PROBLEMS)])
    return d, str(model)


def cfg(world, out, **kw) -> TrainConfig:
    d, model = world
    base = dict(model=model, out=str(out), problems=[str(d / "problems.jsonl")], values=[str(d / "values.jsonl")],
                offline=[str(d / "corpus.jsonl")], offline_ratio=0.5, batch_size=4, online_n=1, steps=4,
                max_new_tokens=12, lr=1e-3, warmup=0, save_every=2, model_update_interval=2, seed=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def workers(world, pool, tmp_path):
    """start(k, **opts) -> k running in-process workers [(worker, url)], stopped afterwards."""
    from spo_cli.sampling.base import SampleOptions
    from spo_cli.sampling.hf import HFSampler
    from spo_cli.serve.server import WorkerServer
    from spo_cli.serve.worker import RolloutWorker, WorkerOptions

    d, model = world
    problems = {p["id"]: p for p in read_records(d / "problems.jsonl", "problem")}
    made = []

    def start(k: int = 2, fill: bool = False, problems=problems, weights_dir=None, **kw):
        out = []
        for i in range(k):
            opts = dict(n=2, rows=4, queue_size=16, seed=i, judge_jobs=1, spool=str(tmp_path / f"spool{i}"))
            opts.update(kw)
            sampler = HFSampler.from_pretrained(model, SampleOptions(max_new_tokens=12), device="cpu")
            w = RolloutWorker(sampler, problems, WorkerOptions(**opts), pool=pool)
            srv = WorkerServer("127.0.0.1", 0, w, token=None, weights_dir=weights_dir)
            threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            made.append((w, srv))
            out.append((w, srv.url))
        for w, _ in out:
            w.start()
        if fill:  # full queues of version-0 rollouts before the learner starts
            for w, _ in out:
                wait_until(lambda w=w: w.health()["paused"], what="a full worker queue")
        return out

    yield start
    for w, srv in made:
        srv.shutdown()
        srv.server_close()
        w.stop()


def key(rec: dict) -> tuple[str, int]:
    return rec["sampler"]["worker"], rec["sampler"]["seq"]


def spooled(paths) -> dict:
    return {key(r): r for p in paths if Path(p).exists() for r in read_records(p, "trajectory")}


# ---------------------------------------------------------------------- one learner process
def test_learner_trains_on_worker_rollouts_and_publishes_weights(world, workers, tmp_path):
    ws = workers(2)
    out = tmp_path / "run"
    trainer = AsyncTrainer(cfg(world, out, steps=5), AsyncConfig(workers=[u for _, u in ws], rollout_wait=120))
    try:
        hist = list(trainer.steps())
        # the last published weights reach every worker, and what they sample next carries them
        v = trainer.published_version
        assert v == 4
        for w, _ in ws:
            wait_until(lambda w=w: w.version == v, what="the worker to load the new weights")
            assert w.lineage == trainer.lineage
            w.queue.clear()
            got = w.take(4, wait_s=120)
            assert got and all(r["policy_version"] == v and r["sampler"]["lineage"] == trainer.lineage for r in got)
    finally:
        trainer.flush_rollouts()
        trainer.close()
    assert [h["step"] for h in hist] == [1, 2, 3, 4, 5]
    assert [h["published_version"] for h in hist] == [0, 0, 2, 2, 4]  # every model_update_interval steps
    assert all(h["online_rows"] == 2 and h["filled_offline"] == 0 and h["reward_offline"] == 1.0 for h in hist)
    for h in hist:
        assert 0 <= h["staleness"] <= h["staleness_max"] <= h["policy_version"] - 1
    # each rollout trained on came from a worker's spool, and none twice
    trained = list(read_records(out / "corpus", "trajectory"))
    assert len(trained) == 5 * 2
    keys = [key(r) for r in trained]
    assert len(set(keys)) == len(keys)
    spool = spooled([tmp_path / "spool0", tmp_path / "spool1"])
    assert set(keys) <= set(spool)
    state = json.loads((out / "async.json").read_text())
    assert state["lineage"] == trainer.lineage and "token" not in state
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "step-000005")


def test_weights_via_shared_storage(world, workers, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    ws = workers(1, weights_dir=str(shared))
    trainer = AsyncTrainer(cfg(world, tmp_path / "run", steps=5, model_update_interval=1),
                           AsyncConfig(workers=[ws[0][1]], rollout_wait=120, weights_via="path",
                                       weights_dir=str(shared)))
    try:
        hist = list(trainer.steps())
        w = ws[0][0]
        wait_until(lambda: w.version == 4, what="the last weights file to be loaded")
    finally:
        trainer.close()
    assert [h["published_version"] for h in hist] == [0, 1, 2, 3, 4]
    files = sorted(p.name for p in shared.glob("*.safetensors"))
    assert 1 <= len(files) <= 3 and files[-1] == f"{trainer.lineage}-v00000004.safetensors"
    from spo_cli.serve.weights import read_file

    saved = read_file(shared / files[-1])
    assert all(torch.equal(saved[k], v) for k, v in w.model.state_dict().items())


def test_resume_keeps_lineage_and_republishes(world, workers, tmp_path):
    ws = workers(1)
    urls = [u for _, u in ws]
    out = tmp_path / "run"
    first = run_async(cfg(world, out, steps=3), AsyncConfig(workers=urls, rollout_wait=120), quiet_stdout=True)
    lineage = json.loads((out / "async.json").read_text())["lineage"]
    second = run_async(cfg(world, out, steps=5), AsyncConfig(workers=urls, rollout_wait=120), resume=True,
                       quiet_stdout=True)
    assert [h["step"] for h in first + second] == [1, 2, 3, 4, 5]
    assert second[0]["published_version"] == 3  # a resumed learner first sends its weights
    assert json.loads((out / "async.json").read_text())["lineage"] == lineage
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3, 4, 5]
    w = ws[0][0]
    wait_until(lambda: w.health()["accepted_lineage"] == lineage, what="the worker to hear the resumed learner")


def test_ppo_corrects_stale_rollouts_and_max_staleness_drops_them(world, workers, tmp_path):
    urls = [u for _, u in workers(1, fill=True)]  # 16 rollouts of version 0 wait: later steps use stale ones
    hist = run_async(cfg(world, tmp_path / "ppo", algo="ppo", offline_ratio=0.0, offline=[], values=[], steps=3),
                     AsyncConfig(workers=urls, rollout_wait=120), quiet_stdout=True)
    assert [h["published_version"] for h in hist] == [0, 1, 2]  # PPO: every step
    last = hist[-1]
    assert last["staleness_max"] >= 2 and last["stale_rows"] > 0  # decoupled PPO on rows > 1 version old
    assert "importance_weight" in last and "value_loss" in last
    urls = [u for _, u in workers(1, fill=True)]
    hist = run_async(cfg(world, tmp_path / "spo", steps=3, model_update_interval=1, max_staleness=1),
                     AsyncConfig(workers=urls, rollout_wait=120), quiet_stdout=True)
    assert all(h["staleness_max"] <= 1 for h in hist)
    assert sum(h["rollouts_dropped_stale"] for h in hist) > 0


def test_all_workers_down_fills_from_offline_or_stops(world, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens there
    acfg = AsyncConfig(workers=[dead], rollout_wait=60, worker_timeout=2)
    t0 = time.monotonic()
    hist = run_async(cfg(world, tmp_path / "a", steps=2), acfg, quiet_stdout=True)
    assert time.monotonic() - t0 < 50  # did not sit out --rollout-wait: no worker could deliver
    assert [h["filled_offline"] for h in hist] == [2, 2] and all(h["online_rows"] == 0 for h in hist)
    assert all(h["workers_up"] == 0 for h in hist)
    with pytest.raises(SpoError, match="only 0 of 4 rollouts"):
        run_async(cfg(world, tmp_path / "b", offline_ratio=0.0, offline=[], steps=1),
                  AsyncConfig(workers=[dead], rollout_wait=3, worker_timeout=1), quiet_stdout=True)


def test_rollouts_of_problems_the_learner_does_not_know_are_dropped(world, workers, tmp_path):
    other = {"zz": {"id": "zz", "prompt": "Print 0.", "tests": [{"input": "", "output": "0\n"}], "time_limit": 2}}
    urls = [u for _, u in workers(1, fill=True, problems=other)]
    hist = run_async(cfg(world, tmp_path / "a", steps=1), AsyncConfig(workers=urls, rollout_wait=5),
                     quiet_stdout=True)
    assert hist[0]["rollouts_dropped_unknown"] > 0 and hist[0]["filled_offline"] == 2


def test_configuration_errors(world, tmp_path):
    with pytest.raises(BadInput, match="workers"):
        AsyncTrainer(cfg(world, tmp_path / "a"), AsyncConfig(workers=[]))
    with pytest.raises(BadInput, match="offline-ratio below 1"):
        AsyncTrainer(cfg(world, tmp_path / "b", offline_ratio=1.0), AsyncConfig(workers=["http://127.0.0.1:9"]))
    with pytest.raises(BadInput, match="weights-dir"):
        AsyncTrainer(cfg(world, tmp_path / "c"), AsyncConfig(workers=["http://127.0.0.1:9"], weights_via="path"))


def test_launch_command_and_cli_options(world, tmp_path):
    from typer.testing import CliRunner

    from spo_cli.cli import app
    from spo_cli.train.launch import accelerate_command

    cmd = accelerate_command(2, None, [])
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert "--multi_gpu" in cmd and cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[cmd.index("--num_machines") + 1] == "1" and "--main_process_port" in cmd
    cmd = accelerate_command(None, None, ["--num_machines=2", "--machine_rank=1", "--main_process_ip=10.0.0.1"])
    assert "--main_process_port" not in cmd and "--num_processes" not in cmd and cmd[-1] == "--main_process_ip=10.0.0.1"
    conf = tmp_path / "acc.yaml"
    conf.write_text("distributed_type: MULTI_GPU\n")
    cmd = accelerate_command(None, str(conf), [])
    assert cmd[3:5] == ["--config_file", str(conf)] and "--multi_gpu" not in cmd
    with pytest.raises(BadInput):
        accelerate_command(None, str(tmp_path / "missing.yaml"), [])
    d, model = world
    runner = CliRunner()
    res = runner.invoke(app, ["train", "-m", model, "-p", str(d / "problems.jsonl"), "--workers", "http://127.0.0.1:9"])
    assert res.exit_code == 2 and "--workers needs --async" in res.output  # (launch options do not: tests/test_fsdp.py)
    res = runner.invoke(app, ["train", "--async", "-m", model, "-p", str(d / "problems.jsonl"), "-o", str(tmp_path / "r")])
    assert res.exit_code == 2 and "--workers" in res.output


# ---------------------------------------------------------------------- the whole thing, for real
def _start_worker(model: str, problems: Path, spool: Path, env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "spo_cli", "sample", "--serve", "-m", model, "-p", str(problems), "--port", "0",
         "-n", "2", "--batch-size", "4", "--max-new-tokens", "12", "--spool", str(spool), "--judge-jobs", "1",
         "--queue-size", "8", "--device", "cpu", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    box: list = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(180)
    if not box or not box[0]:
        proc.kill()
        raise AssertionError("the worker did not start listening")
    return proc, json.loads(box[0])["url"]


def _health(url: str) -> dict:
    from spo_cli.serve.client import WorkerClient

    return WorkerClient(url, timeout=10).health()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_learners_two_workers_kill_a_worker_then_the_learners_and_resume(world, tmp_path):
    d, model = world
    STEPS = 12  # killed after the step-4 checkpoint: room to be still running when the kill comes
    env = dict(os.environ, OMP_NUM_THREADS="1", SPO_QUIET="1")
    env.pop("SPO_TOKEN", None)
    procs: list[subprocess.Popen] = []
    learner = None
    out = tmp_path / "run"
    try:
        (a, url_a), (b, url_b) = (_start_worker(model, d / "problems.jsonl", tmp_path / f"spool{x}", env)
                                  for x in "ab")
        procs += [a, b]
        cmd = [sys.executable, "-m", "spo_cli", "train", "--async", "--num-processes", "2",
               "--workers", f"{url_a},{url_b}", "-m", model, "-p", str(d / "problems.jsonl"),
               "--values", str(d / "values.jsonl"), "--offline", str(d / "corpus.jsonl"), "--offline-ratio", "0.5",
               "--batch-size", "4", "--online-n", "1", "--steps", str(STEPS), "--save-every", "2",
               "--model-update-interval", "2", "--lr", "1e-3", "--warmup", "0", "--max-new-tokens", "12",
               "--worker-timeout", "5", "--rollout-wait", "240", "-o", str(out)]
        if torch.cuda.is_available():  # two learners on one GPU would not work; CPUs: the default path
            cmd += ["--device", "cpu"]
        metrics = out / "metrics.jsonl"

        def steps_done() -> int:
            if not metrics.exists():
                return 0
            return max((json.loads(l)["step"] for l in metrics.read_text().splitlines() if l.strip()), default=0)

        learner = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                   start_new_session=True)
        wait_until(lambda: steps_done() >= 2 or learner.poll() is not None, 300, "two steps")
        assert learner.poll() is None, "the learners stopped early"
        b.kill()  # a worker dies mid-run
        b.wait()
        wait_until(lambda: (out / "checkpoints" / "step-000004" / "spo_checkpoint.json").exists()
                   or learner.poll() is not None, 300, "the step-4 checkpoint")
        assert learner.poll() is None, "training stopped when a worker died"
        os.killpg(learner.pid, signal.SIGKILL)  # the learners die too, without warning
        learner.wait()
        killed_at = steps_done()
        assert 4 <= killed_at < STEPS
        learner = subprocess.Popen(cmd + ["--resume"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env=env, start_new_session=True)
        _, errs = learner.communicate(timeout=400)
        assert learner.returncode == 0, errs.decode()[-3000:]
        lines = [json.loads(l) for l in metrics.read_text().splitlines()]
        assert [l["step"] for l in lines] == list(range(1, STEPS + 1))
        assert all(l["learner_processes"] == 2 for l in lines)
        assert lines[-1]["workers_up"] == 1 and lines[-1]["workers"] == 2  # b stayed down; a carried on
        # weights reached the surviving worker: its policy_version advanced, with this run's lineage
        lineage = json.loads((out / "async.json").read_text())["lineage"]
        h = _health(url_a)
        assert h["lineage"] == lineage and h["policy_version"] >= 4 and h["weights_applied"] >= 2
        spool = spooled([tmp_path / "spoola", tmp_path / "spoolb"])
        assert any(r["policy_version"] >= 2 and r["sampler"]["lineage"] == lineage for r in spool.values())
        # every rollout trained on is in a worker's spool, and none was trained on twice
        trained = [key(r) for r in read_records(out / "corpus", "trajectory")]
        # (checkpoints flush the rollouts of the steps before them: every step's are there once)
        assert len(trained) >= 2 * STEPS and len(set(trained)) == len(trained)
        assert set(trained) <= set(spool)
    finally:
        if learner is not None and learner.poll() is None:
            os.killpg(learner.pid, signal.SIGKILL)
            learner.wait()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
