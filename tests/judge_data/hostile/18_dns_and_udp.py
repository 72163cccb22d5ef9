# expect: OK
import socket
ok = True
try:
    socket.getaddrinfo("example.com", 80)
    ok = False
except OSError:
    pass
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"x", ("8.8.8.8", 53))
    ok = False
except OSError:
    pass
print("safe" if ok else "network")
