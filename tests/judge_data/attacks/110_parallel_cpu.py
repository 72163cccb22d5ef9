# problem: stdio_prime
# class: time
# expect: TLE RE
# Correct, but 4 processes each burn 0.8 s of CPU (the limit is 1 s per run).
import os
import time

n = int(input())
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        t = time.process_time()
        while time.process_time() - t < 0.8:
            pass
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("YES" if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)) else "NO")
