"""Rollout workers (spo_cli/serve): rounds, the bounded queue, weights between rounds, versions and
lineage, the HTTP protocol and its security (token, loopback, body limits, safetensors only).

Workers here run in this process on 127.0.0.1 with a tiny random model and one torch thread;
nothing leaves the loopback interface.
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time

import orjson
import pytest
import torch

from spo_cli.errors import BadInput, SpoError
from spo_cli.serve.auth import authorized, check_bind, is_loopback, resolve_token
from spo_cli.serve.client import WorkerClient, WorkerLinks, WorkerRefused
from spo_cli.serve.server import WorkerServer
from spo_cli.serve.weights import WeightsError, check_fits, decode, encode, snapshot, spec_of, write_file
from spo_cli.serve.worker import RolloutWorker, WorkerOptions, valid_for
from spo_cli.streams import read_records
from tests.tinymodel_util import build_tiny_model, one_thread  # noqa: F401 - one torch thread
from tests.waiting import wait_until

TOKEN = "s3cret-token-for-tests-0123456789"
PROBLEMS = {f"p{i}": {"id": f"p{i}", "prompt": f"Print {i}.", "tests": [{"input": "", "output": f"{i}\n"}],
                      "time_limit": 2} for i in range(3)}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_model(tmp_path_factory.mktemp("serve") / "model"))


@pytest.fixture
def make_worker(model_dir, pool, tmp_path):
    from spo_cli.sampling.base import SampleOptions
    from spo_cli.sampling.hf import HFSampler

    made = []

    def make(**kw):
        opts = dict(n=2, rows=4, queue_size=16, seed=1, judge_jobs=1, spool=str(tmp_path / "spool"))
        opts.update(kw)
        sampler = HFSampler.from_pretrained(model_dir, SampleOptions(max_new_tokens=8), device="cpu")
        w = RolloutWorker(sampler, PROBLEMS, WorkerOptions(**opts), pool=pool)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


@pytest.fixture
def serve():
    servers = []

    def start(worker, host="127.0.0.1", port=0, **kw):
        srv = WorkerServer(host, port, worker, **kw)
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def request(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def weights_of(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------- the engine
def test_round_stamps_judges_spools_and_queues(make_worker, tmp_path):
    w = make_worker()
    queued = w.run_round()
    spooled = sorted(read_records(tmp_path / "spool", "trajectory"), key=lambda r: r["sampler"]["seq"])
    assert len(spooled) == 4 and queued == len(w.queue) <= 4
    assert all(r["verdict"] is not None for r in spooled)  # judged inline
    assert [r["sampler"]["seq"] for r in spooled] == [0, 1, 2, 3]
    for r in spooled:
        assert r["policy_version"] == 0 and r["source"] == "online"
        assert r["sampler"]["worker"] == w.opts.worker_id and r["sampler"]["lineage"] is None
        assert len(r["logprobs"]) == len(r["response_ids"])  # behaviour log-probs travel with it
    # each rollout is served once, oldest first
    got = w.take(100)
    assert [r["sampler"]["seq"] for r in got] == [r["sampler"]["seq"] for r in spooled if r["reward"] is not None]
    assert w.take(100) == []
    # a second round draws different samples (per-round seeds)
    w.run_round()
    again = [r for r in read_records(tmp_path / "spool", "trajectory") if r["sampler"]["seq"] >= 4]
    assert len(again) == 4
    assert {r["sampler"]["seed"] for r in again}.isdisjoint({r["sampler"]["seed"] for r in spooled})


def test_bounded_queue_pauses_sampling_until_taken(make_worker):
    w = make_worker(queue_size=4, rows=4).start()
    wait_until(lambda: w.health()["paused"], what="the worker to pause on a full queue")
    produced = w.health()["produced"]
    time.sleep(0.5)
    h = w.health()
    assert h["paused"] and h["produced"] == produced and h["queue"] <= 4
    taken = w.take(4)
    assert taken
    wait_until(lambda: w.health()["produced"] > produced, what="sampling to resume")


def test_new_weights_load_between_rounds_and_stamp_their_version(make_worker):
    w = make_worker()
    new = {k: v + 0.01 for k, v in weights_of(w.model).items()}
    res = w.offer_weights(new, 3, "run-a")
    assert res["accepted"] == 3
    assert w.version == 0  # not yet: only between rounds
    assert w.health()["pending_version"] == 3
    w.run_round()
    assert w.version == 3 and w.lineage == "run-a"
    assert all(torch.equal(w.model.state_dict()[k], new[k]) for k in new)
    got = w.take(100)
    assert got and all(r["policy_version"] == 3 and r["sampler"]["lineage"] == "run-a" for r in got)


def test_reference_worker_keeps_the_reference_weights(make_worker):
    w = make_worker(reference=True)
    before = weights_of(w.model)
    res = w.offer_weights({k: v + 1.0 for k, v in before.items()}, 7, "run-a")
    assert res["accepted"] == 7 and res["loaded"] is False
    w.run_round()
    assert all(torch.equal(w.model.state_dict()[k], before[k]) for k in before)
    h = w.health()
    assert h["reference"] and h["accepted_version"] == 7 and h["policy_version"] == 0
    got = w.take(100)
    assert got and all(r["source"] == "ref" and r["policy_version"] == 0 for r in got)


def test_valid_for_rule():
    assert valid_for(None, 0, None, 0)  # before any learner spoke
    assert valid_for("x", 9, None, 0)
    assert valid_for(None, 0, "L", 5)  # initial weights: the learner's version-0 model
    assert valid_for("L", 5, "L", 5) and valid_for("L", 2, "L", 5)
    assert not valid_for("L", 6, "L", 5)  # from an abandoned future (learner resumed earlier)
    assert not valid_for("M", 1, "L", 5)  # another run
    assert not valid_for(None, 7, "L", 5)


def test_resumed_or_new_learner_drops_inconsistent_rollouts(make_worker):
    w = make_worker()
    w.run_round()
    base = w.take(1)[0]

    def item(lineage, version):
        r = dict(base, policy_version=version)
        r["sampler"] = dict(base["sampler"], lineage=lineage)
        return r

    w.queue.clear()
    w.queue.extend([item(None, 0), item("L", 3), item("L", 6), item("M", 1)])
    res = w.offer_weights(weights_of(w.model), 4, "L")  # a learner resumed at step 4
    assert res["dropped"] == 2
    assert [(r["sampler"]["lineage"], r["policy_version"]) for r in w.queue] == [(None, 0), ("L", 3)]
    res = w.offer_weights(weights_of(w.model), 0, "N")  # a new run
    assert res["dropped"] == 1 and [r["sampler"]["lineage"] for r in w.queue] == [None]


def test_problems_the_model_cannot_take_are_skipped(make_worker, model_dir, pool):
    from spo_cli.sampling.base import SampleOptions
    from spo_cli.sampling.hf import HFSampler

    sampler = HFSampler.from_pretrained(model_dir, SampleOptions(max_new_tokens=8), device="cpu")
    long = {"id": "long", "prompt": "print the sum " * 800, "tests": [{"input": "", "output": "0\n"}]}
    w = RolloutWorker(sampler, {**PROBLEMS, "long": long}, WorkerOptions(n=2, rows=4), pool=pool)
    assert w.problem_ids == sorted(PROBLEMS)  # a round drawing it would fail as a whole
    with pytest.raises(BadInput, match="no problem"):
        RolloutWorker(sampler, {"long": long}, WorkerOptions(), pool=pool)


# ---------------------------------------------------------------------- weights payloads
def test_weights_roundtrip_and_checks(make_worker):
    w = make_worker()
    sd = snapshot(w.model.state_dict())
    data = encode(sd, torch.bfloat16, {"policy_version": 1})
    back = decode(data)
    assert back.keys() == sd.keys() and all(t.dtype == torch.bfloat16 for t in back.values())
    check_fits(back, spec_of(w.model.state_dict()))  # another float dtype fits (cast on apply)
    for bad in (b"", b"not safetensors at all", data[: len(data) // 2], b"\xff" * 64):
        with pytest.raises(WeightsError):
            decode(bad)
    buf = io.BytesIO()
    torch.save(sd, buf)  # a pickle: never accepted
    with pytest.raises(WeightsError):
        decode(buf.getvalue())
    k0 = next(iter(sd))
    for broken, why in (({k: v for k, v in sd.items() if k != k0}, "missing"),
                        ({**sd, "extra.weight": torch.zeros(1)}, "unknown"),
                        ({**sd, k0: torch.zeros(3, 3)}, "shape"),
                        ({**sd, k0: torch.zeros_like(sd[k0], dtype=torch.int64)}, "dtype"),
                        ({**sd, k0: torch.full_like(sd[k0], float("nan"))}, "NaN")):
        with pytest.raises(WeightsError, match=why):
            check_fits(broken, spec_of(w.model.state_dict()))


# ---------------------------------------------------------------------- auth rules
def test_auth_rules(monkeypatch):
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert is_loopback(host)
    for host in ("0.0.0.0", "10.0.0.5", "::", "example.org", "myhost"):
        assert not is_loopback(host)
    check_bind("127.0.0.1", None)
    with pytest.raises(BadInput, match="without a token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(BadInput, match="at least"):
        check_bind("0.0.0.0", "short")
    check_bind("0.0.0.0", TOKEN)
    assert authorized(None, None)
    assert authorized(f"Bearer {TOKEN}", TOKEN)
    for h in (None, "", TOKEN, f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}"):
        assert not authorized(h, TOKEN)
    monkeypatch.setenv("SPO_TOKEN", TOKEN)
    assert resolve_token(None) == TOKEN and resolve_token("other-token-0123456") == "other-token-0123456"
    monkeypatch.setenv("SPO_TOKEN", "")
    assert resolve_token(None) is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_non_loopback_bind_without_token_is_refused_before_binding(make_worker):
    w = make_worker()
    port = _free_port()
    with pytest.raises(BadInput, match="without a token"):
        WorkerServer("0.0.0.0", port, w, token=None)
    with socket.socket() as s:  # nothing took the port: the refusal came before bind()
        s.bind(("0.0.0.0", port))


def test_cli_refuses_non_loopback_without_token(model_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from spo_cli.cli import app
    from spo_cli.streams import write_records

    monkeypatch.delenv("SPO_TOKEN", raising=False)
    write_records(tmp_path / "p.jsonl", list(PROBLEMS.values()))
    res = CliRunner().invoke(app, ["sample", "--serve", "--host", "0.0.0.0", "--port", str(_free_port()),
                                   "-m", model_dir, "-p", str(tmp_path / "p.jsonl")])
    assert res.exit_code == 2
    assert "without a token" in res.output


def test_token_required_on_every_endpoint(make_worker, serve):
    w = make_worker()
    srv = serve(w, host="0.0.0.0", token=TOKEN)  # any address, reached via loopback only
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    body = orjson.dumps({"max": 1, "wait_s": 0})
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
        assert request(url, "GET", "/health", headers=headers)[0] == 401
        assert request(url, "POST", "/rollouts", body, headers)[0] == 401
        assert request(url, "GET", "/nope", headers=headers)[0] == 401  # no probing of routes either
    # a weights body is not even read without the token: 401, or the connection closes under the sender
    big = b"\0" * (4 << 20)
    try:
        status, _ = request(url, "POST", "/weights", big, {"Content-Type": "application/octet-stream"})
    except (BrokenPipeError, ConnectionResetError):
        status = 401
    assert status == 401 and w.health()["weights_received"] == 0
    good = {"Authorization": f"Bearer {TOKEN}"}
    status, data = request(url, "GET", "/health", headers=good)
    assert status == 200 and orjson.loads(data)["worker"] == w.opts.worker_id
    with pytest.raises(WorkerRefused) as e:
        WorkerClient(url, "wrong-token-0123456789").health()
    assert e.value.status == 401
    assert WorkerClient(url, TOKEN).health()["queue"] == 0


def test_bad_weights_are_rejected_and_the_worker_keeps_its_own(make_worker, serve, tmp_path):
    w = make_worker()
    shared = tmp_path / "shared"
    shared.mkdir()
    srv = serve(w, token=None, weights_dir=str(shared))
    c = WorkerClient(srv.url)
    before = weights_of(w.model)
    sd = snapshot(w.model.state_dict())
    k0 = next(iter(sd))
    buf = io.BytesIO()
    torch.save(sd, buf)
    bad_payloads = [b"garbage" * 10, buf.getvalue(), encode({**sd, k0: torch.zeros(2, 2)}),
                    encode({k: v for k, v in sd.items() if k != k0}),
                    encode({**sd, k0: torch.full_like(sd[k0], float("inf"))})]
    for data in bad_payloads:
        with pytest.raises(WorkerRefused) as e:
            c.push_bytes(data, 5, "run-x")
        assert e.value.status == 400
    # wrong metadata, oversize bodies, paths outside the shared directory
    with pytest.raises(WorkerRefused):
        c.push_bytes(encode(sd), -1, "run-x")
    with pytest.raises(WorkerRefused):
        c.push_bytes(encode(sd), 1, "bad lineage with spaces")
    status, _ = request(srv.url, "POST", "/weights", b"", {"Content-Type": "application/octet-stream",
                                                           "Content-Length": str(w.max_weights_bytes + 1),
                                                           "X-Spo-Policy-Version": "1", "X-Spo-Lineage": "r"})
    assert status == 413
    status, _ = request(srv.url, "POST", "/rollouts", b"{" + b" " * (70 << 10) + b"}")
    assert status == 413
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(encode(sd))
    with pytest.raises(WorkerRefused) as e:
        c.push_path(str(outside), 1, "run-x")
    assert e.value.status == 403
    with pytest.raises(WorkerRefused) as e:
        c.push_path("../outside.safetensors", 1, "run-x")
    assert e.value.status == 403
    (shared / "junk.safetensors").write_bytes(b"junk" * 100)
    with pytest.raises(WorkerRefused):
        c.push_path("junk.safetensors", 1, "run-x")
    w.run_round()  # a round after all that: still the old weights, version 0
    assert w.version == 0 and w.health()["weights_received"] == 0
    assert all(torch.equal(w.model.state_dict()[k], before[k]) for k in before)
    # and good ones, by bytes and by path, are taken
    assert c.push_bytes(encode({k: v * 0.5 for k, v in sd.items()}, torch.bfloat16), 2, "run-x")["accepted"] == 2
    (shared / "v3.safetensors").write_bytes(encode({k: v * 2 for k, v in sd.items()}))
    assert c.push_path("v3.safetensors", 3, "run-x")["accepted"] == 3
    w.run_round()
    assert w.version == 3
    assert all(torch.allclose(w.model.state_dict()[k], sd[k] * 2) for k in sd)


def test_protocol_errors(make_worker, serve):
    w = make_worker()
    srv = serve(w, token=None)
    assert request(srv.url, "GET", "/nope")[0] == 404
    assert request(srv.url, "GET", "/weights")[0] == 405
    assert request(srv.url, "POST", "/rollouts", b"[1]")[0] == 400
    assert request(srv.url, "POST", "/rollouts", b"{bad json")[0] == 400
    assert request(srv.url, "POST", "/rollouts", orjson.dumps({"max": 0}))[0] == 400
    assert request(srv.url, "POST", "/rollouts", orjson.dumps({"max": 1, "wait_s": 1e9}))[0] == 400
    assert request(srv.url, "POST", "/weights", b"x", {"Content-Type": "text/plain"})[0] == 415
    w.run_round()
    rollouts, health = WorkerClient(srv.url).take(2, 0.0)
    assert 0 < len(rollouts) <= 2 and health["served"] == len(rollouts)


# ---------------------------------------------------------------------- the learner's links
def test_links_carry_on_past_dead_and_hung_workers(make_worker, serve):
    w = make_worker().start()
    srv = serve(w, token=None)
    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens
    hung = socket.socket()  # accepts connections (kernel backlog) and never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    links = WorkerLinks([dead, f"http://127.0.0.1:{hung.getsockname()[1]}", srv.url], None, lineage="run-t",
                        prefetch=4, timeout=1.0, take_wait=0.2, backoff=(0.1, 0.4)).start()
    try:
        links.publish(write_file(w.model.state_dict(), links.weights_path(0)), 0)
        got, dropped = links.get(4, timeout=90)
        assert len(got) == 4 and not dropped
        assert {r["sampler"]["worker"] for r in got} == {w.opts.worker_id}
        wait_until(lambda: links.links[0].up is False and links.links[1].up is False, what="both marked down")
        wait_until(lambda: links.links[0].failures >= 3 and links.links[1].failures >= 2, what="retries")
        assert links.stats()["workers_up"] == 1
        assert w.health()["accepted_lineage"] == "run-t"
    finally:
        links.close()
        hung.close()


def test_links_reconnect_to_a_restarted_worker_and_resend_weights(make_worker, serve):
    w1 = make_worker().start()
    srv1 = serve(w1, token=None)
    port = srv1.server_address[1]
    links = WorkerLinks([srv1.url], None, lineage="run-r", prefetch=2, timeout=2.0, take_wait=0.2,
                        backoff=(0.1, 0.5), heartbeat=0.5).start()
    try:
        new = {k: v + 0.01 for k, v in snapshot(w1.model.state_dict()).items()}
        links.publish(write_file(new, links.weights_path(4)), 4)  # streamed from the file, cast to the worker's dtype
        wait_until(lambda: w1.health()["accepted_version"] == 4, what="the first push")
        srv1.shutdown()
        srv1.server_close()
        w1.stop()
        wait_until(lambda: links.links[0].up is False, what="the link to notice")
        w2 = make_worker().start()
        serve(w2, port=port, token=None)  # the same address, a fresh process state
        wait_until(lambda: (w2.health()["accepted_lineage"], w2.health()["accepted_version"]) == ("run-r", 4),
                   what="the weights to be pushed again")
        got, _ = links.get(2, 90, keep=lambda r: None if r["sampler"]["worker"] == w2.opts.worker_id else "old")
        assert len(got) == 2
    finally:
        links.close()


def test_links_stop_training_on_a_refused_token(make_worker, serve):
    srv = serve(make_worker(), token=TOKEN)
    links = WorkerLinks([srv.url], "wrong-token-0123456789", lineage="x", prefetch=1).start()
    try:
        with pytest.raises(SpoError, match="token"):
            links.get(1, 30)
    finally:
        links.close()
    with pytest.raises(BadInput, match="twice"):
        WorkerLinks([srv.url, srv.url], None, lineage="x", prefetch=1)
    with pytest.raises(BadInput):
        WorkerLinks(["ftp://host:1"], None, lineage="x", prefetch=1)
