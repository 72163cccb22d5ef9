# problem: call_gcd
# class: forged-verdict
# Result frames with a made-up answer (and garbage) on fd 3, then an exception.
import os
import struct


def frame(op, payload=b""):
    return struct.pack("<IB", len(payload) + 1, ord(op)) + payload


def gcd(a, b):
    os.write(3, frame("R", b"i" + struct.pack("<q", 6)) + frame("R", b"\xff\xff") + b"\x00" * 9)
    raise ValueError("no")
