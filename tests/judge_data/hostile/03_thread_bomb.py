# expect: RE MLE
import threading
import time


def hold():
    time.sleep(10**6)


while True:
    threading.Thread(target=hold, daemon=True).start()
