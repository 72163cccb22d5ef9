# expect: OK
# expect-one-process: RE (no process but the program's own may start: memory.py)
# Leave a child process sleeping and exit at once: it dies with the run's pid namespace.
import subprocess
subprocess.Popen(["sleep", "1000000"])
print("safe")
