"""Output comparison (CodeContests rule, strict mode, call results) and program extraction."""

import doctest

import pytest

from spo_cli.judge import compare, extract
from spo_cli.judge.compare import call_result_matches, outputs_match, tokens_match
from spo_cli.judge.extract import extract_program


@pytest.mark.parametrize("mod", [compare, extract])
def test_doctests(mod):
    assert doctest.testmod(mod).failed == 0


@pytest.mark.parametrize("out, exp, ok", [
    (b"1 2 3\n", b"1 2 3", True),
    (b"1\n2\n3", b"1 2 3", True),                 # whitespace-token-wise, like CodeContests
    (b"  YES \r\n", b"yes\n", True),               # case-insensitive
    (b"0.333333", b"0.3333333333", True),          # within 1e-5
    (b"0.3333", b"0.3333333333", False),           # beyond 1e-5
    (b"0", b"1e-6", True),                         # an expected float: tolerance applies
    (b"1e-6", b"0", False),                        # an expected integer: only that integer
    (b"1.0", b"1", False),
    (b"1000000000000000000.0", b"1000000000000000001", False),  # the case
    (b"1000000000000000000", b"1000000000000000000.0", True),
    (b"100000000000000000001", b"100000000000000000000", False),  # big integers: exact
    (b"-0", b"0", True),
    (b"+5", b"5", True),
    (b"", b"", True),
    (b"", b"0", False),
    (b"1 2", b"1 2 3", False),
    (b"abc", b"ABD", False),
    (b"inf", b"INF", True),
    (b"nan", b"nan", True),                        # as text
    (b"1_000", b"1000", False),                    # Python float() would accept it; we do not
    (b"9" * 5000, b"9" * 5000, True),              # no int() conversion limits
    (b"0" + b"9" * 5000, b"9" * 5000, True),
])
def test_outputs_match(out, exp, ok):
    assert outputs_match(out, exp) is ok


def test_strict_is_byte_exact():
    assert outputs_match(b"1 2\n", b"1 2\n", strict=True)
    assert not outputs_match(b"1 2", b"1 2\n", strict=True)
    assert not outputs_match(b"YES\n", b"yes\n", strict=True)
    assert not outputs_match(b"0.1000001\n", b"0.1\n", strict=True)


def test_tokens_match_is_symmetric_between_non_integers():
    pairs = [(b"1.0", b"1.000001"), (b"a", b"A"), (b"2.5", b"3.5"), (b"1e5", b"100000.0")]
    for a, b in pairs:
        assert tokens_match(a, b) == tokens_match(b, a)


def test_expected_integers_are_exact():
    """An integer in the expected output is matched by the same integer only, however it is
    spelled (leading zeros, sign) and however close a float comes."""
    for got in (b"5.0", b"5.000000001", b"5e0", b"4.9999999", b"inf", b"5.", b"five"):
        assert not tokens_match(got, b"5"), got
    for got in (b"5", b"+5", b"005"):
        assert tokens_match(got, b"5"), got
    big = b"9" * 40
    assert not tokens_match(b"1e40", big) and tokens_match(b"0" + big, big)


@pytest.mark.parametrize("got, exp, ok", [
    (3, [3], True),                  # TACO wraps return values in a one-element list
    (3, 3, True),
    ([1, 2], [1, 2], True),
    ([1, 2], [[1, 2]], True),
    (0.1 + 0.2, 0.3, True),
    (True, 1, False),                # booleans are not numbers
    (True, [True], True),
    ("abc", ["abc"], True),
    ("abc", "ABC", False),
    ({"a": 1}, {"a": 1.0000001}, True),
    (None, [None], True),
    (4, [3], False),
    (3.0, 3, False),                 # an expected int: only an int
    (3.0000000001, [3], False),
    (10**18 + 0.0, 10**18 + 1, False),
    (3, 3.0, True),                  # an expected float: an int within the tolerance is fine
    ((1, 2), [1, 2], True),          # JSON has no tuples
    ({1: "a"}, {"1": "a"}, True),    # ... nor non-string keys (as json.dumps writes them)
    ({1: "a", "1": "b"}, {"1": "b"}, False),
    ({1, 2}, [1, 2], False),         # sets, bytes and complex numbers match nothing in JSON
    (b"ab", "ab", False),
    (1j, [1], False),
])
def test_call_results(got, exp, ok):
    assert call_result_matches(got, exp) is ok


def test_call_results_strict_floats():
    assert not call_result_matches(0.1 + 0.2, 0.3, strict=True)


def test_call_results_any_depth_and_hash_free():
    """Deep values compare without recursion; values decoded without hashing (what the judge
    does with a program's return value) compare like the real ones."""
    from spo_cli.judge import plain

    got = exp = 1
    for _ in range(100_000):
        got, exp = [got], [exp]
    assert call_result_matches(got, exp)
    value = {1: [(2, 3)], "x": {"y": None}}
    decoded = plain.decode(plain.encode(value), hashing=False)
    assert call_result_matches(decoded, {"1": [[2, 3]], "x": {"y": None}})
    assert not call_result_matches(plain.decode(plain.encode({1, 2}), hashing=False), [1, 2])


FENCED = """Let me think about it.

Here is my solution:

```python
import sys
def main():
    print(sum(map(int, sys.stdin.read().split())))
main()
```

For the input
```
1 2
```
it prints 3.
"""


def test_extract_prefers_python_block_over_examples():
    code = extract_program(FENCED)
    assert code.startswith("import sys") and "main()" in code and "1 2" not in code


def test_extract_plain_code_and_unclosed_fence():
    assert extract_program("print(1)") == "print(1)\n"
    assert extract_program("Sure!\n```python\nprint(2)\n") == "print(2)\n"  # cut off mid-block


def test_extract_drops_think_sections_and_dedents():
    text = "<think>```python\nprint('draft')\n```</think>\n1. Code:\n   ```py\n   x = 1\n   print(x)\n   ```\n"
    assert extract_program(text) == "x = 1\nprint(x)\n"


def test_extract_longest_python_block_wins_and_tildes():
    text = "```python\nprint(1)\n```\n~~~python\nimport os\nprint(2)\n~~~\n```cpp\nint main(){}\n```"
    assert extract_program(text) == "import os\nprint(2)\n"
    assert extract_program("```cpp\nint main(){}\n```") == "int main(){}\n"  # nothing else: CE


def test_huge_outputs_are_compared_in_bounded_time_and_memory():
    """A program's output is up to the output limit: millions of one-byte tokens, or one token
    of millions of digits. Neither may cost the judge memory or time beyond its size."""
    import time
    import tracemalloc

    tracemalloc.start()
    t = time.perf_counter()
    try:
        assert not outputs_match(b"a " * (8 << 20), b"a a a")
        assert not outputs_match(b"9" * (8 << 20) + b"x", b"0.5")
        assert not outputs_match(b"9" * (8 << 20), b"0.5")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, peak  # no list of 8M tokens (that would be ~500 MB)
    assert time.perf_counter() - t < 30
