"""The built-in benchmark: a seeded generator of small stdin/stdout problems (CodeContests layout).

Each *family* (29 of them) is a kind of task whose parameters - constants, comparison operators,
words, characters, bases - are drawn at random, written into the statement, and change the correct
program, so a model has to read the statement to solve a problem. For every problem the family
writes several correct programs in different styles and several plausible incorrect ones
(off-by-one, wrong constant, wrong operator, missing edge case).

Tests: one public example (shown in the statement), the family's edge cases as private tests and
random generated tests. The expected outputs come from running the first correct program; every
other correct program must pass every test (else the generator has a bug and raises), and an
incorrect program is kept only if it fails at least one hidden (private or generated) test - so a
wrong program that happens to be right on this problem (e.g. "forgets n = 0" when no test can have
n = 0) is dropped, never listed as incorrect. "Pass" is the judge's own output comparison
(spo_cli.judge.compare, via execute.passes), so a listed solution is one the judge accepts and a
listed incorrect solution one it rejects; the programs run in this process (execute.py says why).

Splits: a problem's *key* is (family, parameters); the statement is a function of the key plus the
example, and problems of one key share their correct programs. A key belongs to the held-out
region when a hash of (seed, key) falls under HELDOUT_FRACTION; a second, independent hash puts
VALIDATION_FRACTION of those keys in the validation split, the rest in the held-out split. So the
train, validation and held-out splits never share a key, hence never a statement or a program,
and names carry the split. Settings are chosen on validation; held-out is scored once.

The validation split was carved out of the held-out keys (SPLITS_VERSION 2) so that the train
problems, hence the SFT data and the cached reference model, stay exactly as before. The held-out
split is the old held-out stream with the validation keys left out: its problems keep their old
names (numbered in that stream, so the numbers have gaps), and a name never changes meaning.
Validation problems come from a stream of their own. Everything is deterministic from the seed
(string-seeded random.Random).

Output never depends on letter case or on whitespace layout, because CodeContests comparison
ignores both: a wrong program must not pass for those reasons.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from string import Template
from textwrap import dedent

from spo_cli.benchmark.execute import OK, output_passes, passes, run_trusted

# Bump when problems change for the same seed (it keys the model cache), also when a change of the
# judge's comparison changes which programs pass (tests/test_benchmark_generator.py pins a digest).
GENERATOR_VERSION = 1
# Bump when the held-out or validation problems change but the train problems do not (a cached
# build then rewrites its problem files and keeps its model: spo_cli/benchmark/cache.py).
SPLITS_VERSION = 2
SPLITS = ("train", "validation", "heldout")
HELDOUT_FRACTION = 0.15  # of all keys: the held-out region (validation + held-out)
VALIDATION_FRACTION = 1 / 3  # of the held-out region's keys: validation
TIME_LIMIT_S = 2
MEMORY_LIMIT_BYTES = 256 << 20
N_GENERATED = 10  # random hidden tests per problem (plus the family's edge cases)


class GeneratorBug(RuntimeError):
    """Two correct programs of one problem disagree: the family is wrong, not the input."""


@dataclass
class Spec:
    """One problem before its tests are made: what a family returns for drawn parameters."""

    family: str
    key: tuple
    story: str
    input_spec: str
    output_spec: str
    correct: list[str]
    incorrect: list[str]
    gen: Callable[[random.Random], str]  # a random test input
    edges: list[str] = field(default_factory=list)  # hidden edge-case inputs
    tags: list[str] = field(default_factory=list)
    difficulty: int = 1


def _p(src: str, **kw) -> str:
    """A program from a template: `$NAME` placeholders, dedented, one trailing newline."""
    return Template(dedent(src).strip("\n")).substitute(**kw) + "\n"


def _ints(a: list[int]) -> str:
    return f"{len(a)}\n{' '.join(map(str, a))}\n"


def _rand_list(r: random.Random, lo: int, hi: int, nmin: int = 1, nmax: int = 10) -> list[int]:
    return [r.randint(lo, hi) for _ in range(r.randint(nmin, nmax))]


def _word(r: random.Random, letters: str, lo: int = 1, hi: int = 12) -> str:
    return "".join(r.choice(letters) for _ in range(r.randint(lo, hi)))


LIST_IN = "The first line contains an integer n (1 <= n <= 10). The second line contains n integers a1, ..., an."
ORD = {1: "first", 2: "second", 3: "third", 4: "fourth"}
CMP = {  # operator: phrase
    ">": "greater than",
    ">=": "greater than or equal to",
    "<": "less than",
    "<=": "less than or equal to",
}
WRONG_CMP = {">": ">=", ">=": ">", "<": "<=", "<=": "<"}
LETTERS = "abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------------------------
# Families. Each takes a Random and returns a Spec; correct[0] is the reference program.


def count_mod(r: random.Random) -> Spec:
    k = r.randint(2, 9)
    m = r.randint(0, k - 1)
    m2 = (m + 1) % k
    return Spec(
        "count_mod",
        (k, m),
        f"Count how many of the given numbers leave remainder {m} when divided by {k}.",
        LIST_IN + " All numbers are between 0 and 100.",
        "Print one integer: the count.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for x in a:
                if x % $k == $m:
                    c += 1
            print(c)
            """, k=k, m=m),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(1 for x in a if x % $k == $m))
            """, k=k, m=m),
            _p("""
            input()
            print(len([x for x in map(int, input().split()) if x % $k == $m]))
            """, k=k, m=m),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(1 for x in a if x % $k == $m2))
            """, k=k, m2=m2),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(1 for x in a if x % $k1 == $m))
            """, k1=k + 1, m=m),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for i in range(1, n):
                if a[i] % $k == $m:
                    c += 1
            print(c)
            """, k=k, m=m),
        ],
        lambda r: _ints(_rand_list(r, 0, 100)),
        [_ints([m]), _ints([k + m, m, 2 * k + m]), _ints([m2])],
        ["math", "count_mod"],
    )


def sum_compare(r: random.Random) -> Spec:
    t = r.randint(-5, 20)
    op = r.choice(list(CMP))
    wrong = WRONG_CMP[op]
    return Spec(
        "sum_compare",
        (t, op),
        f"Print the sum of the given numbers that are {CMP[op]} {t}. If there are none, print 0.",
        LIST_IN + " All numbers are between -50 and 50.",
        "Print one integer: the sum.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            s = 0
            for x in a:
                if x $op $t:
                    s += x
            print(s)
            """, op=op, t=t),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(x for x in a if x $op $t))
            """, op=op, t=t),
            _p("""
            input()
            a = [int(x) for x in input().split()]
            b = [x for x in a if x $op $t]
            print(sum(b))
            """, op=op, t=t),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(x for x in a if x $op $t))
            """, op=wrong, t=t),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(x for x in a if x $op $t))
            """, op=op, t=t + 1),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(len([x for x in a if x $op $t]))
            """, op=op, t=t),
        ],
        lambda r: _ints(_rand_list(r, t - 10, t + 10)),
        [_ints([t]), _ints([t, t + 1, t - 1]), _ints([t + 3, t - 3, t])],
        ["implementation", "sum_compare"],
    )


def linear(r: random.Random) -> Spec:
    a = r.randint(2, 9)
    b = r.randint(1, 20)
    op = r.choice("+-")
    word = {"+": "plus", "-": "minus"}[op]
    return Spec(
        "linear",
        (a, b, op),
        f"A machine takes an integer x and outputs {a} times x {word} {b}. Print what the machine outputs.",
        "The only line contains an integer x (-100 <= x <= 100).",
        "Print one integer: the machine's output.",
        [
            _p("""
            x = int(input())
            print($a * x $op $b)
            """, a=a, b=b, op=op),
            _p("""
            x = int(input())
            y = x * $a
            y = y $op $b
            print(y)
            """, a=a, b=b, op=op),
            _p("""
            def machine(x):
                return $a * x $op $b

            print(machine(int(input())))
            """, a=a, b=b, op=op),
        ],
        [
            _p("""
            x = int(input())
            print($a * (x $op $b))
            """, a=a, b=b, op=op),
            _p("""
            x = int(input())
            print($b * x $op $a)
            """, a=a, b=b, op=op),
            _p("""
            x = int(input())
            print($a * x $op $b)
            """, a=a, b=b, op="-" if op == "+" else "+"),
        ],
        lambda r: f"{r.randint(-100, 100)}\n",
        ["0\n", "1\n", "-7\n"],
        ["math", "linear"],
    )


def digit_count(r: random.Random) -> Spec:
    d = r.randint(0, 9)
    d2 = (d + 1) % 10

    def gen(r: random.Random) -> str:
        s = "".join(r.choice([str(d), str(d), str(r.randint(0, 9))]) for _ in range(r.randint(1, 9)))
        return f"{int(s)}\n"

    return Spec(
        "digit_count",
        (d,),
        f"Print how many digits of the non-negative integer n are equal to {d}.",
        "The only line contains an integer n (0 <= n <= 10^9), written without leading zeros.",
        "Print one integer: the number of such digits.",
        [
            _p("""
            s = input().strip()
            print(s.count('$d'))
            """, d=d),
            _p("""
            s = input().strip()
            c = 0
            for ch in s:
                if ch == '$d':
                    c += 1
            print(c)
            """, d=d),
            _p("""
            n = int(input())
            if n == 0:
                print(1 if $d == 0 else 0)
            else:
                c = 0
                while n > 0:
                    if n % 10 == $d:
                        c += 1
                    n //= 10
                print(c)
            """, d=d),
        ],
        [
            _p("""
            n = int(input())
            c = 0
            while n > 0:
                if n % 10 == $d:
                    c += 1
                n //= 10
            print(c)
            """, d=d),
            _p("""
            s = input().strip()
            print(s.count('$d'))
            """, d=d2),
            _p("""
            s = input().strip()
            print(sum(1 for ch in s if int(ch) >= $d))
            """, d=d),
        ],
        gen,
        ["0\n", f"{int(str(d) * 3 or '0')}\n", "1000000000\n", f"{d2}\n"],
        ["strings", "digit_count"],
    )


def sum_multiples(r: random.Random) -> Spec:
    k = r.randint(2, 12)
    return Spec(
        "sum_multiples",
        (k,),
        f"Print the sum of all integers from 1 to n (inclusive) that are divisible by {k}.",
        "The only line contains an integer n (1 <= n <= 1000).",
        "Print one integer: the sum.",
        [
            _p("""
            n = int(input())
            s = 0
            for i in range(1, n + 1):
                if i % $k == 0:
                    s += i
            print(s)
            """, k=k),
            _p("""
            n = int(input())
            print(sum(range($k, n + 1, $k)))
            """, k=k),
            _p("""
            n = int(input())
            m = n // $k
            print($k * m * (m + 1) // 2)
            """, k=k),
        ],
        [
            _p("""
            n = int(input())
            print(sum(range($k, n, $k)))
            """, k=k),
            _p("""
            n = int(input())
            print(sum(i for i in range(1, n + 1) if i % $k == 0))
            """, k=k + 1),
            _p("""
            n = int(input())
            m = n // $k
            print($k * m * (m - 1) // 2)
            """, k=k),
        ],
        lambda r: f"{r.randint(1, 1000)}\n",
        ["1\n", f"{k}\n", f"{k * 7}\n", f"{k * 7 - 1}\n"],
        ["math", "sum_multiples"],
    )


FIZZ_WORDS = ["Fizz", "Buzz", "Foo", "Bar", "Tick", "Tock", "Ping", "Pong", "Zig", "Zag"]


def fizzbuzz(r: random.Random) -> Spec:
    p, q = r.sample(range(2, 8), 2)
    w1, w2 = r.sample(FIZZ_WORDS, 2)
    return Spec(
        "fizzbuzz",
        (p, q, w1, w2),
        f"For every integer i from 1 to n print one line: {w1}{w2} if i is divisible by both {p} and {q}, "
        f"{w1} if it is divisible only by {p}, {w2} if it is divisible only by {q}, and the number i otherwise.",
        "The only line contains an integer n (1 <= n <= 50).",
        "Print n lines as described.",
        [
            _p("""
            n = int(input())
            for i in range(1, n + 1):
                if i % $p == 0 and i % $q == 0:
                    print('$w1$w2')
                elif i % $p == 0:
                    print('$w1')
                elif i % $q == 0:
                    print('$w2')
                else:
                    print(i)
            """, p=p, q=q, w1=w1, w2=w2),
            _p("""
            n = int(input())
            for i in range(1, n + 1):
                s = ''
                if i % $p == 0:
                    s += '$w1'
                if i % $q == 0:
                    s += '$w2'
                print(s if s else i)
            """, p=p, q=q, w1=w1, w2=w2),
        ],
        [
            _p("""
            n = int(input())
            for i in range(1, n + 1):
                if i % $p == 0:
                    print('$w1')
                elif i % $q == 0:
                    print('$w2')
                elif i % $p == 0 and i % $q == 0:
                    print('$w1$w2')
                else:
                    print(i)
            """, p=p, q=q, w1=w1, w2=w2),
            _p("""
            n = int(input())
            for i in range(n):
                s = ''
                if i % $p == 0:
                    s += '$w1'
                if i % $q == 0:
                    s += '$w2'
                print(s if s else i)
            """, p=p, q=q, w1=w1, w2=w2),
            _p("""
            n = int(input())
            for i in range(1, n + 1):
                s = ''
                if i % $p == 0:
                    s += '$w2'
                if i % $q == 0:
                    s += '$w1'
                print(s if s else i)
            """, p=p, q=q, w1=w1, w2=w2),
        ],
        lambda r: f"{r.randint(1, 50)}\n",
        [f"{p * q}\n", "1\n", f"{max(p, q)}\n"],
        ["implementation", "fizzbuzz"],
    )


def char_count(r: random.Random) -> Spec:
    cs = "".join(sorted(r.sample(LETTERS, r.randint(1, 2))))
    other = LETTERS[(LETTERS.index(cs[0]) + 1) % 26]
    what = f"'{cs}'" if len(cs) == 1 else f"'{cs[0]}' or '{cs[1]}'"
    alphabet = cs * 3 + "".join(r.sample(LETTERS, 5))

    return Spec(
        "char_count",
        (cs,),
        f"Print how many characters of the given string are {what}.",
        "The only line contains a string of 1 to 20 lowercase English letters.",
        "Print one integer: the count.",
        [
            _p("""
            s = input().strip()
            print(sum(1 for ch in s if ch in '$cs'))
            """, cs=cs),
            _p("""
            s = input().strip()
            c = 0
            for ch in s:
                if ch in '$cs':
                    c += 1
            print(c)
            """, cs=cs),
            _p("""
            s = input().strip()
            print(""" + " + ".join(f"s.count('{c}')" for c in cs) + """)
            """),
        ],
        [
            _p("""
            s = input().strip()
            print(s.count('$c'))
            """, c=cs[-1] if len(cs) == 2 else other),
            _p("""
            s = input().strip()
            print(sum(1 for ch in s if ch not in '$cs'))
            """, cs=cs),
            _p("""
            s = input().strip()
            c = 0
            for i in range(1, len(s)):
                if s[i] in '$cs':
                    c += 1
            print(c)
            """, cs=cs),
        ],
        lambda r: _word(r, alphabet, 1, 20) + "\n",
        [cs[0] + "\n", cs * 4 + other + "\n", other * 3 + "\n", cs[0] + other + cs[-1] + "\n"],
        ["strings", "char_count"],
    )


def replace_char(r: random.Random) -> Spec:
    x, y = r.sample(LETTERS, 2)
    alphabet = x * 4 + y + "".join(r.sample(LETTERS, 5))
    return Spec(
        "replace_char",
        (x, y),
        f"Replace every letter '{x}' in the given string by the letter '{y}' and print the result.",
        "The only line contains a string of 1 to 20 lowercase English letters.",
        "Print the changed string.",
        [
            _p("""
            s = input().strip()
            print(s.replace('$x', '$y'))
            """, x=x, y=y),
            _p("""
            s = input().strip()
            print(''.join('$y' if ch == '$x' else ch for ch in s))
            """, x=x, y=y),
            _p("""
            s = input().strip()
            t = ''
            for ch in s:
                if ch == '$x':
                    t += '$y'
                else:
                    t += ch
            print(t)
            """, x=x, y=y),
        ],
        [
            _p("""
            s = input().strip()
            print(s.replace('$x', '$y', 1))
            """, x=x, y=y),
            _p("""
            s = input().strip()
            print(s.replace('$y', '$x'))
            """, x=x, y=y),
            _p("""
            s = input().strip()
            t = ''
            for i in range(1, len(s)):
                if s[i] == '$x':
                    t += '$y'
                else:
                    t += s[i]
            print(t)
            """, x=x, y=y),
        ],
        lambda r: _word(r, alphabet, 1, 20) + "\n",
        [x * 3 + "\n", y + x + y + x + "\n", x + "\n"],
        ["strings", "replace_char"],
    )


def caesar(r: random.Random) -> Spec:
    k = r.randint(1, 25)
    direction = r.choice(["forward", "backward"])
    sign = "+" if direction == "forward" else "-"
    anti = "-" if sign == "+" else "+"
    wrap = "after 'z' comes 'a' again" if direction == "forward" else "before 'a' comes 'z' again"
    return Spec(
        "caesar",
        (k, direction),
        f"Shift every letter of the given string {direction} by {k} positions in the alphabet "
        f"({wrap}) and print the result.",
        "The only line contains a string of 1 to 20 lowercase English letters.",
        "Print the shifted string.",
        [
            _p("""
            s = input().strip()
            print(''.join(chr((ord(c) - 97 $sign $k) % 26 + 97) for c in s))
            """, sign=sign, k=k),
            _p("""
            a = 'abcdefghijklmnopqrstuvwxyz'
            s = input().strip()
            t = ''
            for c in s:
                t += a[(a.index(c) $sign $k) % 26]
            print(t)
            """, sign=sign, k=k),
        ],
        [
            _p("""
            s = input().strip()
            print(''.join(chr(ord(c) $sign $k) for c in s))
            """, sign=sign, k=k),
            _p("""
            s = input().strip()
            print(''.join(chr((ord(c) - 97 $sign $k) % 26 + 97) for c in s))
            """, sign=anti, k=k),
            _p("""
            s = input().strip()
            print(''.join(chr((ord(c) - 97 $sign $k) % 26 + 97) for c in s))
            """, sign=sign, k=k + 1),
        ],
        lambda r: _word(r, LETTERS, 1, 20) + "\n",
        ["z\n", "a\n", "xyzabc\n", "m\n"],
        ["strings", "caesar"],
    )


MINMAX = {
    "difference": ("the difference between the largest and the smallest number", "-"),
    "sum": ("the sum of the largest and the smallest number", "+"),
    "product": ("the product of the largest and the smallest number", "*"),
}


def min_max(r: random.Random) -> Spec:
    what = r.choice(list(MINMAX))
    phrase, op = MINMAX[what]
    other = r.choice([o for o in "+-*" if o != op])
    c = r.randint(1, 20)
    lo = r.randint(-60, 0)  # only the input range: not part of the key
    return Spec(
        "min_max",
        (what, c),
        f"Print {phrase} among the given numbers, plus {c}.",
        LIST_IN + f" All numbers are between {lo} and {lo + 100}.",
        "Print one integer.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(max(a) $op min(a) + $c)
            """, op=op, c=c),
            _p("""
            n = int(input())
            a = sorted(map(int, input().split()))
            print(a[-1] $op a[0] + $c)
            """, op=op, c=c),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            hi = a[0]
            lo = a[0]
            for x in a:
                hi = max(hi, x)
                lo = min(lo, x)
            print(hi $op lo + $c)
            """, op=op, c=c),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(a[-1] $op a[0] + $c)
            """, op=op, c=c),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(max(a) $op min(a) + $c)
            """, op=other, c=c),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            hi = 0
            lo = a[0]
            for x in a:
                hi = max(hi, x)
                lo = min(lo, x)
            print(hi $op lo + $c)
            """, op=op, c=c),
        ],
        lambda r: _ints(_rand_list(r, lo, lo + 100)),
        [_ints([lo + 5]), _ints([lo + 50, lo + 1, lo + 99]), _ints([lo, lo + 3, lo + 1])],
        ["sortings", "min_max"],
    )


def kth_largest(r: random.Random) -> Spec:
    k = r.randint(1, 4)
    which = r.choice(["largest", "smallest"])
    lo = r.randint(-20, 20)  # only the input range: not part of the key
    up = which == "largest"
    main = "sorted(map(int, input().split()), reverse=True)" if up else "sorted(map(int, input().split()))"
    opp = "sorted(map(int, input().split()))" if up else "sorted(map(int, input().split()), reverse=True)"
    inplace = "a.sort(reverse=True)" if up else "a.sort()"

    def gen(r: random.Random) -> str:
        return _ints(_rand_list(r, lo, lo + 15, k, 10))

    return Spec(
        "kth_largest",
        (k, which),
        f"Print the {ORD[k]} {which} of the given numbers (equal numbers are counted separately).",
        f"The first line contains an integer n ({k} <= n <= 10). The second line contains n integers "
        f"between {lo} and {lo + 15}.",
        "Print one integer.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            $inplace
            print(a[$k1])
            """, inplace=inplace, k1=k - 1),
            _p("""
            n = int(input())
            a = $opp
            print(a[-$k])
            """, opp=opp, k=k),
            _p("""
            n = int(input())
            a = $opp
            print(a[n - $k])
            """, opp=opp, k=k),
        ],
        [
            _p("""
            n = int(input())
            a = $opp
            print(a[$k1])
            """, opp=opp, k1=k - 1),
            _p("""
            n = int(input())
            a = sorted(set(map(int, input().split())), reverse=$up)
            print(a[$k1])
            """, up=up, k1=k - 1),
            _p("""
            n = int(input())
            a = $main
            print(a[$k])
            """, main=main, k=k),
        ],
        gen,
        [_ints([lo + 3] * k + [lo]), _ints([lo + i for i in range(k)]), _ints([lo + 15] * 2 + [lo + 1] * k),
         _ints([lo] * 2 + [lo + 14] * k)],
        ["sortings", "kth_largest"],
    )


def pair_sum(r: random.Random) -> Spec:
    s = r.randint(2, 20)
    return Spec(
        "pair_sum",
        (s,),
        f"Count the pairs of positions (i, j) with i < j such that ai + aj = {s}.",
        LIST_IN + f" All numbers are between 0 and {s}.",
        "Print one integer: the number of pairs.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for i in range(n):
                for j in range(i + 1, n):
                    if a[i] + a[j] == $s:
                        c += 1
            print(c)
            """, s=s),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            seen = {}
            c = 0
            for x in a:
                c += seen.get($s - x, 0)
                seen[x] = seen.get(x, 0) + 1
            print(c)
            """, s=s),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for i in range(n):
                for j in range(i, n):
                    if a[i] + a[j] == $s:
                        c += 1
            print(c)
            """, s=s),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for i in range(n):
                for j in range(n):
                    if i != j and a[i] + a[j] == $s:
                        c += 1
            print(c)
            """, s=s),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for i in range(n):
                for j in range(i + 1, n):
                    if a[i] + a[j] >= $s:
                        c += 1
            print(c)
            """, s=s),
        ],
        lambda r: _ints(_rand_list(r, 0, s, 2, 10)),
        [_ints([s // 2, s - s // 2]), _ints([s // 2] * 3 + [s - s // 2]), _ints([s]), _ints([0, s, 1, s - 1])],
        ["brute force", "pair_sum"],
    )


def weighted_positions(r: random.Random) -> Spec:
    k = r.randint(2, 9)
    which = r.choice(["odd", "even"])
    start, other = (0, 1) if which == "odd" else (1, 0)
    return Spec(
        "weighted_positions",
        (k, which),
        f"Multiply every number at an {which} position (positions are numbered from 1) by {k}, "
        "then print the sum of all the numbers.",
        LIST_IN + " All numbers are between -20 and 20.",
        "Print one integer: the sum.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            s = 0
            for i in range(n):
                if (i + 1) % 2 == $par:
                    s += a[i] * $k
                else:
                    s += a[i]
            print(s)
            """, par=1 if which == "odd" else 0, k=k),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(a[$start::2]) * $k + sum(a[$other::2]))
            """, start=start, other=other, k=k),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(a[$start::2]) * $k + sum(a[$other::2]))
            """, start=other, other=start, k=k),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(a[$start::2]) * $k + sum(a[$other::2]))
            """, start=start, other=other, k=k + 1),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(a) * $k)
            """, k=k),
        ],
        lambda r: _ints(_rand_list(r, -20, 20)),
        [_ints([3]), _ints([1, 2]), _ints([-5, 4, 7])],
        ["implementation", "weighted_positions"],
    )


def coins(r: random.Random) -> Spec:
    d = r.randint(2, 9)
    e = d * r.randint(2, 5)
    return Spec(
        "coins",
        (d, e),
        f"Coins have the values 1, {d} and {e}. Print the smallest number of coins whose values add up to exactly n.",
        "The only line contains an integer n (1 <= n <= 1000).",
        "Print one integer: the number of coins.",
        [
            _p("""
            n = int(input())
            c = n // $e
            n %= $e
            c += n // $d
            n %= $d
            print(c + n)
            """, d=d, e=e),
            _p("""
            n = int(input())
            c = 0
            for v in ($e, $d, 1):
                c += n // v
                n -= n // v * v
            print(c)
            """, d=d, e=e),
            _p("""
            n = int(input())
            print(n // $e + n % $e // $d + n % $d)
            """, d=d, e=e),
        ],
        [
            _p("""
            n = int(input())
            print(n // $d + n % $d)
            """, d=d),
            _p("""
            n = int(input())
            print(n // $e + n % $e // $d)
            """, d=d, e=e),
            _p("""
            n = int(input())
            print(n // $e + n % $e)
            """, e=e),
        ],
        lambda r: f"{r.randint(1, 1000)}\n",
        [f"{e + d + 1}\n", f"{e}\n", f"{d - 1}\n", f"{2 * e + d}\n"],
        ["greedy", "coins"],
    )


GRADE_WORDS = [("LOW", "MID", "HIGH"), ("COLD", "WARM", "HOT"), ("SMALL", "MEDIUM", "LARGE"),
               ("BAD", "OK", "GOOD"), ("SLOW", "NORMAL", "FAST")]


def grade(r: random.Random) -> Spec:
    t1 = r.randint(0, 40)
    t2 = t1 + r.randint(1, 40)
    lw, mw, hw = r.choice(GRADE_WORDS)
    return Spec(
        "grade",
        (t1, t2, lw),
        f"For each of the given numbers print {lw} if it is less than {t1}, {hw} if it is greater than {t2}, "
        f"and {mw} otherwise, each on its own line.",
        LIST_IN + " All numbers are between 0 and 100.",
        "Print n lines.",
        [
            _p("""
            n = int(input())
            for x in map(int, input().split()):
                if x < $t1:
                    print('$lw')
                elif x > $t2:
                    print('$hw')
                else:
                    print('$mw')
            """, t1=t1, t2=t2, lw=lw, mw=mw, hw=hw),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            for x in a:
                print('$lw' if x < $t1 else '$hw' if x > $t2 else '$mw')
            """, t1=t1, t2=t2, lw=lw, mw=mw, hw=hw),
        ],
        [
            _p("""
            n = int(input())
            for x in map(int, input().split()):
                if x <= $t1:
                    print('$lw')
                elif x >= $t2:
                    print('$hw')
                else:
                    print('$mw')
            """, t1=t1, t2=t2, lw=lw, mw=mw, hw=hw),
            _p("""
            n = int(input())
            for x in map(int, input().split()):
                if x < $t1:
                    print('$hw')
                elif x > $t2:
                    print('$lw')
                else:
                    print('$mw')
            """, t1=t1, t2=t2, lw=lw, mw=mw, hw=hw),
            _p("""
            n = int(input())
            for x in map(int, input().split()):
                if x < $t2:
                    print('$lw')
                elif x > $t1:
                    print('$hw')
                else:
                    print('$mw')
            """, t1=t1, t2=t2, lw=lw, mw=mw, hw=hw),
        ],
        lambda r: _ints(_rand_list(r, max(0, t1 - 10), min(100, t2 + 10))),
        [_ints([t1, t2]), _ints([t1 - 1 if t1 else 0, t2 + 1]), _ints([(t1 + t2) // 2])],
        ["implementation", "grade"],
    )


def base_convert(r: random.Random) -> Spec:
    b = r.randint(2, 9)
    return Spec(
        "base_convert",
        (b,),
        f"Print the non-negative integer n written in base {b}.",
        "The only line contains an integer n (0 <= n <= 10^6).",
        f"Print n in base {b}, without leading zeros.",
        [
            _p("""
            n = int(input())
            if n == 0:
                print(0)
            else:
                d = []
                while n > 0:
                    d.append(str(n % $b))
                    n //= $b
                print(''.join(reversed(d)))
            """, b=b),
            _p("""
            n = int(input())
            s = ''
            while True:
                s = str(n % $b) + s
                n //= $b
                if n == 0:
                    break
            print(s)
            """, b=b),
            _p("""
            def conv(n):
                if n < $b:
                    return str(n)
                return conv(n // $b) + str(n % $b)

            print(conv(int(input())))
            """, b=b),
        ],
        [
            _p("""
            n = int(input())
            s = ''
            while n > 0:
                s = str(n % $b) + s
                n //= $b
            print(s)
            """, b=b),
            _p("""
            n = int(input())
            s = ''
            while True:
                s += str(n % $b)
                n //= $b
                if n == 0:
                    break
            print(s)
            """, b=b),
            _p("""
            n = int(input())
            s = ''
            while True:
                s = str(n % $b) + s
                n //= $b
                if n == 0:
                    break
            print(s)
            """, b=b + 1),
        ],
        lambda r: f"{r.randint(0, 10 ** r.randint(1, 6))}\n",
        ["0\n", f"{b}\n", f"{b - 1}\n", f"{b * b + 1}\n"],
        ["math", "base_convert"],
    )


MODULI = [7, 10, 11, 13, 17, 19, 23, 97, 100, 101, 1000, 1009]


def product_mod(r: random.Random) -> Spec:
    m = r.choice(MODULI)
    return Spec(
        "product_mod",
        (m,),
        f"Print the product of the given numbers modulo {m}.",
        LIST_IN + " All numbers are between 1 and 100.",
        "Print one integer.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            p = 1
            for x in a:
                p = p * x % $m
            print(p)
            """, m=m),
            _p("""
            import math
            n = int(input())
            a = list(map(int, input().split()))
            print(math.prod(a) % $m)
            """, m=m),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            p = 1
            for x in a:
                p = p % $m * x
            print(p)
            """, m=m),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            p = 1
            for x in a:
                p = p * x % $m
            print(p)
            """, m=m + 1),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            p = 1
            for i in range(1, n):
                p = p * a[i] % $m
            print(p)
            """, m=m),
        ],
        lambda r: _ints(_rand_list(r, 1, 100)),
        [_ints([m + 3]), _ints([m - 1, m - 1, 2]), _ints([100] * 10)],
        ["math", "product_mod"],
    )


def long_words(r: random.Random) -> Spec:
    length = r.randint(2, 7)
    op = r.choice([">", ">="])
    phrase = {">": "more than", ">=": "at least"}[op]
    wrong = WRONG_CMP[op]

    def gen(r: random.Random) -> str:
        return " ".join(_word(r, LETTERS, 1, 10) for _ in range(r.randint(1, 8))) + "\n"

    return Spec(
        "long_words",
        (length, op),
        f"Count the words of the given sentence that have {phrase} {length} letters.",
        "The only line contains 1 to 8 words of lowercase English letters separated by single spaces.",
        "Print one integer: the count.",
        [
            _p("""
            words = input().split()
            print(sum(1 for w in words if len(w) $op $l))
            """, op=op, l=length),
            _p("""
            c = 0
            for w in input().split():
                if len(w) $op $l:
                    c += 1
            print(c)
            """, op=op, l=length),
        ],
        [
            _p("""
            words = input().split()
            print(sum(1 for w in words if len(w) $op $l))
            """, op=wrong, l=length),
            _p("""
            words = input().split()
            print(sum(1 for w in words if len(w) $op $l))
            """, op=op, l=length + 1),
            _p("""
            words = input().split()
            print(sum(len(w) for w in words if len(w) $op $l))
            """, op=op, l=length),
        ],
        gen,
        ["a" * length + "\n", "a" * length + " " + "b" * (length + 1) + " c\n", "x" * (length - 1) + "\n"],
        ["strings", "long_words"],
    )


def records(r: random.Random) -> Spec:
    start = r.randint(-10, 50)
    kind = r.choice(["higher", "lower"])
    op = ">" if kind == "higher" else "<"
    return Spec(
        "records",
        (start, kind),
        f"A record starts at {start}. The numbers arrive one by one; each number that is strictly "
        f"{kind} than the current record becomes the new record. Print how many times the record changes.",
        LIST_IN + " All numbers are between -20 and 70.",
        "Print one integer: the number of changes.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            best = $start
            c = 0
            for x in a:
                if x $op best:
                    best = x
                    c += 1
            print(c)
            """, start=start, op=op),
            _p("""
            n = int(input())
            best = $start
            c = 0
            for x in map(int, input().split()):
                if x $op best:
                    c += 1
                    best = x
            print(c)
            """, start=start, op=op),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            best = a[0]
            c = 0
            for x in a:
                if x $op best:
                    best = x
                    c += 1
            print(c)
            """, op=op),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            best = $start
            c = 0
            for x in a:
                if x $op= best:
                    best = x
                    c += 1
            print(c)
            """, start=start, op=op),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for x in a:
                if x $op $start:
                    c += 1
            print(c)
            """, start=start, op=op),
        ],
        lambda r: _ints(_rand_list(r, -20, 70)),
        [_ints([start]), _ints([start + 1, start + 2, start - 1, start - 2]),
         _ints([start + 5, start + 5, start - 5, start - 5]), _ints([start + 3, start + 1, start - 3, start - 1])],
        ["implementation", "records"],
    )


def window_max(r: random.Random) -> Spec:
    k = r.randint(2, 5)
    which = r.choice(["largest", "smallest"])
    f = "max" if which == "largest" else "min"
    lo = r.randint(-30, 0)  # only the input range: not part of the key
    return Spec(
        "window_max",
        (k, which),
        f"Print the {which} sum of {k} consecutive numbers in the given sequence.",
        f"The first line contains an integer n ({k} <= n <= 10). The second line contains n integers "
        f"between {lo} and {lo + 40}.",
        f"Print one integer: the {which} sum.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print($f(sum(a[i:i + $k]) for i in range(n - $k + 1)))
            """, k=k, f=f),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            s = sum(a[:$k])
            best = s
            for i in range($k, n):
                s += a[i] - a[i - $k]
                best = $f(best, s)
            print(best)
            """, k=k, f=f),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print($f(sum(a[i:i + $k]) for i in range(n - $k)))
            """, k=k, f=f),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print($f(sum(a[i:i + $k]) for i in range(n - $k + 1)))
            """, k=k - 1 if k > 2 else k + 1, f=f),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            best = 0
            for i in range(n - $k + 1):
                best = $f(best, sum(a[i:i + $k]))
            print(best)
            """, k=k, f=f),
        ],
        lambda r: _ints(_rand_list(r, lo, lo + 40, k, 10)),
        [_ints([lo + 1] * k), _ints([lo] * k + [lo + 40] * k), _ints([lo + 40] + [lo] * k)],
        ["two pointers", "window_max"],
    )


BRACKETS = ["()", "[]", "{}", "<>"]
VERDICT_WORDS = [("YES", "NO"), ("OK", "BAD"), ("GOOD", "WRONG"), ("RIGHT", "WRONG"), ("VALID", "INVALID"),
                 ("TRUE", "FALSE"), ("BALANCED", "BROKEN"), ("PASS", "FAIL")]


def brackets(r: random.Random) -> Spec:
    o, c = r.choice(BRACKETS)
    yes, no = r.choice(VERDICT_WORDS)

    def gen(r: random.Random) -> str:
        if r.random() < 0.5:  # a balanced one, maybe perturbed
            s, depth = "", 0
            for _ in range(r.randint(1, 8)):
                if depth and r.random() < 0.5:
                    s, depth = s + c, depth - 1
                else:
                    s, depth = s + o, depth + 1
            s += c * depth
            if r.random() < 0.4:
                i = r.randrange(len(s))
                s = s[:i] + (o if s[i] == c else c) + s[i + 1:]
            return s + "\n"
        return "".join(r.choice(o + c) for _ in range(r.randint(1, 12))) + "\n"

    return Spec(
        "brackets",
        (o + c, yes),
        f"A string consists only of the characters '{o}' and '{c}'. Print {yes} if it is a correct "
        f"bracket sequence (every '{o}' is closed by a later matching '{c}') and {no} otherwise.",
        "The only line contains the string (1 to 16 characters).",
        f"Print {yes} or {no}.",
        [
            _p("""
            s = input().strip()
            d = 0
            ok = True
            for ch in s:
                if ch == '$o':
                    d += 1
                else:
                    d -= 1
                if d < 0:
                    ok = False
            print('$yes' if ok and d == 0 else '$no')
            """, o=o, yes=yes, no=no),
            _p("""
            s = input().strip()
            st = []
            ok = True
            for ch in s:
                if ch == '$o':
                    st.append(ch)
                elif st:
                    st.pop()
                else:
                    ok = False
            print('$yes' if ok and not st else '$no')
            """, o=o, yes=yes, no=no),
        ],
        [
            _p("""
            s = input().strip()
            print('$yes' if s.count('$o') == s.count('$c') else '$no')
            """, o=o, c=c, yes=yes, no=no),
            _p("""
            s = input().strip()
            d = 0
            ok = True
            for ch in s:
                if ch == '$o':
                    d += 1
                else:
                    d -= 1
                if d < 0:
                    ok = False
            print('$yes' if ok else '$no')
            """, o=o, yes=yes, no=no),
            _p("""
            s = input().strip()
            d = 0
            ok = True
            for ch in s:
                if ch == '$c':
                    d += 1
                else:
                    d -= 1
                if d < 0:
                    ok = False
            print('$yes' if ok and d == 0 else '$no')
            """, c=c, yes=yes, no=no),
        ],
        gen,
        [c + o + "\n", o + o + c + "\n", o + c + o + c + "\n", o + "\n"],
        ["strings", "brackets"],
    )


def reverse_number(r: random.Random) -> Spec:
    k = r.randint(2, 20)
    op = r.choice(["+", "*"])
    phrase = {"+": f"add {k} to it", "*": f"multiply it by {k}"}[op]
    anti = "*" if op == "+" else "+"
    return Spec(
        "reverse_number",
        (k, op),
        f"Reverse the digits of n (leading zeros of the result are dropped), then {phrase}. Print the result.",
        "The only line contains an integer n (1 <= n <= 10^9).",
        "Print one integer.",
        [
            _p("""
            n = input().strip()
            print(int(n[::-1]) $op $k)
            """, op=op, k=k),
            _p("""
            n = int(input())
            r = 0
            while n > 0:
                r = r * 10 + n % 10
                n //= 10
            print(r $op $k)
            """, op=op, k=k),
        ],
        [
            _p("""
            n = input().strip()
            print(int(n[::-1]) $op $k)
            """, op=anti, k=k),
            _p("""
            n = int(input())
            print(n $op $k)
            """, op=op, k=k),
            _p("""
            n = int(input())
            print(int(str(n $op $k)[::-1]))
            """, op=op, k=k),
        ],
        lambda r: f"{r.randint(1, 10 ** r.randint(1, 9))}\n",
        ["120\n", "7\n", "1000\n", "12\n"],
        ["math", "reverse_number"],
    )


def divide_steps(r: random.Random) -> Spec:
    d = r.randint(2, 10)
    t = r.randint(1, 5)
    return Spec(
        "divide_steps",
        (d, t),
        f"Starting from n, repeatedly replace n by n divided by {d}, rounded down. Print how many "
        f"replacements are made until n becomes less than {t}.",
        "The only line contains an integer n (0 <= n <= 10^9).",
        "Print one integer: the number of replacements.",
        [
            _p("""
            n = int(input())
            c = 0
            while n >= $t:
                n //= $d
                c += 1
            print(c)
            """, d=d, t=t),
            _p("""
            def steps(n):
                if n < $t:
                    return 0
                return 1 + steps(n // $d)

            print(steps(int(input())))
            """, d=d, t=t),
        ],
        [
            _p("""
            n = int(input())
            c = 0
            while n > $t:
                n //= $d
                c += 1
            print(c)
            """, d=d, t=t),
            _p("""
            n = int(input())
            c = 0
            while n >= $t:
                n //= $d
                c += 1
            print(c)
            """, d=d + 1, t=t),
            _p("""
            n = int(input())
            c = 1
            while n >= $t:
                n //= $d
                c += 1
            print(c - 1 if n == 0 else c)
            """, d=d, t=t),
        ],
        lambda r: f"{r.randint(0, 10 ** r.randint(1, 9))}\n",
        [f"{t}\n", f"{t - 1}\n", f"{t * d}\n", f"{t * d * d - 1}\n"],
        ["math", "divide_steps"],
    )


PLANETS = ["Zorg", "Kepler", "Vega", "Orion", "Lyra", "Tau"]


def clock(r: random.Random) -> Spec:
    m = r.choice([x for x in range(20, 100) if x != 60])
    planet = r.choice(PLANETS)
    return Spec(
        "clock",
        (m,),
        f"On planet {planet} an hour has {m} minutes. Convert t minutes into full hours and remaining "
        "minutes.",
        "The only line contains an integer t (0 <= t <= 10000).",
        "Print two integers: the hours and the minutes, separated by a space.",
        [
            _p("""
            t = int(input())
            print(t // $m, t % $m)
            """, m=m),
            _p("""
            t = int(input())
            h, mi = divmod(t, $m)
            print(h, mi)
            """, m=m),
            _p("""
            t = int(input())
            h = 0
            while t >= $m:
                t -= $m
                h += 1
            print(h, t)
            """, m=m),
        ],
        [
            _p("""
            t = int(input())
            print(t // 60, t % 60)
            """),
            _p("""
            t = int(input())
            print(t % $m, t // $m)
            """, m=m),
            _p("""
            t = int(input())
            h = 0
            while t > $m:
                t -= $m
                h += 1
            print(h, t)
            """, m=m),
        ],
        lambda r: f"{r.randint(0, 10000)}\n",
        [f"{m}\n", f"{m - 1}\n", "0\n", f"{3 * m + 1}\n"],
        ["math", "clock"],
    )


ADJ = {
    ">": "greater than",
    "<": "less than",
    ">=": "at least",
}


def adjacent_diff(r: random.Random) -> Spec:
    k = r.randint(0, 9)
    op = r.choice(list(ADJ))
    wrong = WRONG_CMP[op]
    return Spec(
        "adjacent_diff",
        (k, op),
        f"Count the neighbouring pairs (ai, ai+1) whose absolute difference is {ADJ[op]} {k}.",
        "The first line contains an integer n (2 <= n <= 10). The second line contains n integers "
        "between 0 and 20.",
        "Print one integer: the number of pairs.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for i in range(n - 1):
                if abs(a[i] - a[i + 1]) $op $k:
                    c += 1
            print(c)
            """, op=op, k=k),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(1 for x, y in zip(a, a[1:]) if abs(x - y) $op $k))
            """, op=op, k=k),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for i in range(n - 1):
                if a[i] - a[i + 1] $op $k:
                    c += 1
            print(c)
            """, op=op, k=k),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            c = 0
            for i in range(n - 2):
                if abs(a[i] - a[i + 1]) $op $k:
                    c += 1
            print(c)
            """, op=op, k=k),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(1 for x, y in zip(a, a[1:]) if abs(x - y) $op $k))
            """, op=wrong, k=k),
        ],
        lambda r: _ints(_rand_list(r, 0, 20, 2, 10)),
        [_ints([0, k]), _ints([k + 5, 5, k + 5]), _ints([1, k + 2, 20, 0]), _ints([3, 3 + k + 1])],
        ["implementation", "adjacent_diff"],
    )


STAIR_CHARS = "*#+@%&=~o"


def staircase(r: random.Random) -> Spec:
    ch = r.choice(STAIR_CHARS)
    k = r.randint(1, 3)
    direction = r.choice(["growing", "shrinking"])
    if direction == "growing":
        story = f"Print n lines: the i-th line (counting from 1) consists of {k}*i characters '{ch}'."
        count = "$k * i"
    else:
        story = f"Print n lines: the i-th line (counting from 1) consists of {k}*(n-i+1) characters '{ch}'."
        count = "$k * (n - i + 1)"
    count = count.replace("$k", str(k))
    rev = count.replace("i", "(n - i + 1)") if direction == "growing" else f"{k} * i"
    return Spec(
        "staircase",
        (ch, k, direction),
        story,
        "The only line contains an integer n (1 <= n <= 12).",
        "Print n lines as described.",
        [
            _p("""
            n = int(input())
            for i in range(1, n + 1):
                print('$ch' * ($count))
            """, ch=ch, count=count),
            _p("""
            n = int(input())
            lines = []
            for i in range(1, n + 1):
                lines.append('$ch' * ($count))
            print('\\n'.join(lines))
            """, ch=ch, count=count),
        ],
        [
            _p("""
            n = int(input())
            for i in range(n):
                print('$ch' * ($count))
            """, ch=ch, count=count),
            _p("""
            n = int(input())
            for i in range(1, n + 1):
                print('$ch' * ($count))
            """, ch=ch, count=rev),
            _p("""
            n = int(input())
            for i in range(1, n + 1):
                print('$ch' * i)
            """, ch=ch) if k > 1 else _p("""
            n = int(input())
            for i in range(1, n + 1):
                print('$ch' * ($count + 1))
            """, ch=ch, count=count),
        ],
        lambda r: f"{r.randint(1, 12)}\n",
        ["1\n", "2\n", "5\n"],
        ["implementation", "staircase"],
    )


def count_between(r: random.Random) -> Spec:
    lo = r.randint(0, 25)
    hi = lo + r.randint(1, 20)
    return Spec(
        "count_between",
        (lo, hi),
        f"Print how many of the given numbers are between {lo} and {hi}, inclusive.",
        LIST_IN + " All numbers are between 0 and 50.",
        "Print one integer: the count.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(1 for x in a if $lo <= x <= $hi))
            """, lo=lo, hi=hi),
            _p("""
            n = int(input())
            c = 0
            for x in map(int, input().split()):
                if x >= $lo and x <= $hi:
                    c += 1
            print(c)
            """, lo=lo, hi=hi),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(1 for x in a if $lo < x < $hi))
            """, lo=lo, hi=hi),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(1 for x in a if $lo <= x < $hi))
            """, lo=lo, hi=hi),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(sum(1 for x in a if $lo <= x <= $hi))
            """, lo=lo + 1, hi=hi),
        ],
        lambda r: _ints(_rand_list(r, max(0, lo - 5), min(50, hi + 5))),
        [_ints([lo, hi]), _ints([hi]), _ints([lo - 1 if lo else 0, hi + 1, lo])],
        ["implementation", "count_between"],
    )


SEPARATORS = "-+*:,.|/"


def repeat_string(r: random.Random) -> Spec:
    k = r.randint(2, 6)
    sep = r.choice(SEPARATORS)
    return Spec(
        "repeat_string",
        (k, sep),
        f"Print the given word {k} times, with the character '{sep}' between neighbouring copies.",
        "The only line contains a word of 1 to 10 lowercase English letters.",
        "Print one line.",
        [
            _p("""
            s = input().strip()
            print('$sep'.join([s] * $k))
            """, sep=sep, k=k),
            _p("""
            s = input().strip()
            t = s
            for i in range($k1):
                t += '$sep' + s
            print(t)
            """, sep=sep, k1=k - 1),
        ],
        [
            _p("""
            s = input().strip()
            print((s + '$sep') * $k)
            """, sep=sep, k=k),
            _p("""
            s = input().strip()
            print('$sep'.join([s] * $k))
            """, sep=sep, k=k - 1 if k > 2 else k + 1),
            _p("""
            s = input().strip()
            print(s * $k)
            """, k=k),
        ],
        lambda r: _word(r, LETTERS, 1, 10) + "\n",
        ["a\n", "abc\n"],
        ["strings", "repeat_string"],
    )


def running_sum(r: random.Random) -> Spec:
    m = r.choice(MODULI)
    return Spec(
        "running_sum",
        (m,),
        f"Print the running sums of the sequence modulo {m}: the i-th printed number is "
        f"(a1 + ... + ai) mod {m}.",
        LIST_IN + " All numbers are between 0 and 1000.",
        "Print n integers separated by spaces.",
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            s = 0
            out = []
            for x in a:
                s = (s + x) % $m
                out.append(s)
            print(*out)
            """, m=m),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(' '.join(str(sum(a[:i + 1]) % $m) for i in range(n)))
            """, m=m),
        ],
        [
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            s = 0
            out = []
            for x in a:
                s = s + x % $m
                out.append(s)
            print(*out)
            """, m=m),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(' '.join(str(sum(a[:i]) % $m) for i in range(n)))
            """, m=m),
            _p("""
            n = int(input())
            a = list(map(int, input().split()))
            print(' '.join(str(x % $m) for x in a))
            """, m=m),
        ],
        lambda r: _ints(_rand_list(r, 0, 1000)),
        [_ints([m - 1, 1, m]), _ints([5]), _ints([1000] * 4)],
        ["implementation", "running_sum"],
    )


FAMILIES: dict[str, Callable[[random.Random], Spec]] = {
    f.__name__: f
    for f in [
        count_mod, sum_compare, linear, digit_count, sum_multiples, fizzbuzz, char_count,
        replace_char, caesar, min_max, kth_largest, pair_sum, weighted_positions, coins, grade,
        base_convert, product_mod, long_words, records, window_max, brackets, reverse_number,
        divide_steps, clock, adjacent_diff, staircase, count_between, repeat_string, running_sum,
    ]
}


# ---------------------------------------------------------------------------------------------
# From a Spec to a CodeContests row


def _statement(spec: Spec, ex_in: str, ex_out: str) -> str:
    return (
        f"{spec.story}\n\nInput\n{spec.input_spec}\n\nOutput\n{spec.output_spec}\n\n"
        f"Example\nInput\n{ex_in.rstrip()}\nOutput\n{ex_out.rstrip()}\n"
    )


def _tests(inputs: list[str], outputs: list[str]) -> dict:
    return {"input": list(inputs), "output": list(outputs)}


def build_problem(spec: Spec, r: random.Random, name: str) -> dict:
    """Make the tests of `spec`, check its programs on them, and return a CodeContests row."""
    public = [spec.gen(r)]
    private = list(dict.fromkeys(spec.edges))
    generated: list[str] = []
    seen = set(public) | set(private)
    for _ in range(N_GENERATED * 4):
        if len(generated) == N_GENERATED:
            break
        x = spec.gen(r)
        if x not in seen:
            seen.add(x)
            generated.append(x)
    inputs = public + private + generated
    ref = run_trusted(spec.correct[0], inputs)
    if any(x.status != OK for x in ref):
        raise GeneratorBug(f"{name}: reference program fails:\n{spec.correct[0]}")
    expected = [x.stdout for x in ref]
    for prog in spec.correct[1:]:
        for x, res, want in zip(inputs, run_trusted(prog, inputs), expected):
            if not output_passes(res, want):
                raise GeneratorBug(f"{name}: correct programs disagree on input {x!r}:\n{prog}")
    hidden = slice(len(public), None)
    incorrect = [prog for prog in spec.incorrect
                 if not passes(run_trusted(prog, inputs[hidden]), expected[hidden])]
    n_pub, n_priv = len(public), len(private)
    return {
        "name": name,
        "description": _statement(spec, public[0], expected[0]),
        "public_tests": _tests(public, expected[:n_pub]),
        "private_tests": _tests(private, expected[n_pub : n_pub + n_priv]),
        "generated_tests": _tests(generated, expected[n_pub + n_priv :]),
        "solutions": {"language": [3] * len(spec.correct), "solution": list(spec.correct)},
        "incorrect_solutions": {"language": [3] * len(incorrect), "solution": incorrect},
        "time_limit": {"seconds": TIME_LIMIT_S, "nanos": 0},
        "memory_limit_bytes": MEMORY_LIMIT_BYTES,
        "cf_tags": list(spec.tags),
        "difficulty": spec.difficulty,
        "source": 0,
        "family": spec.family,
        "params": [str(p) for p in spec.key],
    }


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def is_heldout_key(seed: int, family: str, key: tuple) -> bool:
    """Whether a (family, parameters) key is in the held-out region (validation or held-out split):
    a stable hash under HELDOUT_FRACTION. Train is everything else."""
    return _unit_hash(f"{seed}|{family}|{key!r}") < HELDOUT_FRACTION


def split_of_key(seed: int, family: str, key: tuple) -> str:
    """"train", "validation" or "heldout": the one split a (family, parameters) key belongs to."""
    if not is_heldout_key(seed, family, key):
        return "train"
    return "validation" if _unit_hash(f"{seed}|{family}|{key!r}|validation") < VALIDATION_FRACTION else "heldout"


def iter_problems(
    seed: int = 0, split: str = "train", n: int = 100, families: list[str] | None = None
) -> Iterator[dict]:
    """Yield `n` problems of one split ("train", "validation" or "heldout"), cycling through the families.

    Deterministic in (seed, split, n, families), and the first k problems do not depend on n.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    names = list(families or FAMILIES)
    unknown = [f for f in names if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families: {', '.join(unknown)} (known: {', '.join(FAMILIES)})")
    # The held-out split walks the held-out region's stream as before validation existed (so its
    # problems and names are unchanged) and leaves out the validation keys; validation has its own.
    region = split != "train"
    r = random.Random(f"spo-bench/{GENERATOR_VERSION}/{seed}/{split}")
    seen_statements: set[str] = set()
    made = yielded = 0
    i = 0
    while yielded < n:
        fam = names[i % len(names)]
        i += 1
        for _ in range(200):
            spec = FAMILIES[fam](r)
            if is_heldout_key(seed, fam, spec.key) == region and (
                    split != "validation" or split_of_key(seed, fam, spec.key) == "validation"):
                break
        else:
            if split == "validation" and i > 20 * len(names) and not yielded:
                raise ValueError(f"no validation keys in families {', '.join(names)} under seed {seed}")
            continue  # this family has no key for this split under this seed; try the next one
        row = build_problem(spec, r, f"spo-bench/{split}/{made:05d}-{fam.replace('_', '-')}")
        if row["description"] in seen_statements:
            continue
        seen_statements.add(row["description"])
        made += 1
        if split == "heldout" and split_of_key(seed, fam, spec.key) == "validation":
            continue  # the validation split's key: left out, its number stays unused
        yielded += 1
        yield row
