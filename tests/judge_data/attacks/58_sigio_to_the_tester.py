# problem: stdio_token
# class: tester
# Signals without kill(): make every other process the owner of a pipe in O_ASYNC mode, so the
# kernel sends it SIGIO (default action: terminate) when the pipe becomes readable.
import fcntl
import os

pipes = []
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid in (1, os.getpid()):
        continue
    try:
        r, w = os.pipe()
        fcntl.fcntl(r, fcntl.F_SETOWN, pid)
        fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
        os.write(w, b"x")
        pipes.append((r, w))
    except OSError:
        pass
print("ANSWER-0")
