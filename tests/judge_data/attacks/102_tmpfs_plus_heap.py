# problem: stdio_prime
# class: memory
# expect: MLE RE
# Fill /dev/shm and /tmp, then take almost the whole limit on the heap too.
n = int(input())
block = b"x" * (1 << 20)
for path in ("/dev/shm/a", "/dev/shm/b", "/tmp/c", "/tmp/d"):
    try:
        with open(path, "wb") as f:
            for _ in range(15):
                f.write(block)
    except OSError:
        pass  # the tmpfs is full: what is there still counts
heap = bytearray(230 << 20)
for i in range(0, len(heap), 4096):
    heap[i] = 1
print("YES" if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)) else "NO")
