"""Output comparison: CodeContests' rule, an exact mode, and call-based (TACO) return values.

CodeContests (deepmind/code_contests, execution/tester_sandboxer.cc, OutputsMatch) splits both
outputs on whitespace, lower-cases them, and compares token by token: two integers must be equal,
a token that is a float on either side matches within an absolute 1e-5, anything else must be
equal as text. Where we depart, and why:
- a token that is an integer in the expected output matches only the same integer, at any size
  (CodeContests parses tokens beyond int32 as doubles, so 10**18 and 10**18 + 1 compare equal
  there, and a float spelling such as 1.0 or 1000000000000000000.0 matches an integer); floats
  in the expected output keep the 1e-5 tolerance, against integer or float tokens;
- a number is what the regular expression below accepts (C's strtod also takes "inf", "nan",
  hex floats; those compare as text here, which they equal when printed the same way).
"""

from __future__ import annotations

import math
import re

from spo_cli.judge.plain import Pairs, SetOf

FLOAT_TOLERANCE = 1e-5

# Possessive quantifiers: linear time on any token (the plain form backtracks polynomially,
# and a program's output is a token of up to the output limit).
_TOKEN = re.compile(rb"[^ \t\n\r\x0b\x0c]+")  # what bytes.split() splits on
_INT = re.compile(rb"[+-]?+[0-9]++")
_FLOAT = re.compile(rb"[+-]?+(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][+-]?+[0-9]++)?+")


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
    """One token of the output (`a`) against the expected token (`b`).

    >>> tokens_match(b"007", b"7"), tokens_match(b"0.1000001", b"0.1"), tokens_match(b"1", b"1.0")
    (True, True, True)
    >>> tokens_match(b"1.0", b"1"), tokens_match(b"1000000000000000000.0", b"1000000000000000001")
    (False, False)
    >>> tokens_match(b"abc", b"abd"), tokens_match(b"3", b"4"), tokens_match(b"0.1", b"0.2")
    (False, False, False)
    """
    if a == b:
        return True
    a_int, b_int = _INT.fullmatch(a) is not None, _INT.fullmatch(b) is not None
    if b_int:  # an expected integer: only the same integer
        return a_int and _int_key(a) == _int_key(b)
    if not (a_int or _FLOAT.fullmatch(a)) or not _FLOAT.fullmatch(b):
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
    b = tokens(expected)
    # The program's tokens one at a time, no more than one past the expected count: its output
    # (up to the output limit, maybe millions of one-byte tokens) is never split whole.
    a = []
    for m in _TOKEN.finditer(output):
        if len(a) == len(b):
            return False
        a.append(m.group().lower())
    if len(a) != len(b):
        return False
    return a == b or all(tokens_match(x, y, tol) for x, y in zip(a, b))


def _json_key(k):
    """The key json.dumps would write for a dict key, or None where it would refuse."""
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        return "true" if k else "false"
    if k is None:
        return "null"
    if type(k) is int:
        try:
            return str(k)
        except ValueError:  # more digits than Python converts: no JSON value has such a key
            return None
    if type(k) is float:
        return "NaN" if k != k else "Infinity" if k == math.inf else "-Infinity" \
            if k == -math.inf else repr(k)
    return None


def _items(d):
    return list(d) if isinstance(d, Pairs) else list(d.items())


def values_equal(got, expected, *, strict: bool = False, tol: float = FLOAT_TOLERANCE) -> bool:
    """A call's return value (`got`: plain data, possibly decoded without hashing) against the
    expected JSON value. An expected integer matches only the same int (not a float, not a
    bool); an expected float matches an int or float within `tol` (unless strict); booleans are
    never numbers; tuples count as lists and dict keys as json.dumps writes them (JSON has
    neither tuples nor non-string keys); sets, bytes and complex numbers match nothing.
    Iterative: any nesting depth."""
    stack = [(got, expected)]
    while stack:
        g, e = stack.pop()
        te = type(e)
        if te is bool or type(g) is bool:
            if type(g) is not te or g != e:
                return False
        elif te is int:
            if type(g) is not int or g != e:
                return False
        elif te is float:
            if type(g) not in (int, float):
                return False
            if strict:
                if not (g == e or (g != g and e != e)):
                    return False
            elif math.isnan(g) or math.isnan(e):
                if not (math.isnan(g) and math.isnan(e)):
                    return False
            elif not (abs(g - e) < tol or math.isclose(g, e, rel_tol=1e-9)):
                return False
        elif te is list:
            if type(g) not in (list, tuple) or len(g) != len(e):
                return False
            stack.extend(zip(g, e))
        elif te is dict:
            if not isinstance(g, (dict, Pairs)) or isinstance(g, SetOf):
                return False
            norm = {}
            for k, v in _items(g):
                jk = _json_key(k)
                if jk is None or jk in norm:
                    return False
                norm[jk] = v
            if norm.keys() != e.keys():
                return False
            stack.extend((norm[k], e[k]) for k in e)
        elif te is str or e is None:
            if type(g) is not te or g != e:
                return False
        else:
            return False
    return True


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
