# problem: mbpp_gen
# class: honest
# A generator function, and a filter object: both iterated by the tests.
def _all(n):
    yield from range(n)


def evens(n):
    return filter(lambda i: i % 2 == 0, _all(n))
