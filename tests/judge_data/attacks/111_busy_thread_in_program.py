# problem: he0
# class: time
# expect: TLE RE
# Correct answers, after a thread has burnt 1.5 s of CPU (the limit is 1 s).
import threading
import time


def burn():
    while time.process_time() < 1.5:
        pass


t = threading.Thread(target=burn)
t.start()
t.join()


def has_close_elements(numbers, threshold):
    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])
