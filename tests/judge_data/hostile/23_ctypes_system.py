# expect: OK
# libc system(): a shell that deletes system files and drops new ones. Read-only root.
# (Not "rm -rf /": walking all of /usr takes longer than the time limit.)
import ctypes
import os
tok = input().strip()
libc = ctypes.CDLL(None)
libc.system(f"rm -rf /etc /usr/bin/env /work /root /tmp/* 2>/dev/null; "
            f"touch /work/main/{tok} /etc/{tok} /{tok} 2>/dev/null".encode())
survived = os.path.exists("/usr/bin/env")
print("safe" if survived else "wiped")
