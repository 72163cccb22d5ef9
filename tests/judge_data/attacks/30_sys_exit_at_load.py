# problem: mbpp3
# class: exit
import sys
sys.exit(0)
