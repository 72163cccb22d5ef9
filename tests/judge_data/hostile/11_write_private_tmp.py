# expect: OK
# Writing to /tmp and /dev/shm works, but they are the run's own tmpfs, gone afterwards.
import os
tok = input().strip()
for d in ("/tmp", "/dev/shm", os.getcwd()):
    with open(os.path.join(d, tok), "w") as f:
        f.write("x" * 1000)
print("safe")
