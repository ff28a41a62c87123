# cython: language_level=3, freethreading_compatible=True
"""Binary codecs for PostgreSQL's date and time types.

``date``, ``time``, ``timetz``, ``timestamp``, ``timestamptz`` and
``interval`` <-> the :mod:`datetime` types, plus the "tuple" exchange format
of each (the raw integers of the wire format, for ``set_type_codec(...,
format='tuple')``). Knows the wire formats only: no protocol, no connection
state (the server's ``TimeZone`` setting plays no part: timestamptz travels
as UTC).

How it works
------------

On the wire a date is an int32 count of days since 2000-01-01, a timestamp an
int64 count of microseconds since 2000-01-01 00:00 (UTC for timestamptz), a
time an int64 count of microseconds since midnight (timetz adds an int32 zone
in seconds *west* of UTC), an interval int64 microseconds, int32 days, int32
months. The extreme values of the integer types mean +/-infinity.

Conversion to and from calendar dates is integer arithmetic in C
(``_civil_from_days`` / ``_days_from_civil``, the proleptic Gregorian
calendar counted in 400-year cycles); objects are built with the datetime C
API. No Python-level arithmetic on the common paths.

What we return, following asyncpg exactly:

* ``infinity``/``-infinity`` become ``date.max``/``date.min`` and
  ``datetime.max``/``datetime.min`` (naive, also for timestamptz), and those
  values encode back to infinity.
* Values outside Python's range (BC dates, years after 9999) raise
  ``ValueError`` (date) or ``OverflowError`` (timestamp), as asyncpg does; the
  tuple format carries them.
* timestamptz decodes to an aware datetime in UTC. A naive datetime sent as
  timestamptz is taken as local time (``datetime.astimezone``), a plain date
  as local midnight.
* interval decodes to ``timedelta`` counting a month as 30 days and a year
  (12 months) as 365 days; timedelta encodes with months = 0.
* ``time`` ``24:00:00`` cannot be a ``datetime.time``: ValueError.

One deliberate difference: timetz keeps a zone offset's seconds (asyncpg
truncates it to minutes). Zone offsets in use today are whole minutes.
"""

cimport cython
from cpython.datetime cimport (
    PyDate_Check,
    PyDateTime_Check,
    PyDelta_Check,
    PyTime_Check,
    date_day,
    date_month,
    date_new,
    date_year,
    datetime_hour,
    datetime_microsecond,
    datetime_minute,
    datetime_new,
    datetime_second,
    datetime_tzinfo,
    get_utc,
    import_datetime,
    time_hour,
    time_microsecond,
    time_minute,
    time_new,
    time_second,
    timedelta_days,
    timedelta_microseconds,
    timedelta_new,
    timedelta_seconds,
    timezone_new,
)
from cpython.number cimport PyNumber_Index
from cpython.sequence cimport PySequence_Check
from libc.stdint cimport INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, int32_t, int64_t, uint32_t

from pg_codecs cimport _hton as hton
from pg_codecs._oids cimport DATEOID, INTERVALOID, TIMEOID, TIMESTAMPOID, TIMESTAMPTZOID, TIMETZOID
from pg_codecs._buffer cimport FRBuffer, WriteBuffer, frb_init, frb_read
from pg_codecs._codecs cimport (
    PG_FORMAT_BINARY,
    PG_XFORMAT_OBJECT,
    PG_XFORMAT_TUPLE,
    CodecContext,
    decode_func,
    encode_func,
    register_core_codec,
)

import datetime as _datetime

from pg_codecs.errors import DecodeError as _DecodeError

include "_hooks.pxi"

import_datetime()


cdef extern from *:
    """
    /* Day numbers (since 2000-01-01) of date.min and date.max. */
    #define PGC_DATE_MIN (-730119)
    #define PGC_DATE_MAX 2921939
    #define PGC_USECS_PER_SEC INT64_C(1000000)
    #define PGC_USECS_PER_MINUTE INT64_C(60000000)
    #define PGC_USECS_PER_HOUR INT64_C(3600000000)
    #define PGC_USECS_PER_DAY INT64_C(86400000000)
    #define PGC_SECS_PER_DAY INT64_C(86400)
    /* Microseconds since 2000-01-01 of datetime.min and datetime.max. */
    #define PGC_TS_MIN INT64_C(-63082281600000000)
    #define PGC_TS_MAX INT64_C(252455615999999999)
    #define PGC_TIMEDELTA_MAX_DAYS INT64_C(999999999)
    """
    const int32_t PG_DATE_MIN "PGC_DATE_MIN"
    const int32_t PG_DATE_MAX "PGC_DATE_MAX"
    const int64_t USECS_PER_SEC "PGC_USECS_PER_SEC"
    const int64_t USECS_PER_MINUTE "PGC_USECS_PER_MINUTE"
    const int64_t USECS_PER_HOUR "PGC_USECS_PER_HOUR"
    const int64_t USECS_PER_DAY "PGC_USECS_PER_DAY"
    const int64_t SECS_PER_DAY "PGC_SECS_PER_DAY"
    const int64_t PG_TS_MIN "PGC_TS_MIN"
    const int64_t PG_TS_MAX "PGC_TS_MAX"
    const int64_t TIMEDELTA_MAX_DAYS "PGC_TIMEDELTA_MAX_DAYS"

cdef object _UTC = get_utc()
cdef object _DATE_MIN = _datetime.date.min
cdef object _DATE_MAX = _datetime.date.max
cdef object _DATETIME_MIN = _datetime.datetime.min
cdef object _DATETIME_MAX = _datetime.datetime.max
cdef object _timedelta = _datetime.timedelta
cdef object _datetime_now = _datetime.datetime.now

# timezone objects by offset in seconds east of UTC. Bounded so that a
# stream of odd offsets cannot grow it without limit.
cdef dict _tz_cache = {0: _UTC}


# -- calendar arithmetic ---------------------------------------------------------

@cython.cdivision(True)
cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept nogil:
    # Floor division for b > 0, independent of the cdivision directive.
    cdef int64_t q = a // b
    if a % b < 0:
        q -= 1
    return q


@cython.cdivision(True)
cdef inline void _civil_from_days(int64_t days, int64_t* year, int* month, int* day) noexcept nogil:
    # The proleptic Gregorian date of day `days` counted from 2000-01-01.
    # Years are astronomical: 0 is 1 BC. Counting from 2000-03-01 puts
    # February 29 at the end of each year and starts a 400-year cycle.
    cdef int64_t z = days - 60
    cdef int64_t cycle = _floordiv(z, 146097)
    cdef int64_t doc = z - cycle * 146097                                  # day of cycle, 0..146096
    # year of cycle, 0..399
    cdef int64_t yoc = (doc - doc // 1460 + doc // 36524 - doc // 146096) // 365
    cdef int64_t doy = doc - (365 * yoc + yoc // 4 - yoc // 100)             # 0..365, from March 1
    cdef int64_t mp = (5 * doy + 2) // 153                                  # 0..11, March is 0
    day[0] = <int>(doy - (153 * mp + 2) // 5 + 1)
    month[0] = <int>(mp + 3 if mp < 10 else mp - 9)
    year[0] = 2000 + cycle * 400 + yoc + (1 if mp >= 10 else 0)


@cython.cdivision(True)
cdef inline int64_t _days_from_civil(int64_t year, int month, int day) noexcept nogil:
    # Inverse of _civil_from_days.
    cdef int64_t y = year - (1 if month <= 2 else 0)
    cdef int64_t cycle = _floordiv(y - 2000, 400)
    cdef int64_t yoc = y - 2000 - cycle * 400
    cdef int64_t mp = month - 3 if month > 2 else month + 9
    cdef int64_t doy = (153 * mp + 2) // 5 + day - 1
    cdef int64_t doc = yoc * 365 + yoc // 4 - yoc // 100 + doy
    return cycle * 146097 + doc + 60


cdef str _format_pg_date(int64_t days, str clock=None):
    # How PostgreSQL would print the date (and time), for error messages.
    cdef int64_t year
    cdef int month, day
    _civil_from_days(days, &year, &month, &day)
    text = f"{year if year > 0 else 1 - year:04d}-{month:02d}-{day:02d}"
    if clock is not None:
        text += " " + clock
    return text if year > 0 else text + " BC"


cdef str _format_pg_timestamp(int64_t ts):
    cdef int64_t days = _floordiv(ts, USECS_PER_DAY)
    cdef int64_t us = ts - days * USECS_PER_DAY
    clock = (f"{us // USECS_PER_HOUR:02d}:{us // USECS_PER_MINUTE % 60:02d}:"
             f"{us // USECS_PER_SEC % 60:02d}")
    if us % USECS_PER_SEC:
        clock += f".{us % USECS_PER_SEC:06d}"
    return _format_pg_date(days, clock)


cdef inline int64_t _datetime_to_ts(object dt) noexcept:
    # Microseconds since 2000-01-01 00:00 of dt's wall-clock fields.
    return (_days_from_civil(date_year(dt), date_month(dt), date_day(dt)) * USECS_PER_DAY
            + datetime_hour(dt) * <int64_t>USECS_PER_HOUR
            + datetime_minute(dt) * <int64_t>USECS_PER_MINUTE
            + datetime_second(dt) * <int64_t>USECS_PER_SEC
            + datetime_microsecond(dt))


cdef inline int64_t _delta_to_us(object delta) noexcept:
    cdef int64_t seconds = <int64_t>timedelta_days(delta) * SECS_PER_DAY + timedelta_seconds(delta)
    return seconds * USECS_PER_SEC + timedelta_microseconds(delta)


cdef object _raise_size(str typename, Py_ssize_t expected, Py_ssize_t got):
    raise _DecodeError(f"{typename} value must be {expected} bytes, got {got}")


cdef inline int _check_seq(object obj, Py_ssize_t n, str typename, str shape) except -1:
    if not PySequence_Check(obj) or isinstance(obj, (str, bytes)):
        raise TypeError(
            f"expected a tuple {shape} for {typename} in tuple format, got {type(obj).__name__}")
    if len(obj) != n:
        raise ValueError(
            f"{typename} tuple format takes {n} element{'s' if n > 1 else ''} {shape}, "
            f"got {len(obj)}")
    return 0


cdef inline object _int_item(object obj, Py_ssize_t i, str typename):
    # Tuple-format items are integers; a float is an error, not truncated.
    item = obj[i]
    try:
        return PyNumber_Index(item)
    except TypeError:
        raise TypeError(
            f"expected int items in the {typename} tuple format, got {type(item).__name__}"
        ) from None


# -- date ----------------------------------------------------------------------

cdef int date_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int64_t days
    cdef int32_t value
    if not PyDate_Check(obj):
        raise TypeError(f"expected datetime.date for date, got {type(obj).__name__}")
    days = _days_from_civil(date_year(obj), date_month(obj), date_day(obj))
    if days == PG_DATE_MAX:
        value = INT32_MAX
    elif days == PG_DATE_MIN:
        value = INT32_MIN
    else:
        value = <int32_t>days
    buf.ensure(8)
    buf.write_int32(4)
    buf.write_int32(value)
    return 0


cdef object date_decode(CodecContext ctx, FRBuffer* buf):
    cdef int32_t days
    cdef int64_t year
    cdef int month, day
    if buf.len != 4:
        return _raise_size("date", 4, buf.len)
    days = hton.unpack_int32(frb_read(buf, 4))
    if days < PG_DATE_MIN or days > PG_DATE_MAX:
        if days == INT32_MAX:
            return _DATE_MAX
        if days == INT32_MIN:
            return _DATE_MIN
        raise ValueError(
            f"date {_format_pg_date(days)} is outside the range of datetime.date "
            f"(years 1 to 9999)")
    _civil_from_days(days, &year, &month, &day)
    return date_new(<int>year, month, day)


cdef int date_encode_tuple(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    _check_seq(obj, 1, "date", "(days since 2000-01-01,)")
    cdef int32_t days = _int_item(obj, 0, "date")
    buf.ensure(8)
    buf.write_int32(4)
    buf.write_int32(days)
    return 0


cdef object date_decode_tuple(CodecContext ctx, FRBuffer* buf):
    if buf.len != 4:
        return _raise_size("date", 4, buf.len)
    return (hton.unpack_int32(frb_read(buf, 4)),)


# -- timestamp, timestamptz ------------------------------------------------------

cdef inline int _write_ts(WriteBuffer buf, int64_t ts) except -1:
    # datetime.max / datetime.min stand for the infinities.
    if ts == PG_TS_MAX:
        ts = INT64_MAX
    elif ts == PG_TS_MIN:
        ts = INT64_MIN
    buf.ensure(12)
    buf.write_int32(8)
    buf.write_int64(ts)
    return 0


cdef object _ts_to_datetime(int64_t ts, object tz, str typename):
    cdef int64_t days, us, year
    cdef int month, day, hour, minute, second
    if ts < PG_TS_MIN or ts > PG_TS_MAX:
        if ts == INT64_MAX:
            return _DATETIME_MAX
        if ts == INT64_MIN:
            return _DATETIME_MIN
        raise OverflowError(
            f"{typename} {_format_pg_timestamp(ts)} is outside the range of datetime.datetime "
            f"(years 1 to 9999)")
    days = _floordiv(ts, USECS_PER_DAY)
    us = ts - days * USECS_PER_DAY
    _civil_from_days(days, &year, &month, &day)
    # 0 <= us < USECS_PER_DAY, so plain C division is floor division here.
    hour = <int>(us // USECS_PER_HOUR)
    us -= hour * <int64_t>USECS_PER_HOUR
    minute = <int>(us // USECS_PER_MINUTE)
    us -= minute * <int64_t>USECS_PER_MINUTE
    second = <int>(us // USECS_PER_SEC)
    us -= second * <int64_t>USECS_PER_SEC
    return datetime_new(<int>year, month, day, hour, minute, second, <int>us, tz)


cdef int timestamp_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int64_t ts
    if PyDateTime_Check(obj):
        if datetime_tzinfo(obj) is not None and obj.utcoffset() is not None:
            raise TypeError(
                "expected a naive datetime.datetime for timestamp (without time zone), "
                "got an aware one; use timestamptz or drop the tzinfo")
        ts = _datetime_to_ts(obj)
    elif PyDate_Check(obj):
        ts = _days_from_civil(date_year(obj), date_month(obj), date_day(obj)) * USECS_PER_DAY
    else:
        raise TypeError(
            f"expected datetime.datetime or datetime.date for timestamp, got {type(obj).__name__}")
    return _write_ts(buf, ts)


cdef object timestamp_decode(CodecContext ctx, FRBuffer* buf):
    if buf.len != 8:
        return _raise_size("timestamp", 8, buf.len)
    return _ts_to_datetime(hton.unpack_int64(frb_read(buf, 8)), None, "timestamp")


cdef int timestamptz_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int64_t ts
    cdef object tz, offset
    if PyDateTime_Check(obj):
        tz = datetime_tzinfo(obj)
        if tz is _UTC:
            return _write_ts(buf, _datetime_to_ts(obj))
        offset = obj.utcoffset() if tz is not None else None
        if offset is not None:
            return _write_ts(buf, _datetime_to_ts(obj) - _delta_to_us(offset))
        # Naive: datetime.max/min mean infinity; anything else is local time.
        ts = _datetime_to_ts(obj)
        if ts == PG_TS_MAX or ts == PG_TS_MIN:
            return _write_ts(buf, ts)
        return _write_ts(buf, _datetime_to_ts(obj.astimezone(_UTC)))
    elif PyDate_Check(obj):
        # Local midnight, at the local UTC offset in effect now (asyncpg's rule).
        offset = _datetime_now(_UTC).astimezone().utcoffset()
        ts = _days_from_civil(date_year(obj), date_month(obj), date_day(obj)) * USECS_PER_DAY
        return _write_ts(buf, ts - _delta_to_us(offset))
    raise TypeError(
        f"expected datetime.datetime or datetime.date for timestamptz, got {type(obj).__name__}")


cdef object timestamptz_decode(CodecContext ctx, FRBuffer* buf):
    if buf.len != 8:
        return _raise_size("timestamptz", 8, buf.len)
    return _ts_to_datetime(hton.unpack_int64(frb_read(buf, 8)), _UTC, "timestamptz")


cdef int timestamp_encode_tuple(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    _check_seq(obj, 1, "timestamp", "(microseconds since 2000-01-01,)")
    cdef int64_t ts = _int_item(obj, 0, "timestamp")
    buf.ensure(12)
    buf.write_int32(8)
    buf.write_int64(ts)
    return 0


cdef object timestamp_decode_tuple(CodecContext ctx, FRBuffer* buf):
    if buf.len != 8:
        return _raise_size("timestamp", 8, buf.len)
    return (hton.unpack_int64(frb_read(buf, 8)),)


# -- time, timetz ----------------------------------------------------------------

cdef inline int64_t _time_fields_to_us(object obj, str typename) except? -1:
    if PyTime_Check(obj):
        return (time_hour(obj) * <int64_t>USECS_PER_HOUR
                + time_minute(obj) * <int64_t>USECS_PER_MINUTE
                + time_second(obj) * <int64_t>USECS_PER_SEC + time_microsecond(obj))
    if PyDateTime_Check(obj):
        return (datetime_hour(obj) * <int64_t>USECS_PER_HOUR
                + datetime_minute(obj) * <int64_t>USECS_PER_MINUTE
                + datetime_second(obj) * <int64_t>USECS_PER_SEC + datetime_microsecond(obj))
    raise TypeError(f"expected datetime.time for {typename}, got {type(obj).__name__}")


cdef object _us_to_time(int64_t us, object tz, str typename):
    cdef int hour, minute, second
    if us < 0 or us >= USECS_PER_DAY:
        if us == USECS_PER_DAY:
            raise ValueError(f"{typename} 24:00:00 cannot be represented as datetime.time")
        raise _DecodeError(f"{typename} value {us} is not a time of day in microseconds")
    hour = <int>(us // USECS_PER_HOUR)
    us -= hour * <int64_t>USECS_PER_HOUR
    minute = <int>(us // USECS_PER_MINUTE)
    us -= minute * <int64_t>USECS_PER_MINUTE
    second = <int>(us // USECS_PER_SEC)
    us -= second * <int64_t>USECS_PER_SEC
    return time_new(hour, minute, second, <int>us, tz)


cdef int time_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int64_t us = _time_fields_to_us(obj, "time")
    buf.ensure(12)
    buf.write_int32(8)
    buf.write_int64(us)
    return 0


cdef object time_decode(CodecContext ctx, FRBuffer* buf):
    if buf.len != 8:
        return _raise_size("time", 8, buf.len)
    return _us_to_time(hton.unpack_int64(frb_read(buf, 8)), None, "time")


cdef int time_encode_tuple(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    _check_seq(obj, 1, "time", "(microseconds since midnight,)")
    cdef int64_t us = _int_item(obj, 0, "time")
    buf.ensure(12)
    buf.write_int32(8)
    buf.write_int64(us)
    return 0


cdef object time_decode_tuple(CodecContext ctx, FRBuffer* buf):
    if buf.len != 8:
        return _raise_size("time", 8, buf.len)
    return (hton.unpack_int64(frb_read(buf, 8)),)


cdef int timetz_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int64_t us = _time_fields_to_us(obj, "timetz")
    cdef object offset = obj.utcoffset()
    cdef int64_t offset_sec
    if offset is None:
        raise TypeError("expected an aware datetime.time (with tzinfo) for timetz, got a naive one")
    # Sub-second parts of the offset have no place on the wire (asyncpg drops them too).
    offset_sec = <int64_t>timedelta_days(offset) * SECS_PER_DAY + timedelta_seconds(offset)
    buf.ensure(16)
    buf.write_int32(12)
    buf.write_int64(us)
    # PostgreSQL counts the zone in seconds west of UTC: the opposite sign.
    buf.write_int32(<int32_t>-offset_sec)
    return 0


cdef object _timezone(int32_t east):
    tz = _tz_cache.get(east)
    if tz is None:
        tz = timezone_new(timedelta_new(0, east, 0))
        if len(_tz_cache) < 1024:
            _tz_cache[east] = tz
    return tz


cdef object timetz_decode(CodecContext ctx, FRBuffer* buf):
    cdef const char* p
    cdef int32_t zone
    if buf.len != 12:
        return _raise_size("timetz", 12, buf.len)
    p = frb_read(buf, 12)
    zone = hton.unpack_int32(p + 8)
    if zone <= -SECS_PER_DAY or zone >= SECS_PER_DAY:
        raise _DecodeError(f"timetz value has an impossible zone offset of {zone} seconds")
    return _us_to_time(hton.unpack_int64(p), _timezone(-zone), "timetz")


cdef int timetz_encode_tuple(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    _check_seq(obj, 2, "timetz", "(microseconds since midnight, zone seconds west of UTC)")
    cdef int64_t us = _int_item(obj, 0, "timetz")
    cdef int32_t zone = _int_item(obj, 1, "timetz")
    buf.ensure(16)
    buf.write_int32(12)
    buf.write_int64(us)
    buf.write_int32(zone)
    return 0


cdef object timetz_decode_tuple(CodecContext ctx, FRBuffer* buf):
    cdef const char* p
    if buf.len != 12:
        return _raise_size("timetz", 12, buf.len)
    p = frb_read(buf, 12)
    return (hton.unpack_int64(p), hton.unpack_int32(p + 8))


# -- interval ------------------------------------------------------------------

cdef int interval_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int64_t us
    if not PyDelta_Check(obj):
        raise TypeError(f"expected datetime.timedelta for interval, got {type(obj).__name__}")
    # Days stay days (never folded into months), so nothing is lost.
    us = timedelta_seconds(obj) * <int64_t>USECS_PER_SEC + timedelta_microseconds(obj)
    buf.ensure(20)
    buf.write_int32(16)
    buf.write_int64(us)
    buf.write_int32(timedelta_days(obj))
    buf.write_int32(0)
    return 0


@cython.cdivision(True)
cdef object interval_decode(CodecContext ctx, FRBuffer* buf):
    cdef const char* p
    cdef int64_t us, days, months, years, sec
    if buf.len != 16:
        return _raise_size("interval", 16, buf.len)
    p = frb_read(buf, 16)
    us = hton.unpack_int64(p)
    days = hton.unpack_int32(p + 8)
    months = hton.unpack_int32(p + 12)
    if (us == INT64_MAX and days == INT32_MAX and months == INT32_MAX) or (
            us == INT64_MIN and days == INT32_MIN and months == INT32_MIN):
        raise OverflowError(
            f"interval '{'-' if us < 0 else ''}infinity' cannot be represented "
            f"as datetime.timedelta")
    # A year is 365 days, a remaining month 30 (C division truncates toward
    # zero, so -13 months is -1 year and -1 month, as in asyncpg).
    years = months // 12
    months = months - years * 12
    days += years * 365 + months * 30
    sec = _floordiv(us, USECS_PER_SEC)
    us -= sec * USECS_PER_SEC
    days += _floordiv(sec, SECS_PER_DAY)
    sec -= _floordiv(sec, SECS_PER_DAY) * SECS_PER_DAY
    if days > TIMEDELTA_MAX_DAYS or days < -TIMEDELTA_MAX_DAYS:
        raise OverflowError(
            f"interval of {days} days is outside the range of datetime.timedelta")
    return timedelta_new(<int>days, <int>sec, <int>us)


cdef int interval_encode_tuple(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    _check_seq(obj, 3, "interval", "(months, days, microseconds)")
    cdef int32_t months = _int_item(obj, 0, "interval")
    cdef int32_t days = _int_item(obj, 1, "interval")
    cdef int64_t us = _int_item(obj, 2, "interval")
    buf.ensure(20)
    buf.write_int32(16)
    buf.write_int64(us)
    buf.write_int32(days)
    buf.write_int32(months)
    return 0


cdef object interval_decode_tuple(CodecContext ctx, FRBuffer* buf):
    cdef const char* p
    if buf.len != 16:
        return _raise_size("interval", 16, buf.len)
    p = frb_read(buf, 16)
    return (hton.unpack_int32(p + 12), hton.unpack_int32(p + 8), hton.unpack_int64(p))


# -- registration --------------------------------------------------------------

_register(DATEOID, "date", date_encode, date_decode, PG_FORMAT_BINARY)
_register(DATEOID, "date", date_encode_tuple, date_decode_tuple, PG_FORMAT_BINARY, PG_XFORMAT_TUPLE)
_register(TIMEOID, "time", time_encode, time_decode, PG_FORMAT_BINARY)
_register(TIMEOID, "time", time_encode_tuple, time_decode_tuple, PG_FORMAT_BINARY, PG_XFORMAT_TUPLE)
_register(TIMETZOID, "timetz", timetz_encode, timetz_decode, PG_FORMAT_BINARY)
_register(TIMETZOID, "timetz", timetz_encode_tuple, timetz_decode_tuple, PG_FORMAT_BINARY,
          PG_XFORMAT_TUPLE)
_register(TIMESTAMPOID, "timestamp", timestamp_encode, timestamp_decode, PG_FORMAT_BINARY)
_register(TIMESTAMPOID, "timestamp", timestamp_encode_tuple, timestamp_decode_tuple,
          PG_FORMAT_BINARY, PG_XFORMAT_TUPLE)
_register(TIMESTAMPTZOID, "timestamptz", timestamptz_encode, timestamptz_decode, PG_FORMAT_BINARY)
_register(TIMESTAMPTZOID, "timestamptz", timestamp_encode_tuple, timestamp_decode_tuple,
          PG_FORMAT_BINARY, PG_XFORMAT_TUPLE)
_register(INTERVALOID, "interval", interval_encode, interval_decode, PG_FORMAT_BINARY)
_register(INTERVALOID, "interval", interval_encode_tuple, interval_decode_tuple,
          PG_FORMAT_BINARY, PG_XFORMAT_TUPLE)
