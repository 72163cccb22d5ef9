# expect: OK
# expect-one-process: RE (no process but the program's own may start: memory.py)
# Leave things behind for a later run: a daemon, files in /tmp and /dev/shm, a bound abstract
# socket, SysV shared memory. 39_find_traces.py looks for them (tests/test_judge_hostile.py runs
# the two one after the other in the same runner).
import ctypes
import os
import socket
import time
for d in ("/tmp", "/dev/shm"):
    with open(os.path.join(d, "spo-trace"), "w") as f:
        f.write("left behind")
libc = ctypes.CDLL(None, use_errno=True)
shm = libc.shmget(0x5b0, 1 << 20, 0o1666)  # IPC_CREAT | 0666
if os.fork() == 0:
    os.setsid()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind("\0spo-trace")
    s.listen(1)
    time.sleep(10**6)
    os._exit(0)
time.sleep(0.1)
print("safe" if shm == -1 else f"shm {shm}")
