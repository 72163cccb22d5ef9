# problem: stdio_prime
# class: output
import os

input()
chunk = b"YES\n" * 16384
while True:
    os.write(1, chunk)
