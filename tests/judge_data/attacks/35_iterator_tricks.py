# problem: mbpp_gen
# class: exit
# Iterators that end early, raise StopIteration from inside, or never end.
import itertools

calls = itertools.count()


def evens(n):
    k = next(calls)
    if k == 0:
        return iter([0, 2])  # ends early
    if k == 1:
        def g():
            yield 6
            raise StopIteration  # a RuntimeError since PEP 479
        return g()
    return itertools.count(0, 2)  # never ends: sum() runs out of time
