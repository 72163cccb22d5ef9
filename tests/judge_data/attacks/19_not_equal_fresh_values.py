# problem: he0
# class: equality
# Objects that are never equal to anything (an opaque object of the program's).
class Opaque:
    __eq__ = lambda self, other: NotImplemented


def has_close_elements(numbers, threshold):
    return Opaque()
