# expect: RE
# kill(-1): every process this uid may signal. Only the run itself dies.
import os
import signal
os.kill(-1, signal.SIGKILL)
print("safe")
