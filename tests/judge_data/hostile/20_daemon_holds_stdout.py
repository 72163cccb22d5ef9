# expect: OK
# expect-one-process: RE (no process but the program's own may start: memory.py)
# A background child keeps stdout open and sleeps: the run must still end when main exits.
import os
import time
if os.fork() == 0:
    os.setsid()
    time.sleep(10**6)
    os._exit(0)
print("safe")
