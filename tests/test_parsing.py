import pytest

from spo_cli.errors import BadInput
from spo_cli.parsing import parse_int_list, parse_number_or_range, parse_range


def test_range_forms_and_bounds():
    assert parse_range("0.2,0.8", "--p-range") == (0.2, 0.8)
    assert parse_range(" 0.2 : 1.2 ", "--x") == (0.2, 1.2)
    assert parse_range("1,1", "--x", lo=0, hi=1) == (1.0, 1.0)
    for bad in ("0.8,0.2", "a,b", "1", "1,2,3", "nan,1", "", "0,inf"):
        with pytest.raises(BadInput, match="--x"):
            parse_range(bad, "--x")
    with pytest.raises(BadInput, match=r"\[0, 1\]"):
        parse_range("0.5,1.5", "--x", lo=0, hi=1)
    with pytest.raises(BadInput):
        parse_range("-0.1,0.5", "--x", lo=0)


def test_number_or_range():
    assert parse_number_or_range("0.7", "--t") == (0.7, 0.7)
    assert parse_number_or_range("0.2,1.2", "--t") == (0.2, 1.2)
    with pytest.raises(BadInput, match="--t"):
        parse_number_or_range("-1", "--t", lo=0)


def test_int_list():
    assert parse_int_list("10,1,10", "-k") == [1, 10]
    assert parse_int_list(" 1, 5 ,", "-k") == [1, 5]
    for bad in ("", "a", "1.5", ","):
        with pytest.raises(BadInput, match="-k"):
            parse_int_list(bad, "-k")
    with pytest.raises(BadInput, match=">= 1"):
        parse_int_list("0,1", "-k", minimum=1)
