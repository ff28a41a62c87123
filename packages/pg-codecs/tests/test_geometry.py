"""Geometric types <-> pg_codecs.types (pg_codecs._geometry).

Every coordinate is a big-endian float8; path has a closed flag byte and
path/polygon an int32 point count before the points.
"""

from __future__ import annotations

import math
import random
import struct
import tracemalloc

import pytest

from pg_codecs import _geometry
from pg_codecs.errors import DecodeError
from pg_codecs.types import Box, Circle, Line, LineSegment, Path, Point, Polygon


def enc(typename: str, value: object) -> bytes:
    return _geometry._encode(typename, value)


def dec(typename: str, data: bytes) -> object:
    return _geometry._decode(typename, data)


def f8(*values: float) -> bytes:
    return b"".join(struct.pack(">d", v) for v in values)


def prefixed(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


ONE_TWO = bytes.fromhex("3ff0000000000000" "4000000000000000")  # 1.0, 2.0


def test_point() -> None:
    assert f8(1.0, 2.0) == ONE_TWO
    assert enc("point", Point(1, 2)) == prefixed(ONE_TWO)
    assert enc("point", (1, 2)) == prefixed(ONE_TWO)
    assert enc("point", [1.0, 2.0]) == prefixed(ONE_TWO)
    got = dec("point", ONE_TWO)
    assert type(got) is Point
    assert got == (1.0, 2.0)
    assert got.x == 1.0 and got.y == 2.0  # type: ignore[attr-defined]


def test_line() -> None:
    assert enc("line", Line(1, 2, 3)) == prefixed(f8(1, 2, 3))
    got = dec("line", f8(1, 2, 3))
    assert type(got) is Line
    assert got == (1.0, 2.0, 3.0)


def test_lseg_and_box() -> None:
    for name, cls in (("lseg", LineSegment), ("box", Box)):
        assert enc(name, cls((1, 2), (3, 4))) == prefixed(f8(1, 2, 3, 4))
        assert enc(name, ((1, 2), (3, 4))) == prefixed(f8(1, 2, 3, 4))
        got = dec(name, f8(1, 2, 3, 4))
        assert type(got) is cls
        assert got == ((1.0, 2.0), (3.0, 4.0))
        assert type(got[0]) is Point  # type: ignore[index]


def test_circle() -> None:
    assert enc("circle", Circle((1, 2), 3)) == prefixed(f8(1, 2, 3))
    assert enc("circle", ((1, 2), 3)) == prefixed(f8(1, 2, 3))
    got = dec("circle", f8(1, 2, 3))
    assert type(got) is Circle
    assert got == ((1.0, 2.0), 3.0)
    assert type(got.center) is tuple  # asyncpg: a plain (x, y) tuple
    assert got.radius == 3.0  # type: ignore[attr-defined]


def test_path() -> None:
    open_body = b"\x00" + struct.pack(">i", 2) + f8(1, 2, 3, 4)
    closed_body = b"\x01" + struct.pack(">i", 2) + f8(1, 2, 3, 4)
    assert enc("path", Path((1, 2), (3, 4))) == prefixed(open_body)
    assert enc("path", Path((1, 2), (3, 4), is_closed=True)) == prefixed(closed_body)
    # asyncpg's convention: a list is an open path, a tuple a closed one.
    assert enc("path", [(1, 2), (3, 4)]) == prefixed(open_body)
    assert enc("path", ((1, 2), (3, 4))) == prefixed(closed_body)
    got = dec("path", closed_body)
    assert type(got) is Path
    assert got == Path((1, 2), (3, 4), is_closed=True)
    assert all(type(p) is Point for p in got)  # type: ignore[attr-defined]
    assert dec("path", open_body) == Path((1, 2), (3, 4))


def test_polygon() -> None:
    body = struct.pack(">i", 3) + f8(0, 0, 1, 0, 0, 1)
    assert enc("polygon", Polygon((0, 0), (1, 0), (0, 1))) == prefixed(body)
    assert enc("polygon", [(0, 0), (1, 0), (0, 1)]) == prefixed(body)
    got = dec("polygon", body)
    assert type(got) is Polygon
    assert got == Polygon((0, 0), (1, 0), (0, 1))
    assert got.is_closed  # type: ignore[attr-defined]


def test_special_floats() -> None:
    got = dec("point", f8(math.inf, math.nan))
    assert got[0] == math.inf and math.isnan(got[1])  # type: ignore[index]
    assert enc("point", (-0.0, math.inf)) == prefixed(f8(-0.0, math.inf))


@pytest.mark.parametrize(
    ("typename", "value", "exc"),
    [
        ("point", (1, 2, 3), ValueError),
        ("point", (1,), ValueError),
        ("point", 5, TypeError),
        ("point", "12", TypeError),
        ("point", ("1", "2"), TypeError),
        ("line", (1, 2), ValueError),
        ("lseg", ((1, 2), (3, "x")), TypeError),
        ("box", ((1, 2),), ValueError),
        ("circle", ((1, 2), None), TypeError),
        ("path", [(1, 2), (3,)], ValueError),
        ("path", [(1, 2), None], TypeError),
        ("path", 7, TypeError),
        ("polygon", [(0, 0), "ab"], TypeError),
        ("polygon", None, TypeError),
    ],
)
def test_bad_values(typename: str, value: object, exc: type[Exception]) -> None:
    # The test hook also checks that nothing partial stays in the buffer.
    with pytest.raises(exc, match=typename):
        enc(typename, value)


@pytest.mark.parametrize(
    ("typename", "data"),
    [
        ("point", f8(1)),
        ("point", f8(1, 2) + b"\x00"),
        ("line", f8(1, 2)),
        ("lseg", f8(1, 2, 3)),
        ("box", f8(1, 2, 3, 4, 5)),
        ("circle", f8(1, 2)),
        ("path", b""),
        ("path", b"\x00\x00\x00"),
        ("path", b"\x02" + struct.pack(">i", 1) + f8(1, 2)),    # closed flag not 0/1
        ("path", b"\x00" + struct.pack(">i", 2) + f8(1, 2)),    # count says 2, one point
        ("path", b"\x00" + struct.pack(">i", 0) + f8(1, 2)),    # count says 0, one point
        ("path", b"\x00" + struct.pack(">i", -1)),
        ("path", b"\x00" + struct.pack(">i", 2**31 - 1) + f8(1, 2)),
        ("polygon", struct.pack(">i", 3) + f8(1, 2, 3, 4)),
        ("polygon", struct.pack(">i", -5)),
        ("polygon", struct.pack(">i", 1) + f8(1, 2) + b"\x00"),
    ],
)
def test_malformed(typename: str, data: bytes) -> None:
    with pytest.raises(DecodeError):
        dec(typename, data)


def test_lying_point_count_is_cheap() -> None:
    data = struct.pack(">i", 2**31 - 1) + f8(1, 2)
    # Refused from the count and the length: nothing of the claimed size is
    # allocated or read.
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            dec("polygon", data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_round_trip_random() -> None:
    rnd = random.Random(600)
    for _ in range(500):
        pts = [Point(rnd.uniform(-1e9, 1e9), rnd.uniform(-1e9, 1e9))
               for _ in range(rnd.randint(1, 20))]
        path = Path(*pts, is_closed=rnd.random() < 0.5)
        assert dec("path", enc("path", path)[4:]) == path
        assert dec("polygon", enc("polygon", Polygon(*pts))[4:]) == Polygon(*pts)
        assert dec("box", enc("box", Box(pts[0], pts[-1]))[4:]) == Box(pts[0], pts[-1])
