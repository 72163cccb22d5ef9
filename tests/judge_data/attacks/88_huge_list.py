# problem: he0
# class: output
def has_close_elements(numbers, threshold):
    return list(range(10 ** 7))
