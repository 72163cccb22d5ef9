# problem: he0
# class: names
# Names the test code itself defines or uses: the program's versions must not be used.
METADATA = {"author": "program"}


def check(candidate):
    return None


def candidate(*a):
    return True


def has_close_elements(numbers, threshold):
    return None
