"""Output comparison: CodeContests' rule, an exact mode, and call-based (TACO) return values.

CodeContests (deepmind/code_contests, execution/tester_sandboxer.cc, OutputsMatch) splits both
outputs on whitespace, lower-cases them, and compares token by token: two integers must be equal,
a token that is a float on either side matches within an absolute 1e-5, anything else must be
equal as text. Where we depart, and why:
- integers are compared exactly at any size (CodeContests parses tokens beyond int32 as doubles,
  so 10**18 and 10**18 + 1 compare equal there);
- a number is what the regular expression below accepts (C's strtod also takes "inf", "nan",
  hex floats; those compare as text here, which they equal when printed the same way).
"""

from __future__ import annotations

import math
import re

FLOAT_TOLERANCE = 1e-5

_INT = re.compile(rb"[+-]?[0-9]+")
_FLOAT = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def tokens(output: bytes) -> list[bytes]:
    """Whitespace-separated, ASCII-lower-cased tokens.

    >>> tokens(b" Yes\\n 1  2.50\\r\\n")
    [b'yes', b'1', b'2.50']
    """
    return output.lower().split()


def _int_key(tok: bytes) -> bytes:
    """Canonical text of an integer token: no '+', no leading zeros, no '-0'."""
    neg = tok[:1] == b"-"
    digits = tok.lstrip(b"+-").lstrip(b"0") or b"0"
    return (b"-" if neg and digits != b"0" else b"") + digits


def tokens_match(a: bytes, b: bytes, tol: float = FLOAT_TOLERANCE) -> bool:
    """One token pair under the CodeContests rule.

    >>> tokens_match(b"007", b"7"), tokens_match(b"0.1000001", b"0.1"), tokens_match(b"1", b"1.0")
    (True, True, True)
    >>> tokens_match(b"abc", b"abd"), tokens_match(b"3", b"4"), tokens_match(b"0.1", b"0.2")
    (False, False, False)
    """
    if a == b:
        return True
    a_int, b_int = _INT.fullmatch(a) is not None, _INT.fullmatch(b) is not None
    if a_int and b_int:
        return _int_key(a) == _int_key(b)
    if not (a_int or _FLOAT.fullmatch(a)) or not (b_int or _FLOAT.fullmatch(b)):
        return False  # text on either side: must be equal, and it is not
    try:
        return abs(float(a) - float(b)) < tol
    except OverflowError:
        return False


def outputs_match(output: bytes, expected: bytes, *, strict: bool = False,
                  tol: float = FLOAT_TOLERANCE) -> bool:
    """Does a program's stdout match the expected output?

    strict: byte-for-byte equality. Otherwise CodeContests' rule (see the module docstring).

    >>> outputs_match(b"YES\\n3 4\\n", b"yes 3 4"), outputs_match(b"3 4", b"3 4 5")
    (True, False)
    >>> outputs_match(b"3 4\\n", b"3 4", strict=True)
    False
    """
    if strict:
        return output == expected
    a, b = tokens(output), tokens(expected)
    if a == b:
        return True
    if len(a) != len(b):
        return False
    return all(tokens_match(x, y, tol) for x, y in zip(a, b))


def values_equal(got, expected, *, strict: bool = False, tol: float = FLOAT_TOLERANCE) -> bool:
    """Equality of JSON values (a call's return value against the expected one); floats within
    `tol` unless strict, booleans never equal to numbers, lists and dicts element-wise."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        if isinstance(got, int) and isinstance(expected, int):
            return got == expected
        if strict:
            return got == expected
        if math.isnan(got) or math.isnan(expected):
            return math.isnan(got) and math.isnan(expected)
        return abs(got - expected) < tol or math.isclose(got, expected, rel_tol=1e-9)
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(
            values_equal(g, e, strict=strict, tol=tol) for g, e in zip(got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(
            values_equal(got[k], expected[k], strict=strict, tol=tol) for k in got)
    return type(got) is type(expected) and got == expected


def call_result_matches(got, expected, *, strict: bool = False) -> bool:
    """A call-based test: TACO often stores the return value wrapped in a one-element list,
    so `[got] == expected` is accepted as well as `got == expected`.

    >>> call_result_matches(3, [3]), call_result_matches([1, 2], [1, 2]), call_result_matches(3, 4)
    (True, True, False)
    """
    if values_equal(got, expected, strict=strict):
        return True
    return (isinstance(expected, list) and len(expected) == 1
            and values_equal(got, expected[0], strict=strict))
