# expect: OK
# Signal the parent and pid 1 of the namespace with everything. They must survive (else the
# run ends without "safe"): as root the program has another uid; in a user namespace the kernel
# drops signals to a pid 1 that keeps default handlers.
import os
import signal
import time
for pid in {os.getppid(), 1}:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGQUIT,
                signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except OSError:
            pass
time.sleep(0.2)
print("safe")
