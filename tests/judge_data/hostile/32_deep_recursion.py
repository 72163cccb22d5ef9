# expect: RE MLE TLE
# Deep pure-Python recursion: frames fill the address space (MemoryError or a crash), slowly.
import sys
sys.setrecursionlimit(10**8)


def f(n):
    return f(n + 1) + 1


f(0)
