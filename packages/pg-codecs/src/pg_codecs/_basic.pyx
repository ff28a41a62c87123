# cython: language_level=3, freethreading_compatible=True
"""Codecs of the basic scalar types: booleans, integers, floats, strings, bytes.

bool, int2, int4, int8, float4, float8, oid, xid, cid, text, varchar,
bpchar, name, xml, "char", unknown, cstring, bytea, void, the reg* types and
a few catalog types, with asyncpg's Python mapping. Registered in the core
table at import. Knows nothing about connections or protocol messages.

Encoders accept what asyncpg accepts: for the integer types any object with
``__int__`` or ``__index__`` (so ``True`` is 1 and ``1.9`` is 1), for the
float types anything ``float()`` takes except strings. Errors name the
PostgreSQL type and the Python type they got. An encoder that raises has
written nothing.
"""

from cpython.bool cimport PyBool_Check
from cpython.float cimport PyFloat_AsDouble, PyFloat_FromDouble
from cpython.long cimport (
    PyLong_FromLong, PyLong_FromLongLong, PyLong_FromUnsignedLong,
)
from cpython.unicode cimport PyUnicode_Check
from libc.math cimport isinf
from libc.stdint cimport int16_t, int32_t, int64_t, uint32_t

from pg_codecs cimport _hton as hton
from pg_codecs._buffer cimport FRBuffer, WriteBuffer, frb_read
from pg_codecs._codecs cimport (
    CodecContext, PG_FORMAT_BINARY, PG_FORMAT_TEXT, bytea_decode, bytea_encode,
    register_core_codec, text_decode, text_encode,
)
from pg_codecs cimport _oids as oids

from pg_codecs.errors import DecodeError as _DecodeError


cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1
    bint PyLong_CheckExact(object o)
    bint PyFloat_CheckExact(object o)


# -- bool ----------------------------------------------------------------------------

cdef int bool_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    if not PyBool_Check(obj):
        raise TypeError(f"a boolean is required for bool (got type {type(obj).__name__})")
    buf.write_int32(1)
    return buf.write_byte(1 if obj is True else 0)


cdef object bool_decode(CodecContext ctx, FRBuffer* buf):
    cdef char b = frb_read(buf, 1)[0]
    if b == 1:
        return True
    if b == 0:
        return False
    raise _DecodeError(f"malformed bool value: byte {<unsigned char>b}")


# -- integers ------------------------------------------------------------------------

cdef inline long long _as_integer(object obj, str pgtype, int* overflow) except? -1:
    # obj as a C long long; *overflow is set when it does not fit one (the
    # caller then reports its own type's range).
    if PyLong_CheckExact(obj):
        return PyLong_AsLongLongAndOverflow(obj, overflow)
    return _as_integer_slow(obj, pgtype, overflow)


cdef long long _as_integer_slow(object obj, str pgtype, int* overflow) except? -1:
    tp = type(obj)
    if PyUnicode_Check(obj) or isinstance(obj, (bytes, bytearray)):
        raise TypeError(f"expected an integer for {pgtype}, got {tp.__name__}")
    try:
        if hasattr(tp, "__int__"):
            # asyncpg's rule: bool, float, Decimal... go through int().
            obj = int(obj)
        elif hasattr(tp, "__index__"):
            obj = obj.__index__()
        else:
            raise TypeError(f"expected an integer for {pgtype}, got {tp.__name__}")
    except OverflowError:
        overflow[0] = 1     # int(float('inf'))
        return 0
    return PyLong_AsLongLongAndOverflow(obj, overflow)


cdef int int2_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int overflow = 0
    cdef long long v = _as_integer(obj, "int2", &overflow)
    if overflow or v < -32768 or v > 32767:
        raise OverflowError("value out of int16 range")
    buf.write_int32(2)
    return buf.write_int16(<int16_t>v)


cdef object int2_decode(CodecContext ctx, FRBuffer* buf):
    return PyLong_FromLong(hton.unpack_int16(frb_read(buf, 2)))


cdef int int4_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int overflow = 0
    cdef long long v = _as_integer(obj, "int4", &overflow)
    if overflow or v < -2147483648LL or v > 2147483647LL:
        raise OverflowError("value out of int32 range")
    buf.write_int32(4)
    return buf.write_int32(<int32_t>v)


cdef object int4_decode(CodecContext ctx, FRBuffer* buf):
    return PyLong_FromLong(hton.unpack_int32(frb_read(buf, 4)))


cdef int int8_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int overflow = 0
    cdef long long v = _as_integer(obj, "int8", &overflow)
    if overflow:
        raise OverflowError("value out of int64 range")
    buf.write_int32(8)
    return buf.write_int64(<int64_t>v)


cdef object int8_decode(CodecContext ctx, FRBuffer* buf):
    return PyLong_FromLongLong(hton.unpack_int64(frb_read(buf, 8)))


cdef int uint4_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    # oid, xid, cid: unsigned 32-bit.
    cdef int overflow = 0
    cdef long long v = _as_integer(obj, "oid", &overflow)
    if overflow or v < 0 or v > 4294967295LL:
        raise OverflowError("value out of uint32 range")
    buf.write_int32(4)
    return buf.write_uint32(<uint32_t>v)


cdef object uint4_decode(CodecContext ctx, FRBuffer* buf):
    return PyLong_FromUnsignedLong(hton.unpack_uint32(frb_read(buf, 4)))


# -- floats ------------------------------------------------------------------------------

cdef double _as_double(object obj, str pgtype) except? -1.0:
    if PyFloat_CheckExact(obj):
        return PyFloat_AsDouble(obj)
    if PyUnicode_Check(obj) or isinstance(obj, (bytes, bytearray)):
        raise TypeError(f"expected a float for {pgtype}, got {type(obj).__name__}")
    try:
        return PyFloat_AsDouble(obj)
    except TypeError:
        raise TypeError(f"expected a float for {pgtype}, got {type(obj).__name__}") from None


cdef int float4_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef double d = _as_double(obj, "float4")
    cdef float f = <float>d
    if isinf(f) and not isinf(d):
        raise ValueError("value out of float32 range")
    buf.write_int32(4)
    return buf.write_float(f)


cdef object float4_decode(CodecContext ctx, FRBuffer* buf):
    return PyFloat_FromDouble(hton.unpack_float(frb_read(buf, 4)))


cdef int float8_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef double d = _as_double(obj, "float8")
    buf.write_int32(8)
    return buf.write_double(d)


cdef object float8_decode(CodecContext ctx, FRBuffer* buf):
    return PyFloat_FromDouble(hton.unpack_double(frb_read(buf, 8)))


# -- void --------------------------------------------------------------------------------

cdef int void_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    return buf.write_int32(0)


cdef object void_decode(CodecContext ctx, FRBuffer* buf):
    # void_send sends no bytes; anything else is left for the caller to reject.
    return None


# -- registration ------------------------------------------------------------------------

cdef int _register_all() except -1:
    register_core_codec(oids.BOOLOID, "bool", bool_encode, bool_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.INT2OID, "int2", int2_encode, int2_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.INT4OID, "int4", int4_encode, int4_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.INT8OID, "int8", int8_encode, int8_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.FLOAT4OID, "float4", float4_encode, float4_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.FLOAT8OID, "float8", float8_encode, float8_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.OIDOID, "oid", uint4_encode, uint4_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.XIDOID, "xid", uint4_encode, uint4_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.CIDOID, "cid", uint4_encode, uint4_decode, PG_FORMAT_BINARY)

    # Character types: the same bytes in both formats (textsend sends the text).
    for oid, name in ((oids.TEXTOID, "text"), (oids.VARCHAROID, "varchar"),
                      (oids.BPCHAROID, "bpchar"), (oids.NAMEOID, "name"), (oids.XMLOID, "xml")):
        register_core_codec(oid, name, text_encode, text_decode, PG_FORMAT_BINARY)
        register_core_codec(oid, name, text_encode, text_decode, PG_FORMAT_TEXT)
    # A literal of undetermined type is always text.
    register_core_codec(oids.UNKNOWNOID, "unknown", text_encode, text_decode, PG_FORMAT_TEXT)
    register_core_codec(oids.CSTRINGOID, "cstring", text_encode, text_decode, PG_FORMAT_BINARY)

    # "char" is a single byte; asyncpg returns it as bytes.
    register_core_codec(oids.CHAROID, "char", bytea_encode, bytea_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.BYTEAOID, "bytea", bytea_encode, bytea_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.PG_MCV_LISTOID, "pg_mcv_list", bytea_encode, bytea_decode,
                        PG_FORMAT_BINARY)
    register_core_codec(oids.PG_BRIN_BLOOM_SUMMARYOID, "pg_brin_bloom_summary",
                        NULL, bytea_decode, PG_FORMAT_BINARY)
    register_core_codec(oids.PG_BRIN_MINMAX_MULTI_SUMMARYOID, "pg_brin_minmax_multi_summary",
                        NULL, bytea_decode, PG_FORMAT_BINARY)

    register_core_codec(oids.VOIDOID, "void", void_encode, void_decode, PG_FORMAT_BINARY)

    # The reg* types travel as text, so that a name comes back ('pg_class',
    # 'integer') rather than a bare OID, as in asyncpg; refcursor likewise.
    for oid, name in ((oids.REGPROCOID, "regproc"), (oids.REGPROCEDUREOID, "regprocedure"),
                      (oids.REGOPEROID, "regoper"), (oids.REGOPERATOROID, "regoperator"),
                      (oids.REGCLASSOID, "regclass"), (oids.REGTYPEOID, "regtype"),
                      (oids.REGCONFIGOID, "regconfig"), (oids.REGDICTIONARYOID, "regdictionary"),
                      (oids.REGNAMESPACEOID, "regnamespace"), (oids.REGROLEOID, "regrole"),
                      (oids.REGCOLLATIONOID, "regcollation"), (oids.REFCURSOROID, "refcursor"),
                      (oids.ACLITEMOID, "aclitem"), (oids.PG_NDISTINCTOID, "pg_ndistinct"),
                      (oids.PG_DEPENDENCIESOID, "pg_dependencies")):
        register_core_codec(oid, name, text_encode, text_decode, PG_FORMAT_TEXT)
    # Output-only types.
    register_core_codec(oids.PG_NODE_TREEOID, "pg_node_tree", NULL, text_decode, PG_FORMAT_TEXT)
    register_core_codec(oids.ANYENUMOID, "anyenum", NULL, text_decode, PG_FORMAT_TEXT)
    return 0


_register_all()
