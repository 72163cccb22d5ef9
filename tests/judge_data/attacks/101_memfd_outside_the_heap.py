# problem: stdio_prime
# class: memory
# expect: MLE RE
import os

n = int(input())
block = b"x" * (1 << 20)
fds = []
for _ in range(20):  # 20 memfds of 15 MiB (one file may not pass the 16 MiB file-size limit)
    fd = os.memfd_create("stash")
    for _ in range(15):
        os.write(fd, block)
    fds.append(fd)
print("YES" if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)) else "NO")
