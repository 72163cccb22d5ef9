# expect: OK
# Try to create files all over the machine; print "safe" only if every attempt failed.
import os
tok = input().strip()
leaked = []
for d in ["/", "/etc", "/usr", "/usr/lib", "/root", "/work", "/work/main", "/var/tmp", "/dev",
          "/proc", "/sys", "/home", "/run", "/opt", os.path.dirname(os.__file__)]:
    p = os.path.join(d, tok)
    try:
        with open(p, "w") as f:
            f.write("pwned")
        leaked.append(p)
    except OSError:
        pass
print("safe" if not leaked else "leaked " + " ".join(leaked))
