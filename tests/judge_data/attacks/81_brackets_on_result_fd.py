# problem: call_gcd
# class: output
import os


def gcd(a, b):
    os.write(3, b"[" * 100000 + b"\n")
    os.write(3, b'{"ev": "result", "value": "' + b"[" * 100000 + b'"}\n')
    return -1
