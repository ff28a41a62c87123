"""The examples of asyncpg's usage documentation, told again as tests.

asyncpg's "Usage" page walks through: a first session (connect, create a
table, insert with ``$n`` arguments, read a row back, close), the table of
PostgreSQL -> Python type conversions, custom codecs (JSON, a composite
decoded as a Python ``complex``, a binary geometry codec, numeric as float,
hstore), transactions, a pool behind a small web handler, and (in the API
reference) prepared statements and cursors. Each example is re-expressed
here in our own words and run on the client under test; wherever a result
can be compared, the same steps also run on asyncpg and the two must agree.

PostGIS is not on the test servers, so the geometry example uses the
built-in ``point`` and ``path`` types with a ``format='binary'`` codec that
speaks their binary wire form, which is the same shape of work (bytes in,
bytes out) as a WKB codec.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import importlib
import ipaddress
import json
import struct
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import IMPL, acon, close_quietly, con, exc, pg, ref, unique

__all__ = ["acon", "con"]

# The pool that goes with the client under test: pg_pool for pg_client,
# asyncpg's own when the suite runs against asyncpg (PG_CLIENT_TEST_IMPL).
if IMPL == "asyncpg":
    create_pool: Any = pg.create_pool
else:
    create_pool = importlib.import_module("pg_pool").create_pool


def norm(value: Any) -> Any:
    """A form of a decoded value that compares equal across asyncpg and pg_client.

    Both libraries have their own ``Range``, ``BitString``, ``Point``, ...
    classes, and ``Record`` classes, which never compare equal to each
    other's; the class *name* and the contents must match.
    """
    name = type(value).__name__
    if isinstance(value, decimal.Decimal) and value.is_nan():
        return (name, "NaN")
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes,
                                           decimal.Decimal,
                                           dt.date, dt.time, dt.timedelta, uuid.UUID,
                                           ipaddress.IPv4Address, ipaddress.IPv6Address,
                                           ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return (name, value)
    if isinstance(value, list):
        return ("list", [norm(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: norm(v) for k, v in value.items()})
    if name == "Record":
        return ("Record", [(k, norm(v)) for k, v in value.items()])
    if name == "Range":
        return ("Range", norm(value.lower), norm(value.upper), value.lower_inc,
                value.upper_inc, value.isempty)
    if name == "BitString":
        return ("BitString", value.as_string())
    if name in ("Path", "Polygon"):
        return (name, [norm(p) for p in value.points], getattr(value, "is_closed", None))
    if isinstance(value, tuple):  # Point, Box, Line, LineSegment, Circle, tid
        return (name, tuple(norm(v) for v in value))
    raise AssertionError(f"norm() does not know {type(value)!r}")


# -- the first session ----------------------------------------------------------------------


async def test_first_session_create_insert_fetchrow_close(cluster: Any) -> None:
    """Connect, make a users table, add Bob with $1/$2 arguments, read him back, close."""
    table = unique("users")
    conn = await pg.connect(cluster.dsn())
    try:
        status = await conn.execute(f"""
            CREATE TABLE {table} (
                id   serial PRIMARY KEY,
                name text,
                dob  date
            )
        """)
        assert status == "CREATE TABLE"
        status = await conn.execute(
            f"INSERT INTO {table} (name, dob) VALUES ($1, $2)", "Bob", dt.date(1984, 3, 1))
        assert status == "INSERT 0 1"

        row = await conn.fetchrow(f"SELECT * FROM {table} WHERE name = $1", "Bob")
        assert isinstance(row, pg.Record)
        assert tuple(row) == (1, "Bob", dt.date(1984, 3, 1))
        assert row["name"] == "Bob" and row[2] == dt.date(1984, 3, 1)
        assert list(row.keys()) == ["id", "name", "dob"]
        assert dict(row) == {"id": 1, "name": "Bob", "dob": dt.date(1984, 3, 1)}

        # asyncpg reads the same row, and prints it the same way.
        a = await ref.connect(cluster.dsn())
        try:
            arow = await a.fetchrow(f"SELECT * FROM {table} WHERE name = $1", "Bob")
        finally:
            await a.close()
        assert repr(row) == repr(arow)
        assert norm(row) == norm(arow)

        await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
    assert conn.is_closed()


async def test_dollar_n_arguments_are_native_and_reusable(con: Any) -> None:
    """Arguments are PostgreSQL's own $n: numbered, reusable, in any order."""
    row = await con.fetchrow("SELECT $2::text || $1::text AS s, $1::int * 2 AS twice", "7", "x")
    assert tuple(row) == ("x7", 14)
    with pytest.raises(exc.InterfaceError, match="the server expects 2 arguments"):
        await con.fetchrow("SELECT $1::int, $2::int", 1)


# -- the type conversion table --------------------------------------------------------------

# (documented PostgreSQL type, SQL expression, the Python class the table names)
CONVERSIONS: list[tuple[str, str, str]] = [
    ("anyarray", "ARRAY[[1, 2], [3, NULL]]::int4[]", "list"),
    ("anyarray", "ARRAY['a', NULL, 'c']::text[]", "list"),
    ("anyenum", "'enum_b'::{enum}", "str"),
    ("anyrange", "int4range(1, 10)", "Range"),
    ("anyrange", "'(,2020-01-01]'::daterange", "Range"),
    ("anyrange", "'empty'::numrange", "Range"),
    # An anonymous ROW() value is a plain tuple; rows of a result are Records
    # (see the first-session test), and both are tuples of the values.
    ("record", "ROW(1, 'two', NULL)", "tuple"),
    ("bit", "B'101'::bit(3)", "BitString"),
    ("varbit", "B'1001011'::varbit", "BitString"),
    ("bool", "true", "bool"),
    ("box", "'((1,2),(3,4))'::box", "Box"),
    ("bytea", "'\\x00ff10'::bytea", "bytes"),
    ("bpchar", "'ab'::char(4)", "str"),
    # The one-byte internal type "char" is bytes on asyncpg (the table's
    # ``char`` is SQL's character(n), i.e. bpchar above).
    ('"char"', "'x'::\"char\"", "bytes"),
    ("name", "'a_name'::name", "str"),
    ("varchar", "'v'::varchar(10)", "str"),
    ("text", "'some text'::text", "str"),
    ("xml", "'<a>1</a>'::xml", "str"),
    ("cidr", "'10.1.0.0/16'::cidr", "IPv4Network"),
    ("cidr", "'2001:db8::/32'::cidr", "IPv6Network"),
    ("inet", "'10.1.2.3/16'::inet", "IPv4Interface"),
    ("inet", "'10.1.2.3'::inet", "IPv4Address"),
    ("inet", "'2001:db8::1'::inet", "IPv6Address"),
    ("macaddr", "'08:00:2b:01:02:03'::macaddr", "str"),
    ("circle", "'<(1,2),3>'::circle", "Circle"),
    ("date", "'1984-03-01'::date", "date"),
    ("date", "'infinity'::date", "date"),
    ("time", "'13:14:15.5'::time", "time"),
    ("timetz", "'13:14:15+02:30'::timetz", "time"),
    ("timestamp", "'2001-02-03 04:05:06.789'::timestamp", "datetime"),
    ("timestamptz", "'2001-02-03 04:05:06.789+05'::timestamptz", "datetime"),
    ("interval", "'1 year 2 mons 3 days 04:05:06.7'::interval", "timedelta"),
    ("float4", "1.1::float4", "float"),
    ("float8", "1.1::float8", "float"),
    ("int2", "12::int2", "int"),
    ("int4", "-1234567::int4", "int"),
    ("int8", "9223372036854775807::int8", "int"),
    ("numeric", "'12345678901234567890.000123'::numeric", "Decimal"),
    ("numeric", "'NaN'::numeric", "Decimal"),
    ("json", "'{\"a\": [1, 2]}'::json", "str"),
    ("jsonb", "'{\"a\": [1, 2]}'::jsonb", "str"),
    ("line", "'{1,2,3}'::line", "Line"),
    ("lseg", "'[(1,2),(3,4)]'::lseg", "LineSegment"),
    ("money", "12.34::money", "str"),
    ("path", "'[(1,2),(3,4),(5,6)]'::path", "Path"),
    ("path", "'((1,2),(3,4),(5,6))'::path", "Path"),
    ("point", "'(1.5,-2)'::point", "Point"),
    ("polygon", "'((0,0),(0,1),(1,1))'::polygon", "Polygon"),
    ("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", "UUID"),
    ("tid", "'(3,7)'::tid", "tuple"),
    # "All other types are encoded and decoded as text by default."
    ("tsvector (other)", "'a fat cat'::tsvector", "str"),
    ("tsquery (other)", "'fat & rat'::tsquery", "str"),
    # Not in the table, but asyncpg has a codec for it: an int.
    ("pg_lsn", "'16/B374D848'::pg_lsn", "int"),
]


@pytest.fixture(scope="module")
async def enum_type(cluster: Any) -> AsyncIterator[str]:
    """A committed enum for the anyenum row (both clients must see it)."""
    name = unique("mood")
    c = await ref.connect(cluster.dsn())
    try:
        await c.execute(f"CREATE TYPE {name} AS ENUM ('enum_a', 'enum_b')")
        yield name
        await c.execute(f"DROP TYPE IF EXISTS {name}")
    finally:
        await c.close()


@pytest.mark.parametrize(("pgtype", "expr", "pyclass"), CONVERSIONS,
                         ids=[f"{t}:{e}" for t, e, _ in CONVERSIONS])
async def test_type_conversion_table(con: Any, acon: Any, enum_type: str, pgtype: str,
                                     expr: str, pyclass: str) -> None:
    """Each row of the documented table decodes to the named class, as on asyncpg."""
    expr = expr.replace("{enum}", enum_type)
    query = f"SELECT {expr}"
    got = await con.fetchval(query)
    want = await acon.fetchval(query)
    assert norm(got) == norm(want)
    if pyclass == "IPv4Interface":
        # inet with a host part and a prefix: asyncpg gives an interface object
        # (the table's "IPv4Network" row is about cidr-like values).
        assert type(got).__name__ == type(want).__name__
    else:
        assert type(got).__name__ == pyclass
    if pyclass in ("Range", "BitString", "Box", "Circle", "Line", "LineSegment", "Path",
                   "Point", "Polygon"):
        # The documented name is importable from the top-level module, as asyncpg.X.
        assert isinstance(got, getattr(pg, pyclass))
    if pgtype in ("time", "timestamp"):
        assert got.tzinfo is None  # offset-naive
    if pgtype in ("timetz", "timestamptz"):
        assert got.tzinfo is not None  # offset-aware


@pytest.mark.parametrize(("pgtype", "expr", "pyclass"),
                         [c for c in CONVERSIONS if "(other)" not in c[0]
                          and c[0] not in ("record", "anyenum", "tid")],
                         ids=[f"{t}:{e}" for t, e, _ in CONVERSIONS if "(other)" not in t
                              and t not in ("record", "anyenum", "tid")])
async def test_type_conversion_round_trip(con: Any, acon: Any, pgtype: str, expr: str,
                                          pyclass: str) -> None:
    """... and vice versa: the decoded value sent back as $1 arrives as the same value."""
    value = await con.fetchval(f"SELECT {expr}")
    if "::" in expr:
        sqltype = expr.rsplit("::", 1)[1]  # keeps typmods: bit(3), char(4)
    else:
        sqltype = await con.fetchval(f"SELECT pg_typeof({expr})::text")
    query = f"SELECT $1::{sqltype}::text, $1::{sqltype}::text = ({expr})::text"
    got = await con.fetchrow(query, value)
    want = await acon.fetchrow(query, await acon.fetchval(f"SELECT {expr}"))
    assert tuple(got) == tuple(want)
    if pgtype != "interval":
        # timedelta has no months: a year comes back as 365 days
        assert got[1] is True, got[0]


async def test_float4_footnote(con: Any, acon: Any) -> None:
    """Single precision values read as inexact floats; casting to float8/numeric is exact."""
    got = await con.fetchrow("SELECT 1.1::float4 AS f4, 1.1::float4::float8 AS f8, "
                             "1.1::float4::numeric AS n")
    want = await acon.fetchrow("SELECT 1.1::float4 AS f4, 1.1::float4::float8 AS f8, "
                               "1.1::float4::numeric AS n")
    assert got["f4"] != 1.1 and got["f4"] == pytest.approx(1.1)
    assert got["n"] == decimal.Decimal("1.1")
    assert tuple(got) == tuple(want)


# -- custom type conversions ----------------------------------------------------------------


@pytest.mark.parametrize("typename", ["json", "jsonb"])
async def test_json_codec_example(cluster: Any, typename: str) -> None:
    """json.dumps/json.loads on json (and jsonb): dicts go in and come out."""

    async def run(lib: Any) -> Any:
        conn = await lib.connect(cluster.dsn())
        try:
            await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads,
                                      schema="pg_catalog")
            data = {"foo": "bar", "spam": 1, "list": [1.5, None, True]}
            res = await conn.fetchval(f"SELECT $1::{typename}", data)
            nested = await conn.fetchval(f"SELECT $1::{typename} -> 'list'", data)
            arr = await conn.fetchval(f"SELECT ARRAY[$1::{typename}, NULL]", {"x": [1]})
            sql_null = await conn.fetchval(f"SELECT NULL::{typename}")
            return res, nested, arr, sql_null
        finally:
            await conn.close()

    got = await run(pg)
    assert got[0] == {"foo": "bar", "spam": 1, "list": [1.5, None, True]}
    assert got[1] == [1.5, None, True]
    assert got[2] == [{"x": [1]}, None]
    assert got[3] is None
    assert got == await run(ref)


async def test_json_codec_without_schema_is_unknown_type(con: Any, acon: Any) -> None:
    """The default schema is 'public': json lives in pg_catalog, so it must be named."""
    for c in (con, acon):
        with pytest.raises(ValueError, match=r"unknown type: public\.json"):
            await c.set_type_codec("json", encoder=json.dumps, decoder=json.loads)


@pytest.fixture
async def complex_type(cluster: Any) -> AsyncIterator[str]:
    name = unique("mycomplex")
    c = await ref.connect(cluster.dsn())
    try:
        await c.execute(f"CREATE TYPE {name} AS (r float8, i float8)")
        yield name
        await c.execute(f"DROP TYPE IF EXISTS {name}")
    finally:
        await c.close()


async def test_complex_numbers_via_composite_tuple_codec(cluster: Any, complex_type: str) -> None:
    """A composite (r, i) seen from Python as ``complex``, with format='tuple'."""

    async def run(lib: Any) -> Any:
        conn = await lib.connect(cluster.dsn())
        try:
            await conn.set_type_codec(
                complex_type,
                encoder=lambda z: (z.real, z.imag),
                decoder=lambda t: complex(t[0], t[1]),
                format="tuple",
            )
            one = await conn.fetchval(f"SELECT $1::{complex_type}", 1 + 2j)
            arr = await conn.fetchval(f"SELECT $1::{complex_type}[]", [3j, -1.5, None])
            built = await conn.fetchval(f"SELECT ROW(0.5, -4)::{complex_type}")
            as_text = await conn.fetchval(f"SELECT $1::{complex_type}::text", 2 - 1j)
            return one, arr, built, as_text
        finally:
            await conn.close()

    got = await run(pg)
    assert got == ((1 + 2j), [3j, (-1.5 + 0j), None], (0.5 - 4j), "(2,-1)")
    assert all(isinstance(z, complex) for z in (got[0], got[2]))
    assert got == await run(ref)


class GeoPoint:
    """A stand-in for a shapely geometry: anything with ``__geo_interface__``."""

    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y

    @property
    def __geo_interface__(self) -> dict[str, Any]:
        return {"type": "Point", "coordinates": (self.x, self.y)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GeoPoint) and (self.x, self.y) == (other.x, other.y)

    def __repr__(self) -> str:
        return f"GeoPoint({self.x}, {self.y})"


def encode_geo(geometry: Any) -> bytes:
    if not hasattr(geometry, "__geo_interface__"):
        raise TypeError(f"{geometry!r} does not conform to the geo interface")
    x, y = geometry.__geo_interface__["coordinates"]
    return struct.pack("!dd", x, y)  # point's binary send/recv form


def decode_geo(data: bytes) -> GeoPoint:
    return GeoPoint(*struct.unpack("!dd", data))


async def test_geometry_like_binary_codec(cluster: Any) -> None:
    """A format='binary' codec: the encoder returns bytes, the decoder gets bytes."""

    async def run(lib: Any) -> Any:
        conn = await lib.connect(cluster.dsn())
        try:
            await conn.set_type_codec("point", schema="pg_catalog", encoder=encode_geo,
                                      decoder=decode_geo, format="binary")
            empire_state = GeoPoint(-73.985661, 40.748447)
            row = await conn.fetchrow(
                "SELECT 'Empire State Building' AS name, $1::point AS coordinates, "
                "$1::point::text AS wkt", empire_state)
            # A type built from points (box) keeps its own codec.
            box = await conn.fetchval("SELECT box($1::point, $2::point)::text",
                                      GeoPoint(0, 0), GeoPoint(2, 3))
            with pytest.raises(lib.DataError) as err:
                await conn.fetchval("SELECT $1::point", (1, 2))
            return dict(row), box, str(err.value), type(err.value.__cause__)
        finally:
            await conn.close()

    got = await run(pg)
    assert got[0] == {"name": "Empire State Building",
                      "coordinates": GeoPoint(-73.985661, 40.748447),
                      "wkt": "(-73.985661,40.748447)"}
    assert got[1] == "(2,3),(0,0)"
    assert got[2] == ("invalid input for query argument $1: (1, 2) "
                      "((1, 2) does not conform to the geo interface)")
    assert got[3] is TypeError
    assert got == await run(ref)


async def test_numeric_as_float_example(cluster: Any) -> None:
    """numeric through a text codec: str() to encode, float() to decode."""

    async def run(lib: Any) -> Any:
        conn = await lib.connect(cluster.dsn())
        try:
            await conn.set_type_codec("numeric", encoder=str, decoder=float,
                                      schema="pg_catalog", format="text")
            res = await conn.fetchval("SELECT $1::numeric", 11.123)
            summed = await conn.fetchval("SELECT sum(x) FROM unnest($1::numeric[]) x",
                                         [1.25, 2.5, decimal.Decimal("0.25")])
            return res, type(res), summed, type(summed)
        finally:
            await conn.close()

    got = await run(pg)
    assert got == (11.123, float, 4.0, float)
    assert got == await run(ref)


@pytest.fixture(scope="module")
async def hstore_ext(cluster: Any) -> None:
    c = await ref.connect(cluster.dsn())
    try:
        await c.execute("CREATE EXTENSION IF NOT EXISTS hstore")
    finally:
        await c.close()


async def test_hstore_example(cluster: Any, hstore_ext: None) -> None:
    """hstore (an extension type) gets the bundled dict codec via set_builtin_type_codec."""

    async def run(lib: Any) -> Any:
        conn = await lib.connect(cluster.dsn())
        try:
            before = await conn.fetchval("SELECT 'a=>1,b=>2'::hstore")
            await conn.set_builtin_type_codec("hstore", codec_name="pg_contrib.hstore")
            after = await conn.fetchval("SELECT 'a=>1,b=>2'::hstore")
            sent = await conn.fetchval("SELECT $1::hstore -> 'k'", {"k": "v", "n": None})
            nulls = await conn.fetchval("SELECT $1::hstore", {"n": None})
            return before, after, sent, nulls
        finally:
            await conn.close()

    got = await run(pg)
    # Values are text: the documented {'a': 1, 'b': 2} would need a cast.
    assert got == ('"a"=>"1", "b"=>"2"', {"a": "1", "b": "2"}, "v", {"n": None})
    assert got == await run(ref)


# -- transactions ---------------------------------------------------------------------------


@pytest.fixture
async def table3(cluster: Any) -> AsyncIterator[str]:
    name = unique("mytable")
    c = await ref.connect(cluster.dsn())
    try:
        await c.execute(f"CREATE TABLE {name} (a int, b int, c int)")
        yield name
        await c.execute(f"DROP TABLE IF EXISTS {name}")
    finally:
        await c.close()


async def test_transaction_block_commits(con: Any, acon: Any, table3: str) -> None:
    async with con.transaction():
        await con.execute(f"INSERT INTO {table3} VALUES (1, 2, 3)")
        assert con.is_in_transaction()
        # not visible elsewhere until the block ends
        assert await acon.fetchval(f"SELECT count(*) FROM {table3}") == 0
    assert not con.is_in_transaction()
    assert await acon.fetchval(f"SELECT count(*) FROM {table3}") == 1


async def test_transaction_block_rolls_back_on_exception(con: Any, acon: Any,
                                                         table3: str) -> None:
    with pytest.raises(ZeroDivisionError):
        async with con.transaction():
            await con.execute(f"INSERT INTO {table3} VALUES (1, 2, 3)")
            1 / 0  # noqa: B018
    assert not con.is_in_transaction()
    assert await acon.fetchval(f"SELECT count(*) FROM {table3}") == 0


async def test_autocommit_outside_transaction(con: Any, acon: Any, table3: str) -> None:
    """Outside a transaction block every statement is applied at once (auto-commit)."""
    await con.execute(f"INSERT INTO {table3} VALUES (4, 5, 6)")
    assert not con.is_in_transaction()
    assert await acon.fetchval(f"SELECT count(*) FROM {table3}") == 1


# -- connection pools -----------------------------------------------------------------------


async def power_of_two_service(lib_pool: Any, powers: list[int]) -> list[str]:
    """The documented web handler without the web framework: one request per power."""

    async def handle(power: int) -> str:
        async with lib_pool.acquire() as connection:
            async with connection.transaction():
                result = await connection.fetchval("SELECT 2 ^ $1", power)
                return f"2 ^ {power} is {result}"

    return list(await asyncio.gather(*(handle(p) for p in powers)))


async def test_pool_power_of_two_service(cluster: Any) -> None:
    powers = [10, 0, 3, 16, 1, 62, 5, 8]
    pool = await create_pool(cluster.dsn(), min_size=1, max_size=3)
    try:
        got = await power_of_two_service(pool, powers)
    finally:
        await pool.close()
    apool = await ref.create_pool(cluster.dsn(), min_size=1, max_size=3)
    try:
        want = await power_of_two_service(apool, powers)
    finally:
        await apool.close()
    assert got[0] == "2 ^ 10 is 1024.0"
    assert got == want


async def test_pool_with_init_codec_and_shortcuts(cluster: Any) -> None:
    """init= sets the JSON codec on every new connection; pool.fetchval uses it."""
    inits: list[int] = []

    async def init(conn: Any) -> None:
        inits.append(conn.get_server_pid())
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                                  schema="pg_catalog")

    pool = await create_pool(cluster.dsn(), min_size=2, max_size=2, init=init)
    try:
        assert len(inits) == 2
        assert await pool.fetchval("SELECT $1::jsonb", {"k": [1, 2]}) == {"k": [1, 2]}

        async def one(i: int) -> Any:
            async with pool.acquire() as conn:
                await asyncio.sleep(0.01)
                return await conn.fetchval("SELECT jsonb_build_object('i', $1::int)", i)

        assert await asyncio.gather(*(one(i) for i in range(6))) == [{"i": i} for i in range(6)]
        row = await pool.fetchrow("SELECT $1::jsonb AS doc, 1 AS n", [None])
        assert dict(row) == {"doc": [None], "n": 1}
        assert [r["x"] for r in await pool.fetch("SELECT jsonb_build_array(g) AS x "
                                                 "FROM generate_series(1, 3) g")] == [[1], [2],
                                                                                      [3]]
        assert await pool.execute("SELECT 1") == "SELECT 1"
    finally:
        await pool.close()
    assert len(inits) == 2  # connections were reused, init ran once per connection


# -- prepared statements and cursors --------------------------------------------------------


async def test_prepared_statement_example(con: Any, acon: Any) -> None:
    """prepare() once, run many times; the statement describes its parameters and columns."""
    stmt = await con.prepare("SELECT 2 ^ $1 AS power")
    astmt = await acon.prepare("SELECT 2 ^ $1 AS power")
    assert await stmt.fetchval(10) == 1024.0
    assert [await stmt.fetchval(i) for i in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert [tuple(r) for r in await stmt.fetch(5)] == [(32.0,)]
    assert tuple(await stmt.fetchrow(6)) == (64.0,)
    assert stmt.get_query() == "SELECT 2 ^ $1 AS power"
    assert [(t.name, t.kind, t.schema) for t in stmt.get_parameters()] == \
        [(t.name, t.kind, t.schema) for t in astmt.get_parameters()]
    assert [(a.name, a.type.name) for a in stmt.get_attributes()] == \
        [(a.name, a.type.name) for a in astmt.get_attributes()]


async def test_cursor_iteration_example(con: Any) -> None:
    """async for over a cursor, inside a transaction, with the default prefetch."""
    async with con.transaction():
        seen = [record[0] async for record in con.cursor("SELECT generate_series(0, 100)")]
    assert seen == list(range(101))


async def test_cursor_object_example(con: Any, acon: Any) -> None:
    """An awaited cursor: skip rows with forward(), then fetchrow() and fetch(n)."""

    async def walk(c: Any) -> Any:
        async with c.transaction():
            stmt = await c.prepare("SELECT generate_series(0, $1::int) AS n")
            cur = await stmt.cursor(100)
            skipped = await cur.forward(10)
            first = await cur.fetchrow()
            five = await cur.fetch(5)
            cur2 = await c.cursor("SELECT generate_series(0, 100) AS n")
            await cur2.forward(98)
            tail = await cur2.fetch(10)
            end = await cur2.fetchrow()
            return (skipped, norm(first), [norm(r) for r in five], [norm(r) for r in tail],
                    end)

    got = await walk(con)
    assert got[0] == 10
    assert got[1] == ("Record", [("n", ("int", 10))])
    assert [r[1][0][1][1] for r in got[2]] == [11, 12, 13, 14, 15]
    assert [r[1][0][1][1] for r in got[3]] == [98, 99, 100]
    assert got[4] is None
    assert got == await walk(acon)


async def test_cursor_needs_a_transaction(con: Any, acon: Any) -> None:
    errors = []
    for c in (con, acon):
        with pytest.raises(Exception) as err:  # the class is compared below
            await c.cursor("SELECT 1")
        errors.append((type(err.value).__name__, str(err.value)))
        assert await c.fetchval("SELECT 1") == 1
    assert errors[0] == errors[1]


async def test_statement_object_across_calls_keeps_codecs(
        cluster: Any) -> None:
    """Codecs set before prepare() apply to the statement's arguments and rows."""

    async def run(lib: Any) -> Any:
        conn = await lib.connect(cluster.dsn())
        try:
            await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads,
                                      schema="pg_catalog")
            stmt = await conn.prepare("SELECT $1::json AS doc")
            return [await stmt.fetchval(v) for v in ({"a": 1}, [1, 2], "s", None)]
        finally:
            await close_quietly(conn)

    got = await run(pg)
    assert got == [{"a": 1}, [1, 2], "s", None]
    assert got == await run(ref)
