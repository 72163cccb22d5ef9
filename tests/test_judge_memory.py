"""memory.py: how a run's memory is counted (cgroup v2, cgroup v1, one address space).

The kernel side of cgroup v1 is exercised for real by the attack suite where this machine lets
root create memory cgroups; cgroup v2 with a memory controller is not available on the machines
this was built on, so its file protocol (what is written where, what is read back) is tested here
on a directory laid out like one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spo_cli.judge import memory


def _fake_runner(monkeypatch, tmp_path, version: int, files: dict[str, str]):
    """A RunnerCgroups over a plain directory: the cgroup the kernel would make, pre-made."""
    monkeypatch.setattr(memory.secrets, "token_hex", lambda n: "feedbeef")
    d = tmp_path / f"spo-judge-{os.getpid()}-feedbeef"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    real_mkdir = os.mkdir
    monkeypatch.setattr(memory.os, "mkdir", lambda p, *a: None if p == str(d) else real_mkdir(p, *a))
    acc = (memory.Cgroup2 if version == 2 else memory.Cgroup1)(str(tmp_path))
    return memory.RunnerCgroups(acc), d


def test_cgroup2_protocol(monkeypatch, tmp_path):
    r, d = _fake_runner(monkeypatch, tmp_path, 2, {
        "cgroup.procs": "", "memory.swap.max": "max", "memory.max": "max", "pids.max": "max",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n", "memory.peak": "12345"})
    assert (d / "memory.swap.max").read_text() == "0"  # no swap: memory.max is the bound
    r.before(256 << 20, 32)
    assert (d / "memory.max").read_text() == str(256 << 20)
    assert (d / "pids.max").read_text() == "40"
    assert (d / "memory.peak").read_text().startswith("reset")  # the per-descriptor reset
    (d / "memory.peak").write_text("777")
    assert r.after() == {"peak": 777, "oom": False}  # oom_kill 2 was there before the run
    (d / "memory.events").write_text("oom 2\noom_kill 3\n")
    for oom in (True, False):  # an OOM kill is counted for the run it happened in only
        r.before(256 << 20, 32)
        (d / "memory.peak").write_text("900")  # what the kernel shows after the reset
        assert r.after() == {"peak": 900, "oom": oom}
    r.close()
    assert not r.fds


def test_cgroup1_limit_order_keeps_memsw_above_memory(monkeypatch, tmp_path):
    r, d = _fake_runner(monkeypatch, tmp_path, 1, {
        "cgroup.procs": "", "memory.swappiness": "60", "memory.limit_in_bytes": "9" * 18,
        "memory.memsw.limit_in_bytes": "9" * 18, "memory.max_usage_in_bytes": "5000",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n"})
    writes = []
    real = memory._write
    monkeypatch.setattr(memory, "_write", lambda p, v: (writes.append(os.path.basename(p)),
                                                        real(p, v)))
    r.before(256 << 20, 32)  # down from unlimited: memory first
    assert writes == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    assert (d / "memory.max_usage_in_bytes").read_text().startswith("0")  # the peak reset
    writes.clear()
    r.before(512 << 20, 32)  # raising: memory+swap first
    assert writes == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    writes.clear()
    r.before(512 << 20, 32)  # unchanged: no limit written
    assert writes == []
    (d / "memory.max_usage_in_bytes").write_text("4096")
    assert r.after() == {"peak": 4096, "oom": False}
    (d / "memory.oom_control").write_text("oom_kill 5\n")
    assert r.after()["oom"] is True and r.after()["oom"] is False
    r.close()


def test_stale_cgroups_of_exited_judges_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"spo-judge-{dead.pid}-0a1b2c3d").mkdir()
    (tmp_path / f"spo-judge-{os.getpid()}-0a1b2c3d").mkdir()
    (tmp_path / "someone-else").mkdir()
    memory._clean_stale(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"spo-judge-{os.getpid()}-0a1b2c3d", "someone-else"])


def test_select():
    assert memory.select("rlimit").one_process and memory.select("rlimit").name == memory.ONE_PROCESS
    with pytest.raises(ValueError, match="one of"):
        memory.select("bogus")
    auto = memory.select("auto")
    assert auto.name in memory.KINDS
    for kind in ("cgroup2", "cgroup1"):
        try:
            acc = memory.select(kind)
        except ValueError as e:
            assert "not available" in str(e)
        else:
            assert acc.name == kind and not acc.one_process


def test_cgroup1_for_real():
    try:
        acc = memory.select("cgroup1")
    except ValueError:
        pytest.skip("no writable cgroup v1 memory controller here (needs root on a v1 machine)")
    r = acc.runner()
    try:
        assert os.path.isdir(r.dir)
        r.before(64 << 20, 8)
        with open(os.path.join(r.dir, "memory.limit_in_bytes")) as f:
            assert int(f.read()) == 64 << 20
        assert r.after() == {"peak": 0, "oom": False}
    finally:
        r.close()
    assert not os.path.exists(r.dir)
