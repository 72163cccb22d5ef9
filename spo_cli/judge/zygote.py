"""The sandboxed runner: a warm Python process that forks isolated children per test.

This file runs as its own script (`python3 -I -S zygote.py CONFIG`, the base interpreter, no
site-packages), never imported by the judge, and uses the standard library only (plus plain.py,
the codec, loaded by path at start). It isolates itself before reading any request:

  O (started by the judge)    unshare(user?, mount, net, ipc, uts, pid); fork
  └─ Z  "zygote", pid 1 of its own pid namespace; builds a read-only root (pivot_root onto a
        tmpfs holding read-only bind mounts of /usr, /etc, the interpreter's prefix, a few /dev
        nodes; every site-packages/dist-packages directory covered by an empty read-only tmpfs;
        only the packages the judge allows bound at /opt/spo-packages), then serves runs.
     ├─ P  per run, a fork of Z: the program. Private mount + IPC namespace with a size-limited
     │     tmpfs on /tmp and /dev/shm; own session; rlimits; the run's cgroup (when the judge has
     │     one); an unprivileged uid (root mode) or no capabilities (user-namespace mode);
     │     no_new_privs; seccomp; a scrubbed environment; cwd /tmp. It reads its request (the
     │     program text, and for call-based tests the arguments) from a memfd, then exec()s the
     │     program in a fresh __main__.
     └─ T  assert-style tests only, a second fork: the tester. Sandboxed like P (it runs the
           dataset's test code) but in Z's read-only mount namespace, under another uid in root
           mode, not dumpable (P can read neither its memory nor its /proc/T/fd). It runs the
           tests with the program's functions bound to proxies: a call is sent to P over a pipe
           pair and answered with plain data only (plain.py), rebuilt in T out of builtin
           types. Only T holds the result channel; P never receives the test code.
           One T serves the assert-style runs of its runner one after another (serve_tests:
           a fork per run instead of two, the costliest part of a run on small machines), when
           what makes that sound is there: Z as pid 1, seccomp, /proc (cfg["keep_tester"]).
           No program code ever runs in T, which gets each run's descriptors from Z and only
           plain data from P; before T is used again Z checks it is alive, asleep and has no
           signal pending (an ordinary user's P shares T's uid and may signal it), and T is
           replaced after a run that timed out, when it has grown, or every `tester_runs` runs.

Z never holds test data, programs or outputs: the judge creates every run's memfds (requests,
stdin) and pipes (stdout, stderr, results) and passes their child ends to Z with SCM_RIGHTS; Z
hands them to P/T and closes its copies, and the judge reads the outputs itself. So every run
forks from a Z that has never seen a test, an expected output, a program or a reply. Z only
forks, limits, waits (pidfd), kills, reaps and replies with a small header (status, CPU, wall).
When the run's main process (P, or T for assert-style tests) exits, runs out of time, or the
judge asks (output over its limit), Z, as pid 1 of the namespace, SIGKILLs every other process in
it (kill(-1)) and reaps them all, so nothing of one run survives into the next. With a kept T,
Z kills P's process group instead (seccomp refuses setsid and setpgid, so nothing a run starts
leaves it) until none of it is left, zombies included.

Under bubblewrap (sandbox.py, the fallback), bwrap makes O's namespaces and the read-only root
and starts Z as pid 1; everything from Z down is the same.

Protocol, on fd 0 (a SOCK_SEQPACKET Unix socket; one message per datagram, JSON):
  judge -> Z  {"run": n, "limits": {...}, "tester": bool, "fds": [roles]} + SCM_RIGHTS fds
              (roles: req, treq, stdin, out, err, res), or {"kill": n} (kill run n if current)
  Z -> judge  the readiness report once, then per run {"run": n, "wall", "killed", "p": {status,
              cpu, maxrss_kb}, "t": {...}, "je"?}
Fds inside P: 0 stdin, 1 stdout, 2 stderr, 3 result frames (stdio/call; none for assert-style),
6/7 calls from/to T and 8 Z's go (assert-style). Inside T: 0-2 /dev/null, 3 result frames, 6/7
calls to/from P. Both read their request (plain.py's encoding) from fd 5 and report setup
failures (judge errors) on fd 4, and close both before any untrusted or dataset code runs.
In assert-style runs P is forked first and waits, after its own setup and before any program
code, until Z has forked T and says so on fd 8.
"""

import atexit
import ctypes
import errno
import fcntl
import io
import json
import os
import platform
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback
import types

# Captured before any program runs in a forked child (a program may rebind os._exit).
_exit = os._exit

CLONE_VM = 0x00000100
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
ST_FLAGS = {  # statvfs f_flag bit -> mount flag that must be kept on remount (locked in a userns)
    1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC,
    1024: MS_NOATIME, 2048: MS_NODIRATIME, 4096: MS_RELATIME,
}

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2

ARCH = platform.machine()
SYS = {  # syscall numbers used here directly
    "x86_64": {"pivot_root": 155, "capset": 126},
    "aarch64": {"pivot_root": 41, "capset": 91},
}.get(ARCH, {})

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                       ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong]
libc.syscall.restype = ctypes.c_long


def _load_plain():
    """plain.py, the codec shared with the judge, loaded by path (this script is not a package
    member inside the sandbox)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plain.py")
    spec = importlib.util.spec_from_file_location("_spo_plain", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


plain = _load_plain()

# Standard-library modules competitive-programming and HumanEval/MBPP programs import most.
# (random re-seeds itself in every forked child; nothing here holds a thread or a file open.)
PRELOAD = ("typing", "math", "cmath", "random", "copy", "string", "collections", "re", "hashlib",
           "heapq", "bisect", "itertools", "functools", "operator", "fractions", "decimal",
           "statistics", "array", "datetime", "dataclasses", "threading", "queue", "numbers",
           "textwrap", "unicodedata", "contextlib", "enum", "abc", "importlib")


class SetupError(Exception):
    pass


def _check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(e)} (errno {e})")


def _b(s):
    return None if s is None else s.encode()


def mount(src, dst, fstype, flags, data=None):
    _check(libc.mount(_b(src), _b(dst), _b(fstype), flags, _b(data)), f"mount {src} on {dst}")


def prctl(op, a=0, b=0, c=0, d=0):
    _check(libc.prctl(op, a, b, c, d), f"prctl({op})")


# ----------------------------------------------------------------------------------------------
# seccomp: a small deny-list filter (x86_64). Namespaces already give no network and a read-only
# filesystem; the filter removes kernel attack surface the programs never need. In the
# one-process memory mode (no cgroup to count a run's memory) it also refuses every way to get
# memory RLIMIT_AS does not see: new processes that do not share the address space (fork, vfork,
# clone without CLONE_VM, exec) and memfds.

def _seccomp_program(one_process):
    if ARCH != "x86_64":
        return None
    AUDIT_ARCH_X86_64 = 0xC000003E
    RET_ALLOW, RET_KILL = 0x7FFF0000, 0x80000000
    RET_EPERM = 0x00050000 | errno.EPERM
    RET_ENOSYS = 0x00050000 | errno.ENOSYS
    LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
    denied = [
        272, 308,            # unshare, setns
        165, 166, 155, 161,  # mount, umount2, pivot_root, chroot
        428, 429, 430, 431, 432, 433, 442,  # open_tree, move_mount, fsopen/config/mount/pick, mount_setattr
        101, 310, 311, 312,  # ptrace, process_vm_readv/writev, kcmp
        438, 440, 448,       # pidfd_getfd, process_madvise, process_mrelease
        248, 249, 250,       # add_key, request_key, keyctl
        321, 323, 298,       # bpf, userfaultfd, perf_event_open
        246, 320, 175, 313, 176,  # kexec_load, kexec_file_load, init/finit/delete_module
        169, 167, 168, 163,  # reboot, swapon, swapoff, acct
        164, 227, 159, 305,  # settimeofday, clock_settime, adjtimex, clock_adjtime
        170, 171, 172, 173,  # sethostname, setdomainname, iopl, ioperm
        303, 304, 179, 103, 134,  # name_to_handle_at, open_by_handle_at, quotactl, syslog, uselib
        425, 426, 427,       # io_uring_*
        139, 153,            # sysfs, vhangup
        447,                 # memfd_secret
        29, 31, 64, 65, 66, 220, 68, 69, 70, 71,  # SysV shm/sem/msg: would outlive the run
        240, 241, 242, 243, 244, 245,  # POSIX message queues
        112, 109,            # setsid, setpgid: a run's processes stay in the group Z kills
    ]
    if one_process:
        denied += [57, 58, 59, 322, 319]  # fork, vfork, execve, execveat, memfd_create
    ns_flags = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
                | CLONE_NEWPID | CLONE_NEWNET)
    prog = []

    def ins(code, k, jt=0, jf=0):
        prog.append((code, jt, jf, k))

    ins(LD_W_ABS, 4)                        # arch
    ins(JEQ_K, AUDIT_ARCH_X86_64, 1, 0)
    ins(RET_K, RET_KILL)
    ins(LD_W_ABS, 0)                        # syscall number
    ins(JGE_K, 0x40000000, 0, 1)            # x32 ABI: refuse
    ins(RET_K, RET_EPERM)
    for nr in denied:
        ins(JEQ_K, nr, 0, 1)
        ins(RET_K, RET_EPERM)
    ins(JEQ_K, 435, 0, 1)                   # clone3: ENOSYS, so libc falls back to clone
    ins(RET_K, RET_ENOSYS)
    if one_process:
        ins(JEQ_K, 56, 0, 6)                # clone(flags, ...): no namespaces, shared memory
        ins(LD_W_ABS, 16)
        ins(JSET_K, ns_flags, 2, 0)
        ins(JSET_K, CLONE_VM, 0, 1)
        ins(RET_K, RET_ALLOW)
        ins(RET_K, RET_EPERM)
        ins(RET_K, RET_EPERM)               # (unreachable: keeps the jump offsets simple)
    else:
        ins(JEQ_K, 56, 0, 4)                # clone(flags, ...): no new namespaces
        ins(LD_W_ABS, 16)
        ins(JSET_K, ns_flags, 0, 1)
        ins(RET_K, RET_EPERM)
        ins(RET_K, RET_ALLOW)
    # Calls that act on another process by pid: only on itself (pid 0). In a user namespace the
    # program shares its uid with the runner and the tester, and could otherwise lower their
    # limits (their next fork fails: a judge error) or slow them down for every later run.
    for nr, conds in ((302, [(16, 0)]),            # prlimit64(pid, ...)
                      (203, [(16, 0)]),            # sched_setaffinity(pid, ...)
                      (144, [(16, 0)]),            # sched_setscheduler(pid, ...)
                      (142, [(16, 0)]),            # sched_setparam(pid, ...)
                      (314, [(16, 0)]),            # sched_setattr(pid, ...)
                      (141, [(16, 0), (24, 0)]),   # setpriority(PRIO_PROCESS, 0, ...)
                      (251, [(16, 1), (24, 0)])):  # ioprio_set(IOPRIO_WHO_PROCESS, 0, ...)
        k = len(conds)
        ins(JEQ_K, nr, 0, 2 * k + 2)
        for i, (off, val) in enumerate(conds):
            ins(LD_W_ABS, off)
            ins(JEQ_K, val, 0, 2 * k - 2 * i - 1)
        ins(RET_K, RET_ALLOW)
        ins(RET_K, RET_EPERM)
        ins(LD_W_ABS, 0)                    # (the syscall number again for what follows)
    ins(JEQ_K, 41, 0, 4)                    # socket(domain, ...): AF_UNIX only
    ins(LD_W_ABS, 16)
    ins(JEQ_K, 1, 1, 0)
    ins(RET_K, RET_EPERM)
    ins(RET_K, RET_ALLOW)
    ins(RET_K, RET_ALLOW)
    return prog


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _compile_seccomp(one_process):
    prog = _seccomp_program(one_process)
    if prog is None:
        return None
    arr = (_SockFilter * len(prog))(*[_SockFilter(*i) for i in prog])
    return arr, _SockFprog(len(prog), arr)


_SECCOMP = {False: _compile_seccomp(False), True: _compile_seccomp(True)}


def install_seccomp(one_process):
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    compiled = _SECCOMP[bool(one_process)]
    if compiled is None:
        return False
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(compiled[1]), 0, 0),
           "seccomp")
    return True


_CAP_LAST = []


def cap_last():
    """The highest capability number of this kernel (read once, in Z)."""
    if not _CAP_LAST:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _CAP_LAST.append(int(f.read()))
        except OSError:
            _CAP_LAST.append(63)
    return _CAP_LAST[0]


def drop_capabilities():
    """Empty bounding, ambient, effective, permitted and inheritable capability sets."""
    for cap in range(cap_last() + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    _check(libc.syscall(SYS["capset"], hdr, data), "capset")


# ----------------------------------------------------------------------------------------------
# Setup of the zygote's namespaces and read-only root (runs once, before any request).

def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _submounts(prefix):
    out = []
    with open("/oldroot/proc/self/mountinfo") as f:  # only called while the old root is there
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == prefix or mp.startswith(prefix.rstrip("/") + "/"):
                out.append(mp)
    return out


def _remount_ro(target):
    for mp in _submounts(target):
        keep = 0
        try:
            fl = os.statvfs(mp).f_flag
        except OSError:
            continue
        for bit, ms in ST_FLAGS.items():
            if fl & bit:
                keep |= ms
        mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | keep)


def _mountpoint(src, dst):
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()


def _bind(old, new, path, ro=True, dst=None):
    src, dst = old + path, new + (dst or path)
    if os.path.islink(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.lexists(dst):
            os.symlink(os.readlink(src), dst)
        return
    if os.path.lexists(dst) and os.path.islink(dst):
        return  # already provided through a symlinked parent
    _mountpoint(src, dst)
    mount(src, dst, None, MS_BIND | MS_REC)
    if ro:
        _remount_ro(dst)


def setup_namespaces(cfg):
    """In O: enter new namespaces (the caller then forks Z, pid 1 of the new pid namespace)."""
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID
    if cfg["userns"]:
        uid, gid = os.geteuid(), os.getegid()
        _check(libc.unshare(flags | CLONE_NEWUSER), "unshare(user, mount, net, ipc, uts, pid)")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
        _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    else:
        _check(libc.unshare(flags), "unshare(mount, net, ipc, uts, pid)")


def setup_root(cfg):
    """In Z: a read-only root made of bind mounts, with mount points for per-run tmpfs; every
    site-packages directory in it masked; the allowed packages at /opt/spo-packages."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    base = "/tmp"
    mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    os.chdir(base)
    os.mkdir("newroot")
    os.mkdir("oldroot")
    mount("newroot", "newroot", None, MS_BIND | MS_REC)
    _check(libc.syscall(SYS["pivot_root"], b".", b"oldroot"), "pivot_root")
    os.chdir("/")
    old, new = "/oldroot", "/newroot"
    for p in cfg["ro_paths"]:
        if os.path.lexists(old + p):
            _bind(old, new, p)
    for p in cfg.get("masks", []):  # an empty read-only tmpfs over each: nothing to import there
        if os.path.isdir(new + p) and not os.path.islink(new + p):
            mount("tmpfs", new + p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=4k,nr_inodes=8,mode=0555")
    for host, name in cfg.get("packages", []):
        _bind(old, new, host, dst=cfg["packages_dir"] + "/" + name)
    os.makedirs(new + "/dev", exist_ok=True)
    for n in ("null", "zero", "full", "random", "urandom"):
        if os.path.exists(old + "/dev/" + n):
            _bind(old, new, "/dev/" + n, ro=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{new}/dev/{name}")
    for d in ("/dev/shm", "/proc", "/tmp"):
        os.makedirs(new + d, exist_ok=True)
    proc = True
    try:  # /proc of this (Z's) pid namespace: the runs' processes, and Z as pid 1
        mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except SetupError:
        proc = False
    os.chdir(new)
    _check(libc.syscall(SYS["pivot_root"], b".", b"."), "pivot_root (new root)")
    _check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    try:
        libc.sethostname(b"sandbox", 7)
    except Exception:
        pass
    return proc


# ----------------------------------------------------------------------------------------------
# I/O helpers

def read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def recv_frame(fd, cap):
    """One frame from a pipe: (op, payload). EOFError at the end; ValueError when malformed or
    longer than cap."""
    head = read_exact(fd, 5)
    ln, op = struct.unpack("<IB", head)
    if ln < 1 or ln - 1 > cap:
        raise ValueError(f"a message of {ln} bytes (the limit is {cap})")
    return bytes((op,)), read_exact(fd, ln - 1)


def _text(x, n=1000):
    """Bounded text of an object of the program's (str() may raise or never end)."""
    try:
        s = str(x)
    except BaseException:
        s = "<unprintable>"
    return s[:n] if isinstance(s, str) else "<unprintable>"


# ----------------------------------------------------------------------------------------------
# Inside P: run the program text.

RES_FD, SETUP_FD, REQ_FD, CALL_IN, CALL_OUT, GO_FD = 3, 4, 5, 6, 7, 8


def _report(op, value=None):
    """A result frame on fd 3 (stdio/call mode; the program can write there too, which can only
    make its own verdict worse: the judge reads nothing from it that can make a run pass)."""
    try:
        write_all(RES_FD, plain.frame(op, b"" if value is None else plain.encode(value)))
    except BaseException:
        pass


def _finish_interpreter(code):
    """What CPython does at exit: join non-daemon threads, atexit handlers, flush streams."""
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
    except BaseException:
        pass
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            s.flush()
        except BaseException:
            pass
    return code


def _exit_code(e):
    c = e.code
    if c is None:
        return 0
    if isinstance(c, int):
        return c & 0xFF
    try:
        sys.stderr.write(str(c) + "\n")
    except BaseException:
        pass
    return 1


def _print_exc(e):
    """The traceback as python3 main.py would print it (without the runner's own frame)."""
    tb = e.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    try:
        traceback.print_exception(type(e), e, tb, file=sys.stderr)
    except BaseException:
        pass


def _fresh_main(file="/tmp/main.py"):
    mod = types.ModuleType("__main__")
    mod.__file__ = file
    mod.__builtins__ = __builtins__
    sys.modules["__main__"] = mod
    sys.argv[:] = [os.path.basename(file)]
    return mod.__dict__


def _std_streams():
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8",
        errors="surrogateescape")
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8",
        errors="surrogateescape")
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
        errors="backslashreplace", line_buffering=True)


def _compile_program(src):
    """(code object, None) or (None, (kind, type name, message)) for the program text."""
    try:
        return compile(src, "main.py", "exec"), None
    except MemoryError:
        return None, ("exc", "MemoryError", "")
    except (SyntaxError, ValueError, OverflowError, RecursionError) as e:
        _print_exc(e)
        return None, ("ce", type(e).__name__, f"{type(e).__name__}: {e}")


def run_program(req):
    """P's work; never returns (every path ends in _exit)."""
    _std_streams()
    mode = req["mode"]
    code, failed = _compile_program(req["code"])
    if mode == "serve":
        serve_calls(code, failed, req)
    if failed:
        kind, tname, msg = failed
        _report(b"C" if kind == "ce" else b"X", [tname, msg[:1000]])
        _exit(1)
    g = _fresh_main()
    if mode == "stdio":
        rc = 0
        try:
            exec(code, g)
        except SystemExit as e:
            rc = _exit_code(e)
        except BaseException as e:
            _report(b"X", [type(e).__name__, _text(e, 300)])
            _print_exc(e)
            rc = 1
        _exit(_finish_interpreter(rc))
    # Call-based tests: the program must load without error first.
    try:
        exec(code, g)
    except BaseException as e:
        _report(b"X", [type(e).__name__, _text(e, 300)])
        _print_exc(e)
        _finish_interpreter(1)
        _exit(1)
    fn = g.get(req["fn_name"])
    if fn is None and isinstance(g.get("Solution"), type):
        try:
            fn = getattr(g["Solution"](), req["fn_name"], None)
        except BaseException as e:
            _report(b"X", [type(e).__name__, _text(e, 300)])
            _exit(1)
    if not callable(fn):
        _report(b"X", ["NameError", f"function {req['fn_name']!r} not defined"])
        _exit(1)
    try:
        args = json.loads(req["args"])
        if not isinstance(args, list):
            args = [args]
        value = fn(*args)
        try:
            payload = plain.encode(value, max_bytes=req["max_bytes"])
        except plain.EncodeError as e:
            _report(b"N", [f"the return value is not plain data: {e}"])
        else:
            write_all(RES_FD, plain.frame(b"R", payload))
    except BaseException as e:
        _report(b"X", [type(e).__name__, _text(e, 300)])
        _print_exc(e)
        _finish_interpreter(1)
        _exit(1)
    _exit(_finish_interpreter(0))


def _exc_names(e):
    try:
        return [c.__name__ for c in type(e).__mro__][:32]
    except BaseException:
        return ["Exception"]


def serve_calls(code, failed, req):
    """P in assert-style runs: load the program, tell T its top-level names, then answer T's
    calls with plain data (or a handle to an object that is not) until T closes the pipe."""
    cap = req["max_bytes"]

    def send(op, value):
        write_all(CALL_OUT, plain.frame(op, plain.encode(value, max_bytes=cap, handle=register,
                                                         arrays=True)))

    table = []
    index = {}

    def register(obj):
        k = id(obj)
        if k in index and table[index[k]] is obj:
            return index[k]
        table.append(obj)
        index[k] = len(table) - 1
        return len(table) - 1

    generic = {}

    def rebuild(name, attrs):  # an object of the tester's (MBPP's Node trees)
        cls = g.get(name)
        if not isinstance(cls, type):
            cls = generic.setdefault(name, type(name, (), {}))
        try:
            obj = object.__new__(cls)
            obj.__dict__.update(attrs)
        except Exception:
            obj = generic.setdefault(name, type(name, (), {}))()
            obj.__dict__.update(attrs)
        return obj

    try:
        if failed:
            send(b"X", list(failed))
            _exit(1)
        g = _fresh_main()
        try:
            exec(code, g)
        except BaseException as e:
            _print_exc(e)
            send(b"X", ["exc", type(e).__name__, _text(e, 300)])
            _finish_interpreter(1)
            _exit(1)
        names = []
        for k, v in list(g.items())[:10000]:
            if type(k) is not str or k.startswith("__") or not k.isidentifier():
                continue
            if isinstance(v, types.ModuleType):
                names.append([k, "m", _text(getattr(v, "__name__", ""), 200)])
            elif callable(v):
                names.append([k, "c", register(v)])
        send(b"L", names)
        while True:
            try:
                op, data = recv_frame(CALL_IN, cap)
            except EOFError:
                break
            if op not in (b"C", b"I", b"N"):
                break
            try:
                msg = plain.decode(data, handle=lambda h, _name: table[h], objects=rebuild,
                                   arrays=True)
                if op == b"C":  # call [hid, args, kwargs]
                    value = table[msg[0]](*msg[1], **msg[2])
                elif op == b"I":  # iter(object)
                    value = iter(table[msg])
                else:  # next(iterator)
                    try:
                        value = next(table[msg])
                    except StopIteration:
                        write_all(CALL_OUT, plain.frame(b"S"))
                        continue
                payload = plain.encode(value, max_bytes=cap, handle=register, arrays=True)
            except BaseException as e:  # the program's exception, or a value too big to send
                send(b"E", [_exc_names(e), _text(e)])
                continue
            write_all(CALL_OUT, plain.frame(b"R", payload))
    except BaseException:
        pass
    _exit(0)


# ----------------------------------------------------------------------------------------------
# Inside T: the tests, calling into P.

class ProgramDied(BaseException):
    """The program ended, or broke the call protocol, during a call (or before its tests).
    A BaseException, so test code's `except Exception` does not take it for the program's
    answer; and once raised, no later test of the run can pass."""


class ProgramError(Exception):
    """The program raised an exception that is not one of Python's own exception types."""


_NOT_MAPPED = {"StopIteration", "StopAsyncIteration"}  # would end a map()/iter() silently


def _program_exception(names, msg):
    """An exception for T to raise: the first built-in Exception type among the program's
    exception's classes (its MRO), else ProgramError."""
    import builtins

    if not isinstance(msg, str):
        msg = ""
    first = names[0] if names and isinstance(names[0], str) else "Exception"
    for name in names if isinstance(names, list) else []:
        if not isinstance(name, str) or name in _NOT_MAPPED:
            continue
        cls = builtins.__dict__.get(name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                return cls(msg) if name == first else cls(f"{first}: {msg}")
            except Exception:
                continue
    return ProgramError(f"{first}: {msg}")


class Remote:
    """T's view of an object of the program's that is not plain data (one of its functions, a
    class, an instance, a generator): it can be called, iterated, passed back to the program,
    and nothing else. Each call or step is answered by the program's process with plain data
    (or another Remote); iterating one is no more than the program returning a list."""

    __slots__ = ("_hid", "_type")

    def __init__(self, hid, type_name):
        self._hid, self._type = hid, type_name

    def __call__(self, *args, **kwargs):
        return _channel.call(b"C", [self._hid, list(args), dict(kwargs)])

    def __iter__(self):
        return _channel.call(b"I", self._hid)

    def __next__(self):
        return _channel.call(b"N", self._hid)  # StopIteration when the program's does

    def __repr__(self):
        return f"<the program's {self._type}>"

    def _refuse(self, what):
        raise TypeError(f"the program's {self._type} is not plain data: it has no {what} in "
                        "the tests")

    def __bool__(self):
        self._refuse("truth value")

    def __eq__(self, other):  # itself only; never equal or unequal to anything else
        return True if other is self else self._refuse("equality")

    def __ne__(self, other):
        return False if other is self else self._refuse("equality")

    __hash__ = object.__hash__


class _Channel:
    def __init__(self, cap):
        self.cap = cap
        self.dead = None

    def recv(self):
        try:
            return recv_frame(CALL_IN, self.cap)
        except EOFError:
            self.dead = "the program ended"
        except (OSError, ValueError) as e:
            self.dead = f"the program's answer is unreadable: {e}"
        raise ProgramDied(self.dead)

    def call(self, op, msg):
        """One request to the program (C: a call, I: iter(), N: next()), one answer back."""
        if self.dead:
            raise ProgramDied(self.dead)
        try:
            payload = plain.encode(msg, objects=True, arrays=True,
                                   handle=lambda o: o._hid if type(o) is Remote else None)
        except plain.EncodeError as e:
            raise TypeError(f"a test passes the program something that is not plain data: {e}") from None
        try:
            write_all(CALL_OUT, plain.frame(op, payload))
        except OSError:
            self.dead = "the program ended"
            raise ProgramDied(self.dead) from None
        reply, data = self.recv()
        if reply == b"S" and op == b"N":
            raise StopIteration
        op = reply
        if op == b"R":
            try:
                return plain.decode(data, handle=Remote, arrays=True)
            except plain.DecodeError as e:
                raise TypeError(f"the program returned something that is not plain data: {e}") \
                    from None
        if op == b"E":
            try:
                names, msg = plain.decode(data)
            except (plain.DecodeError, TypeError, ValueError):
                names, msg = None, None
            if isinstance(names, list):
                raise _program_exception(names, msg)
        self.dead = "the program broke the call protocol"
        raise ProgramDied(self.dead)


_channel = None


def _treport(op, value=None):
    write_all(RES_FD, plain.frame(op, b"" if value is None else plain.encode(value)))


def run_tester(req):
    """T's work when it serves one run; never returns."""
    _exit(run_tests(req))


def run_tests(req):
    """One run's tests; returns T's exit code (0: every test passed). Frames on fd 3: J [msg]
    (the problem's own code failed: a judge error), L [kind, type, msg] (the program did not
    load), T [i, ok, type, msg], D (done)."""
    global _channel
    import builtins
    import importlib

    _channel = ch = _Channel(req["max_bytes"])
    sys.stdin = sys.__stdin__ = io.StringIO("")
    g = _fresh_main("/test.py")
    entry = req.get("entry_point")
    if req.get("compiled"):  # the judge's own compile of the same text, for this interpreter
        import marshal

        prompt_code, prelude_code, test_codes = marshal.loads(req["compiled"])
    else:
        prompt_code = compile(req["prompt"], "prompt.py", "exec") if req.get("prompt") else None
        prelude_code = compile(req.get("prelude") or "", "test.py", "exec")
        test_codes = [compile(t, "test.py", "exec") for t in req["tests"]]
    if prompt_code is not None:  # the problem's own code (HumanEval's helpers): trusted
        try:
            exec(prompt_code, g)
        except BaseException as e:
            _treport(b"J", [f"the problem's prompt code fails: {type(e).__name__}: {_text(e, 300)}"])
            return 1
        g.pop(entry, None)
    own = set(g) | set(builtins.__dict__)
    try:
        op, data = ch.recv()
        if op == b"X":
            kind, tname, msg = plain.decode(data)
            _treport(b"L", [str(kind), str(tname), str(msg)])
            return 1
        if op != b"L":
            raise ValueError("protocol")
        names = plain.decode(data)
        if not isinstance(names, list):
            raise ValueError("protocol")
    except ProgramDied as e:
        _treport(b"L", ["died", "ProgramDied", str(e)])
        return 1
    except Exception as e:
        _treport(b"L", ["died", "ProgramDied", f"the program broke the call protocol ({e})"])
        return 1
    wanted = set(req["names"])
    for item in names[:10000]:
        if not (isinstance(item, list) and len(item) == 3 and type(item[0]) is str):
            continue
        name, kind, extra = item
        if name not in wanted or (name in own and name != entry):
            continue  # never shadow what the test code, the prompt or Python itself defines
        if kind == "m" and extra == name:
            try:  # T's own copy of the module (standard library or an allowed package)
                g[name] = importlib.import_module(name)
            except BaseException:
                pass
        elif kind == "c" and type(extra) is int:
            g[name] = Remote(extra, name)
    try:
        exec(prelude_code, g)
    except BaseException as e:
        # Not a judge error: the program's answers may have caused it.
        _treport(b"T", [0, False, type(e).__name__,
                        f"the test code failed: {_text(e, 300)}"])
        return 1
    ok_all = True
    for i, t in enumerate(test_codes):
        try:
            exec(t, g)
            if ch.dead:
                raise ProgramDied(ch.dead)
            _treport(b"T", [i, True, "", ""])
        except BaseException as e:
            ok_all = False
            kind = "ProgramDied" if ch.dead else type(e).__name__
            _treport(b"T", [i, False, kind, _text(e, 300)])
            if req.get("stop_on_fail", True):
                break
    _treport(b"D")
    return 0 if ok_all else 1


CTL_FD = 9  # a kept tester's control socket to Z
TESTER_GROWTH = 8 << 20  # a kept tester retires when its resident memory has grown this much


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_now():
    return time.process_time()


def serve_tests(_req, max_runs):
    """T kept for the assert-style runs of its runner, one after another; never returns.

    Per run Z sends {"run": n, "cpu_s": limit} with four descriptors (the result channel, the
    tests' request, and the run's own pipe pair to and from P); T runs the tests exactly as a
    per-run tester does, closes all four, and answers {"done": n, "code", "cpu", "maxrss_kb",
    "retire"}. Nothing of a program ever runs here: what T receives from a program is plain
    data, rebuilt from builtin types (plain.py), and P can reach T in no other way (another uid
    as root; not dumpable, no ptrace, and signals checked by Z before T is used again, in a
    user namespace). What the dataset's test code may change in T's process state is reset
    after each run, and T retires (exits; Z forks a fresh one) after `max_runs` runs, when a
    thread is left running, when its memory has grown, or when anything unexpected happens."""
    import socket as _socket

    ctl = _socket.socket(fileno=CTL_FD)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # no signal runs Python code in T
    env, path, recursion = dict(os.environ), list(sys.path), sys.getrecursionlimit()
    streams = (sys.stdin, sys.stdout, sys.stderr)
    rss0 = _rss()
    inf = resource.RLIM_INFINITY
    runs = 0
    while True:
        msg, fds, flags, _ = _socket.recv_fds(ctl, 4096, 8)
        if not msg:
            _exit(0)  # Z is gone
        hdr = json.loads(msg)
        if len(fds) != 4 or flags & (_socket.MSG_CTRUNC | _socket.MSG_TRUNC):
            _exit(125)
        high = []
        for fd in fds:  # received at the lowest free numbers, which may be the targets
            high.append(fcntl.fcntl(fd, fcntl.F_DUPFD, CTL_FD + 1))  # (under RLIMIT_NOFILE)
            os.close(fd)
        for target, fd in zip((RES_FD, REQ_FD, CALL_OUT, CALL_IN), high):
            os.dup2(fd, target)
            os.close(fd)
        req = plain.decode(read_all(REQ_FD))  # the judge's: trusted
        os.close(REQ_FD)
        c0 = _cpu_now()
        soft = max(1, -int(-(c0 + hdr["cpu_s"]) // 1))
        resource.setrlimit(resource.RLIMIT_CPU, (soft, inf))
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            code = run_tests(req)
        finally:
            for fd in (RES_FD, CALL_OUT, CALL_IN):
                try:
                    os.close(fd)
                except OSError:
                    pass
        runs += 1
        default_signals()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.environ.clear()
        os.environ.update(env)
        sys.path[:] = path
        sys.setrecursionlimit(recursion)
        sys.stdin, sys.stdout, sys.stderr = streams
        os.chdir("/")
        threads = sys.modules["threading"].active_count() if "threading" in sys.modules else 1
        retire = runs >= max_runs or threads > 1 or _rss() > rss0 + TESTER_GROWTH
        ctl.send(json.dumps({"done": hdr["run"], "code": code, "cpu": _cpu_now() - c0,
                             "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                             "retire": retire}).encode())
        if retire:
            _exit(0)


# ----------------------------------------------------------------------------------------------
# One run: P (and T), forked from Z; Z cleans up after them.

def child_start(cfg, role, limits, fdmap, vm, tmpdir):
    """P or T, just forked from Z: join the run's cgroup, take its fds, lock itself down, and
    read its request. Returns the request; on failure reports on fd 4 and exits 125."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()
        devnull = None
        moved = {}
        for target, src in fdmap.items():
            if src is None:
                if devnull is None:
                    devnull = os.open("/dev/null", os.O_RDWR)
                src = devnull
            moved[target] = fcntl.fcntl(src, fcntl.F_DUPFD, 64)
        for target, src in moved.items():
            os.dup2(src, target)
        for fd in range(CTL_FD + 1):  # whatever else Z had (the judge's fds for the other one)
            if fd not in moved:
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.closerange(CTL_FD + 1, 2**31 - 1)
        kept = role == "t" and REQ_FD not in moved  # a tester kept for many runs
        one_process = cfg["one_process"]
        tmp = min(limits["tmp_bytes"], limits["mem_bytes"] // 4) if one_process \
            else limits["tmp_bytes"]
        if role == "p" and cfg["isolation"] == "namespaces":
            _check(libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare(mount, ipc)")
            owner = "" if cfg["userns"] else f",uid={cfg['uid']},gid={cfg['gid']}"
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
                  f"size={tmp},nr_inodes=4096,mode=0700{owner}")
            if one_process:  # one tmpfs for both, so its size is counted once
                mount("/tmp", "/dev/shm", None, MS_BIND)
            else:
                mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      f"size={tmp},nr_inodes=256,mode=0700{owner}")
            os.chdir("/tmp")
        elif role == "p":
            os.chdir(tmpdir)
        else:
            os.chdir("/")
        # Z's dispositions are the defaults already (default_signals); CPython's own SIGINT
        # handler, as a fresh interpreter has it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            _write("/proc/self/oom_score_adj", "1000")  # the first victim under memory pressure
        except OSError:
            pass
        soft_cpu = max(1, -int(-limits["cpu_s"] // 1))  # whole seconds, rounded up
        cpu_limit = (soft_cpu, soft_cpu + 1)  # SIGXCPU, then SIGKILL
        if kept:  # its own per-run limit, set before each run (serve_tests)
            cpu_limit = (resource.RLIM_INFINITY,) * 2
        # One process: its address space holds all the run's memory but the tmpfs.
        mem = limits["mem_bytes"] - (tmp if one_process and role == "p" else 0)
        rl = [
            (resource.RLIMIT_CPU, cpu_limit),
            (resource.RLIMIT_AS, (vm + mem,) * 2),
            (resource.RLIMIT_NPROC, (limits["nproc"],) * 2),
            (resource.RLIMIT_NOFILE, (limits["nofile"],) * 2),
            (resource.RLIMIT_FSIZE, (limits["fsize_bytes"],) * 2),
            (resource.RLIMIT_CORE, (0, 0)),
            (resource.RLIMIT_MEMLOCK, (0, 0)),
            (resource.RLIMIT_MSGQUEUE, (0, 0)),
        ]
        for what, val in rl:
            resource.setrlimit(what, val)
        if cfg["userns"]:
            drop_capabilities()
        elif os.geteuid() == 0:
            uid = cfg["uid"] + (1 if role == "t" else 0)
            gid = cfg["gid"] + (1 if role == "t" else 0)
            libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
            for cap in range(64):
                libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the uid change cleared it
        # After any uid change (which resets it): the program's own /proc/self works; the
        # tester's memory and fds are closed to the program.
        prctl(PR_SET_DUMPABLE, 1 if role == "p" else 0)
        if cfg["seccomp"]:
            install_seccomp(one_process)
        else:
            prctl(PR_SET_NO_NEW_PRIVS, 1)
        os.environ.clear()
        os.environ.update(cfg["env"])
        req = None
        if not kept:
            req = plain.decode(read_all(REQ_FD))  # the judge's: trusted
            os.close(REQ_FD)
        if GO_FD in moved:  # P of an assert-style run: no program code before T exists
            if os.read(GO_FD, 1) != b"g":
                _exit(125)  # Z gave up on the run
            os.close(GO_FD)
    except BaseException as e:
        # fd 4 reaches Z only from here: the program cannot claim a judge error (reward null)
        try:
            os.write(SETUP_FD, f"sandbox setup ({role}): {e!r}".encode()[:1000])
        except Exception:
            pass
        _exit(125)
    os.close(SETUP_FD)
    return req


def _vm_size():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def kill_run(cfg, pids):
    """SIGKILL to every process of the run. In the namespace Z is pid 1 and kill(-1) reaches
    exactly the run's processes, when no tester is kept between runs. With a kept tester
    (cfg["keep_tester"]), kill(-1) would end it too: the run's processes are then the process
    groups of P (and of T, when T is to go too). Seccomp refuses setsid and setpgid, so nothing
    a run starts can leave its group; killing a group is atomic against fork(). Without
    namespaces only the runs' process groups can be reached."""
    if cfg["isolation"] == "namespaces" and os.getpid() == 1 and not cfg.get("keep_tester"):
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return
    kill_groups(pids)


def kill_groups(pids):
    """SIGKILL to each process and to its process group (each of P and T leads its own)."""
    for pid in pids:
        for f in (os.killpg, os.kill):
            try:
                f(pid, signal.SIGKILL)
            except OSError:
                pass


def reap_all(cfg, groups=()):
    """After a run: kill what is left of it and reap it (orphans are Z's children: Z is pid 1).
    Returns the CPU seconds of the reaped processes."""
    cpu = 0.0
    if cfg["isolation"] != "namespaces" or os.getpid() != 1:
        return cpu
    keep = cfg.get("keep_tester")
    while True:
        if keep:  # until no process of the run's groups is left, zombies included
            left = False
            for g in groups:
                try:
                    os.killpg(g, signal.SIGKILL)
                    left = True
                except OSError:
                    pass
            if not left:
                return cpu
        else:
            kill_run(cfg, ())
        try:
            pid, st, ru = os.wait4(-1, 0)
        except ChildProcessError:
            return cpu
        except InterruptedError:
            continue
        if _tester is not None and pid == _tester.pid:
            _tester.gone(st, ru)
            continue
        cpu += ru.ru_utime + ru.ru_stime


def _fork(cfg, role, limits, fdmap, vm, tmpdir, work):
    pid = os.fork()
    if pid == 0:
        try:
            work(child_start(cfg, role, limits, fdmap, vm, tmpdir))
        finally:
            _exit(1)
    return pid


def _usage(cpu, maxrss_kb):
    """A struct_rusage of a kept tester's share of a run (its CPU as user time)."""
    return resource.struct_rusage((cpu, 0.0, maxrss_kb) + (0,) * 13)


class _Tester:
    """Z's side of a kept tester: its pid, pidfd and control socket, the limits it was made
    with (all but the time limits, which it sets per run), and the CPU it has reported."""

    def __init__(self, pid, ctl, key):
        self.pid, self.ctl, self.key = pid, ctl, key
        self.pidfd = os.pidfd_open(pid)
        self.reported = 0.0
        self.status = self.usage = None  # once reaped

    def gone(self, st, ru):
        """T has exited and is reaped: nothing of it is left to use."""
        global _tester
        self.status, self.usage = st, ru
        if _tester is self:
            _tester = None
        for x in (self.pidfd, self.ctl):
            try:
                x.close() if hasattr(x, "close") else os.close(x)
            except OSError:
                pass

    def retire(self):
        """End T (and anything it started) and reap it."""
        if self.status is not None:
            return
        kill_groups([self.pid])
        while self.status is None:
            try:
                _, st, ru = os.wait4(self.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:  # (cannot happen: only Z reaps, and it calls gone())
                st, ru = signal.SIGKILL, _usage(0.0, 0)
            self.gone(st, ru)

    def healthy(self):
        """Alive, waiting for its next run, and no signal pending: in a user namespace P shares
        T's uid and could have signalled it (a stop, or a death not yet taken effect); P's
        processes are all gone by now, so nothing can signal it after this check."""
        give_up = time.monotonic() + 2.0  # T may still be on its way back to sleep (a busy machine)
        while time.monotonic() < give_up:
            if select.select([self.pidfd], [], [], 0)[0]:
                return False
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    fields = dict(line.split(":", 1) for line in f.read().splitlines()
                                  if ":" in line)
                pending = any(int(fields[k].strip(), 16) for k in ("SigPnd", "ShdPnd"))
            except (OSError, KeyError, ValueError):
                return False
            state = fields.get("State", "").split()[:1]
            if pending or state not in (["S"], ["R"], ["D"]):
                return False  # a signal waits, or T is stopped, traced or dead
            if state == ["S"]:
                return True
            time.sleep(0.001)
        return False


_tester = None


def _kept_tester(cfg, limits, vm, su_w):
    """The runner's tester for an assert-style run: the one kept from earlier runs when it is
    healthy and was made with the same limits, else a fresh fork of Z."""
    global _tester
    key = {k: v for k, v in limits.items() if k not in ("cpu_s", "wall_s")}
    t = _tester
    if t is not None and (t.key != key or not t.healthy()):
        t.retire()
        t = None
    if t is None:
        z_end, t_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            tfds = {0: None, 1: None, 2: None, SETUP_FD: su_w, CTL_FD: t_end.fileno()}
            pid = _fork(cfg, "t", limits, tfds, vm, None,
                        lambda req: serve_tests(req, cfg["tester_runs"]))
        except BaseException:
            z_end.close()
            raise
        finally:
            t_end.close()
        t = _tester = _Tester(pid, z_end, key)
    return t


def run_one(cfg, sock, hdr, fds):
    """Z: one run; returns the reply header. Z touches none of the run's data: it passes the
    judge's fds on and waits."""
    try:
        limits = hdr["limits"]
        roles = hdr["fds"]
        if len(roles) != len(fds):
            raise ValueError(f"{len(fds)} fds for {len(roles)} roles")
        got = dict(zip(roles, fds))
        tester = bool(hdr.get("tester"))
        su_r, su_w = os.pipe()
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    keep = tester and cfg.get("keep_tester")
    mine = [su_r, su_w]
    tmpdir = None
    if cfg["isolation"] != "namespaces":
        import tempfile

        tmpdir = tempfile.mkdtemp(prefix="spo-judge-")
        if os.geteuid() == 0:
            os.chown(tmpdir, cfg["uid"], cfg["gid"])
    pfds = {0: got.get("stdin"), 1: got["out"], 2: got["err"], SETUP_FD: su_w, REQ_FD: got["req"]}
    tfds = {}
    if tester:
        a_r, a_w = os.pipe()  # T -> P
        b_r, b_w = os.pipe()  # P -> T
        go_r, go_w = os.pipe()  # Z -> P: T exists
        mine += [a_r, a_w, b_r, b_w, go_r, go_w]
        pfds.update({CALL_IN: a_r, CALL_OUT: b_w, GO_FD: go_r})
        tfds = {0: None, 1: None, 2: None, RES_FD: got["res"], SETUP_FD: su_w,
                REQ_FD: got["treq"], CALL_OUT: a_w, CALL_IN: b_r}
    else:
        pfds[RES_FD] = got["res"]
    vm = _vm_size()
    t0 = time.monotonic()
    procs = {}
    kept = None
    try:
        if keep:  # the kept T, forked now only when none is fit for this run
            kept = _kept_tester(cfg, limits, vm, su_w)
        # P before a per-run T, so its setup overlaps T's fork; but P runs no program code
        # before T exists (it waits for Z's go), so nothing the program does can keep T from
        # starting.
        procs["p"] = _fork(cfg, "p", limits, pfds, vm, tmpdir, run_program)
        if kept is not None:
            socket.send_fds(kept.ctl, [json.dumps({"run": hdr["run"],
                                                   "cpu_s": limits["cpu_s"]}).encode()],
                            [got["res"], got["treq"], a_w, b_r])
            write_all(go_w, b"g")
        elif tester:
            procs["t"] = _fork(cfg, "t", limits, tfds, vm, tmpdir, run_tester)
            write_all(go_w, b"g")
    except BaseException:
        kill_run(cfg, procs.values())
        for pid in procs.values():
            os.waitpid(pid, 0)
        if kept is not None:
            kept.retire()
        os.close(su_r)
        raise
    finally:
        for fd in fds + mine[1:]:
            os.close(fd)
    main_role = "t" if tester else "p"
    out = {"run": hdr["run"]}
    status, usage = {}, {}
    pidfds = {}
    poller = select.poll()
    for role, pid in procs.items():
        try:
            pidfds[os.pidfd_open(pid)] = role
        except (AttributeError, OSError):
            pass
    kept_fds = ()
    if kept is not None:
        kept_fds = (kept.ctl.fileno(), kept.pidfd)
        for fd in kept_fds:
            poller.register(fd, select.POLLIN)
    for fd in pidfds:
        poller.register(fd, select.POLLIN)
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(su_r, select.POLLIN)
    setup_err = bytearray()
    deadline = t0 + limits["wall_s"]
    killed = None
    t_end = None

    def ended(role, st, ru):
        nonlocal t_end
        status[role], usage[role] = st, ru
        if role == "t":
            for fd in kept_fds:  # (the kept tester's fds may be closed once it retires)
                poller.unregister(fd)
        if role == main_role:
            t_end = time.monotonic()
            kill_run(cfg, procs.values())  # the run is over: end everything it left

    def tester_done():
        """The kept tester's report, or its death (then its wait status)."""
        try:
            msg = kept.ctl.recv(4096, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            msg = b""
        info = None
        if msg:
            try:
                info = json.loads(msg)
            except ValueError:
                info = None
        if isinstance(info, dict) and info.get("done") == hdr["run"]:
            cpu = float(info.get("cpu") or 0.0)
            kept.reported += cpu
            ended("t", (int(info.get("code") or 0) & 0xFF) << 8,
                  _usage(cpu, int(info.get("maxrss_kb") or 0)))
            if info.get("retire"):
                kept.retire()
        else:  # EOF or nonsense: T is not usable any more
            tester_died()
        return True

    def tester_died():
        """T is ended and reaped; its part of the run is its wait status and the CPU it used
        since its last report."""
        kept.retire()
        if "t" not in status:
            ru = kept.usage
            ended("t", kept.status,
                  _usage(max(0.0, ru.ru_utime + ru.ru_stime - kept.reported), ru.ru_maxrss))

    def waiting():
        return len(status) < len(procs) + (kept is not None)

    while waiting():
        now = time.monotonic()
        if len(pidfds) < len(procs):  # old kernel without pidfds: poll for exits
            for role, pid in procs.items():
                if role not in status:
                    w, st, ru = os.wait4(pid, os.WNOHANG)
                    if w:
                        ended(role, st, ru)
            if not waiting():
                break
        if now >= deadline:
            if killed is None:
                killed = "wall"
                kill_run(cfg, procs.values())
                if kept is not None and "t" not in status:
                    kept.retire()  # it may be in the middle of the tests
                    tester_died()
                deadline = now + 5.0  # grace for the kill to take effect
                continue
            break  # only a process outside our reach is left (no namespaces)
        timeout = deadline - now if len(pidfds) == len(procs) else min(0.01, deadline - now)
        events = poller.poll(max(0.0, timeout) * 1000)
        if kept is not None:  # the tester's report before its exit (it may retire at once)
            events.sort(key=lambda e: e[0] != kept_fds[0])
        for fd, _ in events:
            if fd in kept_fds:
                if "t" in status:
                    continue
                if fd == kept_fds[0]:
                    tester_done()
                elif not tester_done():
                    tester_died()
                continue
            if fd == sock.fileno():
                try:
                    msg = sock.recv(1 << 16)
                except OSError:
                    msg = b""
                if not msg:  # the judge is gone
                    kill_run(cfg, procs.values())
                    reap_all(cfg, procs.values())
                    _exit(0)
                try:
                    kill = json.loads(msg).get("kill")
                except (ValueError, AttributeError):
                    kill = None
                if kill == hdr["run"] and killed is None:
                    killed = "output"
                    kill_run(cfg, procs.values())
                    deadline = min(deadline, time.monotonic() + 5.0)
            elif fd == su_r:
                chunk = os.read(su_r, 4096)
                if chunk:
                    setup_err += chunk[:2000 - len(setup_err)]
                else:
                    poller.unregister(su_r)
            elif fd in pidfds:
                role = pidfds.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, st, ru = os.wait4(procs[role], 0)
                ended(role, st, ru)
    for fd in pidfds:
        os.close(fd)
    for role, pid in procs.items():
        if role not in status:
            kill_run(cfg, procs.values())
            _, st, ru = os.wait4(pid, 0)
            status[role], usage[role] = st, ru
    if kept is not None and "t" not in status:
        kept.retire()
        tester_died()
    if t_end is None:
        t_end = time.monotonic()
    orphans = reap_all(cfg, procs.values())
    try:
        while len(setup_err) < 2000:
            chunk = os.read(su_r, 4096)  # every writer is gone: this ends
            if not chunk:
                break
            setup_err += chunk
    except OSError:
        pass
    os.close(su_r)
    if tmpdir is not None:
        import shutil

        shutil.rmtree(tmpdir, ignore_errors=True)
    for role in status:
        ru = usage[role]
        out[role] = {"status": status[role], "cpu": ru.ru_utime + ru.ru_stime
                     + (orphans if role == "p" else 0.0), "maxrss_kb": ru.ru_maxrss}
    out.update(wall=t_end - t0, killed=killed)
    if setup_err:
        out["je"] = setup_err[:2000].decode("utf-8", "replace")
    return out


def serve(cfg, sock):
    while True:
        try:
            msg, fds, flags, _ = socket.recv_fds(sock, 1 << 16, 16)
        except InterruptedError:
            continue
        except OSError:
            return
        if not msg and not fds:
            return  # EOF: the judge closed its end
        try:
            hdr = json.loads(msg)
            if not isinstance(hdr, dict) or "run" not in hdr:
                raise KeyError("run")  # a stale kill request, or nothing we know
        except (ValueError, KeyError):
            for fd in fds:
                os.close(fd)
            continue
        try:
            if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
                for fd in fds:
                    os.close(fd)
                raise ValueError("truncated request")
            reply = run_one(cfg, sock, hdr, fds)  # closes the fds, whatever happens
        except Exception as e:  # the judge's own failure, never the program's
            reply = {"run": hdr["run"], "je": f"zygote: {e!r}"}
        try:
            sock.send(json.dumps(reply).encode())
        except OSError:
            return


def main():
    # No PR_SET_PDEATHSIG here: it fires when the judge's *thread* that spawned us ends. The
    # zygote notices the judge's exit as EOF on fd 0 instead (also in the middle of a run).
    cfg = json.loads(sys.argv[1])
    os.environ.clear()
    os.environ.update(cfg["env"])
    sock = socket.socket(fileno=0)
    if cfg["isolation"] == "none":
        cfg["proc"] = False
        default_signals()
        sock.send(json.dumps({"ok": True, "mechanism": cfg["mechanism"],
                              "magic": _magic()}).encode())
        serve(cfg, sock)
        return
    if cfg.get("prepared"):  # bubblewrap made the namespaces and the read-only root
        if os.getpid() != 1:
            sock.send(json.dumps({"ok": False, "error": "not pid 1 of a pid namespace under "
                                                        "bwrap"}).encode())
            return
        cfg["proc"] = True
        _zygote_ready(cfg, sock)
        return
    # Opened before the fork: Z's pivot_root moves O's root too (same mount namespace).
    devnull = os.open("/dev/null", os.O_RDWR)
    try:
        setup_namespaces(cfg)
    except Exception as e:
        sock.send(json.dumps({"ok": False, "error": str(e)}).encode())
        return
    pid = os.fork()
    if pid:  # O: only waits; Z holds the judge's socket
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        _, st = os.waitpid(pid, 0)
        _exit(os.waitstatus_to_exitcode(st) & 0xFF)
    os.close(devnull)
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        cfg["proc"] = setup_root(cfg)
    except Exception as e:
        sock.send(json.dumps({"ok": False, "error": str(e)}).encode())
        _exit(1)
    _zygote_ready(cfg, sock)
    _exit(0)


def default_signals():
    """Every disposition to its default but SIGPIPE's (ignored, as CPython sets it up): what
    the runs inherit. As pid 1, Z then receives from inside its namespace only signals it has
    handlers for: none, so a program cannot signal it at all."""
    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_IGN if sig == signal.SIGPIPE else signal.SIG_DFL)
            except (OSError, ValueError):
                pass


def _zygote_ready(cfg, sock):
    """Z, isolated: warm up, report readiness, serve runs until the judge closes its socket."""
    default_signals()
    cap_last()
    prctl(PR_SET_DUMPABLE, 0)  # its /proc entries are closed to the programs
    # Only the standard library, and the packages the judge allows, can be imported.
    sys.path[:] = [p for p in sys.path if p and "-packages" not in p]
    if cfg.get("packages"):
        sys.path.append(cfg["packages_dir"])
    sys.path_importer_cache.clear()
    # Modules programs commonly import (and the allowed packages) are imported once here, so
    # each run finds them loaded.
    for name in PRELOAD + tuple(cfg.get("package_names", ())):
        try:
            __import__(name)
        except Exception:
            pass
    # The parser and compiler set up caches on first use; pay that once here, not in every run.
    for _ in range(2):
        compile("import sys\nx = [i * 2 for i in range(3)]\nprint(input(), x, f'{x!r}')\n"
                "def f(a, *b, **c):\n    return {k: v for k, v in c.items() if k} or b\n",
                "warm-up", "exec")
    import gc
    gc.collect()
    gc.freeze()  # forked children do not dirty the zygote's pages by collecting them
    cg = cfg.get("cgroup_fd")
    if cg is not None:
        # The runner's cgroup, from now on: every run's processes are born in it. Its heap so
        # far stays charged where it was; a run is charged for what it adds.
        try:
            _write("/proc/self/oom_score_adj", "-1000")  # (as root) never the OOM victim
        except OSError:
            pass
        try:
            os.write(cg, b"0")
        except OSError as e:
            sock.send(json.dumps({"ok": False, "error": f"joining the cgroup: {e}"}).encode())
            return
        os.close(cg)
    # A tester kept between runs needs what makes its runs' cleanup and its health check sound:
    # Z as pid 1 of the namespace, seccomp (a run cannot leave its process group), /proc and
    # pidfds; else every assert-style run forks its own tester.
    cfg["keep_tester"] = bool(
        cfg["isolation"] == "namespaces" and os.getpid() == 1 and cfg.get("proc")
        and cfg["seccomp"] and _SECCOMP[False] is not None and hasattr(os, "pidfd_open")
        and cfg.get("tester_runs", 1) > 1)
    sock.send(json.dumps({"ok": True, "mechanism": cfg["mechanism"], "proc": cfg["proc"],
                          "keep_tester": cfg["keep_tester"], "magic": _magic(),
                          "seccomp": cfg["seccomp"] and _SECCOMP[False] is not None}).encode())
    serve(cfg, sock)


def _magic():
    """This interpreter's bytecode magic: the judge sends the tests compiled when its own is the
    same."""
    import importlib.util

    return importlib.util.MAGIC_NUMBER.hex()


if __name__ == "__main__":
    main()
