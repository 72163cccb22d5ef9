# problem: stdio_prime
# class: output
import sys

input()
sys.stdout.write("9" * (20 << 20) + "x\n")
