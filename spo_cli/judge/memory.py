"""Memory per run, not per process: how the judge counts everything a run holds.

Three ways, strongest first (`select("auto")` takes the first that works here):
- "cgroup2": a cgroup v2 subtree the judge may write (our own cgroup when the memory and pids
  controllers are enabled below it, or the directory in $SPO_JUDGE_CGROUP). Each runner gets a
  cgroup; every process of a run (the program, its tester, whatever they start) is born in it.
  memory.max counts all of them, the run's tmpfs (/tmp, /dev/shm), memfds, page tables and
  pipe buffers; memory.swap.max 0; pids.max bounds the processes. An OOM kill (memory.events
  oom_kill) is MLE; memory.peak is recorded.
- "cgroup1": the same with the v1 memory controller (memory.limit_in_bytes and
  memory.memsw.limit_in_bytes, max_usage_in_bytes, oom_control's oom_kill), where the judge
  can create memory cgroups (as root on machines with a v1 hierarchy).
- "rlimit-as(one process)": no cgroup. A run may then have one address space only: the
  sandbox's seccomp filter refuses fork, vfork, clone without CLONE_VM, execve(at) and
  memfd_create (threads still work: they share the address space), so RLIMIT_AS of that one
  process bounds everything it maps, and /tmp and /dev/shm share one tmpfs whose size is taken
  out of the same budget. What is left outside: kernel memory for pipe and socket buffers and
  similar objects, bounded through the open-file limit (RLIMIT_NOFILE) and the kernel's per-user
  pipe limits, not by the memory limit. Programs that start processes fail (RE) here.

The judge (trusted, outside the sandbox) owns the cgroups: it creates them, writes the limits,
reads the counters and removes them; the runner gets only an open cgroup.procs descriptor,
which it writes "0" to (joins) once, after its warm-up, and closes before any run.
"""

from __future__ import annotations

import os
import re
import secrets
import threading

ONE_PROCESS = "rlimit-as(one process)"
KINDS = ("cgroup2", "cgroup1", ONE_PROCESS)
CHOICES = ("auto", "cgroup2", "cgroup1", "rlimit")


class Accounting:
    """How runs' memory is counted (one per pool); makes the cgroups of each runner."""

    name = ONE_PROCESS
    one_process = True

    def runner(self) -> RunnerCgroups | None:
        return None


class _CgroupAccounting(Accounting):
    one_process = False

    def __init__(self, base: str):
        self.base = base
        _clean_stale(base)

    def runner(self) -> RunnerCgroups:
        return RunnerCgroups(self)


class Cgroup2(_CgroupAccounting):
    name = "cgroup2"
    version = 2


class Cgroup1(_CgroupAccounting):
    name = "cgroup1"
    version = 1


def _write(path: str, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _field(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return 0


_STALE = re.compile(r"spo-judge-(\d+)-[0-9a-f]+$")


def _clean_stale(base: str) -> None:
    """Remove the cgroups of judges that have exited (a killed judge cannot remove its own)."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        m = _STALE.match(name)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        try:
            os.rmdir(os.path.join(base, name))
        except OSError:
            pass


class RunnerCgroups:
    """The cgroup of one runner: the runner (Z) joins it once, after its warm-up (so its own
    heap stays charged where it was), and every run's processes, P, T and anything they start,
    are born in it: no migration per run (a cgroup migration waits for an RCU grace period,
    ~10 ms). Between runs only Z is left in it; the limit is set per run."""

    def __init__(self, acc: _CgroupAccounting):
        self.version = acc.version
        self.dir = os.path.join(acc.base, f"spo-judge-{os.getpid()}-{secrets.token_hex(4)}")
        self._mem = None
        self.fds: dict[str, int] = {}
        self._files: dict[str, int] = {}  # counters and limits, kept open (read with pread)
        os.mkdir(self.dir, 0o755)
        try:
            if self.version == 2:
                if os.path.exists(self._file("memory.swap.max")):
                    _write(self._file("memory.swap.max"), 0)
                names = {"events": "memory.events", "peak": "memory.peak"}
            else:
                try:
                    _write(self._file("memory.swappiness"), 0)
                except OSError:
                    pass
                names = {"events": "memory.oom_control", "peak": "memory.max_usage_in_bytes"}
            for key, name in names.items():
                if os.path.exists(self._file(name)):
                    self._files[key] = os.open(self._file(name), os.O_RDWR if key == "peak"
                                               else os.O_RDONLY)
            self._oom = self._oom_kills()
            # Inherited by the runner, which writes "0" to join (the open-time credentials,
            # the judge's, are what the kernel checks).
            self.fds["z"] = os.open(self._file("cgroup.procs"), os.O_WRONLY)
        except BaseException:
            self.close()
            raise

    def _file(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _oom_kills(self) -> int:
        return _field(os.pread(self._files["events"], 4096, 0).decode(), "oom_kill")

    def before(self, mem_bytes: int, nproc: int) -> None:
        """The limit and a fresh peak for the next run."""
        if self._mem != mem_bytes:
            self._set_limit(mem_bytes, nproc)
            self._mem = mem_bytes
        fd = self._files.get("peak")
        if fd is not None:
            try:  # v2: a per-descriptor reset (Linux 6.12+; else the lifetime peak); v1: reset
                os.pwrite(fd, b"reset\n" if self.version == 2 else b"0", 0)
            except OSError:
                pass

    def _set_limit(self, mem: int, nproc: int) -> None:
        if self.version == 2:
            _write(self._file("memory.max"), mem)
            _write(self._file("pids.max"), nproc + 8)  # the runner, the tester and the program's
            return
        # v1: memory+swap must stay >= memory, so raising writes memsw first, lowering (and the
        # first write, down from unlimited) memory first.
        names = ["memory.limit_in_bytes"]
        if os.path.exists(self._file("memory.memsw.limit_in_bytes")):
            names.append("memory.memsw.limit_in_bytes")
            if self._mem is not None and mem > self._mem:
                names.reverse()
        for name in names:
            _write(self._file(name), mem)

    def after(self) -> dict:
        """{"peak": bytes, "oom": bool} of the run just ended (the OOM-kill counter only moves
        during runs: between them only the runner is in the cgroup)."""
        oom, before = self._oom_kills(), self._oom
        self._oom = oom
        fd = self._files.get("peak")
        peak = int(os.pread(fd, 64, 0) or 0) if fd is not None else 0
        return {"peak": peak, "oom": oom > before}

    def close(self) -> None:
        for fd in list(self.fds.values()) + list(self._files.values()):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds, self._files = {}, {}
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


# ------------------------------------------------------------------------------------------
# Finding a cgroup the judge may use

def _mounts() -> list[tuple[str, str, str, str]]:
    """(mount root, mount point, fs type, super options) of this process's mounts."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                a, b = left.split(), right.split()
                if len(a) >= 5 and len(b) >= 3:
                    out.append((a[3], a[4].replace("\\040", " "), b[0], b[2]))
    except OSError:
        pass
    return out


def _own_cgroups() -> dict[str, str]:
    """controller ("" for v2) -> this process's cgroup path."""
    out = {}
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    for c in parts[1].split(",") if parts[1] else [""]:
                        out[c] = parts[2]
    except OSError:
        pass
    return out


def _under(mount_root: str, mount_point: str, path: str) -> str | None:
    root = mount_root.rstrip("/")
    if root and not (path == root or path.startswith(root + "/")):
        return None
    return mount_point + path[len(root):]


def _v2_base() -> str | None:
    explicit = os.environ.get("SPO_JUDGE_CGROUP")
    bases = []
    if explicit:
        bases.append(explicit)
    path = _own_cgroups().get("")
    if path is not None:
        for root, point, fstype, _ in _mounts():
            if fstype == "cgroup2":
                d = _under(root, point, path)
                if d:
                    bases.append(d)
    for base in bases:
        try:
            controllers = _read(os.path.join(base, "cgroup.controllers")).split()
            if not {"memory", "pids"} <= set(controllers):
                continue
            enabled = set(_read(os.path.join(base, "cgroup.subtree_control")).split())
            if not {"memory", "pids"} <= enabled:
                _write(os.path.join(base, "cgroup.subtree_control"), "+memory +pids")
            if _usable(Cgroup2, base):
                return base
        except OSError:
            continue
    return None


def _v1_base() -> str | None:
    path = _own_cgroups().get("memory")
    if path is None:
        return None
    for root, point, fstype, opts in _mounts():
        if fstype == "cgroup" and "memory" in opts.split(","):
            base = _under(root, point, path)
            if base and _usable(Cgroup1, base):
                return base
    return None


def _usable(cls, base: str) -> bool:
    try:
        acc = cls.__new__(cls)
        acc.base = base
        r = RunnerCgroups(acc)
        try:
            r.before(64 << 20, 8)
            r.after()
        finally:
            r.close()
        return True
    except (OSError, ValueError):
        return False


_lock = threading.Lock()
_cache: dict[str, Accounting | None] = {}


def select(kind: str = "auto") -> Accounting:
    """The accounting `kind` asks for ("auto": the strongest available). Raises ValueError when
    a named one is not available here."""
    if kind not in CHOICES:
        raise ValueError(f"memory accounting must be one of {', '.join(CHOICES)}; got {kind!r}")
    if kind == "rlimit":
        return Accounting()
    with _lock:
        for name, find, cls in (("cgroup2", _v2_base, Cgroup2), ("cgroup1", _v1_base, Cgroup1)):
            if kind not in ("auto", name):
                continue
            if name not in _cache:
                base = find()
                _cache[name] = cls(base) if base else None
            if _cache[name] is not None:
                return _cache[name]
    if kind != "auto":
        raise ValueError(f"{kind} memory accounting is not available here (no writable "
                         f"{kind} memory controller)")
    return Accounting()
