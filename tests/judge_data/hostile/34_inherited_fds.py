# expect: OK
# Nothing of the judge's may be open in the program: only stdin, stdout, stderr, fd 3.
import os
fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
extra = [fd for fd in fds if fd > 3]
# listdir itself holds one fd open while it reads the directory
print("safe" if len(extra) <= 1 else f"fds {fds}")
