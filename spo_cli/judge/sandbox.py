"""The judge's side of the sandbox: start sandboxed runners (zygote.py) and talk to them.

Mechanisms, strongest first (chosen once per process by `probe()`):
- "namespaces": Linux namespaces (pid, mount, net, ipc, uts; plus user when not root) set up by
  the runner itself with unshare(2), mount(2) and pivot_root(2): a read-only root, a private
  mount + IPC namespace and tmpfs per run, seccomp, rlimits; as root the program also runs
  under an unprivileged uid drawn at random per runner. Needs nothing installed.
- "bwrap": the same namespaces, set up by bubblewrap (Debian package `bubblewrap`) around the
  runner, for machines that refuse unprivileged unshare(CLONE_NEWUSER) to arbitrary programs but
  allow it to bwrap (Ubuntu's AppArmor userns restriction). The runner then does the rest
  (per-run namespaces, seccomp, rlimits, uid) exactly as above.
- "none": rlimits, setsid and (as root) setuid only. Used only with `unsafe=True`
  (`--unsafe-no-isolation`), with a loud warning: it does not stop network access, writes
  outside the temporary directory or processes that outlive the run.

Cgroups are not used: on the machines this was built on the cgroup tree belongs to the container
runtime, so memory is limited by RLIMIT_AS and processes by RLIMIT_NPROC (made meaningful by the
unprivileged uid, or by the user namespace's own process count).
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

ZYGOTE = Path(__file__).with_name("zygote.py")

RUN_ENV = {  # the whole environment a program sees
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

# Host paths bound read-only into the sandbox (those that exist); the interpreter's prefixes are
# added at run time.
RO_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"]


class SandboxUnavailable(Exception):
    """The requested isolation cannot be set up on this machine."""


class SandboxCrashed(Exception):
    """A runner died or broke the protocol: a judge error, never the program's fault."""


@dataclass
class RunResult:
    """What one run of one program on one input produced (as seen from outside)."""

    status: int | None = None  # P's raw wait status; None when it was killed from outside
    cpu_s: float = 0.0  # user + system CPU of the program and every process it reaped
    wall_s: float = 0.0
    maxrss_kb: int = 0
    killed: str | None = None  # "wall" or "output" when the runner had to kill the run
    stdout: bytes = b""
    stderr: bytes = b""  # the last 4 KiB
    events: list[dict] = field(default_factory=list)  # lines the runner wrote on fd 3
    judge_error: str | None = None

    @property
    def exit_code(self) -> int | None:
        if self.status is None or not os.WIFEXITED(self.status):
            return None
        return os.WEXITSTATUS(self.status)

    @property
    def signal(self) -> int | None:
        if self.status is None or not os.WIFSIGNALED(self.status):
            return None
        return os.WTERMSIG(self.status)


@dataclass(frozen=True)
class Limits:
    cpu_s: float
    wall_s: float
    mem_bytes: int
    out_bytes: int
    nproc: int = 32
    nofile: int = 64
    fsize_bytes: int = 16 << 20
    tmp_bytes: int = 32 << 20

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _python_paths(python: str) -> list[str]:
    out = []
    real = os.path.realpath(python)
    out.append(os.path.dirname(os.path.dirname(real)))  # .../bin/python3 -> prefix
    for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        out.append(os.path.realpath(p))
    if python == sys.executable or os.path.realpath(python) == os.path.realpath(sys.executable):
        out.append(os.path.dirname(os.path.abspath(python)))
    return sorted(set(out))


def _mechanism(isolation: str, userns: bool, uid: int | None) -> str:
    if isolation == "none":
        who = f"+setuid({uid})" if uid is not None else ""
        return f"rlimits-only{who} (UNSAFE: no namespaces)"
    ns = "user,pid,mount,net,ipc,uts" if userns else "pid,mount,net,ipc,uts"
    who = "+nocaps" if userns else f"+setuid({uid})"
    return f"{isolation}({ns})+ro-root+seccomp{who}+rlimits"


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i + 1]) for i in range(len(parts))]


def _bwrap_command(ro_paths: list[str], userns: bool) -> list[str]:
    """bubblewrap around the runner: namespaces, a read-only root of `ro_paths`, the runner as
    pid 1 keeping its capabilities inside (it needs them for each run's mounts, then drops them
    in the program)."""
    cmd = [shutil.which("bwrap") or "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net",
           "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox", "--as-pid-1",
           "--new-session", "--cap-add", "ALL"]
    if userns:
        cmd += ["--unshare-user", "--uid", str(os.geteuid()), "--gid", str(os.getegid())]
    paths = sorted(set(ro_paths), key=len)
    binds = [p for p in paths if os.path.exists(p) or os.path.islink(p)]
    parents = sorted({a for p in binds for a in _ancestors(p)
                      if not any(a == b or a.startswith(b.rstrip("/") + "/") for b in binds)},
                     key=len)
    for a in parents:  # bwrap would create them 0700: closed to the program's uid
        cmd += ["--perms", "0755", "--dir", a]
    for p in binds:
        if os.path.islink(p):
            cmd += ["--symlink", os.readlink(p), p]
        else:
            cmd += ["--ro-bind", p, p]
    cmd += ["--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc", "--dir", "/tmp",
            "--remount-ro", "/",
            "--chdir", "/", "--clearenv"]
    for k, v in RUN_ENV.items():
        cmd += ["--setenv", k, v]
    return cmd + ["--"]


class Sandbox:
    """One sandboxed runner process; runs one program at a time (not thread-safe: one per thread)."""

    def __init__(self, *, isolation: str = "namespaces", python: str | None = None,
                 seccomp: bool = True, extra_ro_paths: list[str] | None = None):
        self.python = python or sys.executable
        euid = os.geteuid()
        userns = isolation in ("namespaces", "bwrap") and euid != 0
        uid = gid = None
        if euid == 0:
            # A uid no account uses, drawn per runner: RLIMIT_NPROC then counts this runner's
            # processes only, and nothing it leaves behind can touch anyone else's.
            uid = gid = 1_000_000 + secrets.randbelow(1_000_000_000)
        self.mechanism = _mechanism(isolation, userns, uid)
        ro_paths = RO_PATHS + _python_paths(self.python) + list(extra_ro_paths or [])
        cfg = {
            # Inside, bwrap's namespaces are used like our own; the runner only skips setup.
            "isolation": "none" if isolation == "none" else "namespaces",
            "prepared": isolation == "bwrap",
            "userns": userns,
            "uid": uid,
            "gid": gid,
            "ro_paths": ro_paths,
            "env": RUN_ENV,
            "seccomp": seccomp,
            "mechanism": self.mechanism,
        }
        prefix = []
        if isolation == "bwrap":
            if not shutil.which("bwrap"):
                raise SandboxUnavailable("bwrap (Debian package bubblewrap) is not installed")
            prefix = _bwrap_command(ro_paths + [str(ZYGOTE)], userns)
        stderr = None if os.environ.get("SPO_JUDGE_DEBUG") else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            prefix + [self.python, "-I", str(ZYGOTE), json.dumps(cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            env=dict(RUN_ENV), close_fds=True, start_new_session=True, cwd="/",
        )
        self._w = self._proc.stdin.fileno()
        self._r = self._proc.stdout.fileno()
        try:
            hdr, *_ = self._read_reply(timeout=60.0)
        except SandboxCrashed as e:
            self.close()
            raise SandboxUnavailable(f"sandbox runner did not start: {e}") from None
        if not hdr.get("ok"):
            self.close()
            raise SandboxUnavailable(hdr.get("error", "unknown error"))
        if hdr.get("proc") is False:
            self.mechanism += "+noproc"
        if isolation != "none" and not hdr.get("seccomp"):
            self.mechanism = self.mechanism.replace("+seccomp", "")
        self.runs = 0

    # -- protocol --------------------------------------------------------------------------
    def _read_exact(self, n: int, deadline: float | None) -> bytes:
        import time

        buf = bytearray()
        while len(buf) < n:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._r], [], [], left)[0]:
                    raise SandboxCrashed("runner did not answer in time")
            chunk = os.read(self._r, min(n - len(buf), 1 << 20))
            if not chunk:
                raise SandboxCrashed(f"runner exited (code {self._proc.poll()})")
            buf += chunk
        return bytes(buf)

    def _read_reply(self, timeout: float | None):
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        hl, ol, el, rl = struct.unpack("<IIII", self._read_exact(16, deadline))
        try:
            hdr = json.loads(self._read_exact(hl, deadline))
        except ValueError as e:
            raise SandboxCrashed(f"bad reply from runner: {e}") from None
        out = self._read_exact(ol, deadline)
        err = self._read_exact(el, deadline)
        res = self._read_exact(rl, deadline)
        return hdr, out, err, res

    def run(self, request: dict, limits: Limits, stdin: bytes = b"") -> RunResult:
        """Run one program once. `request`: {"mode": "stdio"|"call"|"assert", "code": str, ...}.
        Raises SandboxCrashed when the runner itself failed (then this Sandbox is closed)."""
        req = dict(request, limits=limits.as_dict())
        head = json.dumps(req).encode()
        try:
            os.write(self._w, struct.pack("<II", len(head), len(stdin)))
            _write_all(self._w, head)
            _write_all(self._w, stdin)
            hdr, out, err, res = self._read_reply(timeout=limits.wall_s + 30.0)
        except (OSError, SandboxCrashed) as e:
            self.close()
            raise SandboxCrashed(str(e)) from None
        self.runs += 1
        events = []
        for line in res.splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # the program may write anything to fd 3; only well-formed lines count
            if isinstance(ev, dict):
                events.append(ev)
        return RunResult(
            status=hdr.get("status"), cpu_s=float(hdr.get("cpu") or 0.0),
            wall_s=float(hdr.get("wall") or 0.0), maxrss_kb=int(hdr.get("maxrss_kb") or 0),
            killed=hdr.get("killed"), stdout=out, stderr=err, events=events,
            judge_error=hdr.get("je"),
        )

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        p, self._proc = self._proc, None
        if p is None:
            return
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:  # EOF makes the runner exit; it kills a run in flight first
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


_probe_lock = threading.Lock()
_probe_cache: dict[tuple, tuple[str, str | None]] = {}

MECHANISMS = ("namespaces", "bwrap")  # strongest first


def probe(python: str | None = None, order: tuple[str, ...] = MECHANISMS) -> tuple[str, str | None]:
    """The first isolation in `order` that works here: (mechanism, None), or ("none", why not)."""
    key = (python or sys.executable, order)
    with _probe_lock:
        if key not in _probe_cache:
            reasons = []
            for kind in order:
                try:
                    with Sandbox(isolation=kind, python=python):
                        pass
                    _probe_cache[key] = (kind, None)
                    break
                except (SandboxUnavailable, OSError) as e:
                    reasons.append(f"{kind}: {e}")
            else:
                _probe_cache[key] = ("none", "; ".join(reasons))
        return _probe_cache[key]
