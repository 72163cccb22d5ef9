# expect: WA
# Gigabytes of output: stopped at the output limit.
import sys
chunk = "x" * 65536
while True:
    sys.stdout.write(chunk)
