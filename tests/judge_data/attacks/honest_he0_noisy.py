# problem: he0
# class: honest
# An honest program that prints, logs, recurses, caches, uses a thread and a class.
import functools
import sys
import threading

print("debug output is allowed")
sys.stderr.write("so is stderr\n")


class Finder:
    def __init__(self, threshold):
        self.threshold = threshold

    def close(self, xs):
        return any(abs(a - b) < self.threshold for i, a in enumerate(xs) for b in xs[i + 1:])


@functools.lru_cache(maxsize=None)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def has_close_elements(numbers, threshold):
    out = []
    t = threading.Thread(target=lambda: out.append(Finder(threshold).close(list(numbers))))
    t.start()
    t.join()
    assert fib(30) == 832040
    return out[0]
