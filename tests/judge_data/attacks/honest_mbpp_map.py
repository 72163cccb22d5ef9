# problem: mbpp_map
# class: honest
def is_even(n):
    return n % 2 == 0
