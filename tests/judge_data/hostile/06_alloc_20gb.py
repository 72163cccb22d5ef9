# expect: MLE
x = bytearray(20 * 1024**3)
print("safe")
