"""date, time, timetz, timestamp, timestamptz, interval (pg_codecs._datetime).

On the wire: date = int32 days since 2000-01-01; timestamp(tz) = int64
microseconds since 2000-01-01 00:00 (UTC); time = int64 microseconds since
midnight; timetz adds int32 seconds *west* of UTC; interval = int64
microseconds, int32 days, int32 months. The extreme integers are infinities.
"""

from __future__ import annotations

import os
import random
import re
import struct
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime

import pytest

from pg_codecs import _datetime
from pg_codecs.errors import DecodeError

UTC = timezone.utc
I32_MAX, I32_MIN = 2**31 - 1, -(2**31)
I64_MAX, I64_MIN = 2**63 - 1, -(2**63)
USECS_PER_DAY = 86_400_000_000


def enc(typename: str, value: object, xformat: str = "object") -> bytes:
    return _datetime._encode(typename, value, xformat)


def dec(typename: str, data: bytes, xformat: str = "object") -> object:
    return _datetime._decode(typename, data, xformat)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


@pytest.fixture
def local_tz() -> Iterator[None]:
    """Run with the process's local time zone set to New York."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


# -- date ----------------------------------------------------------------------

DATE_GOLDEN = [
    (date(2000, 1, 1), 0),
    (date(2000, 1, 2), 1),
    (date(1999, 12, 31), -1),
    (date(2000, 3, 1), 60),                  # 2000 is a leap year
    (date(2001, 1, 1), 366),
    (date(1970, 1, 1), -10957),
    (date(2100, 3, 1), 36584),               # 2100 is not
    (date(1, 1, 2), -730118),
    (date(9999, 12, 30), 2921938),
]


@pytest.mark.parametrize(("value", "days"), DATE_GOLDEN)
def test_date_golden(value: date, days: int) -> None:
    assert enc("date", value) == i32(4) + i32(days)
    assert dec("date", i32(days)) == value


def test_date_infinity() -> None:
    # asyncpg's mapping: date.max/min <-> +/-infinity.
    assert enc("date", date.max) == i32(4) + i32(I32_MAX)
    assert enc("date", date.min) == i32(4) + i32(I32_MIN)
    assert dec("date", i32(I32_MAX)) == date.max
    assert dec("date", i32(I32_MIN)) == date.min


def test_date_accepts_datetime_ignoring_time() -> None:
    assert enc("date", datetime(2000, 1, 2, 23, 59)) == i32(4) + i32(1)


def test_date_out_of_python_range() -> None:
    # Day 2921940 is 10000-01-01; Feb 29 of 1 BC (year 0 is a leap year in
    # the proleptic Gregorian calendar) is day -730426.
    with pytest.raises(ValueError, match="10000-01-01") as exc:
        dec("date", i32(2921940))
    assert not isinstance(exc.value, DecodeError)
    with pytest.raises(ValueError, match="0001-02-29 BC"):
        dec("date", i32(-730426))
    with pytest.raises(ValueError, match="0001-12-31 BC"):
        dec("date", i32(-730120))
    with pytest.raises(ValueError, match="4714-11-24 BC"):
        dec("date", i32(-2451545))            # the server's earliest date (JD 0)


def test_calendar_round_trip() -> None:
    # Every 7th day of Python's range plus both ends, against date.toordinal.
    epoch = date(2000, 1, 1).toordinal()
    ordinals = [*range(1, 3652060, 7), 1, 3652058, 3652059]
    for ordinal in ordinals:
        value = date.fromordinal(ordinal)
        days = ordinal - epoch
        if value in (date.min, date.max):
            continue
        assert enc("date", value) == i32(4) + i32(days)
        assert dec("date", i32(days)) == value


def test_date_tuple_format() -> None:
    assert enc("date", (-1,), "tuple") == i32(4) + i32(-1)
    assert dec("date", i32(I32_MAX), "tuple") == (I32_MAX,)
    assert dec("date", i32(-800000), "tuple") == (-800000,)   # BC: only the tuple form has it
    with pytest.raises(ValueError, match="1 element"):
        enc("date", (1, 2), "tuple")
    with pytest.raises(TypeError, match="tuple"):
        enc("date", 5, "tuple")
    with pytest.raises(OverflowError):
        enc("date", (2**31,), "tuple")
    with pytest.raises(TypeError, match="int items"):
        enc("date", (1.5,), "tuple")


# -- timestamp -------------------------------------------------------------------

TS_GOLDEN = [
    (datetime(2000, 1, 1), 0),
    (datetime(2000, 1, 1, 0, 0, 1, 500000), 1_500_000),
    (datetime(1999, 12, 31, 23, 59, 59, 999999), -1),
    (datetime(1970, 1, 1), -10957 * USECS_PER_DAY),
    (datetime(2024, 2, 29, 12, 30), (8825 * 86400 + 45000) * 10**6),
    (datetime(1, 1, 1, 0, 0, 0, 1), -730119 * USECS_PER_DAY + 1),
    (datetime(9999, 12, 31, 23, 59, 59, 999998), 2921940 * USECS_PER_DAY - 2),
]


@pytest.mark.parametrize(("value", "us"), TS_GOLDEN)
def test_timestamp_golden(value: datetime, us: int) -> None:
    assert enc("timestamp", value) == i32(8) + i64(us)
    got = dec("timestamp", i64(us))
    assert got == value
    assert got.tzinfo is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("value", "us"), TS_GOLDEN)
def test_timestamptz_golden(value: datetime, us: int) -> None:
    aware = value.replace(tzinfo=UTC)
    assert enc("timestamptz", aware) == i32(8) + i64(us)
    got = dec("timestamptz", i64(us))
    assert got == aware
    assert got.tzinfo is UTC  # type: ignore[attr-defined]


def test_timestamp_infinity() -> None:
    for name in ("timestamp", "timestamptz"):
        assert enc(name, datetime.max) == i32(8) + i64(I64_MAX)
        assert enc(name, datetime.min) == i32(8) + i64(I64_MIN)
        # asyncpg returns the naive extremes, for timestamptz too.
        assert dec(name, i64(I64_MAX)) == datetime.max
        assert dec(name, i64(I64_MIN)) == datetime.min
        assert dec(name, i64(I64_MAX)).tzinfo is None  # type: ignore[attr-defined]
    # An aware datetime equal to datetime.max in UTC is infinity as well.
    assert enc("timestamptz", datetime.max.replace(tzinfo=UTC)) == i32(8) + i64(I64_MAX)
    # date.min as a timestamp is datetime.min, hence -infinity (asyncpg's rule).
    assert enc("timestamp", date.min) == i32(8) + i64(I64_MIN)


def test_timestamp_out_of_python_range() -> None:
    first = -730119 * USECS_PER_DAY
    with pytest.raises(OverflowError, match=re.escape("0001-12-31 23:59:59.999999 BC")):
        dec("timestamp", i64(first - 1))
    with pytest.raises(OverflowError, match="10000-01-01 00:00:00"):
        dec("timestamptz", i64(2921940 * USECS_PER_DAY))
    with pytest.raises(OverflowError):
        dec("timestamp", i64(I64_MAX - 1))
    assert dec("timestamp", i64(first - 1), "tuple") == (first - 1,)


def test_timestamp_rejects_aware() -> None:
    with pytest.raises(TypeError, match="naive"):
        enc("timestamp", datetime(2020, 1, 1, tzinfo=UTC))


def test_timestamp_accepts_date() -> None:
    assert enc("timestamp", date(2000, 1, 2)) == i32(8) + i64(USECS_PER_DAY)


def test_timestamptz_offsets() -> None:
    plus2 = timezone(timedelta(hours=2))
    value = datetime(2000, 1, 1, 2, 0, tzinfo=plus2)      # = 2000-01-01 00:00 UTC
    assert enc("timestamptz", value) == i32(8) + i64(0)
    # Beyond year 9999 in UTC is fine for the server.
    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert enc("timestamptz", late) == i32(8) + i64(2921940 * USECS_PER_DAY + 4 * 3600 * 10**6)


def test_timestamptz_naive_is_local_time(local_tz: None) -> None:
    # asyncpg's rule: a naive datetime is local time (astimezone()).
    # New York is UTC-5 in January, UTC-4 in July.
    assert enc("timestamptz", datetime(2000, 1, 1)) == i32(8) + i64(5 * 3600 * 10**6)
    summer = datetime(2000, 7, 1)
    expected = ((date(2000, 7, 1) - date(2000, 1, 1)).days * 86400 + 4 * 3600) * 10**6
    assert enc("timestamptz", summer) == i32(8) + i64(expected)
    # The naive extremes still mean infinity.
    assert enc("timestamptz", datetime.max) == i32(8) + i64(I64_MAX)


def test_timestamptz_date_is_local_midnight(local_tz: None) -> None:
    # Local midnight at the UTC offset in effect now (asyncpg's rule).
    offset = datetime.now(UTC).astimezone().utcoffset()
    assert offset is not None
    expected = USECS_PER_DAY - offset // timedelta(microseconds=1)
    assert enc("timestamptz", date(2000, 1, 2)) == i32(8) + i64(expected)


def test_timestamp_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"timestamp.*str"):
        enc("timestamp", "2020-01-01")
    with pytest.raises(TypeError, match=r"timestamptz.*int"):
        enc("timestamptz", 0)


def test_timestamp_tuple_format() -> None:
    for name in ("timestamp", "timestamptz"):
        assert enc(name, (I64_MIN,), "tuple") == i32(8) + i64(I64_MIN)
        assert dec(name, i64(-5), "tuple") == (-5,)


def test_timestamp_random_round_trip() -> None:
    rnd = random.Random(1114)
    lo, hi = -730119 * USECS_PER_DAY + 1, 2921940 * USECS_PER_DAY - 2
    for _ in range(5000):
        us = rnd.randint(lo, hi)
        expected = datetime(2000, 1, 1) + timedelta(microseconds=us)
        assert dec("timestamp", i64(us)) == expected
        assert enc("timestamp", expected) == i32(8) + i64(us)


# -- time, timetz ----------------------------------------------------------------

def test_time_golden() -> None:
    assert enc("time", dtime(0, 0)) == i32(8) + i64(0)
    assert enc("time", dtime(23, 59, 59, 999999)) == i32(8) + i64(USECS_PER_DAY - 1)
    assert enc("time", dtime(1, 2, 3, 4)) == i32(8) + i64(3723 * 10**6 + 4)
    assert dec("time", i64(3723 * 10**6 + 4)) == dtime(1, 2, 3, 4)
    # tzinfo is ignored for time (without time zone), as in asyncpg.
    assert enc("time", dtime(1, tzinfo=UTC)) == i32(8) + i64(3600 * 10**6)


def test_time_24_00() -> None:
    # The server allows 24:00:00; datetime.time cannot hold it.
    with pytest.raises(ValueError, match="24:00:00") as exc:
        dec("time", i64(USECS_PER_DAY))
    assert not isinstance(exc.value, DecodeError)
    assert dec("time", i64(USECS_PER_DAY), "tuple") == (USECS_PER_DAY,)


def test_time_malformed() -> None:
    with pytest.raises(DecodeError):
        dec("time", i64(-1))
    with pytest.raises(DecodeError):
        dec("time", i64(USECS_PER_DAY + 1))


def test_timetz_golden() -> None:
    plus2 = timezone(timedelta(hours=2))
    value = dtime(12, 0, tzinfo=plus2)
    # The zone goes out in seconds west of UTC: -7200.
    assert enc("timetz", value) == i32(12) + i64(43200 * 10**6) + i32(-7200)
    got = dec("timetz", i64(43200 * 10**6) + i32(-7200))
    assert got == value
    assert got.utcoffset() == timedelta(hours=2)  # type: ignore[attr-defined]
    got = dec("timetz", i64(0) + i32(0))
    assert got.tzinfo is UTC  # type: ignore[attr-defined]


def test_timetz_keeps_offset_seconds() -> None:
    # asyncpg truncates to minutes; we keep the server's exact offset.
    got = dec("timetz", i64(0) + i32(-(5 * 3600 + 30 * 60 + 15)))
    assert got.utcoffset() == timedelta(hours=5, minutes=30, seconds=15)  # type: ignore[attr-defined]


def test_timetz_naive_rejected() -> None:
    with pytest.raises(TypeError, match="aware"):
        enc("timetz", dtime(12, 0))


def test_timetz_malformed() -> None:
    with pytest.raises(DecodeError, match="zone"):
        dec("timetz", i64(0) + i32(86400))
    with pytest.raises(DecodeError):
        dec("timetz", i64(0) + i32(0)[:3])


def test_time_tuple_formats() -> None:
    assert enc("time", (5,), "tuple") == i32(8) + i64(5)
    assert dec("time", i64(5), "tuple") == (5,)
    assert enc("timetz", (5, -3600), "tuple") == i32(12) + i64(5) + i32(-3600)
    assert dec("timetz", i64(5) + i32(-3600), "tuple") == (5, -3600)
    with pytest.raises(ValueError, match="2 elements"):
        enc("timetz", (5,), "tuple")


def test_time_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"time.*str"):
        enc("time", "12:00")


# -- interval ------------------------------------------------------------------

def test_interval_golden() -> None:
    value = timedelta(days=1, seconds=2, microseconds=3)
    assert enc("interval", value) == i32(16) + i64(2_000_003) + i32(1) + i32(0)
    assert dec("interval", i64(2_000_003) + i32(1) + i32(0)) == value
    # Negative timedeltas are normalised by Python: -1 µs = -1 day + 86399.999999 s.
    assert enc("interval", timedelta(microseconds=-1)) == (
        i32(16) + i64(USECS_PER_DAY - 1) + i32(-1) + i32(0))


def test_interval_months() -> None:
    # A year (12 months) counts as 365 days, a remaining month as 30 (asyncpg).
    assert dec("interval", i64(0) + i32(0) + i32(1)) == timedelta(days=30)
    assert dec("interval", i64(0) + i32(0) + i32(12)) == timedelta(days=365)
    assert dec("interval", i64(0) + i32(2) + i32(14)) == timedelta(days=365 + 60 + 2)
    assert dec("interval", i64(0) + i32(0) + i32(-13)) == timedelta(days=-395)
    assert dec("interval", i64(-1) + i32(0) + i32(0)) == timedelta(microseconds=-1)


def test_interval_out_of_range() -> None:
    # PostgreSQL 17's infinite intervals have no timedelta.
    with pytest.raises(OverflowError, match="infinity"):
        dec("interval", i64(I64_MAX) + i32(I32_MAX) + i32(I32_MAX))
    with pytest.raises(OverflowError, match="-infinity"):
        dec("interval", i64(I64_MIN) + i32(I32_MIN) + i32(I32_MIN))
    with pytest.raises(OverflowError, match="timedelta"):
        dec("interval", i64(0) + i32(0) + i32(I32_MAX - 1))
    # The tuple form carries anything.
    assert dec("interval", i64(I64_MAX) + i32(I32_MAX) + i32(I32_MAX), "tuple") == (
        I32_MAX, I32_MAX, I64_MAX)


def test_interval_extremes_of_timedelta() -> None:
    for value in (timedelta.max, timedelta.min, timedelta(0)):
        assert dec("interval", enc("interval", value)[4:]) == value


def test_interval_tuple_format() -> None:
    assert enc("interval", (1, 2, 3), "tuple") == i32(16) + i64(3) + i32(2) + i32(1)
    assert dec("interval", i64(3) + i32(2) + i32(1), "tuple") == (1, 2, 3)
    with pytest.raises(ValueError, match="3 elements"):
        enc("interval", (1, 2), "tuple")


def test_interval_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"interval.*int"):
        enc("interval", 5)


# -- malformed sizes -------------------------------------------------------------

@pytest.mark.parametrize(
    ("typename", "size"),
    [("date", 4), ("time", 8), ("timetz", 12), ("timestamp", 8), ("timestamptz", 8),
     ("interval", 16)],
)
@pytest.mark.parametrize("xformat", ["object", "tuple"])
def test_wrong_sizes(typename: str, size: int, xformat: str) -> None:
    for n in (0, size - 1, size + 1):
        with pytest.raises(DecodeError, match=f"value must be {size} bytes"):
            dec(typename, bytes(n), xformat)
