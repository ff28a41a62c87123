"""Record behaviour, compared with asyncpg's Record for the same query."""

from __future__ import annotations

import collections.abc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import acon, close_quietly, con, connect, exc, pg, ref

__all__ = ["acon", "con"]

QUERIES = [
    "SELECT 1 AS a, 'two' AS b, NULL::int AS c",
    "SELECT",  # no columns
    "SELECT 1 AS a, 2 AS a, 3 AS b, 4 AS a",  # duplicate names
    # (PostgreSQL has no zero-length column names: "" is a syntax error)
    'SELECT 1 AS "__class__", 2 AS " ", 3 AS "select * from t; --", 4 AS "a b", 5 AS "ü✓"',
    'SELECT 1 AS "keys", 2 AS "values", 3 AS "items", 4 AS "get", 5 AS "__len__", 6 AS "0"',
    'SELECT 1 AS "\'q\'", 2 AS "x""y", 3 AS "__dict__", 4 AS "__slots__"',
    "SELECT 1, 2, 3",  # ?column? names
    "SELECT ARRAY[1, 2] AS arr, ROW(1, 'x') AS rec, '{\"k\": 1}'::jsonb AS j",
    "SELECT g AS n FROM generate_series(1, 1) g",
]

_MISSING = object()

OPS: dict[str, Callable[[Any], Any]] = {
    "len": len,
    "tuple": tuple,
    "list": list,
    "iter": lambda r: list(iter(r)),
    "keys": lambda r: list(r.keys()),
    "values": lambda r: list(r.values()),
    "items": lambda r: list(r.items()),
    "dict": dict,
    "repr": repr,
    "str": str,
    "bool": bool,
    "idx0": lambda r: r[0],
    "idx1": lambda r: r[1],
    "idx-1": lambda r: r[-1],
    "idx99": lambda r: r[99],
    "idx-99": lambda r: r[-99],
    "slice": lambda r: r[1:],
    "slice_step": lambda r: r[::2],
    "slice_neg": lambda r: r[-2:],
    "slice_empty": lambda r: r[5:1],
    "key_a": lambda r: r["a"],
    "key_b": lambda r: r["b"],
    "key_empty": lambda r: r[""],
    "key_space": lambda r: r[" "],
    "key_class": lambda r: r["__class__"],
    "key_sql": lambda r: r["select * from t; --"],
    "key_missing": lambda r: r["nope"],
    "key_float": lambda r: r[1.0],
    "key_none": lambda r: r[None],
    "key_column": lambda r: r["?column?"],
    "get_a": lambda r: r.get("a"),
    "get_missing": lambda r: r.get("nope"),
    "get_default": lambda r: r.get("nope", 42),
    "get_present_default": lambda r: r.get("a", 42),
    "in_a": lambda r: "a" in r,
    "in_missing": lambda r: "nope" in r,
    "in_value_1": lambda r: 1 in r,
    "in_empty": lambda r: "" in r,
    "in_space": lambda r: " " in r,
    "eq_tuple": lambda r: r == tuple(r),
    "tuple_eq": lambda r: tuple(r) == r,
    "ne_tuple": lambda r: r != tuple(r),
    "eq_other": lambda r: r == (1, 2, 3, 4, 5, 6, 7),
    "eq_list": lambda r: r == list(r),
    "lt_tuple": lambda r: r < (*tuple(r), 0),
    "ge_tuple": lambda r: r >= tuple(r),
    "hash_eq": lambda r: hash(r) == hash(tuple(r)),
    "is_tuple": lambda r: isinstance(r, tuple),
    "is_mapping": lambda r: isinstance(r, collections.abc.Mapping),
    "is_sequence": lambda r: isinstance(r, collections.abc.Sequence),
    "attr_a": lambda r: r.a,
    "class_name": lambda r: type(r).__name__,
    "reversed": lambda r: list(reversed(r)),
}


def _outcome(op: Callable[[Any], Any], r: Any) -> tuple[str, Any]:
    try:
        value = op(r)
    except Exception as e:
        return ("raises", type(e).__name__)
    if isinstance(value, (pg.Record, ref.Record)):
        return ("record", tuple(value.items()))
    return ("value", value)


@pytest.mark.parametrize("query", QUERIES)
async def test_record_matches_asyncpg(con: Any, acon: Any, query: str) -> None:
    ours = await con.fetchrow(query)
    theirs = await acon.fetchrow(query)
    assert isinstance(ours, pg.Record)
    mismatches = {}
    for name, op in OPS.items():
        got, expected = _outcome(op, ours), _outcome(op, theirs)
        if got != expected:
            mismatches[name] = (got, expected)
    assert mismatches == {}


async def test_record_nested_values(con: Any, acon: Any) -> None:
    # An anonymous record value decodes as asyncpg does it (a plain tuple).
    q = "SELECT ROW(1, ROW('x', 2.5)) AS outer_rec"
    ours, theirs = await con.fetchval(q), await acon.fetchval(q)
    assert type(ours).__name__ == type(theirs).__name__
    assert type(ours[1]).__name__ == type(theirs[1]).__name__
    assert ours == theirs == (1, ("x", 2.5))
    row = await con.fetchrow(q)
    assert repr(row) == repr(await acon.fetchrow(q))


async def test_record_equality_between_rows(con: Any) -> None:
    a, b, c = await con.fetch("SELECT * FROM (VALUES (1, 'x'), (1, 'x'), (2, 'y')) v(n, s)")
    assert a == b
    assert a != c
    assert hash(a) == hash(b)
    assert a < c
    assert len({a, b, c}) == 2
    # a record equals a tuple of its values, whatever the column names
    (d,) = await con.fetch("SELECT 1 AS other, 'x' AS names")
    assert d == a == (1, "x")


async def test_record_cannot_be_created(con: Any) -> None:
    with pytest.raises(TypeError):
        pg.Record()
    with pytest.raises(TypeError):
        pg.Record(1, 2)


async def test_record_is_immutable(con: Any) -> None:
    r = await con.fetchrow("SELECT 1 AS a")
    with pytest.raises(TypeError):
        r[0] = 2
    with pytest.raises(TypeError):
        r["a"] = 2
    with pytest.raises((AttributeError, TypeError)):
        r.a = 2  # type: ignore[attr-defined]


async def test_many_columns(con: Any, acon: Any) -> None:
    cols = ", ".join(f"{i} AS c{i}" for i in range(300))
    ours, theirs = await con.fetchrow(f"SELECT {cols}"), await acon.fetchrow(f"SELECT {cols}")
    assert len(ours) == 300
    assert ours["c299"] == 299
    assert repr(ours) == repr(theirs)
    assert list(ours.items()) == list(theirs.items())


# -- record_class ----------------------------------------------------------------------------


class _Point(pg.Record):  # type: ignore[misc, name-defined]
    __slots__ = ()

    def norm(self) -> float:
        return float((self["x"] ** 2 + self["y"] ** 2) ** 0.5)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


async def test_record_class_on_fetch_and_fetchrow(con: Any) -> None:
    q = "SELECT 3 AS x, 4 AS y"
    row = await con.fetchrow(q, record_class=_Point)
    assert type(row) is _Point
    assert isinstance(row, pg.Record)
    assert row.norm() == 5.0
    assert row.x == 3
    rows = await con.fetch(
        "SELECT g AS x, 0 AS y FROM generate_series(1, 3) g", record_class=_Point
    )
    assert [type(r) for r in rows] == [_Point] * 3
    assert repr(rows[0]) == "<_Point x=1 y=0>"
    # the default is unchanged for other calls
    assert type(await con.fetchrow(q)) is pg.Record
    # fetchmany takes it too
    many = await con.fetchmany("SELECT $1::int AS x, 0 AS y", [(1,), (2,)], record_class=_Point)
    assert [type(r) for r in many] == [_Point, _Point]


async def test_record_class_on_connect(cluster: Any) -> None:
    c = await connect(cluster, record_class=_Point)
    try:
        row = await c.fetchrow("SELECT 6 AS x, 8 AS y")
        assert type(row) is _Point
        assert row.norm() == 10.0
        stmt = await c.prepare("SELECT 1 AS x, 1 AS y")
        assert type(await stmt.fetchrow()) is _Point
        # an explicit record_class still wins
        assert type(await c.fetchrow("SELECT 1", record_class=pg.Record)) is pg.Record
    finally:
        await close_quietly(c)


async def test_record_class_with_init_rejected(con: Any, cluster: Any) -> None:
    class WithInit(pg.Record):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            pass

    class WithNew(pg.Record):  # type: ignore[misc, name-defined]
        def __new__(cls) -> Any:
            return super().__new__(cls)

    for bad in (WithInit, WithNew):
        with pytest.raises(exc.InterfaceError):
            await con.fetchrow("SELECT 1", record_class=bad)
        with pytest.raises(exc.InterfaceError):
            await con.fetch("SELECT 1", record_class=bad)
        with pytest.raises(exc.InterfaceError):
            await connect(cluster, record_class=bad)
    assert await con.fetchval("SELECT 1") == 1


async def test_record_class_not_a_record(con: Any, cluster: Any) -> None:
    with pytest.raises(exc.InterfaceError):
        await con.fetchrow("SELECT 1", record_class=tuple)
    with pytest.raises(exc.InterfaceError):
        await connect(cluster, record_class=dict)


async def test_record_class_message_matches_asyncpg(con: Any, acon: Any) -> None:
    class WithInit(pg.Record):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            pass

    class RefWithInit(ref.Record):
        def __init__(self) -> None:
            pass

    with pytest.raises(ref.InterfaceError) as expected:
        await acon.fetchrow("SELECT 1", record_class=RefWithInit)
    with pytest.raises(exc.InterfaceError) as got:
        await con.fetchrow("SELECT 1", record_class=WithInit)
    assert str(got.value).replace("WithInit", "X") == str(expected.value).replace(
        "RefWithInit", "X"
    )
