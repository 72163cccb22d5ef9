# expect: MLE
a = []
while True:
    a.append(" " * 10**7)
