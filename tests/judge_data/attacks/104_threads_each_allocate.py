# problem: stdio_prime
# class: memory
# expect: MLE RE
import threading
import time

n = int(input())
hold = []


def grab():
    x = bytearray(30 << 20)
    for i in range(0, len(x), 4096):
        x[i] = 1
    hold.append(x)


ts = [threading.Thread(target=grab) for _ in range(10)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if len(hold) < 10:
    raise MemoryError("not all threads got their memory")
print("YES" if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)) else "NO")
