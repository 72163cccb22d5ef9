"""One parser per kind of option value, so every command reads `LO,HI` or `1,10` the same way.

    parse_range("0.2,1.2", "--temperature-range")            -> (0.2, 1.2)
    parse_number_or_range("0.7", "--temperature-range")      -> (0.7, 0.7)
    parse_int_list("10,1,10", "-k")                          -> [1, 10]

Errors are BadInput (exit code 2) naming the option and what was wrong, so a command can call
these from its body or from a typer callback alike.
"""

from __future__ import annotations

import math

from spo_cli.errors import BadInput


def _floats(text: str, option: str, example: str) -> list[float]:
    parts = [p.strip() for p in str(text).replace(":", ",").split(",")]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise BadInput(f"{option}: want {example}, got {text!r}") from None
    if not all(math.isfinite(x) for x in nums):
        raise BadInput(f"{option}: numbers must be finite, got {text!r}")
    return nums


def parse_range(text: str, option: str, *, lo: float | None = None,
                hi: float | None = None) -> tuple[float, float]:
    """'LO,HI' (or 'LO:HI') with LO <= HI, both within [lo, hi] where given."""
    nums = _floats(text, option, "LO,HI such as 0.2,0.8")
    if len(nums) != 2:
        raise BadInput(f"{option}: want exactly two numbers LO,HI, got {text!r}")
    a, b = nums
    if a > b:
        raise BadInput(f"{option}: LO must not exceed HI, got {text!r}")
    if (lo is not None and a < lo) or (hi is not None and b > hi):
        bounds = f"[{-math.inf if lo is None else lo:g}, {math.inf if hi is None else hi:g}]"
        raise BadInput(f"{option}: LO and HI must lie in {bounds}, got {text!r}")
    return a, b


def parse_number_or_range(text: str, option: str, *, lo: float | None = None,
                          hi: float | None = None) -> tuple[float, float]:
    """One number X (read as the range X,X) or 'LO,HI'."""
    nums = _floats(text, option, "a number or LO,HI such as 0.2,1.2")
    if len(nums) == 1:
        return parse_range(f"{nums[0]},{nums[0]}", option, lo=lo, hi=hi)
    return parse_range(text, option, lo=lo, hi=hi)


def parse_int_list(text: str, option: str, *, minimum: int | None = None) -> list[int]:
    """'1,10' -> sorted distinct integers, each >= minimum where given."""
    parts = [p for p in str(text).replace(" ", "").split(",") if p]
    try:
        values = sorted({int(p) for p in parts})
    except ValueError:
        raise BadInput(f"{option}: want a list of integers such as 1,10, got {text!r}") from None
    if not values:
        raise BadInput(f"{option}: want at least one integer, got {text!r}")
    if minimum is not None and values[0] < minimum:
        raise BadInput(f"{option}: every value must be >= {minimum}, got {text!r}")
    return values
