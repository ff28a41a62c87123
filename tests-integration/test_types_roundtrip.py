"""Value -> server -> value round trips for the built-in type codecs.

Every value goes through ``SELECT $1::<type>, $1::<type>::text`` on the client
under test *and* on asyncpg. asyncpg is the specification: the decoded values
must be the same (same Python types, same values; NaN and -0.0 included), and
the server's text rendering of the parameter proves both encoders sent the
same thing. Where the server keeps the value as sent, the result must also
equal the input.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import math
import sys
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import close_quietly, exc, pg, pg_types, ref, unique

# Hypothesis' pytest plugin imports libcst to print a patch when a test fails;
# libcst's import warns (DeprecationWarning from mypy_extensions), which our
# warnings-are-errors config turns into an INTERNALERROR that ends the run.
# Import it once here, with that warning silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)

# -- connections shared by the module ------------------------------------------------


@pytest.fixture
async def conns(cluster: Any) -> AsyncIterator[tuple[Any, Any]]:
    """(client under test, asyncpg), fresh per test so one broken connection can't cascade."""
    c = await pg.connect(cluster.dsn())
    a = await ref.connect(cluster.dsn())
    try:
        yield c, a
    finally:
        await close_quietly(c)
        await close_quietly(a)


# -- comparing values across the two clients ------------------------------------------


def norm(v: Any) -> Any:
    """A client-neutral, NaN-safe, exact form of a decoded value."""
    name = type(v).__name__
    if v is None or isinstance(v, (bool, int, str, bytes)):
        return (name, v)
    if isinstance(v, float):
        if math.isnan(v):
            return ("float", "nan")
        return ("float", v, math.copysign(1.0, v))
    if isinstance(v, Decimal):
        return ("Decimal", "NaN" if v.is_nan() else str(v))
    if isinstance(v, (dt.datetime, dt.time)):
        return (name, v.replace(tzinfo=None), v.utcoffset(), v.tzinfo is None)
    if isinstance(v, (dt.date, dt.timedelta, uuid.UUID)):
        return (name, v)
    if isinstance(
        v,
        (
            ipaddress._BaseAddress,
            ipaddress._BaseNetwork,
            ipaddress.IPv4Interface,
            ipaddress.IPv6Interface,
        ),
    ):
        return (name, str(v))
    if name == "Range":
        return (name, norm(v.lower), norm(v.upper), v.lower_inc, v.upper_inc, v.isempty)
    if name == "BitString":
        return (name, v.as_string())
    if name in ("Path", "Polygon"):
        return (name, tuple(norm(p) for p in v), v.is_closed if name == "Path" else None)
    if isinstance(v, dict):
        return ("dict", sorted((k, norm(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("list", [norm(x) for x in v])
    if name == "Record" or (hasattr(v, "keys") and hasattr(v, "items") and hasattr(v, "get")):
        return ("Record", tuple(v.keys()), tuple(norm(x) for x in v.values()))
    if isinstance(v, tuple):  # tuple, Point, Box, Line, LineSegment, Circle, tid ...
        return (name, tuple(norm(x) for x in v))
    return (name, v)


class B:
    """A value built per client: ``B(lambda T: T.Point(1, 2))``; T is the types module."""

    def __init__(self, build: Callable[[Any], Any]) -> None:
        self.build = build

    def __repr__(self) -> str:
        return f"B({self.build(pg_types)!r})"


def for_client(value: Any, types_module: Any) -> Any:
    return value.build(types_module) if isinstance(value, B) else value


SAME = object()


async def roundtrip(conns: tuple[Any, Any], typ: str, value: Any, *, expect: Any = SAME) -> Any:
    """Send *value* as ``$1::typ`` through both clients; compare; return ours."""
    con, acon = conns
    q = f"SELECT $1::{typ} AS v, $1::{typ}::text AS t"
    ours = for_client(value, pg_types)
    theirs = for_client(value, ref.types)
    ref_row = await acon.fetchrow(q, theirs)
    row = await con.fetchrow(q, ours)
    assert row["t"] == ref_row["t"], f"server saw a different {typ} parameter"
    assert norm(row["v"]) == norm(ref_row["v"])
    if expect is SAME:
        assert norm(row["v"]) == norm(ours)
    elif expect is not None:
        assert norm(row["v"]) == norm(expect)
    return row["v"]


async def decode_same(conns: tuple[Any, Any], query: str, *args: Any) -> Any:
    """Run *query* through both clients; the results (or exception classes) must match."""
    con, acon = conns
    try:
        expected = await acon.fetchval(query, *args)
    except Exception as e:
        with pytest.raises(Exception) as got:
            await con.fetchval(query, *args)
        if type(e).__module__ == "builtins":
            # asyncpg lets e.g. datetime's ValueError/OverflowError through:
            # code written for it catches those, so ours must be one too.
            assert isinstance(got.value, type(e)), (got.value, e)
        else:
            assert type(got.value).__name__ == type(e).__name__, (got.value, e)
        assert await con.fetchval("SELECT 1") == 1
        return None
    got = await con.fetchval(query, *args)
    assert norm(got) == norm(expected)
    return got


# -- scalars ----------------------------------------------------------------------


@SETTINGS
@given(st.booleans())
async def test_bool(conns: Any, v: bool) -> None:
    await roundtrip(conns, "bool", v)


def ints(bits: int) -> st.SearchStrategy[int]:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(st.sampled_from([lo, hi, 0, -1, 1]), st.integers(lo, hi))


@pytest.mark.parametrize(("typ", "bits"), [("int2", 16), ("int4", 32), ("int8", 64)])
@SETTINGS
@given(data=st.data())
async def test_integers(conns: Any, typ: str, bits: int, data: st.DataObject) -> None:
    await roundtrip(conns, typ, data.draw(ints(bits)))


@pytest.mark.parametrize(("typ", "bits"), [("int2", 16), ("int4", 32), ("int8", 64)])
async def test_integers_out_of_range(conns: Any, typ: str, bits: int) -> None:
    con, acon = conns
    for v in (2 ** (bits - 1), -(2 ** (bits - 1)) - 1):
        with pytest.raises(ref.exceptions.DataError):
            await acon.fetchval(f"SELECT $1::{typ}", v)
        with pytest.raises(exc.DataError):
            await con.fetchval(f"SELECT $1::{typ}", v)


@pytest.mark.parametrize(("typ", "width"), [("float4", 32), ("float8", 64)])
@SETTINGS
@given(data=st.data())
async def test_floats(conns: Any, typ: str, width: int, data: st.DataObject) -> None:
    special = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0])
    v = data.draw(st.one_of(special, st.floats(width=width)))
    await roundtrip(conns, typ, v)


@pytest.mark.parametrize("typ", ["oid", "xid", "cid"])
async def test_unsigned_system_ints(conns: Any, typ: str) -> None:
    for v in (0, 1, 2**31, 2**32 - 1):
        await roundtrip(conns, typ, v)


decimals = st.one_of(
    st.sampled_from(
        [
            Decimal("NaN"),
            Decimal("Infinity"),
            Decimal("-Infinity"),
            Decimal("0"),
            Decimal("-0"),
            Decimal("0.000"),
            Decimal("1E-1000"),
            Decimal("-1E+1000"),
            Decimal("1E+20"),
            Decimal("123456789012345678901234567890.123456789012345678901234567890"),
            Decimal("0.00000000000000000000000000000000000000000001"),
            Decimal("9999.9999"),
            Decimal("10000"),
            Decimal("1.0"),
        ]
    ),
    st.builds(
        lambda i, s: Decimal(i).scaleb(-s), st.integers(-(10**40), 10**40), st.integers(-60, 200)
    ),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
)


@SETTINGS
@given(decimals)
async def test_numeric(conns: Any, v: Decimal) -> None:
    # The server keeps the value; its rendering (scale) may differ from the
    # input for positive exponents, so compare by value and against asyncpg.
    got = await roundtrip(conns, "numeric", v, expect=None)
    assert isinstance(got, Decimal)
    if v.is_nan():
        assert got.is_nan()
    else:
        assert got == v


no_nul_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
)


@pytest.mark.parametrize("typ", ["text", "varchar", "name", "bpchar", "xml"])
@SETTINGS
@given(v=no_nul_text)
async def test_text_types(conns: Any, typ: str, v: str) -> None:
    if typ == "name":
        v = v.encode()[:63].decode(errors="ignore")
    if typ == "bpchar":
        v = v.rstrip(" ")
    if typ == "xml":
        v = v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "")
        v = "".join(ch for ch in v if ch in "\t\n" or ord(ch) >= 0x20)
        v = "".join(ch for ch in v if ch not in "\ufffe\uffff")
        v = f"<x>{v}</x>"  # a bare whitespace-only document is normalised away
    await roundtrip(conns, typ, v)


async def test_char_types(conns: Any) -> None:
    await roundtrip(conns, '"char"', b"a")  # asyncpg: "char" is bytes
    await roundtrip(conns, "char(3)", "ab", expect="ab ")
    await roundtrip(conns, "varchar(2)", "ab")
    await decode_same(conns, "SELECT 'x'::\"char\", 'abc'::char(5), 'a'::name")


@SETTINGS
@given(st.binary(max_size=2000))
async def test_bytea(conns: Any, v: bytes) -> None:
    await roundtrip(conns, "bytea", v)


async def test_bytea_buffer_inputs(conns: Any) -> None:
    for v in (bytearray(b"\x00\x01"), memoryview(b"abc\xff")):
        await roundtrip(conns, "bytea", v, expect=bytes(v))


@SETTINGS
@given(st.uuids())
async def test_uuid(conns: Any, v: uuid.UUID) -> None:
    await roundtrip(conns, "uuid", v)
    await roundtrip(conns, "uuid", str(v), expect=v)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | no_nul_text
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(no_nul_text, children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("typ", ["json", "jsonb"])
@SETTINGS
@given(v=json_values, ensure_ascii=st.booleans())
async def test_json(conns: Any, typ: str, v: Any, ensure_ascii: bool) -> None:
    text = json.dumps(v, ensure_ascii=ensure_ascii)
    got = await roundtrip(conns, typ, text, expect=SAME if typ == "json" else None)
    assert isinstance(got, str)
    if typ == "json":
        assert json.loads(got) == json.loads(text)


async def test_jsonpath(conns: Any) -> None:
    await roundtrip(conns, "jsonpath", "$.a[*] ? (@ > 2)", expect=None)


# -- date and time ----------------------------------------------------------------

offsets = st.integers(-15 * 60, 15 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


@SETTINGS
@given(st.one_of(st.sampled_from([dt.date.min, dt.date.max, dt.date(2000, 1, 1)]), st.dates()))
async def test_date(conns: Any, v: dt.date) -> None:
    await roundtrip(conns, "date", v)


@SETTINGS
@given(st.times())
async def test_time(conns: Any, v: dt.time) -> None:
    await roundtrip(conns, "time", v)


@SETTINGS
@given(st.times(timezones=offsets))
async def test_timetz(conns: Any, v: dt.time) -> None:
    await roundtrip(conns, "timetz", v)


@SETTINGS
@given(st.one_of(st.sampled_from([dt.datetime.min, dt.datetime.max]), st.datetimes()))
async def test_timestamp(conns: Any, v: dt.datetime) -> None:
    await roundtrip(conns, "timestamp", v)


@SETTINGS
@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=offsets
    )
)
async def test_timestamptz(conns: Any, v: dt.datetime) -> None:
    got = await roundtrip(conns, "timestamptz", v, expect=None)
    assert got == v  # same instant; returned in UTC
    assert got.utcoffset() == dt.timedelta(0)


async def test_timestamptz_naive_input(conns: Any) -> None:
    # asyncpg treats a naive datetime as UTC for timestamptz.
    await roundtrip(conns, "timestamptz", dt.datetime(2020, 5, 17, 1, 2, 3), expect=None)


@SETTINGS
@given(
    st.one_of(
        st.sampled_from([dt.timedelta.min, dt.timedelta.max, dt.timedelta(0)]), st.timedeltas()
    )
)
async def test_interval(conns: Any, v: dt.timedelta) -> None:
    await roundtrip(conns, "interval", v)


@pytest.mark.parametrize(
    "literal",
    [
        "'infinity'::date",
        "'-infinity'::date",
        "'4713-01-01 BC'::date",
        "'5874897-12-31'::date",
        "'infinity'::timestamp",
        "'-infinity'::timestamp",
        "'294276-12-31 23:59:59'::timestamp",
        "'infinity'::timestamptz",
        "'-infinity'::timestamptz",
        "'0001-01-01 00:00:00+00'::timestamptz",
        "'2000-01-01 BC'::timestamp",
        "'24:00:00'::time",
        "'24:00:00-15:59'::timetz",
        "'00:00:00+15:59'::timetz",
        "'1 year 2 months 3 days 04:05:06.789'::interval",
        "'-1 mon'::interval",
        "'2000000 years 5 mons'::interval",
        "'1 day -1 microsecond'::interval",
        "'2020-02-29 12:00'::timestamptz AT TIME ZONE 'Asia/Kathmandu'",
    ],
)
async def test_datetime_server_values(conns: Any, literal: str) -> None:
    await decode_same(conns, f"SELECT {literal}")


async def test_interval_beyond_timedelta(conns: Any) -> None:
    # asyncpg 0.32 silently wraps this around (months * 30 overflows int32 and
    # it returns timedelta(days=545490560)); an error is the only right answer.
    con, _ = conns
    with pytest.raises((OverflowError, ValueError)):
        await con.fetchval("SELECT '178000000 years'::interval")
    assert await con.fetchval("SELECT '1 mon'::interval") == dt.timedelta(days=30)


@pytest.mark.pg(">= 17")
@pytest.mark.parametrize("literal", ["'infinity'::interval", "'-infinity'::interval"])
async def test_interval_infinity(conns: Any, literal: str) -> None:
    await decode_same(conns, f"SELECT {literal}")


@pytest.mark.parametrize(
    ("typ", "value", "text"),
    [
        ("date", dt.date.max, "infinity"),
        ("date", dt.date.min, "-infinity"),
        ("timestamp", dt.datetime.max, "infinity"),
        ("timestamp", dt.datetime.min, "-infinity"),
        ("timestamptz", dt.datetime.max.replace(tzinfo=dt.timezone.utc), "infinity"),
        ("timestamptz", dt.datetime.min.replace(tzinfo=dt.timezone.utc), "-infinity"),
    ],
)
async def test_datetime_infinity_encoding(conns: Any, typ: str, value: Any, text: str) -> None:
    con, acon = conns
    q = f"SELECT $1::{typ}::text"
    assert await acon.fetchval(q, value) == text
    assert await con.fetchval(q, value) == text
    # and back: the server's infinities decode as asyncpg decodes them
    # (date/datetime min/max; naive even for timestamptz)
    await decode_same(conns, f"SELECT '{text}'::{typ}")
    got = await con.fetchval(f"SELECT '{text}'::{typ}")
    if isinstance(value, dt.datetime):
        got, value = got.replace(tzinfo=None), value.replace(tzinfo=None)
    assert got == value


# -- network ------------------------------------------------------------------------

ip4 = st.ip_addresses(v=4)
ip6 = st.ip_addresses(v=6)


@st.composite
def interfaces(draw: st.DrawFn) -> Any:
    addr = draw(st.one_of(ip4, ip6))
    prefix = draw(st.integers(0, addr.max_prefixlen))
    return ipaddress.ip_interface(f"{addr}/{prefix}")


@st.composite
def networks(draw: st.DrawFn) -> Any:
    return draw(interfaces()).network


@SETTINGS
@given(st.one_of(ip4, ip6, interfaces()))
async def test_inet(conns: Any, v: Any) -> None:
    await roundtrip(conns, "inet", v, expect=None)
    got = await conns[0].fetchval("SELECT $1::inet", v)
    assert ipaddress.ip_interface(str(got)) == ipaddress.ip_interface(str(v))


@SETTINGS
@given(networks())
async def test_cidr(conns: Any, v: Any) -> None:
    await roundtrip(conns, "cidr", v)


async def test_inet_strings(conns: Any) -> None:
    await roundtrip(conns, "inet", "10.1.2.3/8", expect=None)
    await roundtrip(conns, "cidr", "10.0.0.0/8", expect=ipaddress.ip_network("10.0.0.0/8"))
    await decode_same(conns, "SELECT '::ffff:1.2.3.4/128'::inet, '192.168.0.1'::inet")


@SETTINGS
@given(st.binary(min_size=6, max_size=6), st.sampled_from([":", "-"]))
async def test_macaddr(conns: Any, raw: bytes, sep: str) -> None:
    text = sep.join(f"{b:02X}" for b in raw)
    await roundtrip(conns, "macaddr", text, expect=":".join(f"{b:02x}" for b in raw))


async def test_macaddr8(conns: Any) -> None:
    await roundtrip(conns, "macaddr8", "08:00:2b:01:02:03:04:05")


# -- bit strings ----------------------------------------------------------------------


@SETTINGS
@given(st.text(alphabet="01", max_size=200))
async def test_varbit(conns: Any, bits: str) -> None:
    await roundtrip(conns, "varbit", B(lambda T: T.BitString(bits)))


@SETTINGS
@given(st.text(alphabet="01", min_size=12, max_size=12))
async def test_bit(conns: Any, bits: str) -> None:
    await roundtrip(conns, "bit(12)", B(lambda T: T.BitString(bits)))


# -- geometry -------------------------------------------------------------------------

coords = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
xy = st.tuples(coords, coords)


@SETTINGS
@given(xy)
async def test_point(conns: Any, p: tuple[float, float]) -> None:
    await roundtrip(conns, "point", B(lambda T: T.Point(*p)))
    await roundtrip(conns, "point", p, expect=B(lambda T: T.Point(*p)).build(pg_types))


@SETTINGS
@given(xy, xy)
async def test_box(conns: Any, a: tuple[float, float], b: tuple[float, float]) -> None:
    # The server reorders the corners (high = upper right), so only asyncpg is the reference.
    await roundtrip(conns, "box", B(lambda T: T.Box(T.Point(*a), T.Point(*b))), expect=None)


@SETTINGS
@given(xy, xy)
async def test_lseg(conns: Any, a: tuple[float, float], b: tuple[float, float]) -> None:
    await roundtrip(conns, "lseg", B(lambda T: T.LineSegment(T.Point(*a), T.Point(*b))))


@SETTINGS
@given(coords, coords, coords)
async def test_line(conns: Any, a: float, b: float, c: float) -> None:
    if abs(a) < 1e-5 and abs(b) < 1e-5:  # the server's FPzero: "A and B cannot both be zero"
        b = 1.0
    await roundtrip(conns, "line", B(lambda T: T.Line(a, b, c)))


@SETTINGS
@given(st.lists(xy, min_size=1, max_size=10), st.booleans())
async def test_path(conns: Any, points: list[tuple[float, float]], closed: bool) -> None:
    await roundtrip(
        conns, "path", B(lambda T: T.Path(*[T.Point(*p) for p in points], is_closed=closed))
    )


@SETTINGS
@given(st.lists(xy, min_size=1, max_size=10))
async def test_polygon(conns: Any, points: list[tuple[float, float]]) -> None:
    await roundtrip(conns, "polygon", B(lambda T: T.Polygon(*[T.Point(*p) for p in points])))


@SETTINGS
@given(xy, st.floats(min_value=0, max_value=1e12))
async def test_circle(conns: Any, center: tuple[float, float], r: float) -> None:
    # asyncpg decodes the centre as a plain tuple, not a Point.
    got = await roundtrip(conns, "circle", B(lambda T: T.Circle(T.Point(*center), r)), expect=None)
    assert (tuple(got[0]), got[1]) == (center, r)


async def test_geometry_server_values(conns: Any) -> None:
    await decode_same(
        conns,
        "SELECT ARRAY[box '((0,0),(1,1))', box '((5,5),(-1,-1))']",
    )
    for literal in (
        "'[(0,0),(1,1),(2,0)]'::path",
        "'((0,0),(1,1),(2,0))'::path",
        "'((0,0),(1,1),(2,0))'::polygon",
        "'<(1,2),3>'::circle",
        "'{1,-1,0}'::line",
        "'[(1,2),(3,4)]'::lseg",
        "'(1.5,NaN)'::point",
    ):
        await decode_same(conns, f"SELECT {literal}")


# -- ranges -----------------------------------------------------------------------------

opt_int = st.none() | st.integers(-(2**31) + 1, 2**31 - 2)


@SETTINGS
@given(opt_int, opt_int, st.booleans(), st.booleans(), st.booleans())
async def test_int4range(
    conns: Any, lo: int | None, hi: int | None, lo_inc: bool, hi_inc: bool, empty: bool
) -> None:
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    if empty:
        value = B(lambda T: T.Range(empty=True))
    else:
        value = B(lambda T: T.Range(lo, hi, lower_inc=lo_inc, upper_inc=hi_inc))
    # int4range is canonicalised to [) by the server; asyncpg is the reference.
    got = await roundtrip(conns, "int4range", value, expect=None)
    assert type(got).__name__ == "Range"


opt_ts = st.none() | st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 1, 1))


@SETTINGS
@given(opt_ts, opt_ts, st.booleans(), st.booleans())
async def test_tsrange(
    conns: Any, lo: dt.datetime | None, hi: dt.datetime | None, lo_inc: bool, hi_inc: bool
) -> None:
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    value = B(lambda T: T.Range(lo, hi, lower_inc=lo_inc, upper_inc=hi_inc))
    await roundtrip(conns, "tsrange", value, expect=None)


async def test_range_inputs(conns: Any) -> None:
    await roundtrip(conns, "int4range", (1, 5), expect=None)
    await roundtrip(conns, "int8range", [None, 5], expect=None)
    await roundtrip(
        conns, "numrange", B(lambda T: T.Range(Decimal("1.5"), Decimal("2.25"), upper_inc=True))
    )
    await roundtrip(conns, "daterange", B(lambda T: T.Range(dt.date(2020, 1, 1), None)))
    utc = dt.timezone.utc
    await roundtrip(
        conns,
        "tstzrange",
        B(
            lambda T: T.Range(
                dt.datetime(2020, 1, 1, tzinfo=utc), dt.datetime(2021, 1, 1, tzinfo=utc)
            )
        ),
    )
    for literal in (
        "'empty'::int4range",
        "'(,)'::int4range",
        "'[1,1]'::int8range",
        "'(1.5,2]'::numrange",
        "'[2020-01-01,infinity)'::daterange",
    ):
        await decode_same(conns, f"SELECT {literal}")


@pytest.mark.pg(">= 14")
@SETTINGS
@given(st.lists(st.tuples(st.integers(-1000, 1000), st.integers(0, 50)), max_size=5))
async def test_int4multirange(conns: Any, spans: list[tuple[int, int]]) -> None:
    value = B(lambda T: [T.Range(lo, lo + n) for lo, n in spans])
    got = await roundtrip(conns, "int4multirange", value, expect=None)
    assert isinstance(got, list)


@pytest.mark.pg(">= 14")
async def test_multirange_inputs(conns: Any) -> None:
    await roundtrip(conns, "int4multirange", [(1, 3), (5, 8)], expect=None)
    await roundtrip(conns, "int8multirange", [], expect=None)
    await decode_same(conns, "SELECT '{[1,3), [7,9]}'::int4multirange")
    await decode_same(conns, "SELECT '{}'::datemultirange")
    await decode_same(conns, "SELECT ARRAY['{[1,2)}'::int4multirange]")


# -- arrays ---------------------------------------------------------------------------------


def arrays_of(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    with_null = st.none() | elements
    one_dim = st.lists(with_null, max_size=8)

    @st.composite
    def multi(draw: st.DrawFn) -> Any:
        dims = draw(st.lists(st.integers(1, 3), min_size=2, max_size=3))

        def build(level: int) -> Any:
            if level == len(dims):
                return draw(with_null)
            return [build(level + 1) for _ in range(dims[level])]

        return build(0)

    return st.one_of(one_dim, multi())


ARRAY_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "int4": ints(32),
    "int8": ints(64),
    "float8": st.floats(),
    "text": no_nul_text,
    "bool": st.booleans(),
    "numeric": st.decimals(allow_nan=True, allow_infinity=False, places=3),
    "date": st.dates(),
    "uuid": st.uuids(),
    "bytea": st.binary(max_size=20),
    "timestamptz": st.datetimes(min_value=dt.datetime(1, 1, 2), timezones=offsets),
}


@pytest.mark.parametrize("typ", list(ARRAY_TYPES))
@SETTINGS
@given(data=st.data())
async def test_arrays(conns: Any, typ: str, data: st.DataObject) -> None:
    value = data.draw(arrays_of(ARRAY_TYPES[typ]))
    await roundtrip(conns, f"{typ}[]", value, expect=SAME if typ != "timestamptz" else None)


async def test_array_edge_cases(conns: Any) -> None:
    await roundtrip(conns, "int4[]", [])
    await roundtrip(conns, "int4[]", [[]], expect=[])
    await roundtrip(conns, "int4[]", [None])
    await roundtrip(conns, "text[]", ["NULL", None, "", '"{}', "a,b", "\\"])
    await roundtrip(conns, "int4[]", (1, 2, 3), expect=[1, 2, 3])
    await roundtrip(conns, "float8[]", [math.nan, -0.0, math.inf])
    await roundtrip(conns, "int2[]", [[[1], [2]], [[3], [4]]])
    for literal in (
        "'{}'::int4[]",
        "'[0:2]={1,2,3}'::int4[]",
        "'{{1,2},{3,NULL}}'::int4[]",
        "ARRAY[ARRAY[]::int[]]",
        '\'{"a b",NULL,"NULL"}\'::text[]',
        "ARRAY['1 day'::interval]",
        "ARRAY['10.0.0.1'::inet, '::1/64']",
        "ARRAY[B'101']",
        "ARRAY[point(1,2)]",
        "ARRAY['{\"a\": 1}'::jsonb]",
        "ARRAY[int4range(1, 3)]",
        "'{}'::int4[][]",
    ):
        await decode_same(conns, f"SELECT {literal}")


async def test_array_errors(conns: Any) -> None:
    con, acon = conns
    for bad in ([[1, 2], [3]], [1, [2]], 5):
        with pytest.raises(Exception) as expected:
            await acon.fetchval("SELECT $1::int4[]", bad)
        with pytest.raises(Exception) as got:
            await con.fetchval("SELECT $1::int4[]", bad)
        assert type(got.value).__name__ == type(expected.value).__name__
        assert isinstance(got.value, (exc.DataError, ValueError))
    assert await con.fetchval("SELECT 1") == 1


# -- user-defined types -----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def udt(cluster: Any) -> AsyncIterator[dict[str, Any]]:
    # Created through asyncpg: this is setup, not what is being tested.
    con = await ref.connect(cluster.dsn())
    names = {
        "enum": unique("mood"),
        "comp": unique("pair"),
        "nested": unique("nest"),
        "domain": unique("posint"),
        "domain_arr": unique("posints"),
    }
    labels = ["sad", "ok", "happy", "très bien", "with space", "Quote'd"]
    enum_labels = ", ".join("'" + x.replace("'", "''") + "'" for x in labels)
    await con.execute(
        f"""
        CREATE TYPE {names["enum"]} AS ENUM ({enum_labels});
        CREATE TYPE {names["comp"]} AS (a int, b text, c int[]);
        CREATE TYPE {names["nested"]} AS (p {names["comp"]}, m {names["enum"]}, d date);
        CREATE DOMAIN {names["domain"]} AS int CHECK (VALUE > 0);
        CREATE DOMAIN {names["domain_arr"]} AS int[];
        """
    )
    try:
        yield {**names, "labels": labels}
    finally:
        await con.execute(
            f"DROP TYPE {names['nested']}, {names['comp']}, {names['enum']};"
            f"DROP DOMAIN {names['domain']}, {names['domain_arr']}"
        )
        await con.close()


@SETTINGS
@given(data=st.data())
async def test_enum(conns: Any, udt: dict[str, Any], data: st.DataObject) -> None:
    v = data.draw(st.sampled_from(udt["labels"]))
    await roundtrip(conns, udt["enum"], v)
    await roundtrip(conns, f"{udt['enum']}[]", [v, None, v])


async def test_enum_invalid_label(conns: Any, udt: dict[str, Any]) -> None:
    await decode_same(conns, f"SELECT $1::{udt['enum']}", "nope")


@SETTINGS
@given(
    st.none() | ints(32),
    st.none() | no_nul_text,
    st.none() | st.lists(st.none() | ints(32), max_size=4),
)
async def test_composite(conns: Any, udt: dict[str, Any], a: Any, b: Any, c: Any) -> None:
    got = await roundtrip(conns, udt["comp"], (a, b, c), expect=None)
    assert type(got).__name__ == "Record"
    assert tuple(got) == (a, b, c)
    assert list(got.keys()) == ["a", "b", "c"]


async def test_composite_variants(conns: Any, udt: dict[str, Any]) -> None:
    comp, nested = udt["comp"], udt["nested"]
    await roundtrip(conns, comp, {"a": 1, "b": "x", "c": [1]}, expect=None)
    await roundtrip(conns, nested, ((1, "x", None), "ok", dt.date(2020, 1, 1)), expect=None)
    await roundtrip(conns, f"{comp}[]", [(1, "a", [1, 2]), None, (None, None, None)], expect=None)
    await decode_same(conns, f"SELECT ROW(1, 'a', ARRAY[1])::{comp}")
    await decode_same(conns, "SELECT ROW(1, 'a', NULL, ROW(2.5, true))")
    await decode_same(conns, "SELECT (1, 2)")
    await decode_same(conns, f"SELECT ROW(ROW(1, 'b', '{{}}'), 'sad', NULL)::{nested}")


@SETTINGS
@given(st.integers(1, 2**31 - 1))
async def test_domain(conns: Any, udt: dict[str, Any], v: int) -> None:
    await roundtrip(conns, udt["domain"], v)


async def test_domain_errors_and_arrays(conns: Any, udt: dict[str, Any]) -> None:
    con, acon = conns
    with pytest.raises(ref.exceptions.CheckViolationError):
        await acon.fetchval(f"SELECT $1::{udt['domain']}", -1)
    with pytest.raises(exc.CheckViolationError):
        await con.fetchval(f"SELECT $1::{udt['domain']}", -1)
    await roundtrip(conns, udt["domain_arr"], [1, 2, None])
    await roundtrip(conns, f"{udt['domain']}[]", [1, 2])


# -- hstore ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def hstore_installed(cluster: Any) -> None:
    con = await ref.connect(cluster.dsn())
    try:
        if not await con.fetchval(
            "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'hstore')"
        ):
            pytest.skip("the hstore extension is not installed on this server")
        try:
            await con.execute("CREATE EXTENSION IF NOT EXISTS hstore")
        except ref.exceptions.UniqueViolationError:  # created concurrently by someone else
            pass
    finally:
        await con.close()


@pytest.fixture
async def hstore(conns: tuple[Any, Any], hstore_installed: None) -> None:
    for c in conns:
        await c.set_builtin_type_codec("hstore", codec_name="pg_contrib.hstore")


@SETTINGS
@given(st.dictionaries(no_nul_text, st.none() | no_nul_text, max_size=6))
async def test_hstore(conns: Any, hstore: None, v: dict[str, str | None]) -> None:
    got = await roundtrip(conns, "hstore", v)
    assert isinstance(got, dict)


# -- assorted system types ------------------------------------------------------------------------


@SETTINGS
@given(st.integers(0, 2**63 - 1))  # asyncpg encodes pg_lsn as a signed int8
async def test_pg_lsn(conns: Any, v: int) -> None:
    await roundtrip(conns, "pg_lsn", v)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**16 - 1))
async def test_tid(conns: Any, block: int, offset: int) -> None:
    await roundtrip(conns, "tid", (block, offset))


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    # epoch 0: the server rejects xids whose low 32 bits are special (0..2)
    xmin = draw(st.integers(3, 2**31))
    xmax = xmin + draw(st.integers(0, 1000))
    xip = sorted(draw(st.sets(st.integers(xmin, xmax - 1), max_size=5))) if xmax > xmin else []
    return xmin, xmax, xip


@SETTINGS
@given(snapshots())
async def test_txid_snapshot(conns: Any, snap: tuple[int, int, list[int]]) -> None:
    await roundtrip(conns, "txid_snapshot", snap, expect=(snap[0], snap[1], tuple(snap[2])))


async def test_snapshot_server_values(conns: Any) -> None:
    await decode_same(conns, "SELECT txid_current_snapshot()")
    await decode_same(conns, "SELECT '10:20:10,14,15'::txid_snapshot")
    await decode_same(conns, "SELECT pg_current_snapshot()")
    await decode_same(conns, "SELECT '10:20:12'::pg_snapshot")


@SETTINGS
@given(st.integers(0, 2**64 - 1))
async def test_xid8(conns: Any, v: int) -> None:
    await roundtrip(conns, "xid8", v)


@SETTINGS
@given(st.integers(-(10**12), 10**12))
async def test_money(conns: Any, cents: int) -> None:
    text = f"{cents / 100:.2f}"
    got = await roundtrip(conns, "money", text, expect=None)
    assert isinstance(got, str)


@SETTINGS
@given(st.lists(st.text(alphabet="abcdefxyz", min_size=1, max_size=6), max_size=6))
async def test_tsvector(conns: Any, words: list[str]) -> None:
    got = await roundtrip(conns, "tsvector", " ".join(words), expect=None)
    assert isinstance(got, str)


async def test_text_fallback_types(conns: Any) -> None:
    await roundtrip(conns, "tsquery", "fat & (rat | cat)", expect=None)
    await roundtrip(conns, "regclass", "pg_class", expect=None)
    await roundtrip(conns, "regtype", "integer", expect=None)
    await decode_same(conns, "SELECT 'pg_class'::regclass, 'int4'::regtype")
    await decode_same(conns, "SELECT to_tsvector('english', 'the fat cats sat')")
    await decode_same(conns, "SELECT '12.5'::money")


async def test_void_and_unknown(conns: Any) -> None:
    await decode_same(conns, "SELECT pg_sleep(0)")
    await decode_same(conns, "SELECT 'literal'")
    await decode_same(conns, "SELECT NULL")


async def test_record_of_everything(conns: Any) -> None:
    """One row holding many types at once decodes the same way."""
    await decode_same(
        conns,
        """
        SELECT ROW(
            1::int2, 2::int4, 3::int8, 1.5::float4, 2.5::float8, 3.25::numeric,
            'x'::text, '\\x0102'::bytea, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
            '{"a":1}'::json, '{"a":1}'::jsonb, '2020-01-01'::date, '12:34'::time,
            '12:34+02'::timetz, '2020-01-01 12:00'::timestamp,
            '2020-01-01 12:00+05'::timestamptz, '1 day'::interval, '1.2.3.4'::inet,
            '10.0.0.0/8'::cidr, '08:00:2b:01:02:03'::macaddr, B'1010'::bit(4),
            B'10'::varbit, point(1, 2), true
        )
        """,
    )
    # (asyncpg can't decode an array or range inside an anonymous record:
    # InternalClientError, so those are left out)


async def test_decimal_context_independent(conns: Any) -> None:
    # A low local precision must not round what is decoded.
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        await roundtrip(conns, "numeric", Decimal("123456.789012"))
