# expect: OK
# Look for the judge's environment anywhere: our own, every visible process's, /proc/1.
import os
found = [k for k in os.environ if "SECRET" in k or "TOKEN" in k or "SPO" in k]
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if b"SPO_HOSTILE_SECRET" in f.read():
                    found.append(pid)
        except OSError:
            pass
print("safe" if not found else "leaked " + " ".join(found))
