# expect: OK
# expect-one-process: RE (no process but the program's own may start: memory.py)
# A classic daemon (fork, setsid, fork, close fds) that tries to outlive the run.
import os
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for fd in range(0, 4):
            try:
                os.close(fd)
            except OSError:
                pass
        time.sleep(10**6)
    os._exit(0)
print("safe")
