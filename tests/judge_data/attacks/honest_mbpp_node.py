# problem: mbpp_node
# class: honest
def max_height(node):
    if node is None:
        return 0
    return 1 + max(max_height(node.left), max_height(node.right))
