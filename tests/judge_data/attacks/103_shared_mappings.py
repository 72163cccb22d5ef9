# problem: mbpp3
# class: memory
# expect: MLE RE
# Anonymous shared mappings, touched, in the program's process and a child's: each process
# stays under the per-process address-space limit, the run does not stay under 256 MiB.
import mmap
import os
import time


def touched(mib):
    m = mmap.mmap(-1, mib << 20, flags=mmap.MAP_SHARED)
    for i in range(0, len(m), 4096):
        m[i] = 1
    return m


maps = [touched(90), touched(90)]
if os.fork() == 0:
    maps.append(touched(60))
    time.sleep(5)
    os._exit(0)
maps.append(touched(60))
time.sleep(0.5)


def is_not_prime(n):
    return n < 2 or any(n % d == 0 for d in range(2, int(n ** 0.5) + 1))
