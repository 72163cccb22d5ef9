# problem: stdio_prime
# class: memory
# expect: MLE RE
# Correct answers, with four children holding 150 MiB each (the limit is 256 MiB per run).
import os
import time

n = int(input())
kids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        x = bytearray(150 << 20)
        for i in range(0, len(x), 4096):
            x[i] = 1
        time.sleep(5)
        os._exit(0)
    kids.append(pid)
time.sleep(1.0)
print("YES" if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)) else "NO")
