# cython: language_level=3, freethreading_compatible=True
"""Binary codecs for PostgreSQL's geometric types.

``point``, ``line``, ``lseg``, ``box``, ``path``, ``polygon`` and ``circle``
<-> the classes of :mod:`pg_codecs.types` (the same shapes as asyncpg's).
Knows the wire formats only.

Every coordinate is a float8. ``path`` starts with a closed flag byte and
``path``/``polygon`` with an int32 point count, which is checked against the
bytes actually present before anything is built.

Encoders take the ``pg_codecs.types`` objects or plain sequences: a point is
any 2-item sequence of numbers, a box or lseg a 2-item sequence of points, a
circle ``((x, y), r)``, a line ``(A, B, C)``. As in asyncpg, a ``path`` given
as a tuple is closed and as a list is open; a ``Path`` says itself.
"""

from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_AsDouble, PyFloat_CheckExact
from cpython.sequence cimport PySequence_Check
from cpython.tuple cimport PyTuple_Check
from libc.stdint cimport int32_t, int64_t, uint32_t

from pg_codecs cimport _hton as hton
from pg_codecs._oids cimport BOXOID, CIRCLEOID, LINEOID, LSEGOID, PATHOID, POINTOID, POLYGONOID
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

from pg_codecs import types as _types
from pg_codecs.errors import DecodeError as _DecodeError

include "_hooks.pxi"


cdef enum:
    MAX_VALUE_SIZE = 0x3FFFFFFF


cdef object _tuple_new = tuple.__new__
cdef object _Point = _types.Point
cdef object _Box = _types.Box
cdef object _Line = _types.Line
cdef object _LineSegment = _types.LineSegment
cdef object _Path = _types.Path
cdef object _Polygon = _types.Polygon
cdef object _Circle = _types.Circle
cdef object _make_path = _types.Path._make
cdef object _make_polygon = _types.Polygon._make


# -- encode helpers ------------------------------------------------------------

cdef inline double _number(object v, str what) except? -1.0:
    if PyFloat_CheckExact(v):
        return PyFloat_AS_DOUBLE(v)
    if isinstance(v, (str, bytes)):
        raise TypeError(f"expected a number for {what}, got {type(v).__name__}")
    try:
        return PyFloat_AsDouble(v)
    except TypeError:
        raise TypeError(f"expected a number for {what}, got {type(v).__name__}") from None


cdef inline int _check_seq(object obj, Py_ssize_t n, str what) except -1:
    if not PySequence_Check(obj) or isinstance(obj, (str, bytes)):
        raise TypeError(f"expected {what}, got {type(obj).__name__}")
    if len(obj) != n:
        raise ValueError(f"expected {what}, got a sequence of {len(obj)} items")
    return 0


cdef inline int _write_point(WriteBuffer buf, object p, str typename) except -1:
    # A point is any (x, y) sequence; validated fully before anything is written.
    cdef double x, y
    _check_seq(p, 2, f"a point (x, y) in {typename}")
    x = _number(p[0], f"a {typename} coordinate")
    y = _number(p[1], f"a {typename} coordinate")
    buf.ensure(16)
    buf.write_double(x)
    buf.write_double(y)
    return 0


cdef int _write_points(WriteBuffer buf, object points, str typename) except -1:
    # Any sequence of points; the caller has written the headers and truncates
    # the buffer if this raises.
    cdef object p
    for p in points:
        _write_point(buf, p, typename)
    return 0


# -- point, line, lseg, box, circle ---------------------------------------------

cdef int point_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef double x, y
    _check_seq(obj, 2, "a point (x, y) for point")
    x = _number(obj[0], "a point coordinate")
    y = _number(obj[1], "a point coordinate")
    buf.ensure(20)
    buf.write_int32(16)
    buf.write_double(x)
    buf.write_double(y)
    return 0


cdef object point_decode(CodecContext ctx, FRBuffer* buf):
    cdef const char* p
    if buf.len != 16:
        raise _DecodeError(f"point value must be 16 bytes, got {buf.len}")
    p = frb_read(buf, 16)
    return _tuple_new(_Point, (hton.unpack_double(p), hton.unpack_double(p + 8)))


cdef int line_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef double a, b, c
    _check_seq(obj, 3, "a line (A, B, C) for line")
    a = _number(obj[0], "a line coefficient")
    b = _number(obj[1], "a line coefficient")
    c = _number(obj[2], "a line coefficient")
    buf.ensure(28)
    buf.write_int32(24)
    buf.write_double(a)
    buf.write_double(b)
    buf.write_double(c)
    return 0


cdef object line_decode(CodecContext ctx, FRBuffer* buf):
    cdef const char* p
    if buf.len != 24:
        raise _DecodeError(f"line value must be 24 bytes, got {buf.len}")
    p = frb_read(buf, 24)
    return _tuple_new(_Line, (hton.unpack_double(p), hton.unpack_double(p + 8),
                              hton.unpack_double(p + 16)))


cdef int _two_points_encode(WriteBuffer buf, object obj, str typename, str shape) except -1:
    cdef Py_ssize_t start = buf.length()
    _check_seq(obj, 2, f"{shape} for {typename}")
    buf.write_int32(32)
    try:
        _write_point(buf, obj[0], typename)
        _write_point(buf, obj[1], typename)
    except BaseException:
        buf.truncate(start)
        raise
    return 0


cdef object _two_points_decode(FRBuffer* buf, object cls, str typename):
    cdef const char* p
    if buf.len != 32:
        raise _DecodeError(f"{typename} value must be 32 bytes, got {buf.len}")
    p = frb_read(buf, 32)
    return _tuple_new(cls, (
        _tuple_new(_Point, (hton.unpack_double(p), hton.unpack_double(p + 8))),
        _tuple_new(_Point, (hton.unpack_double(p + 16), hton.unpack_double(p + 24)))))


cdef int lseg_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    return _two_points_encode(buf, obj, "lseg", "two end points (p1, p2)")


cdef object lseg_decode(CodecContext ctx, FRBuffer* buf):
    return _two_points_decode(buf, _LineSegment, "lseg")


cdef int box_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    return _two_points_encode(buf, obj, "box", "two corners (high, low)")


cdef object box_decode(CodecContext ctx, FRBuffer* buf):
    return _two_points_decode(buf, _Box, "box")


cdef int circle_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef double x, y, r
    cdef object center
    _check_seq(obj, 2, "a circle (center, radius) for circle")
    center = obj[0]
    _check_seq(center, 2, "a center point (x, y) in circle")
    x = _number(center[0], "a circle coordinate")
    y = _number(center[1], "a circle coordinate")
    r = _number(obj[1], "a circle radius")
    buf.ensure(28)
    buf.write_int32(24)
    buf.write_double(x)
    buf.write_double(y)
    buf.write_double(r)
    return 0


cdef object circle_decode(CodecContext ctx, FRBuffer* buf):
    cdef const char* p
    if buf.len != 24:
        raise _DecodeError(f"circle value must be 24 bytes, got {buf.len}")
    p = frb_read(buf, 24)
    # The centre is a plain (x, y) tuple, as asyncpg decodes it.
    return _tuple_new(_Circle, (
        (hton.unpack_double(p), hton.unpack_double(p + 8)),
        hton.unpack_double(p + 16)))


# -- path, polygon ---------------------------------------------------------------

cdef tuple _read_points(FRBuffer* buf, str typename):
    # int32 count, then that many points; the count must match the bytes left.
    cdef int32_t npts
    cdef Py_ssize_t i
    cdef const char* p
    cdef list points
    if buf.len < 4:
        raise _DecodeError(f"{typename} value is truncated")
    npts = hton.unpack_int32(frb_read(buf, 4))
    if npts < 0 or buf.len != <int64_t>npts * 16:
        raise _DecodeError(
            f"{typename} value declares {npts} points but has {buf.len} bytes of points")
    p = frb_read(buf, buf.len)
    points = [None] * npts
    for i in range(npts):
        points[i] = _tuple_new(_Point, (hton.unpack_double(p), hton.unpack_double(p + 8)))
        p += 16
    return tuple(points)


cdef int _check_count(Py_ssize_t npts, Py_ssize_t header, str typename) except -1:
    if npts * 16 + header > MAX_VALUE_SIZE:
        raise ValueError(f"{typename} value with {npts} points is too large")
    return 0


cdef int path_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef bint closed
    cdef Py_ssize_t npts
    cdef Py_ssize_t start = buf.length()
    if isinstance(obj, _Path):
        closed = obj.is_closed
    elif PyTuple_Check(obj):
        closed = True
    elif PySequence_Check(obj) and not isinstance(obj, (str, bytes)):
        closed = False
    else:
        raise TypeError(
            f"expected a Path or a sequence of points for path, got {type(obj).__name__}")
    npts = len(obj)
    _check_count(npts, 5, "path")
    buf.write_int32(<int32_t>(5 + 16 * npts))
    buf.write_byte(closed)
    buf.write_int32(<int32_t>npts)
    try:
        _write_points(buf, obj, "path")
        if buf.length() - start != 9 + 16 * npts:
            raise ValueError("path points changed while being encoded")
    except BaseException:
        buf.truncate(start)
        raise
    return 0


cdef object path_decode(CodecContext ctx, FRBuffer* buf):
    cdef unsigned char closed
    if buf.len < 1:
        raise _DecodeError("path value is truncated")
    closed = <unsigned char>frb_read(buf, 1)[0]
    if closed > 1:
        raise _DecodeError(f"path value has an invalid closed flag {closed}")
    return _make_path(_read_points(buf, "path"), closed == 1)


cdef int polygon_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef Py_ssize_t npts
    cdef Py_ssize_t start = buf.length()
    if not isinstance(obj, _Path) and (
            not PySequence_Check(obj) or isinstance(obj, (str, bytes))):
        raise TypeError(
            f"expected a Polygon or a sequence of points for polygon, got {type(obj).__name__}")
    npts = len(obj)
    _check_count(npts, 4, "polygon")
    buf.write_int32(<int32_t>(4 + 16 * npts))
    buf.write_int32(<int32_t>npts)
    try:
        _write_points(buf, obj, "polygon")
        if buf.length() - start != 8 + 16 * npts:
            raise ValueError("polygon points changed while being encoded")
    except BaseException:
        buf.truncate(start)
        raise
    return 0


cdef object polygon_decode(CodecContext ctx, FRBuffer* buf):
    return _make_polygon(_read_points(buf, "polygon"))


# -- registration --------------------------------------------------------------

_register(POINTOID, "point", point_encode, point_decode, PG_FORMAT_BINARY)
_register(LINEOID, "line", line_encode, line_decode, PG_FORMAT_BINARY)
_register(LSEGOID, "lseg", lseg_encode, lseg_decode, PG_FORMAT_BINARY)
_register(BOXOID, "box", box_encode, box_decode, PG_FORMAT_BINARY)
_register(PATHOID, "path", path_encode, path_decode, PG_FORMAT_BINARY)
_register(POLYGONOID, "polygon", polygon_encode, polygon_decode, PG_FORMAT_BINARY)
_register(CIRCLEOID, "circle", circle_encode, circle_decode, PG_FORMAT_BINARY)
