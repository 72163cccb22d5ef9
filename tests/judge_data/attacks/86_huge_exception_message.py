# problem: call_gcd
# class: output
def gcd(a, b):
    raise ValueError("\udcff" * (4 << 20))
