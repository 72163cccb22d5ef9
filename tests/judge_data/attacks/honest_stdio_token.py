# problem: stdio_token
# class: honest
k = int(input())
print(f'ANSWER-{k * k + 7}')
