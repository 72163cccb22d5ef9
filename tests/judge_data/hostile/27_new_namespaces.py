# expect: OK
# unshare(CLONE_NEWUSER) would give a capability set in a new user namespace; mount() would remount.
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r1 = libc.unshare(0x10000000)  # CLONE_NEWUSER
r2 = libc.unshare(0x00020000)  # CLONE_NEWNS
r3 = libc.mount(b"none", b"/", None, 32 | 4096, None)  # MS_REMOUNT | MS_BIND (make it writable)
print("safe" if (r1, r2, r3) == (-1, -1, -1) else f"got {r1} {r2} {r3}")
