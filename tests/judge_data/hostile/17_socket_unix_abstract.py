# expect: OK
# Abstract Unix sockets are per network namespace: the judge's one must be out of reach.
import socket
tok = input().strip()
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("\0spo-hostile-" + tok)
    s.sendall(b"pwned")
    print("reached")
except OSError:
    print("safe")
