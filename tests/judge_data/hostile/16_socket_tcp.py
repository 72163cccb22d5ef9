# expect: OK
# The judge's test listens on 127.0.0.1:<port>; no network namespace path may reach it.
import socket
tok = input().strip()
port = int(input())
reached = []
for host, p in (("127.0.0.1", port), ("8.8.8.8", 53), ("1.1.1.1", 443)):
    try:
        s = socket.create_connection((host, p), timeout=0.5)
        s.sendall(tok.encode())
        reached.append(host)
    except OSError:
        pass
print("safe" if not reached else "reached " + " ".join(reached))
