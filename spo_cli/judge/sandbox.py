"""The judge's side of the sandbox: start sandboxed runners (zygote.py) and talk to them.

Mechanisms, strongest first (chosen once per process by `probe()`):
- "namespaces": Linux namespaces (pid, mount, net, ipc, uts; plus user when not root) set up by
  the runner itself with unshare(2), mount(2) and pivot_root(2): a read-only root, a private
  mount + IPC namespace and tmpfs per run, seccomp, rlimits; as root the program also runs
  under an unprivileged uid drawn at random per runner (its tester under the next uid). Needs
  nothing installed.
- "bwrap": the same namespaces, set up by bubblewrap (Debian package `bubblewrap`) around the
  runner, for machines that refuse unprivileged unshare(CLONE_NEWUSER) to arbitrary programs but
  allow it to bwrap (Ubuntu's AppArmor userns restriction). The runner then does the rest
  (per-run namespaces, seccomp, rlimits, uid) exactly as above.
- "none": rlimits, setsid and (as root) setuid only. Used only with `unsafe=True`
  (`--unsafe-no-isolation`), with a loud warning: it does not stop network access, writes
  outside the temporary directory or processes that outlive the run.

What a program can import: the runner is the base interpreter (not a virtual environment) with
-I -S, the virtual environment is not in the sandbox, and every site-packages / dist-packages
directory under the bound paths is covered by an empty read-only tmpfs: the standard library
only. Packages allowed explicitly (`packages=`) are bound read-only at /opt/spo-packages (with
their wheels' `.libs` directories) and put on sys.path.

Memory is counted per run by memory.py (cgroup v2, cgroup v1, or one address space per run).

Per run the judge makes the run's memfds (requests, stdin) and pipes (stdout, stderr, results),
sends their child ends to the runner with SCM_RIGHTS, and reads the outputs itself (bounded):
the runner, which every run is forked from, never holds a test, a program or an output.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from spo_cli.judge import memory as memory_mod
from spo_cli.judge.plain import encode, split_frames

ZYGOTE = Path(__file__).with_name("zygote.py")
PLAIN = Path(__file__).with_name("plain.py")
PACKAGES_DIR = "/opt/spo-packages"  # where allowed packages are bound (and put on sys.path)

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

STDERR_KEEP = 4096  # the tail of a run's stderr kept for details


class SandboxUnavailable(Exception):
    """The requested isolation cannot be set up on this machine."""


class SandboxCrashed(Exception):
    """A runner died or broke the protocol: a judge error, never the program's fault."""


@dataclass
class RunResult:
    """What one run of one program produced (as seen from outside)."""

    status: int | None = None  # P's raw wait status; None when it never ran
    cpu_s: float = 0.0  # user + system CPU of the program and every process it left
    wall_s: float = 0.0
    maxrss_kb: int = 0
    killed: str | None = None  # "wall" or "output" when the run had to be killed
    stdout: bytes = b""
    stderr: bytes = b""  # the last 4 KiB
    frames: list = field(default_factory=list)  # (op, payload) on the result channel
    judge_error: str | None = None
    tester_status: int | None = None  # T's (assert-style runs)
    tester_cpu_s: float = 0.0
    mem_peak: int | None = None  # bytes, the run's cgroup (None without one)
    oom: bool = False  # the kernel's OOM killer ended a process of the run (cgroups)

    @property
    def exit_code(self) -> int | None:
        return _exit_code(self.status)

    @property
    def signal(self) -> int | None:
        return _signal(self.status)

    @property
    def tester_exit_code(self) -> int | None:
        return _exit_code(self.tester_status)

    @property
    def tester_signal(self) -> int | None:
        return _signal(self.tester_status)


def _exit_code(status):
    if status is None or not os.WIFEXITED(status):
        return None
    return os.WEXITSTATUS(status)


def _signal(status):
    if status is None or not os.WIFSIGNALED(status):
        return None
    return os.WTERMSIG(status)


@dataclass(frozen=True)
class Limits:
    cpu_s: float
    wall_s: float
    mem_bytes: int
    out_bytes: int  # stdout + stderr the judge reads (over it: the run is killed, WA)
    res_bytes: int = 8 << 20  # the result channel (a call's return value, test reports)
    nproc: int = 32
    nofile: int = 64
    fsize_bytes: int = 16 << 20
    tmp_bytes: int = 32 << 20

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------
# What goes into the sandbox

def base_interpreter(python: str | None = None) -> str:
    """The interpreter runners use: `python`, else the base interpreter of this one (the
    virtual environment's packages stay outside the sandbox)."""
    return python or getattr(sys, "_base_executable", None) or sys.executable


def _python_paths(python: str) -> list[str]:
    real = os.path.realpath(python)
    out = {os.path.dirname(os.path.dirname(real))}  # .../bin/python3 -> prefix
    if real == os.path.realpath(base_interpreter()):
        out |= {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
    return sorted(out)


_SITE_DIRS = ("site-packages", "dist-packages")
_NO_PACKAGES_BELOW = {  # directories not searched for site-packages (large, never hold one)
    "share", "include", "src", "locale", "man", "doc", "firmware", "modules", "icons",
    "terminfo", "zoneinfo", "i18n", "perl", "perl5", "gconv", "dri", "udev", "systemd", "ssl",
    "x86_64-linux-gnu", "aarch64-linux-gnu", "gcc", "node_modules", "__pycache__",
}
_masks_cache: dict[tuple, list[str]] = {}


def site_dirs(roots: list[str], depth: int = 4) -> list[str]:
    """Every site-packages / dist-packages directory within `depth` levels of `roots` (symlinks
    not followed): what the sandbox covers, so no installed package can be imported."""
    key = (tuple(roots), depth)
    if key in _masks_cache:
        return _masks_cache[key]
    out = []
    for root in roots:
        if os.path.islink(root) or not os.path.isdir(root):
            continue
        stack = [(root, 0)]
        while stack:
            d, k = stack.pop()
            try:
                it = os.scandir(d)
            except OSError:
                continue
            with it:
                for e in it:
                    try:
                        if not e.is_dir(follow_symlinks=False):
                            continue
                    except OSError:
                        continue
                    if e.name in _SITE_DIRS:
                        out.append(e.path)
                    elif k + 1 < depth and e.name not in _NO_PACKAGES_BELOW:
                        stack.append((e.path, k + 1))
    _masks_cache[key] = out = sorted(set(out))
    return out


def package_binds(names) -> list[tuple[str, str]]:
    """(host path, name under /opt/spo-packages) for each allowed package: its directory (or
    module file) as this judge's interpreter finds it, and its wheel's `.libs` directories.
    Raises ValueError for a name that is not an importable top-level package here."""
    import importlib.metadata
    import importlib.util

    out = []
    for name in sorted(set(names)):
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"not a top-level module name: {name!r}")
        if name in sys.stdlib_module_names:
            continue  # always there
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            raise ValueError(f"package {name!r} is not installed where spo runs")
        if spec.submodule_search_locations:
            locs = list(spec.submodule_search_locations)
            if len(locs) != 1:
                raise ValueError(f"package {name!r} spans several directories: {locs}")
            path = locs[0]
        elif spec.origin and os.path.isfile(spec.origin):
            path = spec.origin
        else:
            raise ValueError(f"package {name!r} has no files to bind")
        out.append((os.path.realpath(path), os.path.basename(path)))
        site = os.path.dirname(os.path.realpath(path))
        dists = importlib.metadata.packages_distributions().get(name, [])
        libs = set()
        for dist in dists:
            try:
                files = importlib.metadata.distribution(dist).files or []
            except importlib.metadata.PackageNotFoundError:
                continue
            for f in files:
                top = f.parts[0] if f.parts else ""
                if top.endswith(".libs"):
                    libs.add(top)
        for top in sorted(libs):
            if os.path.isdir(os.path.join(site, top)):
                out.append((os.path.join(site, top), top))
    return out


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


def _bwrap_command(ro_paths: list[str], userns: bool, masks: list[str],
                   packages: list[tuple[str, str]]) -> list[str]:
    """bubblewrap around the runner: namespaces, a read-only root of `ro_paths` with `masks`
    covered, the packages at /opt/spo-packages, the runner as pid 1 keeping its capabilities
    inside (it needs them for each run's mounts, then drops them in the program)."""
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
    for m in masks:
        cmd += ["--perms", "0555", "--tmpfs", m, "--remount-ro", m]
    if packages:
        cmd += ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", PACKAGES_DIR]
    for host, name in packages:
        cmd += ["--ro-bind", host, f"{PACKAGES_DIR}/{name}"]
    cmd += ["--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc", "--dir", "/tmp",
            "--remount-ro", "/",
            "--chdir", "/", "--clearenv"]
    for k, v in RUN_ENV.items():
        cmd += ["--setenv", k, v]
    return cmd + ["--"]


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        _write_all(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW
                    | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Sandbox:
    """One sandboxed runner process; runs one program at a time (not thread-safe: one per thread)."""

    def __init__(self, *, isolation: str = "namespaces", python: str | None = None,
                 seccomp: bool = True, extra_ro_paths: list[str] | None = None,
                 memory: memory_mod.Accounting | None = None, packages=()):
        self.python = base_interpreter(python)
        self.packages = tuple(sorted(set(packages)))
        self.memory = memory or memory_mod.Accounting()
        euid = os.geteuid()
        userns = isolation in ("namespaces", "bwrap") and euid != 0
        uid = gid = None
        if euid == 0:
            # A uid no account uses, drawn per runner (its tester gets uid + 1): RLIMIT_NPROC
            # then counts this runner's processes only, and nothing it leaves behind can touch
            # anyone else's.
            uid = gid = 1_000_000 + 2 * secrets.randbelow(500_000_000)
        self.mechanism = _mechanism(isolation, userns, uid)
        ro_paths = RO_PATHS + _python_paths(self.python) + list(extra_ro_paths or [])
        masks = site_dirs(ro_paths)
        pkgs = package_binds(self.packages)
        self._cg = self.memory.runner()
        self._proc = None
        self._sock = None
        try:
            cg_fds = dict(self._cg.fds) if self._cg else {}  # {"z": cgroup.procs}
            cfg = {
                # Inside, bwrap's namespaces are used like our own; the runner only skips setup.
                "isolation": "none" if isolation == "none" else "namespaces",
                "prepared": isolation == "bwrap",
                "userns": userns,
                "uid": uid,
                "gid": gid,
                "ro_paths": ro_paths,
                "masks": masks,
                "packages": pkgs,
                "packages_dir": PACKAGES_DIR,
                "package_names": [n for n in self.packages if n not in sys.stdlib_module_names],
                "env": RUN_ENV,
                "seccomp": seccomp,
                "one_process": self.memory.one_process,
                # Assert-style runs one tester serves before it is replaced (1: one per run).
                "tester_runs": max(1, int(os.environ.get("SPO_JUDGE_TESTER_RUNS") or 256)),
                "cgroup_fd": cg_fds.get("z"),
                "mechanism": self.mechanism,
            }
            prefix = []
            if isolation == "bwrap":
                if not shutil.which("bwrap"):
                    raise SandboxUnavailable("bwrap (Debian package bubblewrap) is not installed")
                prefix = _bwrap_command(ro_paths + [str(ZYGOTE), str(PLAIN)], userns, masks, pkgs)
            stderr = None if os.environ.get("SPO_JUDGE_DEBUG") else subprocess.DEVNULL
            self._sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self._proc = subprocess.Popen(
                    prefix + [self.python, "-I", "-S", str(ZYGOTE), json.dumps(cfg)],
                    stdin=child.fileno(), stdout=subprocess.DEVNULL, stderr=stderr,
                    env=dict(RUN_ENV), close_fds=True, pass_fds=list(cg_fds.values()),
                    start_new_session=True, cwd="/",
                )
            finally:
                child.close()
            try:
                hdr = self._recv(time.monotonic() + 60.0)
            except SandboxCrashed as e:
                raise SandboxUnavailable(f"sandbox runner did not start: {e}") from None
            if not hdr.get("ok"):
                raise SandboxUnavailable(hdr.get("error", "unknown error"))
        except BaseException:
            self.close()
            raise
        self.magic = hdr.get("magic")  # the runner's bytecode magic (hex)
        self.keep_tester = bool(hdr.get("keep_tester"))  # one tester serves its assert runs
        if hdr.get("proc") is False:
            self.mechanism += "+noproc"
        if isolation != "none" and not hdr.get("seccomp"):
            self.mechanism = self.mechanism.replace("+seccomp", "")
        self.runs = 0
        self._seq = 0

    # -- protocol --------------------------------------------------------------------------
    def _recv(self, deadline: float) -> dict:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self._sock], [], [], left)[0]:
            raise SandboxCrashed("runner did not answer in time")
        try:
            msg = self._sock.recv(1 << 16)
        except OSError as e:
            raise SandboxCrashed(f"runner socket: {e}") from None
        if not msg:
            code = self._proc.poll() if self._proc else None
            raise SandboxCrashed(f"runner exited (code {code})")
        try:
            hdr = json.loads(msg)
        except ValueError as e:
            raise SandboxCrashed(f"bad reply from runner: {e}") from None
        if not isinstance(hdr, dict):
            raise SandboxCrashed("bad reply from runner")
        return hdr

    def run(self, request: dict, limits: Limits, stdin: bytes = b"",
            tester: dict | None = None) -> RunResult:
        """Run one program once. `request` (what the program's process reads): {"mode":
        "stdio"|"call"|"serve", "code": str, ...}; `tester`: the tester's request, for
        assert-style tests (request mode "serve"). Raises SandboxCrashed when the runner itself
        failed (then this Sandbox is closed)."""
        self._seq += 1
        rid = self._seq
        mine: list[int] = []  # read ends, the judge's
        theirs: list[int] = []  # child ends, sent and then closed here
        try:
            max_bytes = min(limits.out_bytes, limits.res_bytes)  # largest value sent as data
            roles = ["req"]
            theirs.append(_memfd("request", encode(dict(request, max_bytes=max_bytes))))
            if tester is not None:
                roles.append("treq")
                theirs.append(_memfd("tests", encode(dict(tester, max_bytes=max_bytes))))
            else:
                roles.append("stdin")
                theirs.append(_memfd("stdin", stdin))
            pipes = {}
            for role in ("out", "err", "res"):
                r, w = os.pipe()
                mine.append(r)
                theirs.append(w)
                roles.append(role)
                pipes[role] = r
                os.set_blocking(r, False)
            if self._cg is not None:
                self._cg.before(limits.mem_bytes, limits.nproc)
            hdr = {"run": rid, "limits": limits.as_dict(), "tester": tester is not None,
                   "fds": roles}
            socket.send_fds(self._sock, [json.dumps(hdr).encode()], theirs)
        except (OSError, ValueError) as e:
            for fd in mine + theirs:
                _close(fd)
            self.close()
            raise SandboxCrashed(f"cannot start a run: {e}") from None
        for fd in theirs:
            os.close(fd)
        try:
            reply, out, err, res = self._collect(rid, pipes, limits)
        finally:
            for fd in mine:
                _close(fd)
        self.runs += 1
        p, t = reply.get("p") or {}, reply.get("t") or {}
        result = RunResult(
            status=p.get("status"), cpu_s=float(p.get("cpu") or 0.0),
            wall_s=float(reply.get("wall") or 0.0), maxrss_kb=int(p.get("maxrss_kb") or 0),
            killed=reply.get("killed"), stdout=out, stderr=err, frames=split_frames(res),
            judge_error=reply.get("je"), tester_status=t.get("status"),
            tester_cpu_s=float(t.get("cpu") or 0.0),
        )
        if self._cg is not None:
            try:
                mem = self._cg.after()
            except (OSError, ValueError) as e:
                result.judge_error = result.judge_error or f"reading the run's cgroup: {e}"
            else:
                result.mem_peak, result.oom = mem["peak"], mem["oom"]
        return result

    def _collect(self, rid: int, pipes: dict, limits: Limits):
        """Read the run's outputs (bounded) until the runner's reply and the pipes' ends."""
        cap, res_cap = limits.out_bytes, limits.res_bytes
        out, err, res = bytearray(), bytearray(), bytearray()
        bufs = {pipes["out"]: out, pipes["err"]: err, pipes["res"]: res}
        open_fds = set(bufs)
        poller = select.poll()
        for fd in open_fds:
            poller.register(fd, select.POLLIN)
        sock = self._sock.fileno()
        poller.register(sock, select.POLLIN)
        deadline = time.monotonic() + limits.wall_s + 30.0
        reply = None
        total = 0
        kill_sent = False
        while reply is None or open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                if reply is None:
                    self.close()
                    raise SandboxCrashed("runner did not answer in time")
                break  # a process outside the runner's reach holds a pipe (no namespaces)
            for fd, _ in poller.poll(left * 1000):
                if fd == sock:
                    try:
                        reply = self._recv(time.monotonic() + 1.0)
                    except SandboxCrashed:
                        self.close()
                        raise
                    if reply.get("run") != rid:
                        self.close()
                        raise SandboxCrashed(f"reply for run {reply.get('run')}, not {rid}")
                    poller.unregister(sock)
                    # Everything of the run is dead now: the pipes end as soon as drained.
                    deadline = min(deadline, time.monotonic() + 5.0)
                    continue
                try:
                    chunk = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    continue
                b = bufs[fd]
                if fd == pipes["err"]:
                    total += len(chunk)
                    b += chunk
                    if len(b) > 2 * STDERR_KEEP:
                        del b[:-STDERR_KEEP]
                elif fd == pipes["out"]:
                    total += len(chunk)
                    if len(b) < cap:
                        b += chunk[:cap - len(b)]
                elif len(b) < res_cap:
                    b += chunk[:res_cap - len(b)]
                elif not kill_sent:  # the result channel over its limit
                    total = cap + 1
                if total > cap and not kill_sent and reply is None:
                    kill_sent = True
                    try:
                        self._sock.send(json.dumps({"kill": rid}).encode())
                    except OSError:
                        pass
        if kill_sent and not reply.get("killed"):
            reply["killed"] = "output"
        return reply, bytes(out), bytes(err[-STDERR_KEEP:]), bytes(res)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        p, self._proc = self._proc, None
        s, self._sock = self._sock, None
        if s is not None:
            s.close()  # EOF makes the runner exit; it kills a run in flight first
        if p is not None:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        cg, self._cg = self._cg, None
        if cg is not None:
            cg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


_probe_lock = threading.Lock()
_probe_cache: dict[tuple, tuple[str, str | None]] = {}

MECHANISMS = ("namespaces", "bwrap")  # strongest first


def probe(python: str | None = None, order: tuple[str, ...] = MECHANISMS) -> tuple[str, str | None]:
    """The first isolation in `order` that works here: (mechanism, None), or ("none", why not)."""
    key = (base_interpreter(python), order)
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
