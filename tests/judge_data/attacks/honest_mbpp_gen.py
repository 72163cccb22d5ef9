# problem: mbpp_gen
# class: honest
def evens(n):
    return (i for i in range(n) if i % 2 == 0)
