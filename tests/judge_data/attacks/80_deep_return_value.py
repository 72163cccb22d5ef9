# problem: call_gcd
# class: output
def gcd(a, b):
    x = []
    for _ in range(200000):
        x = [x]
    return x
