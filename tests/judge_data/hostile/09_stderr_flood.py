# expect: WA
import os
chunk = b"e" * 65536
while True:
    os.write(2, chunk)
