# problem: mbpp_map
# class: equality
# all(map(f, xs)) is True and any(map(f, xs)) is False when f raises StopIteration.
def is_even(n):
    raise StopIteration
