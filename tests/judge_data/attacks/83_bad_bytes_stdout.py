# problem: stdio_prime
# class: output
import sys

input()
sys.stdout.buffer.write(b"YES\xff\xfe\x00\xed\xa0\x80 NO\n")
sys.stdout.write("\udcff\ud800\n")
