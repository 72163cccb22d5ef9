# expect: OK
import os
seen = []
for p in ("/proc/1/root/etc/hostname", "/proc/1/cwd", "/proc/self/root/../../work/main/pyproject.toml"):
    try:
        if os.path.isdir(p):
            os.listdir(p)
        else:
            open(p).read()
        if p.startswith("/proc/1/"):
            seen.append(p)
        elif os.path.exists(p):
            seen.append(p)
    except OSError:
        pass
print("safe" if not seen else "reached " + " ".join(seen))
