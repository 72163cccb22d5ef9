# expect: OK
# Look for anything an earlier run left: processes, files, sockets, SysV IPC objects.
import os
import socket
found = []
me = os.getpid()
for p in os.listdir("/proc"):
    if p.isdigit() and int(p) not in (1, me):
        found.append("pid " + p)
for d in ("/tmp", "/dev/shm"):
    found += [os.path.join(d, f) for f in os.listdir(d)]
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\0spo-trace")
    found.append("socket")
except OSError:
    pass
for kind in ("shm", "sem", "msg"):
    try:
        with open(f"/proc/sysvipc/{kind}") as f:
            if len(f.read().splitlines()) > 1:
                found.append("sysv " + kind)
    except OSError:
        pass
print("safe" if not found else "found " + " ".join(found))
