# problem: stdio_prime
# class: forged-verdict
# Judge-error, compile-error, test and done claims on the result channel; a wrong answer.
import os
import struct


def frame(op, payload=b""):
    return struct.pack("<IB", len(payload) + 1, ord(op)) + payload


for fd in (3, 4, 5):
    for blob in (b'{"ev": "je", "msg": "x"}\n', frame("J", b"l\x01\x00\x00\x00s\x01\x00\x00\x00x"),
                 frame("D"), frame("T", b"x")):
        try:
            os.write(fd, blob)
        except OSError:
            pass
print("YES")
