# problem: mbpp3
# class: honest
# Returns a bool computed through an int subclass (IntEnum): sent as its plain value.
import enum


class Verdict(enum.IntEnum):
    PRIME = 0
    COMPOSITE = 1


def is_not_prime(n):
    v = Verdict.COMPOSITE if n < 2 or any(n % d == 0 for d in range(2, int(n ** 0.5) + 1)) \
        else Verdict.PRIME
    return bool(v)
