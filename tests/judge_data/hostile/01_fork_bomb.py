# expect: TLE
# A fork bomb that ignores failures: bounded by RLIMIT_NPROC, killed with its pid namespace.
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
