"""pg_codecs.types: the value classes, with asyncpg.types' behaviour."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

from pg_codecs import types
from pg_codecs.types import (
    Attribute,
    BitString,
    Box,
    Circle,
    Line,
    LineSegment,
    Path,
    Point,
    Polygon,
    Range,
    ServerVersion,
    Type,
)

# -- Range ---------------------------------------------------------------------


def test_range_defaults() -> None:
    r: Range[int] = Range(1, 5)
    assert (r.lower, r.upper, r.lower_inc, r.upper_inc) == (1, 5, True, False)
    assert not r.lower_inf and not r.upper_inf and not r.isempty
    assert bool(r)
    assert repr(r) == "<Range [1, 5)>"
    assert str(r) == repr(r)


def test_range_unbounded_sides_are_exclusive() -> None:
    r: Range[int] = Range(None, 5, lower_inc=True, upper_inc=True)
    assert r.lower_inf and not r.lower_inc and r.upper_inc
    assert repr(r) == "<Range (, 5]>"
    assert repr(Range()) == "<Range (, )>"
    assert Range().lower_inf and Range().upper_inf


def test_range_empty() -> None:
    r: Range[int] = Range(1, 5, empty=True)
    assert r.isempty and not r
    assert r.lower is None and r.upper is None
    assert not r.lower_inf and not r.upper_inf
    assert not r.lower_inc and not r.upper_inc
    assert repr(r) == "<Range empty>"
    assert r == Range(empty=True)


def test_range_equality_and_hash() -> None:
    assert Range(1, 5) == Range(1, 5)
    assert Range(1, 5) != Range(1, 5, upper_inc=True)
    assert hash(Range(1, 5)) == hash(Range(1, 5))
    assert Range(1, 5) != (1, 5)
    assert {Range(1, 2): "x"}[Range(1, 2)] == "x"


def test_range_subset() -> None:
    outer: Range[int] = Range(1, 10)
    assert Range(2, 5).issubset(outer)
    assert outer.issuperset(Range(2, 5))
    assert Range(1, 10).issubset(outer)
    assert not Range(1, 10, upper_inc=True).issubset(outer)
    assert not Range(0, 5).issubset(outer)
    assert Range(empty=True).issubset(outer)
    assert not outer.issubset(Range(empty=True))
    assert Range(2, 5).issubset(Range())
    assert not Range().issubset(outer)
    assert Range(1, 5, lower_inc=False).issubset(Range(1, 5))


def test_range_pickles() -> None:
    r: Range[int] = Range(1, 5, upper_inc=True)
    assert pickle.loads(pickle.dumps(r)) == r


def test_range_is_generic() -> None:
    assert Range[int] is not None


# -- BitString -----------------------------------------------------------------


def test_bitstring_from_text() -> None:
    b = BitString("1010 1")
    assert len(b) == 5
    assert b.bytes == b"\xa8"
    assert b.as_string() == "1010 1"
    assert repr(b) == "<BitString 1010 1>"
    assert [b[i] for i in range(5)] == [1, 0, 1, 0, 1]
    assert BitString("").bytes == b"" and len(BitString()) == 0
    assert BitString("   ") == BitString()
    assert BitString("11111111 1").bytes == b"\xff\x80"


def test_bitstring_invalid() -> None:
    with pytest.raises(ValueError, match="position 2"):
        BitString("102")


def test_bitstring_indexing() -> None:
    b = BitString("101")
    with pytest.raises(IndexError):
        b[3]
    with pytest.raises(NotImplementedError):
        b[0:2]  # type: ignore[call-overload]


def test_bitstring_frombytes() -> None:
    assert BitString.frombytes(b"\xa8", 5) == BitString("10101")
    assert len(BitString.frombytes(b"\x01\x02")) == 16
    assert BitString.frombytes() == BitString()
    for bytes_, bitlength in [(b"", 1), (b"\x01", 0), (b"\x01\x02", 7), (b"\x01", 9)]:
        with pytest.raises(ValueError, match="bit length"):
            BitString.frombytes(bytes_, bitlength)


def test_bitstring_ints() -> None:
    b = BitString("1101")
    assert b.to_int() == 13
    assert b.to_int("little") == 11
    assert b.to_int(signed=True) == -3
    assert BitString.from_int(13, 4) == b
    assert BitString.from_int(11, 4, "little") == b
    assert BitString.from_int(-3, 4, signed=True) == b
    assert BitString.from_int(0, 0) == BitString()
    assert BitString.from_int(5, 12).as_string() == "0000 0000 0101"
    with pytest.raises(OverflowError):
        BitString.from_int(16, 4)
    with pytest.raises(OverflowError):
        BitString.from_int(-1, 4)
    with pytest.raises(ValueError):
        BitString.from_int(1, -1)
    with pytest.raises(ValueError, match="bitorder"):
        b.to_int("middle")  # type: ignore[arg-type]


def test_bitstring_eq_hash_pickle() -> None:
    assert BitString("101") == BitString.frombytes(b"\xa0", 3)
    assert BitString("101") != BitString("1010")
    assert hash(BitString("101")) == hash(BitString("101"))
    assert BitString("101") != "101"
    assert pickle.loads(pickle.dumps(BitString("1011 0"))) == BitString("1011 0")


# -- geometry ------------------------------------------------------------------


def test_point() -> None:
    p = Point(1, "2.5")
    assert p == (1.0, 2.5)
    assert isinstance(p, tuple)
    assert (p.x, p.y) == (1.0, 2.5)
    assert repr(p) == "pg_codecs.types.Point((1.0, 2.5))"
    assert pickle.loads(pickle.dumps(p)) == p


def test_box_lseg() -> None:
    b = Box((1, 2), [3, 4])
    assert b == ((1.0, 2.0), (3.0, 4.0))
    assert type(b.high) is Point and b.low == (3.0, 4.0)
    assert repr(b).startswith("pg_codecs.types.Box((pg_codecs.types.Point((1.0, 2.0)),")
    s = LineSegment((1, 2), (3, 4))
    assert s == b and (s.p1, s.p2) == ((1, 2), (3, 4))
    assert pickle.loads(pickle.dumps(b)) == b


def test_line() -> None:
    line = Line(1, 2, 3)
    assert line == (1, 2, 3) and (line.A, line.B, line.C) == (1, 2, 3)
    assert repr(line) == "(1, 2, 3)"


def test_circle() -> None:
    c = Circle((1, 2), 3)
    assert c == ((1, 2), 3)
    assert type(c.center) is Point and c.radius == 3
    assert pickle.loads(pickle.dumps(c)) == c


def test_path_polygon() -> None:
    p = Path((1, 2), (3, 4))
    assert not p.is_closed
    assert len(p) == 2 and list(p) == [(1, 2), (3, 4)] and p[1] == (3, 4)
    assert p[0:1] == (Point(1, 2),)
    assert (1, 2) in p
    assert p == Path((1, 2), (3, 4))
    assert p != Path((1, 2), (3, 4), is_closed=True)
    assert hash(p) == hash(Path((1, 2), (3, 4)))
    assert repr(p) == "<Path [(1.0, 2.0), (3.0, 4.0)]>"
    poly = Polygon((0, 0), (1, 1))
    assert poly.is_closed
    assert poly == Path((0, 0), (1, 1), is_closed=True)
    assert isinstance(poly, Path)
    assert repr(poly) == "<Polygon [(0.0, 0.0), (1.0, 1.0)]>"
    assert pickle.loads(pickle.dumps(poly)) == poly


# -- schema tuples ---------------------------------------------------------------


def test_named_tuples() -> None:
    t = Type(23, "int4", "scalar", "pg_catalog")
    assert t.oid == 23 and t == (23, "int4", "scalar", "pg_catalog")
    assert Attribute("a", t).type is t
    v = ServerVersion(16, 2, 0, "final", 0)
    assert v >= (16, 0) and v.releaselevel == "final"
    assert set(types.__all__) == {
        "Attribute", "BitString", "Box", "Circle", "Line", "LineSegment", "Path", "Point",
        "Polygon", "Range", "ServerVersion", "Type"}


# -- parity with asyncpg, when it is installed ---------------------------------------


def _apg() -> Any:
    return pytest.importorskip("asyncpg.types")


def test_parity_range_with_asyncpg() -> None:
    apg = _apg()
    rnd = random.Random(3904)
    choices = [None, 1, 2, 3, 5]
    for _ in range(3000):
        kw = {"lower_inc": rnd.random() < 0.5, "upper_inc": rnd.random() < 0.5,
              "empty": rnd.random() < 0.1}
        a, b = rnd.choice(choices), rnd.choice(choices)
        c, d = rnd.choice(choices), rnd.choice(choices)
        ours, theirs = Range(a, b, **kw), apg.Range(a, b, **kw)
        other_ours, other_theirs = Range(c, d), apg.Range(c, d)
        assert repr(ours) == repr(theirs)
        for attr in ("lower", "upper", "lower_inc", "upper_inc", "lower_inf", "upper_inf",
                     "isempty"):
            assert getattr(ours, attr) == getattr(theirs, attr)
        assert bool(ours) == bool(theirs)
        try:
            expected = theirs.issubset(other_theirs)
        except TypeError:
            continue
        assert ours.issubset(other_ours) == expected
        assert ours.issuperset(other_ours) == theirs.issuperset(other_theirs)


def test_parity_bitstring_with_asyncpg() -> None:
    apg = _apg()
    rnd = random.Random(1560)
    for _ in range(2000):
        n = rnd.randint(0, 30)
        text = "".join(rnd.choice("01 ") for _ in range(n))
        ours, theirs = BitString(text), apg.BitString(text)
        assert (ours.bytes, len(ours), ours.as_string(), repr(ours)) == (
            theirs.bytes, len(theirs), theirs.as_string(), repr(theirs))
        for order in ("big", "little"):
            for signed in (False, True):
                assert ours.to_int(order, signed=signed) == theirs.to_int(order, signed=signed)
        bits = len(ours)
        x = rnd.randint(-(2**bits), 2**bits)
        for order in ("big", "little"):
            try:
                expected = apg.BitString.from_int(x, bits, order, signed=True)
            except OverflowError:
                with pytest.raises(OverflowError):
                    BitString.from_int(x, bits, order, signed=True)
                continue
            got = BitString.from_int(x, bits, order, signed=True)
            assert (got.bytes, len(got)) == (expected.bytes, len(expected))


def test_parity_geometry_equality_with_asyncpg() -> None:
    apg = _apg()
    assert Point(1, 2) == apg.Point(1, 2)
    assert Box((1, 2), (3, 4)) == apg.Box((1, 2), (3, 4))
    assert Circle((1, 2), 3) == apg.Circle((1, 2), 3)
    assert Line(1, 2, 3) == apg.Line(1, 2, 3)
    assert LineSegment((1, 2), (3, 4)) == apg.LineSegment((1, 2), (3, 4))
    assert tuple(Path((1, 2), (3, 4)).points) == tuple(apg.Path((1, 2), (3, 4)).points)
