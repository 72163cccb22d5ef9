# problem: mbpp3
# class: names
import math as is_not_prime  # noqa: F401
