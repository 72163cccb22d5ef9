# expect: OK
# The input is a sealed in-memory file: writing to it must fail.
import os
try:
    os.write(0, b"pwned")
    print("wrote")
except OSError:
    print("safe")
