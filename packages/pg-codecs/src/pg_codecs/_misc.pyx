# cython: language_level=3, freethreading_compatible=True
"""Binary codecs for PostgreSQL's remaining scalar types.

``uuid`` (:class:`uuid.UUID`), ``json``/``jsonb``/``jsonpath`` (``str``),
``bit``/``varbit`` (:class:`pg_codecs.types.BitString`), ``pg_lsn`` and
``xid8`` (``int``), ``tid`` (``(block, offset)``), ``txid_snapshot`` and
``pg_snapshot`` (``(xmin, xmax, (xip, ...))``), and ``hstore``
(``dict[str, str | None]``). Knows the wire formats only.

``hstore`` is an extension type whose OID differs per database, so it is not
registered by OID: it is registered as the extra codec named
``pg_contrib.hstore``, which ``set_builtin_type_codec('hstore',
codec_name='pg_contrib.hstore')`` attaches (asyncpg's name and mechanism).

Like asyncpg, some types are exchanged as *text* and give ``str``: ``money``,
``macaddr``, ``macaddr8``, ``tsvector``, ``tsquery`` and ``gtsvector``
(output only). Their codecs are the shared text codec of ``_codecs``
registered with the text format; they are registered here.

Strings travel as UTF-8 (the client encoding the connection insists on).
Malformed bytes, including invalid UTF-8, raise ``DecodeError``; counts in the
data (hstore pairs, snapshot xips) are checked against the bytes present
before anything is allocated.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsUnsignedLongLong, PyLong_FromUnsignedLongLong
from cpython.number cimport PyNumber_Index
from cpython.object cimport PyObject, PyTypeObject
from cpython.unicode cimport PyUnicode_Check, PyUnicode_DecodeUTF8
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from pg_codecs cimport _hton as hton
from pg_codecs._buffer cimport FRBuffer, WriteBuffer, frb_init, frb_read
from pg_codecs._codecs cimport (
    PG_FORMAT_BINARY,
    PG_FORMAT_TEXT,
    PG_XFORMAT_OBJECT,
    PG_XFORMAT_TUPLE,
    CodecContext,
    decode_func,
    encode_func,
    register_core_codec,
    register_extra_codec,
    text_decode,
    text_encode,
)
from pg_codecs._oids cimport (
    BITOID,
    GTSVECTOROID,
    JSONBOID,
    JSONOID,
    JSONPATHOID,
    MACADDR8OID,
    MACADDROID,
    MONEYOID,
    PG_LSNOID,
    PG_SNAPSHOTOID,
    TIDOID,
    TSQUERYOID,
    TSVECTOROID,
    TXID_SNAPSHOTOID,
    UUIDOID,
    VARBITOID,
    XID8OID,
)

import uuid as _uuid

from pg_codecs import types as _types
from pg_codecs.errors import DecodeError as _DecodeError

include "_hooks.pxi"


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    int PyObject_GenericSetAttr(object o, object name, object value) except -1
    unsigned long long PyLong_AsUnsignedLongLongMask(object v) except? <unsigned long long>-1


cdef extern from *:
    """
    #include "structmember.h"   /* PyMemberDef, T_OBJECT_EX, READONLY before 3.12 */

    /* The unsigned big-endian integer in 16 bytes (public API from 3.13 on). */
    #if PY_VERSION_HEX >= 0x030D0000
    #define pgc_uint128_from_bytes(p) \\
        PyLong_FromUnsignedNativeBytes((p), 16, Py_ASNATIVEBYTES_BIG_ENDIAN)
    #else
    #define pgc_uint128_from_bytes(p) \\
        _PyLong_FromByteArray((const unsigned char*)(p), 16, 0, 0)
    #endif

    /* A new instance of tp (uuid.UUID) with its two slots, at the given
       offsets, filled: `int` from the 16 bytes at p and `is_safe`. */
    static PyObject* pgc_uuid_new(PyTypeObject* tp, Py_ssize_t off_int,
                                  Py_ssize_t off_safe, const char* p, PyObject* safe) {
        PyObject* value = pgc_uint128_from_bytes(p);
        PyObject* obj;
        if (value == NULL) return NULL;
        obj = tp->tp_alloc(tp, 0);
        if (obj == NULL) { Py_DECREF(value); return NULL; }
        *(PyObject**)((char*)obj + off_int) = value;
        Py_INCREF(safe);
        *(PyObject**)((char*)obj + off_safe) = safe;
        /* Its two slots hold an int and an enum member and UUIDs refuse
           assignment: it can't be part of a reference cycle, so, like a
           tuple of atomic values, it needn't be tracked by the collector
           (nor make the record holding it tracked). */
        PyObject_GC_UnTrack(obj);
        return obj;
    }

    /* The offset of the object slot a member descriptor manages, or -1. */
    static Py_ssize_t pgc_slot_offset(PyObject* descr) {
        PyMemberDef* m;
        if (!PyObject_TypeCheck(descr, &PyMemberDescr_Type)) return -1;
        m = ((PyMemberDescrObject*)descr)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY)) return -1;
        return m->offset;
    }
    """
    object pgc_uint128_from_bytes(const char* p)
    object pgc_uuid_new(PyTypeObject* tp, Py_ssize_t off_int, Py_ssize_t off_safe,
                        const char* p, PyObject* safe)
    Py_ssize_t pgc_slot_offset(object descr)


cdef enum:
    MAX_VALUE_SIZE = 0x3FFFFFFF
    JSONB_VERSION = 1
    JSONPATH_VERSION = 1


cdef object _UUID = _uuid.UUID
cdef object _SAFE_UNKNOWN = _uuid.SafeUUID.unknown
cdef object _object_new = object.__new__
cdef str _ATTR_INT = "int"
cdef str _ATTR_IS_SAFE = "is_safe"
# Where uuid.UUID keeps its two slots, so decoding can fill them directly;
# -1 if this Python's UUID is not laid out that way (then the slower
# generic attribute path is used).
cdef Py_ssize_t _UUID_OFF_INT = pgc_slot_offset(_UUID.__dict__.get("int"))
cdef Py_ssize_t _UUID_OFF_SAFE = pgc_slot_offset(_UUID.__dict__.get("is_safe"))
cdef bint _UUID_FAST = (_UUID_OFF_INT > 0 and _UUID_OFF_SAFE > 0
                        and set(_UUID.__slots__) == {"int", "is_safe", "__weakref__"}
                        and _UUID.__init__ is not object.__init__)
cdef object _BitString = _types.BitString
cdef object _make_bitstring = _types.BitString._make
cdef object _U64_MASK = 0xFFFFFFFFFFFFFFFF


cdef inline str _utf8(const char* p, Py_ssize_t n, str typename):
    try:
        return PyUnicode_DecodeUTF8(p, n, NULL)
    except UnicodeDecodeError as exc:
        raise _DecodeError(f"{typename} value is not valid UTF-8: {exc.reason}") from None


cdef inline const char* _str_utf8(object obj, Py_ssize_t* n, str typename) except NULL:
    if not PyUnicode_Check(obj):
        raise TypeError(f"expected str for {typename}, got {type(obj).__name__}")
    return PyUnicode_AsUTF8AndSize(obj, n)


cdef inline uint64_t _uint64(object obj, str typename) except? 0xFFFFFFFFFFFFFFFF:
    # A non-negative int below 2**64 (int subclasses and __index__ objects too).
    try:
        obj = PyNumber_Index(obj)
    except TypeError:
        raise TypeError(f"expected int for {typename}, got {type(obj).__name__}") from None
    if obj < 0 or obj > _U64_MASK:
        raise OverflowError(f"{typename} value {obj} is out of range (0 to 2**64-1)")
    return PyLong_AsUnsignedLongLong(obj)


# -- uuid ----------------------------------------------------------------------

cdef inline int _hexval(unsigned char c) noexcept nogil:
    if c'0' <= c <= c'9':
        return c - c'0'
    if c'a' <= c <= c'f':
        return c - c'a' + 10
    if c'A' <= c <= c'F':
        return c - c'A' + 10
    return -1


cdef int _uuid_from_str(object s, char* out) except -1:
    # 32 hex digits; hyphens anywhere are ignored (asyncpg's rule).
    cdef Py_ssize_t n, i, nhex = 0
    cdef const char* p = PyUnicode_AsUTF8AndSize(s, &n)
    cdef int v
    if n < 32 or n > 36:
        raise ValueError(f"invalid UUID {s!r}: expected 32 hex digits")
    for i in range(n):
        if p[i] == c'-':
            continue
        v = _hexval(<unsigned char>p[i])
        if v < 0 or nhex >= 32:
            raise ValueError(f"invalid UUID {s!r}: expected 32 hex digits")
        if nhex % 2 == 0:
            out[nhex // 2] = <char>(v << 4)
        else:
            out[nhex // 2] = <char>(out[nhex // 2] | v)
        nhex += 1
    if nhex != 32:
        raise ValueError(f"invalid UUID {s!r}: expected 32 hex digits")
    return 0


cdef int uuid_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef char data[16]
    cdef object value
    if isinstance(obj, _UUID):
        value = obj.int
        hton.pack_uint64(data, <uint64_t>PyLong_AsUnsignedLongLongMask(value >> 64))
        hton.pack_uint64(data + 8, <uint64_t>PyLong_AsUnsignedLongLongMask(value))
    elif PyUnicode_Check(obj):
        _uuid_from_str(obj, data)
    else:
        raise TypeError(f"expected uuid.UUID or str for uuid, got {type(obj).__name__}")
    buf.ensure(20)
    buf.write_int32(16)
    buf.write_raw(data, 16)
    return 0


cdef object uuid_decode(CodecContext ctx, FRBuffer* buf):
    cdef object u
    cdef const char* p
    if buf.len != 16:
        raise _DecodeError(f"uuid value must be 16 bytes, got {buf.len}")
    p = frb_read(buf, 16)
    # uuid.UUID.__init__ is slow Python code; fill the object's two slots
    # directly instead, which is all __init__ does for 16 bytes.
    if _UUID_FAST:
        return pgc_uuid_new(<PyTypeObject*>_UUID, _UUID_OFF_INT, _UUID_OFF_SAFE, p,
                            <PyObject*>_SAFE_UNKNOWN)
    u = _object_new(_UUID)
    PyObject_GenericSetAttr(u, _ATTR_INT, pgc_uint128_from_bytes(p))
    PyObject_GenericSetAttr(u, _ATTR_IS_SAFE, _SAFE_UNKNOWN)
    return u


# -- json, jsonb, jsonpath -------------------------------------------------------

cdef int json_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef Py_ssize_t n
    cdef const char* p = _str_utf8(obj, &n, "json")
    if n > MAX_VALUE_SIZE:
        raise ValueError(f"json value of {n} bytes is too long")
    buf.ensure(4 + n)
    buf.write_int32(<int32_t>n)
    buf.write_raw(p, n)
    return 0


cdef object json_decode(CodecContext ctx, FRBuffer* buf):
    cdef Py_ssize_t n = buf.len
    return _utf8(frb_read(buf, n), n, "json")


cdef int _versioned_text_encode(WriteBuffer buf, object obj, char version, str typename) except -1:
    cdef Py_ssize_t n
    cdef const char* p = _str_utf8(obj, &n, typename)
    if n + 1 > MAX_VALUE_SIZE:
        raise ValueError(f"{typename} value of {n} bytes is too long")
    buf.ensure(5 + n)
    buf.write_int32(<int32_t>(n + 1))
    buf.write_byte(version)
    buf.write_raw(p, n)
    return 0


cdef object _versioned_text_decode(FRBuffer* buf, uint8_t version, str typename):
    cdef uint8_t got
    cdef Py_ssize_t n
    if buf.len < 1:
        raise _DecodeError(f"{typename} value is empty: the format version byte is missing")
    got = <uint8_t>frb_read(buf, 1)[0]
    if got != version:
        raise _DecodeError(f"unsupported {typename} binary format version {got}")
    n = buf.len
    return _utf8(frb_read(buf, n), n, typename)


cdef int jsonb_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    return _versioned_text_encode(buf, obj, JSONB_VERSION, "jsonb")


cdef object jsonb_decode(CodecContext ctx, FRBuffer* buf):
    return _versioned_text_decode(buf, JSONB_VERSION, "jsonb")


cdef int jsonpath_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    return _versioned_text_encode(buf, obj, JSONPATH_VERSION, "jsonpath")


cdef object jsonpath_decode(CodecContext ctx, FRBuffer* buf):
    return _versioned_text_decode(buf, JSONPATH_VERSION, "jsonpath")


# -- bit, varbit -----------------------------------------------------------------

cdef int bits_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef object data
    cdef Py_ssize_t nbytes, nbits
    if isinstance(obj, _BitString):
        data = obj.bytes
        nbytes = len(data)
        nbits = len(obj)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = obj
        nbytes = memoryview(obj).nbytes
        nbits = nbytes * 8
    else:
        raise TypeError(
            f"expected BitString or bytes for bit/varbit, got {type(obj).__name__}")
    if nbytes != (nbits + 7) // 8:
        raise ValueError(f"BitString of {nbits} bits has {nbytes} bytes")
    if nbytes + 4 > MAX_VALUE_SIZE:
        raise ValueError(f"bit string of {nbits} bits is too long")
    buf.ensure(8 + nbytes)
    buf.write_int32(<int32_t>(4 + nbytes))
    buf.write_int32(<int32_t>nbits)
    buf.write_buffer(data)
    return 0


cdef object bits_decode(CodecContext ctx, FRBuffer* buf):
    cdef int32_t nbits
    cdef Py_ssize_t n
    if buf.len < 4:
        raise _DecodeError(f"bit value needs at least 4 bytes, got {buf.len}")
    nbits = hton.unpack_int32(frb_read(buf, 4))
    n = buf.len
    if nbits < 0 or (<int64_t>nbits + 7) // 8 != n:
        raise _DecodeError(f"bit value declares {nbits} bits but has {n} bytes")
    return _make_bitstring(PyBytes_FromStringAndSize(frb_read(buf, n), n), nbits)


# -- pg_lsn, xid8 ----------------------------------------------------------------

cdef int _uint8_encode(WriteBuffer buf, object obj, str typename) except -1:
    cdef uint64_t v = _uint64(obj, typename)
    buf.ensure(12)
    buf.write_int32(8)
    buf.write_int64(<int64_t>v)
    return 0


cdef object _uint8_decode(FRBuffer* buf, str typename):
    if buf.len != 8:
        raise _DecodeError(f"{typename} value must be 8 bytes, got {buf.len}")
    return PyLong_FromUnsignedLongLong(hton.unpack_uint64(frb_read(buf, 8)))


cdef int pg_lsn_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    return _uint8_encode(buf, obj, "pg_lsn")


cdef object pg_lsn_decode(CodecContext ctx, FRBuffer* buf):
    return _uint8_decode(buf, "pg_lsn")


cdef int xid8_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    return _uint8_encode(buf, obj, "xid8")


cdef object xid8_decode(CodecContext ctx, FRBuffer* buf):
    return _uint8_decode(buf, "xid8")


# -- tid -----------------------------------------------------------------------

cdef int tid_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef uint64_t block, offset
    if not isinstance(obj, (tuple, list)):
        raise TypeError(f"expected a tuple (block, offset) for tid, got {type(obj).__name__}")
    if len(obj) != 2:
        raise ValueError(f"expected a tuple (block, offset) for tid, got {len(obj)} items")
    block = _uint64(obj[0], "tid block")
    if block > 0xFFFFFFFF:
        raise OverflowError(f"tid block number {block} is out of range (0 to 2**32-1)")
    offset = _uint64(obj[1], "tid offset")
    if offset > 0xFFFF:
        raise OverflowError(f"tid offset {offset} is out of range (0 to 65535)")
    buf.ensure(10)
    buf.write_int32(6)
    buf.write_uint32(<uint32_t>block)
    buf.write_uint16(<uint16_t>offset)
    return 0


cdef object tid_decode(CodecContext ctx, FRBuffer* buf):
    cdef const char* p
    if buf.len != 6:
        raise _DecodeError(f"tid value must be 6 bytes, got {buf.len}")
    p = frb_read(buf, 6)
    return (hton.unpack_uint32(p), hton.unpack_uint16(p + 4))


# -- txid_snapshot, pg_snapshot ----------------------------------------------------

cdef int pg_snapshot_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef uint64_t xmin, xmax
    cdef object xips, xip
    cdef Py_ssize_t nxip, start
    if not isinstance(obj, (tuple, list)):
        raise TypeError(
            f"expected a tuple (xmin, xmax, xip_list) for pg_snapshot, got {type(obj).__name__}")
    if len(obj) != 3:
        raise ValueError(
            f"expected a tuple (xmin, xmax, xip_list) for pg_snapshot, got {len(obj)} items")
    xmin = _uint64(obj[0], "pg_snapshot xmin")
    xmax = _uint64(obj[1], "pg_snapshot xmax")
    xips = obj[2]
    nxip = len(xips)
    if 20 + 8 * nxip > MAX_VALUE_SIZE:
        raise ValueError(f"pg_snapshot with {nxip} transaction ids is too long")
    start = buf.length()
    buf.ensure(24 + 8 * nxip)
    buf.write_int32(<int32_t>(20 + 8 * nxip))
    buf.write_int32(<int32_t>nxip)
    buf.write_int64(<int64_t>xmin)
    buf.write_int64(<int64_t>xmax)
    try:
        for xip in xips:
            buf.write_int64(<int64_t>_uint64(xip, "pg_snapshot xip"))
        if buf.length() - start != 24 + 8 * nxip:
            raise ValueError("pg_snapshot xip list changed while being encoded")
    except BaseException:
        buf.truncate(start)
        raise
    return 0


cdef object pg_snapshot_decode(CodecContext ctx, FRBuffer* buf):
    cdef const char* p
    cdef int32_t nxip
    cdef Py_ssize_t i
    cdef tuple xips
    cdef object xmin, xmax
    if buf.len < 20:
        raise _DecodeError(f"pg_snapshot value needs at least 20 bytes, got {buf.len}")
    p = frb_read(buf, 20)
    nxip = hton.unpack_int32(p)
    if nxip < 0 or buf.len != <int64_t>nxip * 8:
        raise _DecodeError(
            f"pg_snapshot value declares {nxip} transaction ids but has {buf.len} bytes for them")
    xmin = PyLong_FromUnsignedLongLong(hton.unpack_uint64(p + 4))
    xmax = PyLong_FromUnsignedLongLong(hton.unpack_uint64(p + 12))
    p = frb_read(buf, buf.len)
    xips = tuple([PyLong_FromUnsignedLongLong(hton.unpack_uint64(p + 8 * i)) for i in range(nxip)])
    return (xmin, xmax, xips)


# -- hstore --------------------------------------------------------------------

cdef int _hstore_write_str(WriteBuffer buf, object s, str what) except -1:
    cdef Py_ssize_t n
    cdef const char* p
    if not PyUnicode_Check(s):
        raise TypeError(f"expected str for an hstore {what}, got {type(s).__name__}")
    p = PyUnicode_AsUTF8AndSize(s, &n)
    if n > MAX_VALUE_SIZE:
        raise ValueError(f"hstore {what} of {n} bytes is too long")
    buf.write_int32(<int32_t>n)
    buf.write_raw(p, n)
    return 0


cdef int hstore_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef Py_ssize_t start = buf.length()
    cdef Py_ssize_t count_pos
    cdef int64_t count = 0
    cdef object items, key, value
    if hasattr(obj, "items"):
        items = obj.items()
    elif isinstance(obj, (str, bytes)) or not hasattr(obj, "__iter__"):
        raise TypeError(
            f"expected a dict or (key, value) pairs for hstore, got {type(obj).__name__}")
    else:
        items = obj
    buf.reserve_int32()
    count_pos = buf.reserve_int32()
    try:
        for key, value in items:
            if key is None:
                raise ValueError("hstore keys cannot be None")
            _hstore_write_str(buf, key, "key")
            if value is None:
                buf.write_int32(-1)
            else:
                _hstore_write_str(buf, value, "value")
            count += 1
        if buf.length() - start - 4 > MAX_VALUE_SIZE:
            raise ValueError("hstore value is too long")
        buf.patch_int32(count_pos, <int32_t>count)
        buf.end_len_prefixed(start)
    except BaseException:
        buf.truncate(start)
        raise
    return 0


cdef object hstore_decode(CodecContext ctx, FRBuffer* buf):
    cdef int32_t count, n
    cdef dict result = {}
    cdef str key
    cdef object value
    if buf.len < 4:
        raise _DecodeError(f"hstore value needs at least 4 bytes, got {buf.len}")
    count = hton.unpack_int32(frb_read(buf, 4))
    # Every pair takes at least 8 bytes (two lengths): a count the bytes
    # cannot hold is refused before the loop starts.
    if count < 0 or <int64_t>count * 8 > buf.len:
        raise _DecodeError(f"hstore value declares {count} pairs but has only {buf.len} bytes")
    for _ in range(count):
        if buf.len < 4:
            raise _DecodeError("hstore value is truncated")
        n = hton.unpack_int32(frb_read(buf, 4))
        if n < 0:
            raise _DecodeError("hstore value has a NULL key")
        if n > buf.len:
            raise _DecodeError("hstore value is truncated")
        key = _utf8(frb_read(buf, n), n, "hstore")
        if buf.len < 4:
            raise _DecodeError("hstore value is truncated")
        n = hton.unpack_int32(frb_read(buf, 4))
        if n == -1:
            value = None
        elif n < 0 or n > buf.len:
            raise _DecodeError(f"hstore value has an invalid value length {n}")
        else:
            value = _utf8(frb_read(buf, n), n, "hstore")
        result[key] = value
    if buf.len != 0:
        raise _DecodeError(f"hstore value has {buf.len} unexpected trailing bytes")
    return result


# -- registration --------------------------------------------------------------

_register(UUIDOID, "uuid", uuid_encode, uuid_decode, PG_FORMAT_BINARY)
_register(JSONOID, "json", json_encode, json_decode, PG_FORMAT_BINARY)
_register(JSONBOID, "jsonb", jsonb_encode, jsonb_decode, PG_FORMAT_BINARY)
_register(JSONPATHOID, "jsonpath", jsonpath_encode, jsonpath_decode, PG_FORMAT_BINARY)
_register(BITOID, "bit", bits_encode, bits_decode, PG_FORMAT_BINARY)
_register(VARBITOID, "varbit", bits_encode, bits_decode, PG_FORMAT_BINARY)
_register(PG_LSNOID, "pg_lsn", pg_lsn_encode, pg_lsn_decode, PG_FORMAT_BINARY)
_register(XID8OID, "xid8", xid8_encode, xid8_decode, PG_FORMAT_BINARY)
_register(TIDOID, "tid", tid_encode, tid_decode, PG_FORMAT_BINARY)
_register(TXID_SNAPSHOTOID, "txid_snapshot", pg_snapshot_encode, pg_snapshot_decode,
          PG_FORMAT_BINARY)
_register(PG_SNAPSHOTOID, "pg_snapshot", pg_snapshot_encode, pg_snapshot_decode, PG_FORMAT_BINARY)

_add_test_codec("hstore", hstore_encode, hstore_decode, PG_XFORMAT_OBJECT)
register_extra_codec("pg_contrib.hstore", hstore_encode, hstore_decode, PG_FORMAT_BINARY)

# Exchanged as text, like asyncpg: the value is the server's text form.
_register(MONEYOID, "money", text_encode, text_decode, PG_FORMAT_TEXT)
_register(MACADDROID, "macaddr", text_encode, text_decode, PG_FORMAT_TEXT)
_register(MACADDR8OID, "macaddr8", text_encode, text_decode, PG_FORMAT_TEXT)
_register(TSVECTOROID, "tsvector", text_encode, text_decode, PG_FORMAT_TEXT)
_register(TSQUERYOID, "tsquery", text_encode, text_decode, PG_FORMAT_TEXT)
_register(GTSVECTOROID, "gtsvector", NULL, text_decode, PG_FORMAT_TEXT)   # output only
