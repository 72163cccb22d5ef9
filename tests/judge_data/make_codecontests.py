"""Writes codecontests.jsonl: small problems of our own in the HF deepmind/code_contests layout.

Each has public, private and generated tests, correct and incorrect solutions (Python 3 =
language 3; a Python 2 and a C++ entry show that only Python 3 is taken), a time limit
{seconds, nanos} and memory_limit_bytes. Expected verdicts of the incorrect Python 3 solutions
are kept in `EXPECTED` (tests/test_judge.py reads this module), not in the data.

Run `python tests/judge_data/make_codecontests.py` to regenerate (deterministic).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY2, CPP, PY3 = 1, 2, 3


def tests(pairs):
    return {"input": [i for i, _ in pairs], "output": [o for _, o in pairs]}


def problem(name, description, public, private, generated, solutions, incorrect, seconds=2,
            nanos=0, memory=256 << 20, **extra):
    return {
        "name": name,
        "description": description,
        "public_tests": tests(public),
        "private_tests": tests(private),
        "generated_tests": tests(generated),
        "source": 2,
        "difficulty": 7,
        "solutions": {"language": [lang for lang, _ in solutions],
                      "solution": [code for _, code in solutions]},
        "incorrect_solutions": {"language": [lang for lang, _ in incorrect],
                                "solution": [code for _, code in incorrect]},
        "cf_contest_id": 1000,
        "cf_index": name.split("_")[1][0],
        "cf_points": 500.0,
        "cf_rating": 800,
        "cf_tags": ["implementation"],
        "is_description_translated": False,
        "untranslated_description": "",
        "time_limit": {"seconds": seconds, "nanos": nanos},
        "memory_limit_bytes": memory,
        "input_file": "",
        "output_file": "",
        **extra,
    }


def sum_of_two(rng):
    def case(a, b):
        return f"{a} {b}\n", f"{a + b}\n"
    gen = [case(rng.randint(-10**18, 10**18), rng.randint(-10**18, 10**18)) for _ in range(5)]
    return problem(
        "1000_A. Sum of Two",
        "Given two integers a and b (|a|, |b| <= 10^18), print a + b.",
        [case(1, 2), case(-5, 5)], [case(10**18, 10**18), case(0, 0), case(-7, -8)], gen,
        [(PY3, "print(sum(map(int, input().split())))\n"),
         (PY3, "import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n"),
         (PY2, "print sum(map(int, raw_input().split()))\n"),
         (CPP, "#include <cstdio>\nint main(){long long a,b;scanf(\"%lld%lld\",&a,&b);printf(\"%lld\\n\",a+b);}\n")],
        [(PY3, "a, b = map(int, input().split())\nprint(a - b)\n"),
         (PY3, "a, b = map(int, input().split())\nprint((a + b) % 2**31)\n")],
    )


def max_subarray(rng):
    def best(xs):
        cur, top = 0, -10**18
        for x in xs:
            cur = max(x, cur + x)
            top = max(top, cur)
        return top

    def case(xs):
        return f"{len(xs)}\n{' '.join(map(str, xs))}\n", f"{best(xs)}\n"
    gen = [case([rng.randint(-100, 100) for _ in range(rng.randint(1, 50))]) for _ in range(4)]
    gen.append(case([rng.randint(-10**4, 10**4) for _ in range(3000)]))
    return problem(
        "1000_B. Maximum Subarray",
        "Given n (1 <= n <= 3000) integers, print the largest sum of a non-empty contiguous "
        "subarray.",
        [case([1, -2, 3, 4, -1]), case([-3, -1, -2])], [case([5]), case([2, -1, 2, -1, 2])], gen,
        [(PY3, "n = int(input())\nxs = list(map(int, input().split()))\ncur, top = 0, -10**18\n"
               "for x in xs:\n    cur = max(x, cur + x)\n    top = max(top, cur)\nprint(top)\n")],
        [(PY3, "n = int(input())\nxs = list(map(int, input().split()))\nbest = xs[0]\n"
               "for i in range(n):\n    for j in range(i, n):\n        s = 0\n"
               "        for k in range(i, j + 1):\n            s += xs[k]\n"
               "        best = max(best, s)\nprint(best)\n"),
         (PY3, "n = int(input())\nxs = list(map(int, input().split()))\ncur = top = 0\n"
               "for x in xs:\n    cur = max(0, cur + x)\n    top = max(top, cur)\nprint(top)\n")],
        seconds=1,
    )


def average(rng):
    def case(xs):
        return f"{len(xs)}\n{' '.join(map(str, xs))}\n", f"{sum(xs) / len(xs):.6f}\n"
    gen = [case([rng.randint(1, 1000) for _ in range(rng.randint(1, 20))]) for _ in range(5)]
    return problem(
        "1000_C. Average",
        "Print the average of n integers. Answers within 1e-5 of the exact value are accepted.",
        [case([1, 2]), case([1, 1, 2])], [case([7]), case([1, 2, 2])], gen,
        [(PY3, "n = int(input())\nxs = list(map(int, input().split()))\nprint(f'{sum(xs) / n:.10f}')\n"),
         (PY3, "n = int(input())\nxs = list(map(int, input().split()))\nprint(sum(xs) / n)\n")],
        [(PY3, "n = int(input())\nxs = list(map(int, input().split()))\nprint(f'{sum(xs) / n:.2f}')\n"),
         (PY3, "n = int(input())\nxs = list(map(int, input().split()))\nprint(sum(xs) // n)\n")],
    )


def is_prime(rng):
    def prime(k):
        return k > 1 and all(k % d for d in range(2, int(k**0.5) + 1))

    def case(qs):
        return (f"{len(qs)}\n" + "".join(f"{q}\n" for q in qs),
                "".join("YES\n" if prime(q) else "NO\n" for q in qs))
    gen = [case([rng.randint(1, 10**6) for _ in range(30)]) for _ in range(3)]
    return problem(
        "1000_D. Is It Prime",
        "For each of t numbers (1 <= x <= 10^6) print YES if it is prime, else NO (any case).",
        [case([2, 4, 7]), case([1])], [case([97, 100, 1, 2, 3])], gen,
        [(PY3, "t = int(input())\nfor _ in range(t):\n    x = int(input())\n"
               "    ok = x > 1 and all(x % d for d in range(2, int(x ** 0.5) + 1))\n"
               "    print('Yes' if ok else 'No')\n")],
        [(PY3, "t = int(input())\nfor _ in range(t):\n    x = int(input())\n"
               "    ok = all(x % d for d in range(2, int(x ** 0.5) + 1))\n"
               "    print('YES' if ok else 'NO')\n"),
         (PY3, "t = int(input())\nfor _ in range(t):\n    x = int(input())\n    print(answer(x))\n")],
    )


def count_distinct(rng):
    def case(xs):
        return f"{len(xs)}\n{' '.join(map(str, xs))}\n", f"{len(set(xs))}\n"
    gen = [case([rng.randint(1, 10**9) for _ in range(rng.randint(1, 200))]) for _ in range(4)]
    return problem(
        "1000_E. Count Distinct",
        "Print how many distinct values there are among n integers (1 <= a_i <= 10^9).",
        [case([1, 2, 2]), case([5, 5, 5])], [case([10**9, 1])], gen,
        [(PY3, "input()\nprint(len(set(input().split())))\n")],
        [(PY3, "input()\nxs = list(map(int, input().split()))\nseen = [False] * (10**9 + 1)\n"
               "for x in xs:\n    seen[x] = True\nprint(sum(seen))\n")],
        memory=64 << 20,
    )


def reverse_lines(rng):
    words = ["alpha", "beta", "gamma", "delta", "eps"]

    def case(lines):
        return (f"{len(lines)}\n" + "".join(ln + "\n" for ln in lines),
                "".join(ln + "\n" for ln in reversed(lines)))
    gen = [case([" ".join(rng.choice(words) for _ in range(3)) for _ in range(5)])
           for _ in range(3)]
    return problem(
        "1000_F. Reverse Lines",
        "Given n lines of words, print them in reverse order.",
        [case(["a b", "c"]), case(["x"])], [case(["one two", "three", "four five six"])], gen,
        [(PY3, "n = int(input())\nls = [input() for _ in range(n)]\nprint('\\n'.join(reversed(ls)))\n")],
        [(PY3, "n = int(input())\nls = [input() for _ in range(n)]\nprint('Answer:', *reversed(ls))\n"),
         (PY3, "n = int(input())\nls = [raw_input() for _ in range(n)]\nprint '\\n'.join(ls[::-1])\n")],
    )


MAKERS = [sum_of_two, max_subarray, average, is_prime, count_distinct, reverse_lines]

# Verdicts of the incorrect Python 3 solutions, in order, by problem name.
EXPECTED = {
    "1000_A. Sum of Two": ["WA", "WA"],
    "1000_B. Maximum Subarray": ["TLE", "WA"],
    "1000_C. Average": ["WA", "WA"],
    "1000_D. Is It Prime": ["WA", "RE"],
    "1000_E. Count Distinct": ["MLE"],
    "1000_F. Reverse Lines": ["WA", "CE"],
}


def main() -> None:
    rng = random.Random(1000)
    with open(HERE / "codecontests.jsonl", "w") as f:
        for make in MAKERS:
            f.write(json.dumps(make(rng)) + "\n")


if __name__ == "__main__":
    main()
