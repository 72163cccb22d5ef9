# problem: he0
# class: time
# expect: TLE
import os
import signal


def has_close_elements(numbers, threshold):
    os.kill(os.getpid(), signal.SIGSTOP)
    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])
