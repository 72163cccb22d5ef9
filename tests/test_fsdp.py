"""spo train in several processes: one process, DDP and FSDP2 (2 processes on gloo) train alike;
FSDP checkpoints resume exactly, and in another layout; async FSDP learners publish streamed weights.

The three layouts of the same seeded 3-step run (half offline, half online rollouts sampled and
judged each step, the behaviour policy lagging one step) are trained once for the module (the
`layouts` fixture) and compared by the tests. Launched processes get one torch thread each: on a
shared 2-core machine more only spin against each other.
"""

from __future__ import annotations

import gc
import json
import shutil
import threading
import weakref
from pathlib import Path

import pytest
import torch

from spo_cli.errors import BadInput
from spo_cli.streams import read_records
from spo_cli.train.config import AsyncConfig, LaunchConfig, TrainConfig
from spo_cli.train.launch import launch
from tests.test_train import make_world
from tests.tinymodel_util import one_thread  # noqa: F401 - one torch thread
from tests.waiting import wait_until

STEPS = 3
FSDP = ["--use_fsdp"]  # accelerate launch's flag; spo fills in --fsdp_version 2
# Losses of the layouts agree to float32 rounding: the same rows form the same micro-batches
# (one process with --grad-accum 2 = two processes with 1 each), only sums are reordered.
REL_TOL = 1e-4
WEIGHT_TOL = 1e-5


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory)


def cfg(world, out, **kw) -> TrainConfig:
    d, model = world
    base = dict(model=model, out=str(out), problems=[str(d / "problems.jsonl")], values=[str(d / "values.jsonl")],
                offline=[str(d / "corpus.jsonl")], offline_ratio=0.5, batch_size=4, online_n=2, steps=STEPS,
                max_new_tokens=8, lr=1e-4, warmup=0, save_every=1, keep=STEPS, model_update_interval=2,
                judge_jobs=1, seed=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def threads_env():
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")
    mp.delenv("SPO_TOKEN", raising=False)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def layouts(world, tmp_path_factory, threads_env):
    """The same run in one process (--grad-accum 2), under DDP and under FSDP (2 processes each)."""
    root = tmp_path_factory.mktemp("layouts")
    launch(cfg(world, root / "single", grad_accum=2), None, LaunchConfig())
    launch(cfg(world, root / "ddp"), None, LaunchConfig(num_processes=2))
    launch(cfg(world, root / "fsdp"), None, LaunchConfig(num_processes=2, accelerate_arg=FSDP))
    return root


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def close(a: dict, b: dict, tol: float) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=tol) for k in a)


def test_one_process_ddp_and_fsdp_train_alike(layouts):
    runs = {k: metrics(layouts / k) for k in ("single", "ddp", "fsdp")}
    for name, hist in runs.items():
        assert [h["step"] for h in hist] == [1, 2, 3], name
    base = runs["single"]
    for name in ("ddp", "fsdp"):
        for a, b in zip(base, runs[name]):
            assert b["loss"] == pytest.approx(a["loss"], rel=REL_TOL), (name, a["step"])
            for k in ("kl_ref", "q_terminal_err", "grad_norm"):
                assert b[k] == pytest.approx(a[k], rel=REL_TOL, abs=1e-6), (name, k)
            # the same data: offline positions, online rollouts (sampled in step, judged alike)
            for k in ("data_position", "reward_offline", "reward_online", "sample_tokens", "tokens",
                      "behaviour_version", "policy_version"):
                assert b[k] == a[k], (name, k)
            assert set(b) - {"entropy"} >= set(a) - {"entropy"}
    final = {k: weights(layouts / k / "checkpoints" / "step-000003" / "model.safetensors") for k in runs}
    assert close(final["single"], final["ddp"], WEIGHT_TOL) and close(final["single"], final["fsdp"], WEIGHT_TOL)
    # the online rollouts, saved to run/corpus/, are the same ones
    texts = {k: sorted(r["response"] for r in read_records(layouts / k / "corpus", "trajectory")) for k in runs}
    assert texts["single"] == texts["ddp"] == texts["fsdp"] and len(texts["single"]) == 2 * STEPS


def test_fsdp_checkpoints_are_sharded_and_load_as_hugging_face_models(layouts):
    ck = layouts / "fsdp" / "checkpoints" / "step-000001"
    meta = json.loads((ck / "spo_checkpoint.json").read_text())
    assert meta["layout"] == {"kind": "fsdp", "processes": 2}
    # the optimiser state: one file per process (each wrote its shards), never gathered
    assert sorted(p.name for p in (ck / "optimizer").glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert (ck / "behaviour.safetensors").exists()  # the behaviour policy lagged the policy at step 1
    from transformers import AutoModelForCausalLM

    latest = layouts / "fsdp" / "checkpoints" / "latest"
    model = AutoModelForCausalLM.from_pretrained(latest)  # the weights, streamed into one safetensors file
    sd = weights(latest / "model.safetensors")
    assert all(torch.equal(v, sd[k]) for k, v in model.state_dict().items())


def test_fsdp_checkpoint_samples_as_spo_sample_and_spo_eval_load_it(layouts, world):
    from spo_cli.sampling import make_sampler
    from spo_cli.sampling.base import SampleOptions

    d, _ = world
    problems = list(read_records(d / "problems.jsonl", "problem"))
    sampler = make_sampler("hf", str(layouts / "fsdp/checkpoints/latest"), SampleOptions(n=1, max_new_tokens=4),
                           device="cpu")
    out = sampler.sample(problems)
    assert len(out) == 4 and all(r["response_ids"] for r in out)


def _cut(src: Path, dst: Path, step: int) -> Path:
    """A copy of a finished run as it was when its step-`step` checkpoint was the latest."""
    shutil.copytree(src, dst, symlinks=True)
    ckpts = dst / "checkpoints"
    for p in ckpts.glob("step-*"):
        if int(p.name.split("-")[1]) > step:
            shutil.rmtree(p)
    (ckpts / "latest").unlink()
    (ckpts / "latest").symlink_to(f"step-{step:06d}")
    return dst


def test_fsdp_resume_is_exact_and_another_process_count_can_resume(layouts, world, tmp_path):
    full = metrics(layouts / "fsdp")
    end = layouts / "fsdp" / "checkpoints" / "step-000003" / "model.safetensors"
    # FSDP, N then M steps = N + M steps: the same losses, data positions and weights
    run = _cut(layouts / "fsdp", tmp_path / "again", 1)
    launch(cfg(world, run), None, LaunchConfig(num_processes=2, accelerate_arg=FSDP), resume=True)
    again = metrics(run)
    assert [h["step"] for h in again] == [1, 2, 3]
    for a, b in zip(full, again):
        assert a["loss"] == b["loss"] and a["data_position"] == b["data_position"]
        assert a["reward_online"] == b["reward_online"] and a["behaviour_version"] == b["behaviour_version"]
    assert close(weights(end), weights(run / "checkpoints" / "step-000003" / "model.safetensors"), 0.0)
    # the sharded optimiser state re-shards for one process: it continues the same run (its step is
    # one micro-batch of 4 rows instead of two of 2: the same loss up to rounding)
    from spo_cli.train.run import run as train

    one = _cut(layouts / "fsdp", tmp_path / "one", 2)
    hist = train(cfg(world, one), resume=True, quiet_stdout=True)
    assert [h["step"] for h in hist] == [3]
    assert hist[0]["loss"] == pytest.approx(full[2]["loss"], rel=REL_TOL)
    assert close(weights(end), weights(one / "checkpoints" / "step-000003" / "model.safetensors"), WEIGHT_TOL)


def test_a_batch_that_does_not_divide_among_the_processes_is_refused(world, tmp_path):
    from spo_cli.train.processes import Processes
    from spo_cli.train.setup import check_layout, configure

    class Two:  # what Processes reads of an accelerator
        process_index, num_processes, is_main_process, device = 0, 2, True, torch.device("cpu")

    ddp, fsdp = Processes(Two(), kind="ddp"), Processes(Two(), kind="fsdp")
    check_layout(configure(cfg(world, tmp_path / "a")), ddp)
    with pytest.raises(BadInput, match="--batch-size 4 must divide into 2 process"):
        check_layout(configure(cfg(world, tmp_path / "a", grad_accum=4)), ddp)
    with pytest.raises(BadInput, match="missing-value estimate"):
        check_layout(configure(cfg(world, tmp_path / "a", missing_value="estimate")), fsdp)
    check_layout(configure(cfg(world, tmp_path / "a", missing_value="estimate")), ddp)


def test_fsdp_version_1_and_deepspeed_are_refused_and_the_launcher_asks_for_2(world, monkeypatch):
    from spo_cli.train.launch import accelerate_command
    from spo_cli.train.processes import Processes

    cmd = accelerate_command(2, None, ["--use_fsdp"])
    assert cmd[cmd.index("--fsdp_version") + 1] == "2" and "--multi_gpu" not in cmd
    assert accelerate_command(2, None, ["--use_fsdp", "--fsdp_version=2"]).count("--fsdp_version") == 0
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(BadInput, match="FSDP version 2 only"):
        Processes.start(cfg(world, "unused"))
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")  # on CPUs accelerate would run DDP instead
    with pytest.raises(BadInput, match="not DeepSpeed"):
        Processes.start(cfg(world, "unused"))


def test_weights_are_written_and_streamed_one_tensor_at_a_time(tmp_path):
    """What the publishing process holds: the tensor being written, never the model."""
    from safetensors.torch import load, load_file

    from spo_cli.serve.weights import stream_file, write_stream

    g = torch.Generator().manual_seed(0)
    shapes = {"a": (64, 32), "b.weight": (33,), "c": (8, 8, 4)}
    made: dict[str, torch.Tensor] = {}
    alive: list[weakref.ref] = []

    def one_at_a_time():
        for name, shape in shapes.items():
            gc.collect()
            assert all(r() is None for r in alive), "an earlier tensor is still held"
            t = torch.randn(shape, generator=g)
            made[name] = t.clone()
            alive.append(weakref.ref(t))
            yield name, t
            del t

    spec = {k: (s, torch.float32) for k, s in shapes.items()}
    path = write_stream(tmp_path / "w.safetensors", spec, one_at_a_time(), meta={"policy_version": 3})
    back = load_file(str(path))  # the safetensors library reads what was streamed
    assert all(torch.equal(back[k], made[k]) for k in shapes)
    n, chunks = stream_file(path, torch.bfloat16)
    data = b"".join(bytes(c) for c in chunks)
    assert len(data) == n
    cast = load(data)
    assert all(cast[k].dtype == torch.bfloat16 and torch.equal(cast[k], made[k].bfloat16()) for k in shapes)
    with pytest.raises(Exception, match="announced"):
        write_stream(tmp_path / "x.safetensors", spec, iter([("b.weight", torch.zeros(33))]))
    assert not (tmp_path / "x.safetensors").exists()


# ---------------------------------------------------------------------- --async, sharded learners
@pytest.fixture
def worker(world, pool, tmp_path):
    from spo_cli.sampling.base import SampleOptions
    from spo_cli.sampling.hf import HFSampler
    from spo_cli.serve.server import WorkerServer
    from spo_cli.serve.worker import RolloutWorker, WorkerOptions

    d, model = world
    problems = {p["id"]: p for p in read_records(d / "problems.jsonl", "problem")}
    sampler = HFSampler.from_pretrained(model, SampleOptions(max_new_tokens=8), device="cpu")
    w = RolloutWorker(sampler, problems, WorkerOptions(n=2, rows=4, queue_size=8, seed=0, judge_jobs=1,
                                                       spool=str(tmp_path / "spool")), pool=pool)
    srv = WorkerServer("127.0.0.1", 0, w, token=None)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    w.start()
    yield w, srv.url
    srv.shutdown()
    srv.server_close()
    w.stop()


def test_async_fsdp_ppo_learners_publish_streamed_weights(world, worker, tmp_path, threads_env):
    """Two FSDP learners (PPO: the value model sharded too; bf16 compute, gradient checkpointing)
    train on a worker's rollouts and publish every step; the worker loads each publication."""
    w, url = worker
    out = tmp_path / "run"
    c = cfg(world, out, algo="ppo", offline_ratio=0.0, offline=[], values=[], steps=2, precision="bf16",
            gradient_checkpointing=True)
    launch(c, AsyncConfig(workers=[url], rollout_wait=240, worker_timeout=30),
           LaunchConfig(num_processes=2, accelerate_arg=FSDP))
    hist = metrics(out)
    assert [h["step"] for h in hist] == [1, 2]
    assert all(h["learner_processes"] == 2 and "value_loss" in h for h in hist)
    assert [h["published_version"] for h in hist] == [0, 1]  # PPO: weights every step
    lineage = json.loads((out / "async.json").read_text())["lineage"]
    wait_until(lambda: w.version == 1 and w.lineage == lineage, what="the worker to load the last publication")
    # what the worker runs is the policy after step 1, gathered from the shards: the step-1 checkpoint
    loaded = {k: v.detach().clone() for k, v in w.model.state_dict().items()}
    assert close(loaded, weights(out / "checkpoints" / "step-000001" / "model.safetensors"), 0.0)
    assert not list((out / ".published").glob("*.safetensors"))  # the learner's copies go when it stops
    assert (out / "checkpoints" / "step-000002" / "value_model" / "model.safetensors").exists()
