# problem: call_gcd
# class: honest
class Solution:
    def gcd(self, a, b):
        import math
        return math.gcd(a, b)
