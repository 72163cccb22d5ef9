"""plain.py: the codec every value crosses the sandbox boundary in, and its frames."""

from __future__ import annotations

import math
import random
import struct

import pytest

from spo_cli.judge.plain import (
    DecodeError,
    EncodeError,
    Pairs,
    SetOf,
    decode,
    encode,
    frame,
    split_frames,
)

VALUES = [None, True, False, 0, -1, 2**63 - 1, -2**63, 2**63, -2**63 - 1, 10**400, 1.5, -0.0,
          math.inf, -math.inf, 1 + 2j, "", "héllo", "\udc80 lone", b"", b"\x00\xff",
          bytearray(b"ab"), [], (), {}, set(), frozenset(), [1, [2, (3, "x")]],
          {1: [None], "k": {2.5: (True,)}}, {1, 2, "3"}, frozenset({(1, 2)}), ((),) * 3]


@pytest.mark.parametrize("v", VALUES, ids=[repr(v)[:30] for v in VALUES])
def test_round_trip_keeps_value_and_exact_type(v):
    d = decode(encode(v))
    assert repr(d) == repr(v) and type(d) is type(v)


def test_nan_survives():
    assert math.isnan(decode(encode(float("nan"))))


def test_random_nested_values_round_trip():
    rng = random.Random(12)

    def gen(depth):
        k = rng.randrange(9 if depth < 6 else 5)
        if k == 0:
            return rng.randint(-10**30, 10**30)
        if k == 1:
            return rng.random()
        if k == 2:
            return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(5)))
        if k == 3:
            return rng.choice([None, True, False])
        if k == 4:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(4)))
        if k == 5:
            return [gen(depth + 1) for _ in range(rng.randrange(4))]
        if k == 6:
            return tuple(gen(depth + 1) for _ in range(rng.randrange(4)))
        if k == 7:
            return {rng.randint(0, 99): gen(depth + 1) for _ in range(rng.randrange(4))}
        return frozenset(rng.randint(0, 9) for _ in range(rng.randrange(4)))

    for _ in range(300):
        v = gen(0)
        assert decode(encode(v)) == v


def test_subclasses_travel_as_their_base_value():
    class Lie(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class S(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    for v, want in ((Lie(3), 3), (S("a"), "a"), (Pairs([1]), [1])):
        d = decode(encode(v))
        assert type(d) is type(want) and d == want
    assert decode(encode(Lie(3))) != 4


def test_anything_else_is_refused_or_a_handle():
    class Obj:
        pass

    with pytest.raises(EncodeError, match="not plain data"):
        encode(Obj())
    with pytest.raises(EncodeError):
        encode([lambda: 1])
    table = []
    blob = encode([Obj(), 5], handle=lambda o: table.append(o) or len(table) - 1)
    with pytest.raises(DecodeError, match="handle"):
        decode(blob)  # only a receiver that asks for handles gets them
    got = decode(blob, handle=lambda hid, name: ("handle", hid, name))
    assert got == [("handle", 0, "Obj"), 5]


def test_objects_only_when_asked_both_ways():
    class Node:
        def __init__(self, v, nxt=None):
            self.v, self.nxt = v, nxt

    n = Node(1, Node(2))
    with pytest.raises(EncodeError):
        encode(n)
    blob = encode(n, objects=True)
    with pytest.raises(DecodeError, match="object"):
        decode(blob)
    got = decode(blob, objects=lambda name, attrs: (name, attrs))
    assert got == ("Node", {"v": 1, "nxt": ("Node", {"v": 2, "nxt": None})})


def test_depth_cycles_and_size_are_bounded_without_recursion():
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(EncodeError, match="deeper"):
        encode(deep)
    cyc = []
    cyc.append(cyc)
    with pytest.raises(EncodeError, match="cyclic"):
        encode(cyc)
    with pytest.raises(EncodeError, match="larger"):
        encode("x" * 2000, max_bytes=1000)
    with pytest.raises(EncodeError, match="larger"):
        encode([1] * 1000, max_bytes=1000)
    # a deep value made of bytes by hand: refused by depth, not by a RecursionError
    with pytest.raises(DecodeError, match="deeper"):
        decode(b"l\x01\x00\x00\x00" * 100_000 + b"N")


@pytest.mark.parametrize("blob", [
    b"", b"[" * 100_000, b"Q", b"i\x00", b"s\xff\xff\xff\xff", b"l\xff\xff\xff\x7f", b"NN",
    b"d\x01\x00\x00\x00l\x00\x00\x00\x00N",  # an unhashable key
    b"s\x02\x00\x00\x00\xff\xfe",  # not UTF-8
    b"o\x01\x00x" + b"N",  # an object whose attributes are not a dict
])
def test_malformed_bytes_raise_decode_error_only(blob):
    with pytest.raises(DecodeError):
        decode(blob, objects=lambda name, attrs: None)


def test_fuzzed_bytes_never_raise_anything_but_decode_error():
    rng = random.Random(7)
    good = encode([1, "two", (3.0, None), {4: b"5"}, {6, 7}])
    for _ in range(3000):
        b = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        try:
            decode(bytes(b))
        except DecodeError:
            pass


def test_decoding_without_hashing_builds_no_dict_or_set():
    m = (1 << 61) - 1  # ints congruent mod this share a hash value
    keys = [m * i + 1 for i in range(1, 2000)]
    d = decode(encode(dict.fromkeys(keys)), hashing=False)
    assert isinstance(d, Pairs) and [k for k, _ in d] == keys
    s = decode(encode(frozenset({1, 2})), hashing=False)
    assert isinstance(s, SetOf) and s.frozen and sorted(s) == [1, 2]


def test_numpy_arrays_only_of_numbers():
    np = pytest.importorskip("numpy")
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    got = decode(encode(a, arrays=True), arrays=True)
    assert got.dtype == a.dtype and (got == a).all()
    assert decode(encode(a)) == [[0, 1, 2], [3, 4, 5]]  # as a list unless arrays are asked for
    with pytest.raises(DecodeError, match="array"):
        decode(encode(a, arrays=True))
    assert type(decode(encode(np.int64(7)))) is int and type(decode(encode(np.bool_(1)))) is bool
    with pytest.raises(EncodeError):
        encode(np.array([object()]), arrays=True)

    def forged(dtype, shape, raw):
        return (b"a" + encode((dtype, shape, raw)))

    for dtype, shape, raw in (("|O", (1,), b"\0" * 8), ("|V8", (1,), b"\0" * 8),
                              ("<i4", (3,), b"\0" * 8), ("<i4", (-1,), b"")):
        with pytest.raises(DecodeError):
            decode(forged(dtype, shape, raw), arrays=True)


def test_frames_split_and_stop_at_the_first_bad_one():
    blob = frame(b"R", b"abc") + frame(b"D") + struct.pack("<IB", 99, ord("X")) + b"cut"
    assert split_frames(blob) == [(b"R", b"abc"), (b"D", b"")]
    assert split_frames(b"\x00\x00\x00\x00R") == []
    assert split_frames(b"[" * 100_000) == []
    assert len(split_frames(frame(b"T") * 10, max_frames=3)) == 3
