# problem: stdio_prime
# class: honest
import sys
import threading

sys.setrecursionlimit(10000)
threading.stack_size(32 << 20)


def main():
    n = int(sys.stdin.readline())

    def prime(k, d=2):
        if k < 2:
            return False
        if d * d > k:
            return True
        return k % d != 0 and prime(k, d + 1)

    print("YES" if prime(n) else "NO")


t = threading.Thread(target=main)
t.start()
t.join()
