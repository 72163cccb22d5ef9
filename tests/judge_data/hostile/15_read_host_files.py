# expect: OK
# Files of the judge's machine that are not part of the read-only runtime must be invisible.
import os
tok = input().strip()
seen = []
for p in ["/work/main/pyproject.toml", "/root/.bashrc", "/etc/shadow", "/proc/1/root/work",
          "/proc/1/environ", "/tmp/" + tok + ".host", "/home"]:
    try:
        if os.path.isdir(p):
            if os.listdir(p):
                seen.append(p)
        else:
            with open(p, "rb") as f:
                f.read(1)
            seen.append(p)
    except OSError:
        pass
print("safe" if not seen else "read " + " ".join(seen))
