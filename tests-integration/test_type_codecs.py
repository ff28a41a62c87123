"""Custom type codecs: set_type_codec, reset_type_codec, set_builtin_type_codec.

asyncpg is the specification. Most tests run the same steps on the client
under test (``con``) and on asyncpg (``acon``) and compare the outcomes: the
decoded values (through :func:`norm`, since the two libraries' value classes
never compare equal to each other), or the exception class and message.

What is covered, per format (``text``, ``binary``, ``tuple``):

* scalars (int4, uuid, interval, timestamp[tz], date, time[tz]); the types
  without a tuple form refuse ``format='tuple'``;
* an enum; a composite (tuple only: text and binary are refused); a domain
  (refused: UnsupportedClientFeatureError);
* arrays whose element type has a custom codec; ranges and multiranges whose
  subtype has one (binary and tuple work, text is refused when decoding);
* reset_type_codec; the statement cache being cleared by a codec change;
* encoder and decoder failures; unknown type names; ``schema=``;
* set_builtin_type_codec on a domain over text and on citext;
* reload_schema_state after an enum was dropped and created again.
"""

from __future__ import annotations

import json
import struct
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import acon, con, exc, pg, ref, unique
from test_usage_examples import norm

__all__ = ["acon", "con"]

Outcome = tuple[Any, ...]


async def outcome(fn: Callable[[], Awaitable[Any]]) -> Outcome:
    """('ok', normalised value) or ('err', class name, message first line)."""
    try:
        value = await fn()
    except Exception as e:
        return ("err", type(e).__name__, str(e).split("\n")[0])
    return ("ok", norm(value))


async def both(con: Any, acon: Any, fn: Callable[[Any, Any], Awaitable[Any]]
               ) -> tuple[Outcome, Outcome]:
    """Run ``fn(connection, library)`` on the client under test, then on asyncpg."""
    got = await outcome(lambda: fn(con, pg))
    want = await outcome(lambda: fn(acon, ref))
    return got, want


async def same(con: Any, acon: Any, fn: Callable[[Any, Any], Awaitable[Any]]) -> Outcome:
    got, want = await both(con, acon, fn)
    assert got == want
    return got


@pytest.fixture(scope="module")
async def sch(cluster: Any) -> AsyncIterator[str]:
    """A schema of our own with the user-defined types the tests need."""
    name = unique("codecs")
    c = await ref.connect(cluster.dsn())
    try:
        await c.execute(f"""
            CREATE SCHEMA {name};
            CREATE TYPE {name}.mood AS ENUM ('sad', 'ok', 'happy');
            CREATE TYPE {name}.pair AS (a int4, b text);
            CREATE TYPE {name}.cplx AS (r float8, i float8);
            CREATE DOMAIN {name}.posint AS int4 CHECK (VALUE > 0);
            CREATE DOMAIN {name}.email AS text CHECK (VALUE LIKE '%@%');
            CREATE TYPE {name}.floatrange AS RANGE (subtype = float8);
            CREATE SCHEMA {name}_b;
            CREATE TYPE {name}_b.mood AS ENUM ('sad', 'ok', 'happy');
            CREATE EXTENSION IF NOT EXISTS citext SCHEMA public;
            CREATE EXTENSION IF NOT EXISTS hstore SCHEMA public;
        """)
        yield name
        await c.execute(f"DROP SCHEMA {name} CASCADE; DROP SCHEMA {name}_b CASCADE")
    finally:
        await c.close()


def identity(v: Any) -> Any:
    return v


async def set_codec(c: Any, typename: str, *, schema: str = "pg_catalog",
                    encoder: Callable[[Any], Any] = identity,
                    decoder: Callable[[Any], Any] = identity, format: str = "text") -> None:
    await c.set_type_codec(typename, schema=schema, encoder=encoder, decoder=decoder,
                           format=format)


# -- scalars, each format -------------------------------------------------------------------


async def test_scalar_text_codec(con: Any, acon: Any) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", encoder=lambda v: str(v * 2), decoder=lambda s: f"<{s}>")
        return [
            await c.fetchval("SELECT $1::int4", 21),
            await c.fetchval("SELECT $1::int4 + 1", 21),      # the server got '42'
            await c.fetchval("SELECT NULL::int4"),            # NULL never reaches the codec
            await c.fetchval("SELECT $1::int4 IS NULL", None),
            await c.fetchval("SELECT 7::int8"),               # other integer types untouched
        ]

    assert await same(con, acon, fn) == ("ok", norm(["<42>", "<43>", None, True, 7]))


async def test_scalar_binary_codec(con: Any, acon: Any) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", format="binary",
                        encoder=lambda v: struct.pack("!i", v + 1000),
                        decoder=lambda b: ("raw", b))
        await set_codec(c, "uuid", format="binary", encoder=lambda v: v.bytes,
                        decoder=lambda b: b.hex())
        u = uuid.UUID("12345678-1234-5678-1234-567812345678")
        return [
            await c.fetchval("SELECT $1::int4", 1),
            await c.fetchval("SELECT $1::int4::text", 1),
            await c.fetchval("SELECT $1::uuid", u),
            await c.fetchval("SELECT $1::uuid::text", u),
        ]

    assert await same(con, acon, fn) == ("ok", norm([
        ("raw", b"\x00\x00\x03\xe9"), "1001",
        "12345678123456781234567812345678", "12345678-1234-5678-1234-567812345678"]))


async def test_scalar_text_codec_on_an_extension_type(con: Any, acon: Any, sch: str) -> None:
    """citext has no built-in codec at all; a text codec gives it one."""
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "citext", schema="public", encoder=str.lower,
                        decoder=str.upper)
        return [await c.fetchval("SELECT $1::citext", "MiXeD"),
                await c.fetchval("SELECT $1::citext::text", "MiXeD"),
                await c.fetchval("SELECT ARRAY['a', 'b']::citext[]")]

    assert await same(con, acon, fn) == ("ok", norm(["MIXED", "mixed", ["A", "B"]]))


async def test_tuple_interval(con: Any, acon: Any) -> None:
    """(months, days, microseconds) both ways."""
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "interval", format="tuple")
        return [
            await c.fetchval("SELECT '1 year 2 days 3 seconds'::interval"),
            await c.fetchval("SELECT '-1 mons -2 days -0.5 seconds'::interval"),
            await c.fetchval("SELECT $1::interval::text", (14, 3, 5_000_000)),
            await c.fetchval("SELECT $1::interval::text", (0, 0, -1)),
            await c.fetchval("SELECT $1::interval = '1 mon'", (1, 0, 0)),
        ]

    assert await same(con, acon, fn) == ("ok", norm([
        (12, 2, 3_000_000), (-1, -2, -500_000), "1 year 2 mons 3 days 00:00:05",
        "-00:00:00.000001", True]))


async def test_tuple_timestamp_date_time(con: Any, acon: Any) -> None:
    """Microseconds / days since 2000-01-01, with the infinities at the extremes."""
    async def fn(c: Any, lib: Any) -> Any:
        for t in ("timestamp", "timestamptz", "date", "time", "timetz"):
            await set_codec(c, t, format="tuple")
        return [
            await c.fetchval("SELECT '2001-02-03 04:05:06.7'::timestamp"),
            await c.fetchval("SELECT '1999-12-31 23:59:59'::timestamp"),
            await c.fetchval("SELECT $1::timestamp::text", (1_000_000,)),
            await c.fetchval("SELECT 'infinity'::timestamp"),
            await c.fetchval("SELECT '-infinity'::timestamp"),
            await c.fetchval("SELECT $1::timestamp::text", (2**63 - 1,)),
            await c.fetchval("SELECT '2000-01-01 00:00:01+00'::timestamptz"),
            await c.fetchval("SELECT $1::timestamptz = '2000-01-01 00:00:02+00'", (2_000_000,)),
            await c.fetchval("SELECT '2001-02-03'::date"),
            await c.fetchval("SELECT $1::date::text", (10,)),
            await c.fetchval("SELECT $1::date::text", (-1,)),
            await c.fetchval("SELECT '-infinity'::date"),
            await c.fetchval("SELECT $1::date::text", (2**31 - 1,)),
            await c.fetchval("SELECT '01:00:00.5'::time"),
            await c.fetchval("SELECT $1::time::text", (61_000_000,)),
            await c.fetchval("SELECT '01:00:00+02'::timetz"),
            await c.fetchval("SELECT $1::timetz::text", (0, -3600)),
        ]

    assert await same(con, acon, fn) == ("ok", norm([
        (34_488_306_700_000,), (-1_000_000,), "2000-01-01 00:00:01",
        (2**63 - 1,), (-(2**63),), "infinity",
        (1_000_000,), True,
        (399,), "2000-01-11", "1999-12-31", (-(2**31),), "infinity",
        (3_600_500_000,), "00:01:01", (3_600_000_000, -7200), "00:00:00+01"]))


@pytest.mark.parametrize(("typename", "schema"), [
    ("numeric", "pg_catalog"), ("int4", "pg_catalog"), ("int8", "pg_catalog"),
    ("float8", "pg_catalog"), ("text", "pg_catalog"), ("uuid", "pg_catalog"),
    ("jsonb", "pg_catalog"), ("point", "pg_catalog"), ("mood", None)])
async def test_tuple_format_unsupported(con: Any, acon: Any, sch: str, typename: str,
                                        schema: str | None) -> None:
    """Types outside the documented tuple table refuse format='tuple' when it is set."""
    errors = []
    for c in (con, acon):
        with pytest.raises(exc.InterfaceError if c is con else ref.InterfaceError) as e:
            await set_codec(c, typename, schema=schema or sch, format="tuple")
        errors.append(str(e.value))
        assert await c.fetchval("SELECT 1::int4") == 1  # nothing was installed
    assert errors[0] == errors[1] == (
        f"{typename} type does not support the 'tuple' exchange format")


async def test_invalid_format_argument(con: Any, acon: Any) -> None:
    errors = []
    for c in (con, acon):
        with pytest.raises(exc.InterfaceError if c is con else ref.InterfaceError) as e:
            await set_codec(c, "int4", format="bogus")
        errors.append(str(e.value))
    # asyncpg names the bad value and the three valid formats.
    assert "'bogus'" in errors[0]
    for fmt in ("'text'", "'binary'", "'tuple'"):
        assert fmt in errors[0], (errors[0], errors[1])


# -- an enum --------------------------------------------------------------------------------


async def test_enum_text_codec(con: Any, acon: Any, sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "mood", schema=sch, encoder=str.lower, decoder=str.upper)
        return [
            await c.fetchval(f"SELECT $1::{sch}.mood", "HAPPY"),
            await c.fetchval(f"SELECT $1::{sch}.mood::text", "OK"),
            await c.fetchval(f"SELECT enum_range(NULL::{sch}.mood)"),
            await c.fetchval(f"SELECT $1::{sch}.mood[]", ["SAD", None]),
        ]

    assert await same(con, acon, fn) == ("ok", norm(
        ["HAPPY", "ok", ["SAD", "OK", "HAPPY"], ["SAD", None]]))


async def test_enum_binary_codec(con: Any, acon: Any, sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "mood", schema=sch, format="binary",
                        encoder=lambda v: v.encode()[::-1], decoder=lambda b: b)
        return [await c.fetchval(f"SELECT 'happy'::{sch}.mood"),
                await c.fetchval(f"SELECT $1::{sch}.mood::text", "das")]

    assert await same(con, acon, fn) == ("ok", norm([b"happy", "sad"]))


# -- a composite ----------------------------------------------------------------------------


async def test_composite_tuple_codec(con: Any, acon: Any, sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "cplx", schema=sch, format="tuple",
                        encoder=lambda z: (z.real, z.imag),
                        decoder=lambda t: complex(*t))
        return [
            await c.fetchval(f"SELECT $1::{sch}.cplx", 1 + 2j),
            await c.fetchval(f"SELECT $1::{sch}.cplx::text", -0.5j),
            await c.fetchval(f"SELECT ROW(1.5, -2)::{sch}.cplx"),
            await c.fetchval(f"SELECT $1::{sch}.cplx[]", [1j, 3, None]),
            await c.fetchval(f"SELECT ROW(NULL, 1)::{sch}.cplx IS NULL"),
        ]

    got = await same(con, acon, fn)
    assert got == ("ok", norm([1 + 2j, "(-0,-0.5)", 1.5 - 2j, [1j, 3 + 0j, None], False]))


async def test_composite_tuple_codec_sees_nulls_and_field_codecs(con: Any, acon: Any,
                                                                 sch: str) -> None:
    """The tuple holds the fields as their own codecs decode them."""
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "pair", schema=sch, format="tuple",
                        encoder=lambda d: (d["a"], d["b"]), decoder=lambda t: {"t": list(t)})
        return [await c.fetchval(f"SELECT ROW(NULL, 'x')::{sch}.pair"),
                await c.fetchval(f"SELECT $1::{sch}.pair::text", {"a": 5, "b": None})]

    assert await same(con, acon, fn) == ("ok", norm([{"t": [None, "x"]}, "(5,)"]))


@pytest.mark.parametrize("fmt", ["text", "binary"])
async def test_composite_refuses_text_and_binary(con: Any, acon: Any, sch: str,
                                                 fmt: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "pair", schema=sch, format=fmt)

    got = await same(con, acon, fn)
    assert got == ("err", "UnsupportedClientFeatureError",
                   "only tuple-format codecs can be used on composite types")
    with pytest.raises(exc.UnsupportedClientFeatureError) as e:
        await set_codec(con, "pair", schema=sch, format=fmt)
    assert isinstance(e.value, exc.InterfaceError)
    assert "format='tuple'" in (e.value.hint or "")


async def test_composite_tuple_codec_wrong_length(con: Any, acon: Any, sch: str) -> None:
    """An encoder returning too few fields: asyncpg's DatatypeMismatchError."""
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "cplx", schema=sch, format="tuple")
        return await c.fetchval(f"SELECT $1::{sch}.cplx", (1.0,))

    assert await same(con, acon, fn) == ("err", "DatatypeMismatchError",
                                         "wrong number of columns: 1, expected 2")
    assert await con.fetchval("SELECT 1") == 1


async def test_composite_tuple_codec_bad_field_value(con: Any, acon: Any, sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "cplx", schema=sch, format="tuple",
                        encoder=lambda z: ("not a float", z.imag))
        return await c.fetchval(f"SELECT $1::{sch}.cplx", 1j)

    got, want = await both(con, acon, fn)
    assert got[:2] == want[:2] == ("err", "DataError")
    assert got[2].startswith("invalid input for query argument $1: 1j (")


async def test_composite_field_with_text_codec_is_refused(con: Any, acon: Any,
                                                          sch: str) -> None:
    """A composite can't carry a field whose codec is text-only (binary I/O is needed)."""
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", encoder=str, decoder=lambda s: f"i{s}")
        return await c.fetchval(f"SELECT ROW(1, 'x')::{sch}.pair")

    got = await same(con, acon, fn)
    assert got[:2] == ("err", "UnsupportedClientFeatureError")
    assert got[2].startswith(f'cannot decode type "{sch}"."pair": text encoding of '
                             "composite types is not supported")
    assert await con.fetchval("SELECT 1::int8") == 1  # the connection is still usable


async def test_composite_field_with_binary_codec(con: Any, acon: Any, sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", format="binary",
                        encoder=lambda v: struct.pack("!i", v * 10),
                        decoder=lambda b: ("B", struct.unpack("!i", b)[0]))
        return [await c.fetchval(f"SELECT ROW(1, 'x')::{sch}.pair"),
                await c.fetchval(f"SELECT $1::{sch}.pair::text", (5, "y"))]

    got = await same(con, acon, fn)
    assert got[0] == "ok" and got[1][1][1] == ("str", "(50,y)")


# -- a domain -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "binary", "tuple"])
async def test_domain_refused(con: Any, acon: Any, sch: str, fmt: str) -> None:
    errors = []
    for c in (con, acon):
        with pytest.raises(exc.UnsupportedClientFeatureError if c is con
                           else ref.UnsupportedClientFeatureError) as e:
            await set_codec(c, "posint", schema=sch, format=fmt)
        err = e.value
        errors.append((str(err), err.detail, err.hint))
    assert errors[0] == errors[1]
    assert errors[0][0].startswith("custom codecs on domain types are not supported")
    # the base type's codec still serves the domain
    assert await con.fetchval(f"SELECT $1::{sch}.posint", 5) == 5


# -- arrays ---------------------------------------------------------------------------------


async def test_array_elements_use_text_codec(con: Any, acon: Any) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", encoder=lambda v: str(int(v)), decoder=lambda s: f"i{s}")
        return [
            await c.fetchval("SELECT $1::int4[]", [1, None, 3]),
            await c.fetchval("SELECT ARRAY[[1, 2], [3, 4]]::int4[]"),
            await c.fetchval("SELECT $1::int4[]::text", ["7", 8.0]),
            await c.fetchval("SELECT '{}'::int4[]"),
        ]

    assert await same(con, acon, fn) == ("ok", norm(
        [["i1", None, "i3"], [["i1", "i2"], ["i3", "i4"]], "{7,8}", []]))


async def test_array_elements_use_binary_and_tuple_codecs(con: Any, acon: Any) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "uuid", format="binary", encoder=bytes, decoder=lambda b: b.hex())
        await set_codec(c, "interval", format="tuple")
        return [
            await c.fetchval("SELECT $1::uuid[]", [uuid.UUID(int=1).bytes, None]),
            await c.fetchval("SELECT $1::interval[]", [(1, 2, 3), (0, 0, 1)]),
            await c.fetchval("SELECT ARRAY['1 day'::interval, NULL]"),
        ]

    assert await same(con, acon, fn) == ("ok", norm([
        ["00000000000000000000000000000001", None], [(1, 2, 3), (0, 0, 1)],
        [(0, 1, 0), None]]))


async def test_codec_on_an_array_type_is_refused(con: Any, acon: Any) -> None:
    for c in (con, acon):
        with pytest.raises(exc.InterfaceError if c is con else ref.InterfaceError):
            await set_codec(c, "_int4", encoder=str, decoder=str)
    assert await con.fetchval("SELECT ARRAY[1]") == [1]


# -- ranges ---------------------------------------------------------------------------------


async def test_range_subtype_binary_codec(con: Any, acon: Any, sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", format="binary",
                        encoder=lambda v: struct.pack("!i", v * 10),
                        decoder=lambda b: ("B", struct.unpack("!i", b)[0]))
        await set_codec(c, "float8", format="binary",
                        encoder=lambda v: struct.pack("!d", float(v)),
                        decoder=lambda b: round(struct.unpack("!d", b)[0] * 2))
        return [
            await c.fetchval("SELECT int4range(1, 5)"),
            await c.fetchval("SELECT $1::int4range::text", lib.Range(1, 2)),
            await c.fetchval("SELECT ARRAY[int4range(3, NULL)]"),
            await c.fetchval(f"SELECT '[1.5,2.5)'::{sch}.floatrange"),
            await c.fetchval(f"SELECT $1::{sch}.floatrange::text", lib.Range(0.5, None)),
            await c.fetchval("SELECT 'empty'::int4range"),
        ]

    got = await same(con, acon, fn)
    assert got[0] == "ok"
    assert got[1][1][0] == ("Range", norm(("B", 1)), norm(("B", 5)), True, False, False)
    assert got[1][1][1] == ("str", "[10,20)")


@pytest.mark.pg(">= 14")
async def test_multirange_subtype_binary_codec(con: Any, acon: Any) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", format="binary",
                        encoder=lambda v: struct.pack("!i", v + 1),
                        decoder=lambda b: -struct.unpack("!i", b)[0])
        return [await c.fetchval("SELECT '{[1,3),[5,7)}'::int4multirange"),
                await c.fetchval("SELECT $1::int4multirange::text",
                                 [lib.Range(1, 2), lib.Range(10, None)])]

    got = await same(con, acon, fn)
    assert got[1][1][1] == ("str", "{[2,3),[11,)}")


async def test_range_subtype_tuple_codec(con: Any, acon: Any) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "timestamp", format="tuple")
        return [await c.fetchval("SELECT tsrange('2000-01-01', '2000-01-02')"),
                await c.fetchval("SELECT $1::tsrange::text",
                                 lib.Range((0,), (86_400_000_000,), upper_inc=True))]

    got = await same(con, acon, fn)
    assert got == ("ok", norm([
        pg.Range((0,), (86_400_000_000,)),
        '["2000-01-01 00:00:00","2000-01-02 00:00:00"]']))


@pytest.mark.parametrize("query", ["SELECT int4range(1, 5)", "SELECT $1::int4range"])
async def test_range_subtype_text_codec_is_refused(con: Any, acon: Any, query: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", encoder=str, decoder=lambda s: f"i{s}")
        args = [lib.Range(1, 5)] if "$1" in query else []
        return await c.fetchval(query, *args)

    got = await same(con, acon, fn)
    assert got == ("err", "UnsupportedClientFeatureError",
                   'cannot decode type "pg_catalog"."int4range": text encoding of range '
                   "types is not supported")
    assert await con.fetchval("SELECT 2::int4") == "i2"  # still usable, codec still set


async def test_codec_on_a_range_type_is_refused(con: Any, acon: Any) -> None:
    """asyncpg allows custom codecs only on scalar and composite types."""
    errors = []
    for c in (con, acon):
        with pytest.raises(exc.InterfaceError if c is con else ref.InterfaceError) as e:
            await set_codec(c, "int4range", encoder=str, decoder=str)
        errors.append(str(e.value))
    assert errors[0] == errors[1] == (
        "cannot use custom codec on type pg_catalog.int4range: it is neither a scalar "
        "type nor a composite type")
    assert await con.fetchval("SELECT int4range(1, 2)") == pg.Range(1, 2)


# -- reset_type_codec -----------------------------------------------------------------------


async def test_reset_type_codec_restores_default(con: Any, acon: Any, sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", decoder=lambda s: f"x{s}", encoder=str)
        await set_codec(c, "json", encoder=json.dumps, decoder=json.loads)
        await set_codec(c, "mood", schema=sch, encoder=str.lower, decoder=str.upper)
        q = "SELECT 1::int4, '{\"a\": 1}'::json, 'ok'::" + sch + ".mood, $1::int4"
        before = await c.fetchrow(q, 5)
        await c.reset_type_codec("int4", schema="pg_catalog")
        await c.reset_type_codec("json", schema="pg_catalog")
        await c.reset_type_codec("mood", schema=sch)
        after = await c.fetchrow(q, 5)
        await c.reset_type_codec("int4", schema="pg_catalog")  # again: a no-op
        return before, after, await c.fetchval("SELECT ARRAY[2]::int4[]")

    got = await same(con, acon, fn)
    assert got == ("ok", ("tuple", (
        ("Record", [("int4", norm("x1")), ("json", norm({"a": 1})), ("mood", norm("OK")),
                    ("int4", norm("x5"))]),
        ("Record", [("int4", norm(1)), ("json", norm('{"a": 1}')), ("mood", norm("ok")),
                    ("int4", norm(5))]),
        norm([2]))))


async def test_reset_builtin_type_codec(con: Any, acon: Any, sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await c.set_builtin_type_codec("hstore", schema="public",
                                       codec_name="pg_contrib.hstore")
        a = await c.fetchval("SELECT 'a=>1'::hstore")
        await c.reset_type_codec("hstore", schema="public")
        return a, await c.fetchval("SELECT 'a=>1'::hstore")

    assert await same(con, acon, fn) == ("ok", norm(({"a": "1"}, '"a"=>"1"')))


# -- the statement cache --------------------------------------------------------------------


async def test_set_type_codec_clears_statement_cache(con: Any, acon: Any) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        q = "SELECT $1::int4 + 1 AS n"
        first = await c.fetchval(q, 1)       # prepared and cached with the default codec
        stmt = await c.prepare("SELECT 7::int4")
        await set_codec(c, "int4", encoder=lambda v: str(v * 100), decoder=lambda s: f"x{s}")
        second = await c.fetchval(q, 1)      # the cached statement must not be reused
        kept = await stmt.fetchval()         # an explicit statement keeps what it had
        await c.reset_type_codec("int4", schema="pg_catalog")
        third = await c.fetchval(q, 1)
        return first, second, kept, third

    assert await same(con, acon, fn) == ("ok", norm((2, "x101", 7, 2)))


async def test_builtin_codec_change_clears_statement_cache(con: Any, acon: Any,
                                                           sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        q = "SELECT 'k=>v'::hstore"
        first = await c.fetchval(q)
        await c.set_builtin_type_codec("hstore", codec_name="pg_contrib.hstore")
        return first, await c.fetchval(q)

    assert await same(con, acon, fn) == ("ok", norm(('"k"=>"v"', {"k": "v"})))


# -- codec errors ---------------------------------------------------------------------------


async def test_encoder_raising_is_data_error_naming_the_argument(con: Any, acon: Any) -> None:
    def enc(v: Any) -> str:
        if v == "bad":
            raise ValueError("not today")
        return json.dumps(v)

    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "json", encoder=enc, decoder=json.loads)
        return await c.fetchval("SELECT $1::int, $2::json", 1, "bad")

    assert await same(con, acon, fn) == (
        "err", "DataError", "invalid input for query argument $2: 'bad' (not today)")
    await set_codec(con, "json", encoder=enc, decoder=json.loads)
    with pytest.raises(pg.DataError) as e:
        await con.fetchval("SELECT $1::json", "bad")
    assert isinstance(e.value, exc.PostgresError)  # asyncpg's SQLSTATE-22000 class
    assert isinstance(e.value.__cause__, ValueError)
    assert str(e.value.__cause__) == "not today"
    assert await con.fetchval("SELECT $1::json", [1]) == [1]  # usable afterwards


@pytest.mark.parametrize(("fmt", "ret", "reason"), [
    ("text", 5, "expected str, got int"),
    ("binary", "x", None),
])
async def test_encoder_returning_wrong_type(con: Any, acon: Any, fmt: str, ret: Any,
                                            reason: str | None) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "int4", format=fmt, encoder=lambda v: ret, decoder=identity)
        return await c.fetchval("SELECT $1::int4", 1)

    got, want = await both(con, acon, fn)
    assert got[:2] == want[:2] == ("err", "DataError")
    assert got[2].startswith("invalid input for query argument $1: 1 (")
    if reason:
        assert got[2] == want[2] == f"invalid input for query argument $1: 1 ({reason})"


async def test_encoder_error_in_executemany_names_the_element(con: Any, acon: Any) -> None:
    def enc(v: Any) -> str:
        if v == "bad":
            raise ValueError("nope")
        return json.dumps(v)

    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "json", encoder=enc, decoder=json.loads)
        async with c.transaction():
            table = unique("em")
            await c.execute(f"CREATE TEMP TABLE {table} (a int, b json) ON COMMIT DROP")
            await c.executemany(f"INSERT INTO {table} VALUES ($1, $2)",
                                [(1, {}), (2, "bad"), (3, [])])

    assert await same(con, acon, fn) == (
        "err", "DataError",
        "invalid input for query argument $2 in element #1 of executemany() sequence: "
        "'bad' (nope)")


async def test_tuple_encoder_wrong_arity_is_data_error(con: Any, acon: Any) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "interval", format="tuple")
        return await c.fetchval("SELECT $1::interval", (1, 2))

    got, want = await both(con, acon, fn)
    assert got[:2] == want[:2] == ("err", "DataError")
    assert got[2].startswith("invalid input for query argument $1: (1, 2) (")


async def test_decoder_raising_propagates_unchanged(con: Any, acon: Any) -> None:
    class Boom(Exception):
        pass

    def dec(s: str) -> Any:
        if s == "3":
            raise Boom("bad row")
        return int(s)

    for c in (con, acon):
        await set_codec(c, "int4", encoder=str, decoder=dec)
        with pytest.raises(Boom, match="bad row"):
            await c.fetch("SELECT g::int4 FROM generate_series(1, 5) g")
        # the rest of the result was consumed: the connection goes on
        assert await c.fetchval("SELECT 2::int4") == 2
        assert not c.is_in_transaction()


async def test_copy_records_needs_binary_codecs(con: Any, acon: Any) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "json", encoder=json.dumps, decoder=json.loads)
        async with c.transaction():
            table = unique("cp")
            await c.execute(f"CREATE TEMP TABLE {table} (a int, b json) ON COMMIT DROP")
            await c.copy_records_to_table(table, records=[(1, {"a": 1})])

    got, want = await both(con, acon, fn)
    assert got[:2] == want[:2] == ("err", "InternalClientError")


# -- type lookup: unknown names and schema= -------------------------------------------------


@pytest.mark.parametrize("method", ["set_type_codec", "reset_type_codec",
                                    "set_builtin_type_codec"])
@pytest.mark.parametrize(("typename", "schema"), [("no_such_type", None),
                                                  ("int4", None),
                                                  ("int4", "no_such_schema")])
async def test_unknown_type(con: Any, acon: Any, method: str, typename: str,
                            schema: str | None) -> None:
    kwargs: dict[str, Any] = {}
    if schema:
        kwargs["schema"] = schema
    if method == "set_type_codec":
        kwargs.update(encoder=str, decoder=str)
    elif method == "set_builtin_type_codec":
        kwargs.update(codec_name="text")

    async def fn(c: Any, lib: Any) -> Any:
        await getattr(c, method)(typename, **kwargs)

    got = await same(con, acon, fn)
    assert got == ("err", "ValueError", f"unknown type: {schema or 'public'}.{typename}")


async def test_schema_selects_the_type(con: Any, acon: Any, sch: str) -> None:
    """Two enums named mood: the codec applies to the one in the schema named."""
    async def fn(c: Any, lib: Any) -> Any:
        await set_codec(c, "mood", schema=f"{sch}_b", encoder=str.lower, decoder=str.upper)
        return [await c.fetchval(f"SELECT 'ok'::{sch}_b.mood"),
                await c.fetchval(f"SELECT 'ok'::{sch}.mood"),
                await c.fetchval(f"SELECT $1::{sch}_b.mood::text", "HAPPY")]

    assert await same(con, acon, fn) == ("ok", norm(["OK", "ok", "happy"]))


# -- set_builtin_type_codec -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", [None, "text", "binary"])
async def test_builtin_codec_on_domain_over_text(con: Any, acon: Any, sch: str,
                                                 fmt: str | None) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        await c.set_builtin_type_codec("email", schema=sch, codec_name="text", format=fmt)
        return [await c.fetchval(f"SELECT $1::{sch}.email", "a@b"),
                await c.fetchval(f"SELECT ARRAY[$1::{sch}.email]", "c@d")]

    assert await same(con, acon, fn) == ("ok", norm(["a@b", ["c@d"]]))


async def test_builtin_codec_on_citext(con: Any, acon: Any, sch: str) -> None:
    async def fn(c: Any, lib: Any) -> Any:
        before = await c.fetchval("SELECT $1::citext", "AbC")
        await c.set_builtin_type_codec("citext", codec_name="text")
        return [before,
                await c.fetchval("SELECT $1::citext", "AbC"),
                await c.fetchval("SELECT $1::citext = 'abc'", "ABC"),
                await c.fetchval("SELECT $1::citext[]", ["X", None])]

    assert await same(con, acon, fn) == ("ok", norm(["AbC", "AbC", True, ["X", None]]))


@pytest.mark.parametrize("codec_name", ["no_such_codec", "pg_catalog.text"])
async def test_builtin_codec_unknown_name(con: Any, acon: Any, sch: str,
                                          codec_name: str) -> None:
    errors = []
    for c in (con, acon):
        with pytest.raises(exc.InterfaceError if c is con else ref.InterfaceError) as e:
            await c.set_builtin_type_codec("citext", codec_name=codec_name)
        errors.append(str(e.value))
    assert errors[0].startswith(f"cannot alias citext to {codec_name}: there is no ")
    assert errors[1].startswith(f"cannot alias citext to {codec_name}: there is no ")


# -- reload_schema_state --------------------------------------------------------------------


async def test_reload_schema_state_after_enum_recreated(cluster: Any, sch: str) -> None:
    """Drop an enum, create it again with other labels, reload: the new labels decode."""

    async def run(lib: Any) -> Any:
        name = f"{sch}.{unique('color')}"
        c = await lib.connect(cluster.dsn())
        try:
            await c.execute(f"CREATE TYPE {name} AS ENUM ('red', 'green')")
            plain_before = await c.fetchval(f"SELECT enum_range(NULL::{name})")
            await c.set_type_codec(name.split(".")[1], schema=sch, encoder=str.lower,
                                   decoder=str.upper)
            coded_before = await c.fetchval(f"SELECT $1::{name}", "GREEN")
            await c.execute(f"DROP TYPE {name}; "
                            f"CREATE TYPE {name} AS ENUM ('cyan', 'magenta', 'yellow')")
            await c.reload_schema_state()
            # the old codec belonged to the dropped type (its OID is gone)
            after = await c.fetchval(f"SELECT enum_range(NULL::{name})")
            sent = await c.fetchval(f"SELECT $1::{name}::text", "yellow")
            await c.set_type_codec(name.split(".")[1], schema=sch, encoder=str.lower,
                                   decoder=str.upper)
            coded_after = await c.fetchval(f"SELECT ARRAY[$1::{name}]", "CYAN")
            await c.execute(f"DROP TYPE {name}")
            return plain_before, coded_before, after, sent, coded_after
        finally:
            await c.close()

    got = await run(pg)
    assert got == (["red", "green"], "GREEN", ["cyan", "magenta", "yellow"], "yellow",
                   ["CYAN"])
    assert got == await run(ref)


async def test_reload_schema_state_after_composite_changed(cluster: Any, sch: str) -> None:
    async def run(lib: Any) -> Any:
        name = f"{sch}.{unique('pt')}"
        c = await lib.connect(cluster.dsn())
        try:
            await c.execute(f"CREATE TYPE {name} AS (x int, y int)")
            before = await c.fetchval(f"SELECT ROW(1, 2)::{name}")
            await c.execute(f"DROP TYPE {name}; CREATE TYPE {name} AS (x text, y int, z int)")
            await c.reload_schema_state()
            after = await c.fetchval(f"SELECT ROW('a', 2, 3)::{name}")
            sent = await c.fetchval(f"SELECT $1::{name}::text", ("b", 4, None))
            await c.execute(f"DROP TYPE {name}")
            return norm(before), norm(after), sent
        finally:
            await c.close()

    got = await run(pg)
    assert got[2] == "(b,4,)"
    assert got == await run(ref)
