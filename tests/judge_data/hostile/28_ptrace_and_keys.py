# expect: OK
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r = [libc.ptrace(16, 1, None, None),            # PTRACE_ATTACH to pid 1
     libc.syscall(250, 0, 0, 0, 0, 0),           # keyctl
     libc.syscall(321, 0, 0, 0),                 # bpf
     libc.syscall(298, 0, 0, 0, 0, 0)]           # perf_event_open
print("safe" if all(x == -1 for x in r) else f"got {r}")
