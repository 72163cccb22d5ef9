# problem: stdio_prime
# class: time
# expect: TLE
# Slow but correct; set the clocks back and ignore SIGXCPU on the way.
import ctypes
import signal
import time

signal.signal(signal.SIGXCPU, signal.SIG_IGN)
libc = ctypes.CDLL(None, use_errno=True)


class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]


for clock in (0, 1, 2, 3):
    libc.clock_settime(clock, ctypes.byref(TS(0, 0)))
time.time = lambda: 0.0
time.process_time = lambda: 0.0
n = int(input())
x = 0
import os
while os.times().user < 1.5:  # 1.5 s of CPU: over the 1 s limit, whatever the clocks say
    x += 1
print("YES" if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)) else "NO")
