"""Hostile programs (tests/judge_data/hostile/*.py): each gets the verdict its first line names,
the judge finishes, the machine is unharmed, and none of their processes is left afterwards.

The problem they all answer: stdin is "<token>\\n<port>\\n", the expected output "safe". A
program that attacks something and then prints "safe" is proving the attack failed (it prints
something else when it succeeded, which would be a WA).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from spo_cli.judge import JudgeOptions, SandboxPool, judge_response, judge_stream, probe

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = sorted((ROOT / "tests" / "judge_data" / "hostile").glob("*.py"))
SANDBOX_UID_MIN = 1_000_000  # uids the judge draws for programs when it runs as root


def expected(path: Path, one_process: bool = False) -> set[str]:
    """The verdicts a program's first line names; in the one-process memory mode (no cgroup:
    a run may not start processes) those of its `# expect-one-process:` line, if it has one."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# expect:"), path
    if one_process and lines[1].startswith("# expect-one-process:"):
        return set(lines[1].split(":", 1)[1].split("(")[0].split())
    return set(lines[0].split(":", 1)[1].split())


MECHANISMS = ["namespaces", "bwrap"]
# (isolation, memory accounting): the strongest accounting this machine gives root, and the
# one-process fallback an ordinary user gets where cgroups are not delegated.
SETUPS = [("namespaces", "auto"), ("namespaces", "rlimit"), ("bwrap", "auto")]


def require(mechanism: str):
    kind, why = probe(order=(mechanism,))
    if kind != mechanism:
        if mechanism == "bwrap" and not shutil.which("bwrap"):
            pytest.skip("bwrap is not installed (Debian package bubblewrap); the judge falls back "
                        "to it only where its own namespaces are refused")
        pytest.skip(f"{mechanism} unavailable here ({why}); the judge refuses to run untrusted "
                    "code without isolation, so there is nothing to test")


def sandbox_processes() -> list[tuple[int, int]]:
    """(pid, uid) of every process running under a uid the judge gives to programs (root only)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            for line in (d / "status").read_text().splitlines():
                if line.startswith("Uid:"):
                    uid = int(line.split()[1])
                    if uid >= SANDBOX_UID_MIN:
                        out.append((int(d.name), uid))
                    break
        except OSError:
            pass
    return out


@pytest.fixture(scope="module", params=SETUPS, ids=["-".join(s) for s in SETUPS])
def suite(request):
    mechanism, memory = request.param
    require(mechanism)
    tok = "spo-hostile-" + uuid.uuid4().hex[:12]
    host_file = Path("/tmp") / (tok + ".host")
    host_file.write_text("the judge's own file\n")
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    tcp.setblocking(False)
    port = tcp.getsockname()[1]
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind("\0spo-hostile-" + tok)
    unix.listen(16)
    unix.setblocking(False)
    os.environ["SPO_HOSTILE_SECRET"] = "hunter2"
    problem = {"id": "hostile", "prompt": "", "time_limit": 1.0, "memory_limit_mb": 256,
               "tests": [{"input": f"{tok}\n{port}\n", "output": "safe\n"}]}
    trajs = [{"id": p.stem, "problem_id": "hostile", "prompt": "", "response": p.read_text()}
             for p in HOSTILE]
    t0 = time.monotonic()
    try:
        results = {r["id"]: r for r in judge_stream(
            trajs, {"hostile": problem}, JudgeOptions(sandbox=mechanism, memory=memory), jobs=2)}
    finally:
        del os.environ["SPO_HOSTILE_SECRET"]
    elapsed = time.monotonic() - t0
    yield {"results": results, "tok": tok, "tcp": tcp, "unix": unix, "host_file": host_file,
           "elapsed": elapsed, "problem": problem, "mechanism": mechanism, "memory": memory}
    tcp.close()
    unix.close()
    host_file.unlink(missing_ok=True)


def test_suite_is_large_enough():
    assert len(HOSTILE) >= 25


@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_hostile_program_verdict(suite, path):
    r = suite["results"][path.stem]
    one_process = r["judge"]["memory"] == "rlimit-as(one process)"
    assert (suite["memory"] == "rlimit") <= one_process
    assert r["verdict"] in expected(path, one_process), (r["verdict"], r["judge"])
    assert r["reward"] == (1.0 if r["verdict"] == "OK" else 0.0)
    assert r["judge"]["sandbox"].startswith(suite["mechanism"] + "(")


def test_machine_unharmed(suite):
    tok = suite["tok"]
    # nothing written outside the sandbox
    for d in ["/", "/etc", "/usr", "/usr/lib", "/root", "/work", "/work/main", "/var/tmp", "/tmp",
              "/dev/shm", "/home", "/run", "/opt", str(ROOT), os.path.dirname(os.__file__)]:
        assert not os.path.lexists(os.path.join(d, tok)), d
    assert suite["host_file"].read_text() == "the judge's own file\n"
    assert (ROOT / "pyproject.toml").exists() and shutil.which("env")
    # no connection reached the judge's listening sockets
    for s in (suite["tcp"], suite["unix"]):
        with pytest.raises(BlockingIOError):
            s.accept()


def test_no_process_left_behind(suite):
    if os.geteuid() != 0:
        pytest.skip("programs run under the judge's own uid here; covered by the pid namespace")
    # The uids our runners gave their programs (other judges on this machine draw their own).
    uids = {int(m) for r in suite["results"].values()
            for m in re.findall(r"setuid\((\d+)\)", r["judge"]["sandbox"])}
    assert uids
    deadline = time.monotonic() + 5
    while True:
        left = [(pid, uid) for pid, uid in sandbox_processes() if uid in uids]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"processes of sandboxed programs still running: {sorted(left)}"


def test_judge_still_works_after_the_suite(suite):
    with SandboxPool(1, sandbox=suite["mechanism"], memory=suite["memory"]) as pool:
        r = judge_response(suite["problem"], "input()\nprint('safe')\n", pool=pool)
    assert r["verdict"] == "OK" and r["reward"] == 1.0


def test_nothing_survives_into_the_next_run(suite):
    """Runs of one runner are sequential; the second must find no trace of the first."""
    leave = (ROOT / "tests/judge_data/hostile/38_leave_traces.py").read_text()
    find = (ROOT / "tests/judge_data/hostile/39_find_traces.py").read_text()
    with SandboxPool(1, sandbox=suite["mechanism"], memory=suite["memory"]) as pool:
        for prog in (leave, find, leave, find):
            r = judge_response(suite["problem"], prog, pool=pool)
            one_process = r["judge"]["memory"] == "rlimit-as(one process)"
            assert r["verdict"] in ({"OK", "RE"} if one_process and prog is leave else {"OK"}), \
                r["judge"]


# ------------------------------------------------------------------------------------------
# The same isolation for an ordinary user: unprivileged user namespaces instead of setuid.

NOBODY_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from spo_cli.judge import JudgeOptions, judge_stream
problem = {"id": "h", "prompt": "", "time_limit": 1.0, "memory_limit_mb": 256,
           "tests": [{"input": "tok-nobody\n1\n", "output": "safe\n"}]}
trajs = [{"id": n, "problem_id": "h", "response": open(p).read()} for n, p in json.loads(sys.argv[2])]
opts = JudgeOptions(sandbox=sys.argv[3])
out = {r["id"]: [r["verdict"], r["judge"]["sandbox"], r["judge"]["memory"]] for r in judge_stream(trajs, {"h": problem}, opts, jobs=2)}
print(json.dumps(out))
"""

AS_NOBODY = ["01_fork_bomb", "06_alloc_20gb", "10_write_outside", "14_env_secrets",
             "16_socket_tcp", "19_daemon_double_fork", "21_kill_parent", "22_kill_everything",
             "23_ctypes_system", "27_new_namespaces", "33_subprocess_sleeps", "34_inherited_fds",
             "29_proc_sys_writes", "35_escape_via_proc_root", "38_leave_traces", "39_find_traces"]


def _nobody_runners() -> set[int]:
    """Runner processes (zygote.py) of uid 65534; a program's own processes cannot outlive its
    runner, whose pid namespace the kernel empties when it ends."""
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if d.stat().st_uid == 65534 and b"zygote.py" in (d / "cmdline").read_bytes():
                    pids.add(int(d.name))
            except OSError:
                pass
    return pids


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_isolation_as_an_ordinary_user(mechanism):
    """Run part of the suite as uid 65534 (needs root to switch user, and setpriv)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to become an ordinary user")
    if mechanism == "bwrap" and not shutil.which("bwrap"):
        pytest.skip("bwrap is not installed (Debian package bubblewrap)")
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    cases = [(p.stem, str(p)) for p in HOSTILE if p.stem in AS_NOBODY]
    before = _nobody_runners()
    import json

    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-I", "-c",
         NOBODY_SCRIPT, str(ROOT), json.dumps(cases), mechanism],
        capture_output=True, timeout=180, cwd="/")
    if r.returncode != 0 and b"no process isolation works here" in r.stderr:
        pytest.skip("unprivileged user namespaces are disabled on this machine: "
                    + r.stderr.decode()[-300:])
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    out = json.loads(r.stdout.decode().splitlines()[-1])
    for name, path in cases:
        verdict, sandbox, memory = out[name]
        assert verdict in expected(Path(path), memory == "rlimit-as(one process)"), (name, verdict)
        assert sandbox.startswith(mechanism + "(user,")
    deadline = time.monotonic() + 10  # runners end on EOF from the judge that has exited
    while (_nobody_runners() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (_nobody_runners() - before), "runners of the ordinary user left behind"
