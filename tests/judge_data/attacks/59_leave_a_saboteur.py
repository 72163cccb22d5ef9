# problem: stdio_token
# class: tester
# Leave a process behind, out of the run's session and process group, that keeps stopping every
# other process for seconds: it would stop the tester during the next trajectory's run.
import os
import signal
import time

if os.fork() == 0:
    for escape in (os.setsid, lambda: os.setpgid(0, 0)):
        try:
            escape()
        except OSError:
            pass
    if os.fork() == 0:
        end = time.monotonic() + 6
        while time.monotonic() < end:
            for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
                if pid not in (1, os.getpid()):
                    try:
                        os.kill(pid, signal.SIGSTOP)
                    except OSError:
                        pass
            time.sleep(0.005)
    os._exit(0)
print("ANSWER-0")
