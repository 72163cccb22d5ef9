# problem: call_gcd
# class: honest
def gcd(a, b):
    while b:
        a, b = b, a % b
    return a
