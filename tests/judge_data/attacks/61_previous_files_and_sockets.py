# problem: stdio_token
# class: previous-run
# Whatever an earlier run left: files in /tmp and /dev/shm, abstract sockets, SysV IPC.
import os
import socket

k = int(input())
answer = None
for d in ("/tmp", "/dev/shm", "/var/tmp", "/run"):
    try:
        for name in os.listdir(d):
            with open(os.path.join(d, name)) as f:
                text = f.read()
                if "ANSWER-" in text:
                    answer = text.strip()
    except OSError:
        pass
try:
    s = socket.socket(socket.AF_UNIX)
    s.connect("\0spo-answers")
    answer = s.recv(100).decode()
except OSError:
    pass
try:
    with open("/tmp/answers-for-later", "w") as f:
        f.write(f"ANSWER-{k}")
except OSError:
    pass
print(answer or f"ANSWER-{k}")
