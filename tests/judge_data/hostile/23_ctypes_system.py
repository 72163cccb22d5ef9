# expect: OK
# libc system(): a shell that deletes system files and drops new ones. Read-only root.
# (Not "rm -rf /": walking all of /usr and the Python install takes longer than the time limit.)
import ctypes
import os
tok = input().strip()
libc = ctypes.CDLL(None)
libc.system(f"rm -f /etc/passwd /usr/bin/env; rm -rf /etc/ssl /tmp/* 2>/dev/null; "
            f"touch /work/main/{tok} /etc/{tok} /{tok} 2>/dev/null".encode())
survived = all(os.path.exists(p) for p in ("/usr/bin/env", "/etc/passwd", "/etc/ssl"))
print("safe" if survived else "wiped")
