# cython: language_level=3, freethreading_compatible=True
"""The codec machinery: Codec, the registry, containers, row decoding, parameters.

Turns PostgreSQL values into Python objects and back, given type OIDs. Knows
nothing about protocol messages, sockets or asyncio: pg-wire hands a
DataRow's payload to a RowDecoder, and pg-client asks a CodecRegistry for
codecs, feeds it the rows of its type introspection query and plans a
RowDecoder per RowDescription and a ParamEncoder per statement.

How it works
------------

* Scalar codecs are pairs of C functions (``encode_func``/``decode_func``,
  see _codecs.pxd). Each codec module registers its functions at import with
  ``register_core_codec()``; the resulting Codec objects form the *core
  table*, shared by every connection, keyed by (OID, format, exchange
  format). ``pg_codecs/__init__.py`` imports every codec module, so the table
  is complete once ``pg_codecs`` is imported.

* A ``Codec`` dispatches on ``method``: a C pair, a binary or text array, a
  composite, a range, a multirange, or a Python codec from
  ``set_type_codec()``. Containers hold the codecs of their elements.

* A ``CodecRegistry`` (one per connection) looks codecs up in this order,
  as asyncpg does: codecs set by the user for the OID (``set_type_codec``,
  ``set_builtin_type_codec``), then the core table, then *derived* codecs,
  which it builds on demand from type descriptions (``add_types()``, fed
  from the server's catalog) or, for built-in array, range and multirange
  types, from the tables in ``pg_codecs.oids``. Derived codecs are rebuilt
  after a codec change, so an array picks up its element's new codec.

* A ``RowDecoder`` is planned once per result shape: per column, the C
  decoder to call directly (or the Codec to dispatch through), the shared
  RecordDescriptor and the record class. ``decode_row()`` runs without a
  Python-level call per value and with no exception handling on the
  success path.

* A ``ParamEncoder`` writes the parameter section of a Bind message straight
  into the outgoing WriteBuffer.

Every decoder treats its input as hostile: lengths and counts are checked
against the bytes present before anything is allocated for them.
"""

cimport cython
from cpython.bytes cimport (
    PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE,
)
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_CheckBuffer, PyObject_GetBuffer
from cpython.float cimport PyFloat_FromDouble
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLong, PyLong_FromLongLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_CheckExact, PyTuple_GET_ITEM, PyTuple_New, PyTuple_SET_ITEM
from cpython.sequence cimport PySequence_Check, PySequence_GetItem
from cpython.unicode cimport PyUnicode_Check
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint32_t

from pg_codecs cimport _hton as hton
from pg_codecs cimport _oids as coids
from pg_codecs._buffer cimport (
    FRBuffer, WriteBuffer, frb_init, frb_read, frb_read_all, frb_slice_from,
)
from pg_codecs._record cimport (
    Record, RecordDescriptor, check_record_class, record_done, record_items, record_new,
    record_set_item, values_need_gc,
)

from collections.abc import Iterable as _Iterable, Mapping as _Mapping, Sized as _Sized

from pg_codecs import oids as _oids
from pg_codecs.errors import DecodeError as _DecodeError
from pg_codecs.errors import RowFormatError as _RowFormatError


cdef extern from *:
    """
    /* Strict UTF-8 decoding; NULL with an exception set on bad input. */
    #define __pg_decode_utf8(p, n) PyUnicode_DecodeUTF8((p), (n), NULL)
    #define __pg_tuple_items(t) (((PyTupleObject *)(t))->ob_item)
    /* A new instance of a Python class, as object.__new__ makes it (slots
       unset), and a store through a slot's member descriptor. */
    #define __pg_alloc_instance(tp) (((PyTypeObject *)(tp))->tp_alloc((PyTypeObject *)(tp), 0))
    #define __pg_descr_set(d, obj, v) (Py_TYPE(d)->tp_descr_set((d), (obj), (v)))
    /* Neither __iter__ nor __getitem__: no iterable (an int, a float, a
       Decimal, a datetime...). */
    #define __pg_cannot_iterate(o) (Py_TYPE(o)->tp_iter == NULL && \
        (Py_TYPE(o)->tp_as_sequence == NULL || Py_TYPE(o)->tp_as_sequence->sq_item == NULL))
    """
    bint __pg_cannot_iterate(object o)
    object __pg_alloc_instance(object tp)
    int __pg_descr_set(object d, object obj, object v) except -1
    PyObject** __pg_tuple_items(object t)
    PyObject* __pg_decode_utf8(const char* p, Py_ssize_t n)
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    bint PyByteArray_Check(object o)
    bint PyMemoryView_Check(object o)
    bint PyList_CheckExact(object o)
    bint PyTuple_CheckExact(object o)
    bint PyTuple_Check(object o)
    bint PyDict_CheckExact(object o)
    Py_ssize_t PyList_GET_SIZE(object o)
    Py_ssize_t PyTuple_GET_SIZE(object o)
    PyObject* PyList_GET_ITEM(object o, Py_ssize_t i)
    PyObject* PyTuple_GET_ITEM(object o, Py_ssize_t i)
    void PyObject_GC_UnTrack(void* o)


cdef enum:
    ARRAY_MAXDIM = 6        # like PostgreSQL (MAXDIM in c.h)
    INT32_MAX = 0x7FFFFFFF
    INT16_MAX = 0x7FFF

# Codec.method
cdef enum:
    METHOD_C = 0            # c_encoder / c_decoder
    METHOD_ARRAY = 1        # binary array of element_codec
    METHOD_TEXT_ARRAY = 2   # text array of element_codec (a text-format element)
    METHOD_COMPOSITE = 3    # binary composite of element_codecs
    METHOD_RANGE = 4
    METHOD_MULTIRANGE = 5
    METHOD_PY = 6           # set_type_codec(): py_encoder / py_decoder

# Range flags (rangetypes.h)
cdef enum:
    RANGE_EMPTY = 0x01
    RANGE_LB_INC = 0x02
    RANGE_UB_INC = 0x04
    RANGE_LB_INF = 0x08
    RANGE_UB_INF = 0x10


# Calls a decode function without Cython's automatic error check: NULL means
# an exception is set. The row decoder uses this to add the column to the
# error without paying for exception handling on every value.
ctypedef PyObject* (*raw_decode_func)(CodecContext ctx, FRBuffer* buf) noexcept
ctypedef PyObject* (*raw_codec_decode_func)(Codec codec, CodecContext ctx, FRBuffer* buf) noexcept


# -- exceptions -------------------------------------------------------------------------

class UnsupportedCodecError(ValueError):
    """A codec cannot be set up or used the way it was asked for.

    For example a ``'tuple'`` codec for a type that has no tuple form, an
    alias to a codec that does not exist, a composite or range type whose
    elements only have a text codec, or input of an anonymous record.
    """


class SchemaMismatchError(_DecodeError):
    """A composite value does not match the type description its codec was
    built from: the type changed on the server since it was looked up.

    :ivar schema: Schema of the composite type.
    :ivar data_type: Name of the composite type.
    :ivar position: Index of the mismatched attribute, or None for a wrong
        attribute count.
    """

    def __init__(self, message, *, schema=None, data_type=None, position=None):
        super().__init__(message)
        self.schema = schema
        self.data_type = data_type
        self.position = position


class CompositeSizeError(ValueError):
    """A composite value has more or fewer items than the type has attributes.

    :ivar expected: Attributes of the composite type.
    :ivar got: Items in the value.
    """

    def __init__(self, message, *, expected, got):
        super().__init__(message)
        self.expected = expected
        self.got = got


class ParameterCountError(ValueError):
    """The number of arguments is not the number of parameters of the statement.

    :ivar expected: Parameters of the statement.
    :ivar passed: Arguments given.
    """

    def __init__(self, expected, passed):
        self.expected = expected
        self.passed = passed
        super().__init__(
            f"the server expects {expected} argument{'s' if expected != 1 else ''} "
            f"for this query, {passed} {'was' if passed == 1 else 'were'} passed")


class ParameterEncodeError(ValueError):
    """A query argument cannot be encoded for its parameter's type.

    Raised from the encoder's TypeError, ValueError or OverflowError (or a
    custom codec's exception), which is kept as ``__cause__``.

    :ivar position: 0-based index of the argument (``$position+1``).
    :ivar type_name: PostgreSQL type of the parameter.
    :ivar value: The argument.
    :ivar reason: The encoder's message.
    """

    def __init__(self, position, type_name, value, reason):
        self.position = position
        self.type_name = type_name
        self.value = value
        self.reason = reason
        value_repr = repr(value)
        if len(value_repr) > 40:
            value_repr = value_repr[:40] + "..."
        super().__init__(
            f"invalid input for query argument ${position + 1}: {value_repr} "
            f"({reason}) [parameter type {type_name}, argument type {type(value).__name__}]")


# -- context ----------------------------------------------------------------------------

cdef class CodecContext:
    """State a codec may consult while encoding or decoding.

    Core scalar codecs ignore it. A CodecRegistry is the context of its own
    codecs (the anonymous ``record`` decoder looks element types up in it).
    """

    def __init__(self, registry=None):
        self.registry = registry


cdef inline CodecRegistry _registry_of(CodecContext ctx):
    if isinstance(ctx, CodecRegistry):
        return <CodecRegistry>ctx
    if ctx is not None and isinstance(ctx.registry, CodecRegistry):
        return <CodecRegistry>ctx.registry
    return _default_registry()


# -- shared scalar codecs (see _codecs.pxd) -----------------------------------------

cdef int text_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    if not PyUnicode_Check(obj):
        raise TypeError(f"expected str, got {type(obj).__name__}")
    return buf.write_len_prefixed_str(<str>obj)


cdef object _utf8_error():
    # PyUnicode_DecodeUTF8 failed; its exception is set.
    try:
        _reraise()
    except UnicodeDecodeError as e:
        raise _DecodeError(f"invalid UTF-8 in text value: {e}") from None


cdef inline object _decode_utf8(const char* p, Py_ssize_t n):
    cdef PyObject* s = __pg_decode_utf8(p, n)
    if s is NULL:
        return _utf8_error()
    result = <object>s
    Py_DECREF(result)   # <object>s took a second reference
    return result


cdef object text_decode(CodecContext ctx, FRBuffer* buf):
    cdef Py_ssize_t n = buf.len
    return _decode_utf8(frb_read_all(buf), n)


cdef int bytea_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef Py_ssize_t n
    if PyBytes_CheckExact(obj):
        n = PyBytes_GET_SIZE(obj)
        if n > 0x3FFFFFFF:
            raise ValueError(f"value of {n} bytes is too long for PostgreSQL")
        buf.write_int32(<int32_t>n)
        return buf.write_raw(PyBytes_AS_STRING(obj), n)
    if PyUnicode_Check(obj) or not PyObject_CheckBuffer(obj):
        raise TypeError(f"expected a bytes-like object, got {type(obj).__name__}")
    return buf.write_len_prefixed_buffer(obj)


cdef object bytea_decode(CodecContext ctx, FRBuffer* buf):
    cdef Py_ssize_t n = buf.len
    return PyBytes_FromStringAndSize(frb_read_all(buf), n)


# -- the core table -----------------------------------------------------------------------

cdef dict _core_codecs = {}     # _core_key(oid, format, xformat) -> Codec
cdef dict _extra_codecs = {}    # (name, format) -> Codec


cdef inline object _core_key(uint32_t oid, int format, int xformat):
    return (<int64_t>oid << 2) | (format << 1) | xformat


cdef int register_core_codec(uint32_t oid, str name,
                             encode_func encoder, decode_func decoder,
                             int format, int xformat=PG_XFORMAT_OBJECT) except -1:
    """Put a scalar codec into the core table (called by codec modules at import)."""
    cdef Codec codec, old
    if format != PG_FORMAT_TEXT and format != PG_FORMAT_BINARY:
        raise ValueError(f"invalid format {format} for the codec of OID {oid}")
    if xformat != PG_XFORMAT_OBJECT and xformat != PG_XFORMAT_TUPLE:
        raise ValueError(f"invalid exchange format {xformat} for the codec of OID {oid}")
    if not name:
        name = _oids.TYPE_NAMES.get(oid, str(oid))
    key = _core_key(oid, format, xformat)
    old = _core_codecs.get(key)
    if old is not None:
        if old.c_encoder == encoder and old.c_decoder == decoder:
            return 0
        # Two modules claiming one type is a packaging bug: fail loudly at
        # import instead of letting import order pick a winner.
        raise RuntimeError(
            f"two different {'binary' if format else 'text'} codecs registered for "
            f"{name} (OID {oid}): {old.name!r} and {name!r}")
    codec = Codec.__new__(Codec)
    codec.oid = oid
    codec.name = name
    codec.schema = "pg_catalog"
    codec.kind = "scalar"
    codec.format = format
    codec.xformat = xformat
    codec.method = METHOD_C
    codec.c_encoder = encoder
    codec.c_decoder = decoder
    _core_codecs[key] = codec
    return 0


cdef int register_extra_codec(str name, encode_func encoder, decode_func decoder,
                              int format) except -1:
    cdef Codec codec = Codec.__new__(Codec)
    codec.oid = 0
    codec.name = name
    codec.schema = None
    codec.kind = "scalar"
    codec.format = format
    codec.xformat = PG_XFORMAT_OBJECT
    codec.method = METHOD_C
    codec.c_encoder = encoder
    codec.c_decoder = decoder
    _extra_codecs[(name, format)] = codec
    return 0


cdef inline Codec _get_core_codec(uint32_t oid, int format, int xformat=PG_XFORMAT_OBJECT):
    return <Codec>_core_codecs.get(_core_key(oid, format, xformat))


def core_codec_oids():
    """Return the sorted OIDs that have a codec in the core table.

    For tests and tools (for example to feed every decoder random bytes).
    """
    return sorted({k >> 2 for k in _core_codecs})


# -- Codec ------------------------------------------------------------------------------

cdef inline bint _is_trivial_container(object obj):
    return (PyUnicode_Check(obj) or isinstance(obj, bytes) or PyByteArray_Check(obj)
            or PyMemoryView_Check(obj))


cdef bint _is_array_like(object obj) except -1:
    # asyncpg's rule: a sized iterable that is not a string, bytes-like or a mapping.
    if PyList_CheckExact(obj) or PyTuple_CheckExact(obj):
        return True
    if __pg_cannot_iterate(obj) or _is_trivial_container(obj) or PyDict_CheckExact(obj):
        # (The first test spares array elements the ABC checks below, which
        # cost more than encoding an int.)
        return False
    return isinstance(obj, _Iterable) and isinstance(obj, _Sized) and not isinstance(obj, _Mapping)


cdef bint _is_sub_array(object obj) except -1:
    # Inside an array a tuple is an element (a composite value), not a sub-array.
    if PyList_CheckExact(obj):
        return True
    if PyTuple_Check(obj):
        return False
    return _is_array_like(obj)


@cython.final
cdef class Codec:
    """How values of one PostgreSQL type travel in one wire format.

    Obtained from a CodecRegistry; not created directly.
    """

    def __cinit__(self):
        self.method = METHOD_C
        self.element_delimiter = b','

    def __init__(self):
        raise TypeError("Codec objects are made by a CodecRegistry")

    def __repr__(self):
        return (f"<Codec oid={self.oid} name={self.name!r} kind={self.kind!r} "
                f"format={'binary' if self.format == PG_FORMAT_BINARY else 'text'}"
                f"{' (tuple)' if self.xformat == PG_XFORMAT_TUPLE else ''}>")

    @property
    def format_name(self):
        """``'binary'`` or ``'text'``: the wire format of this codec."""
        return "binary" if self.format == PG_FORMAT_BINARY else "text"

    def has_encoder(self):
        """Return True if values can be encoded with this codec."""
        return self.c_has_encoder()

    def has_decoder(self):
        """Return True if values can be decoded with this codec."""
        return self.c_has_decoder()

    cdef bint c_has_encoder(self):
        cdef Codec c
        if self.method == METHOD_C:
            return self.c_encoder is not NULL
        if self.method == METHOD_PY:
            return self.py_encoder is not None
        if self.method == METHOD_COMPOSITE:
            for c in self.element_codecs:
                if not c.c_has_encoder():
                    return False
            return True
        return self.element_codec.c_has_encoder()

    cdef bint c_has_decoder(self):
        cdef Codec c
        if self.method == METHOD_C:
            return self.c_decoder is not NULL
        if self.method == METHOD_PY:
            return self.py_decoder is not None
        if self.method == METHOD_COMPOSITE:
            for c in self.element_codecs:
                if not c.c_has_decoder():
                    return False
            return True
        return self.element_codec.c_has_decoder()

    cdef Codec copy_as(self, uint32_t oid, str name, str schema, str kind):
        cdef Codec c = Codec.__new__(Codec)
        c.oid = oid
        c.name = name
        c.schema = schema
        c.kind = kind
        c.format = self.format
        c.xformat = self.xformat
        c.method = self.method
        c.c_encoder = self.c_encoder
        c.c_decoder = self.c_decoder
        c.py_encoder = self.py_encoder
        c.py_decoder = self.py_decoder
        c.element_codec = self.element_codec
        c.element_codecs = self.element_codecs
        c.element_type_oids = self.element_type_oids
        c.element_names = self.element_names
        c.record_desc = self.record_desc
        c.element_delimiter = self.element_delimiter
        c.element_oid = self.element_oid
        c.base_codec = self.base_codec
        return c

    # -- dispatch ----------------------------------------------------------------------

    cdef int encode(self, CodecContext ctx, WriteBuffer buf, object obj) except -1:
        cdef int m = self.method
        if m == METHOD_C:
            if self.c_encoder is NULL:
                raise UnsupportedCodecError(
                    f"values of type {self.name} cannot be sent (no encoder)")
            return self.c_encoder(ctx, buf, obj)
        if m == METHOD_ARRAY:
            return _array_encode(self, ctx, buf, obj)
        if m == METHOD_TEXT_ARRAY:
            return _text_array_encode(self, ctx, buf, obj)
        if m == METHOD_COMPOSITE:
            return _composite_encode(self, ctx, buf, obj)
        if m == METHOD_RANGE:
            return _range_encode(self, ctx, buf, obj)
        if m == METHOD_MULTIRANGE:
            return _multirange_encode(self, ctx, buf, obj)
        return _py_encode(self, ctx, buf, obj)

    cdef object decode(self, CodecContext ctx, FRBuffer* buf):
        cdef int m = self.method
        if m == METHOD_C:
            if self.c_decoder is NULL:
                raise UnsupportedCodecError(
                    f"values of type {self.name} cannot be received (no decoder)")
            return self.c_decoder(ctx, buf)
        if m == METHOD_ARRAY:
            return _array_decode(self, ctx, buf)
        if m == METHOD_TEXT_ARRAY:
            return _text_array_decode(self, ctx, buf)
        if m == METHOD_COMPOSITE:
            return _composite_decode(self, ctx, buf)
        if m == METHOD_RANGE:
            return _range_decode(self, ctx, buf)
        if m == METHOD_MULTIRANGE:
            return _multirange_decode(self, ctx, buf)
        return _py_decode(self, ctx, buf)


cdef inline int _encode_value(Codec codec, CodecContext ctx, WriteBuffer buf, object obj) except -1:
    # One value with its length prefix; None is NULL.
    if obj is None:
        return buf.write_int32(-1)
    if codec.method == METHOD_C and codec.c_encoder is not NULL:
        return codec.c_encoder(ctx, buf, obj)
    return codec.encode(ctx, buf, obj)


cdef inline object _decode_value(Codec codec, CodecContext ctx, FRBuffer* buf):
    # One length-prefixed value from buf: -1 is NULL; the decoder must use
    # exactly the bytes of the value.
    cdef int32_t n = hton.unpack_int32(frb_read(buf, 4))
    cdef FRBuffer vbuf
    if n == -1:
        return None
    if n < 0:
        raise _DecodeError(f"malformed value: negative length {n}")
    frb_slice_from(&vbuf, buf, n)
    if codec.method == METHOD_C and codec.c_decoder is not NULL:
        value = codec.c_decoder(ctx, &vbuf)
    else:
        value = codec.decode(ctx, &vbuf)
    if vbuf.len != 0:
        raise _DecodeError(f"malformed {codec.name} value: {vbuf.len} unexpected trailing bytes")
    return value


cdef Codec _new_codec(uint32_t oid, str name, str schema, str kind, int method, int format):
    cdef Codec c = Codec.__new__(Codec)
    c.oid = oid
    c.name = name
    c.schema = schema
    c.kind = kind
    c.method = method
    c.format = format
    c.xformat = PG_XFORMAT_OBJECT
    return c


# -- Python codecs (set_type_codec) ------------------------------------------------------

cdef int _py_encode(Codec codec, CodecContext ctx, WriteBuffer buf, object obj) except -1:
    data = codec.py_encoder(obj)
    if codec.xformat == PG_XFORMAT_TUPLE:
        if codec.base_codec is not None:
            return codec.base_codec.encode(ctx, buf, data)
        return codec.c_encoder(ctx, buf, data)
    if codec.format == PG_FORMAT_BINARY:
        return bytea_encode(ctx, buf, data)
    return text_encode(ctx, buf, data)


cdef object _py_decode(Codec codec, CodecContext ctx, FRBuffer* buf):
    if codec.xformat == PG_XFORMAT_TUPLE:
        if codec.base_codec is not None:
            data = codec.base_codec.decode(ctx, buf)
        else:
            data = codec.c_decoder(ctx, buf)
    elif codec.format == PG_FORMAT_BINARY:
        data = bytea_decode(ctx, buf)
    else:
        data = text_decode(ctx, buf)
    return codec.py_decoder(data)


# -- arrays (binary) ---------------------------------------------------------------------
#
# Array wire format (array_send): int32 ndims, int32 flags (1 = has NULLs),
# uint32 element type OID, ndims x (int32 size, int32 lower bound), then the
# elements in row-major order, each an int32 length (-1 = NULL) and bytes.

cdef int _array_shape(object obj, int32_t* dims, int* ndims) except -1:
    # Dimensions from the first element at each level; _array_write_level()
    # checks that every other sub-array agrees.
    cdef Py_ssize_t n
    cdef int nd = 0
    cur = obj
    while True:
        n = len(cur)
        if n > INT32_MAX:
            raise ValueError("too many elements in array value")
        if nd >= ARRAY_MAXDIM:
            raise ValueError(
                f"number of array dimensions ({nd + 1}) exceeds the maximum allowed "
                f"({ARRAY_MAXDIM})")
        dims[nd] = <int32_t>n
        nd += 1
        if n == 0:
            break
        first = next(iter(cur))
        if not _is_sub_array(first):
            break
        cur = first
    ndims[0] = nd
    return 0


cdef str _index_text(int32_t* index, int depth):
    if depth == 1:
        return str(index[0])
    return "[" + ", ".join([str(index[i]) for i in range(depth)]) + "]"


cdef int _array_write_level(Codec elem, CodecContext ctx, WriteBuffer buf, object obj,
                            int32_t* dims, int ndims, int level, int32_t* index) except -1:
    cdef Py_ssize_t n = len(obj)
    cdef int32_t i = 0
    if n != dims[level]:
        raise ValueError(
            f"non-homogeneous array: inconsistent sub-array dimensions "
            f"(expected {dims[level]} elements, got {n})")
    for item in obj:
        if i >= dims[level]:
            raise ValueError("non-homogeneous array: a sub-array changed size while encoding")
        index[level] = i
        if level < ndims - 1:
            if not _is_sub_array(item):
                raise ValueError("non-homogeneous array: expected a sub-array, got "
                                 f"{type(item).__name__} at index {_index_text(index, level + 1)}")
            _array_write_level(elem, ctx, buf, item, dims, ndims, level + 1, index)
        else:
            if item is None:
                buf.write_int32(-1)
            else:
                if _is_sub_array(item):
                    raise ValueError("non-homogeneous array: unexpected sub-array at index "
                                     f"{_index_text(index, level + 1)}")
                try:
                    _encode_value(elem, ctx, buf, item)
                except TypeError as e:
                    raise ValueError(
                        f"invalid array element at index {_index_text(index, level + 1)}: "
                        f"{e.args[0] if e.args else e}") from None
        i += 1
    if i != dims[level]:
        raise ValueError("non-homogeneous array: a sub-array changed size while encoding")
    return 0


cdef int _check_array_arg(object obj) except -1:
    if not _is_array_like(obj):
        raise TypeError(f"a sized iterable container expected (got type {type(obj).__name__!r})")
    return 0


cdef int _array_encode(Codec codec, CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int32_t dims[ARRAY_MAXDIM]
    cdef int32_t index[ARRAY_MAXDIM]
    cdef int ndims = 0, i
    cdef Py_ssize_t start = buf.length()
    cdef Py_ssize_t slot
    _check_array_arg(obj)
    _array_shape(obj, dims, &ndims)
    try:
        slot = buf.reserve_int32()
        buf.write_int32(ndims)
        buf.write_int32(0)                       # flags; the server works out NULLs itself
        buf.write_uint32(codec.element_oid)
        for i in range(ndims):
            buf.write_int32(dims[i])
            buf.write_int32(1)                   # lower bound
        _array_write_level(codec.element_codec, ctx, buf, obj, dims, ndims, 0, index)
        buf.end_len_prefixed(slot)
    except BaseException:
        buf.truncate(start)
        raise
    return 0


cdef int _fixed_size_element(Codec elem) noexcept:
    # The built-in binary codecs of the common fixed-size element types
    # (set_type_codec replaces a codec with a Python one): their arrays are
    # decoded by _array_decode_fixed. 0 for every other element codec.
    if elem.method != METHOD_C or elem.c_decoder is NULL or elem.format != PG_FORMAT_BINARY:
        return 0
    if elem.oid == coids.INT4OID:
        return 4
    if elem.oid == coids.INT8OID or elem.oid == coids.FLOAT8OID:
        return 8
    if elem.oid == coids.INT2OID:
        return 2
    return 0


cdef object _array_decode_fixed(Codec elem, CodecContext ctx, FRBuffer* buf, int32_t n,
                                int size):
    # A leaf level of int2/int4/int8/float8 values, without a call through
    # the codec per value: each value is its length (size, or -1 for NULL)
    # and that many bytes.
    cdef list result = PyList_New(n)
    cdef int32_t i, length
    cdef const char* p
    cdef uint32_t oid = elem.oid
    for i in range(n):
        length = hton.unpack_int32(frb_read(buf, 4))
        if length == size:
            p = frb_read(buf, size)
            if size == 4:
                value = PyLong_FromLong(hton.unpack_int32(p))
            elif size == 2:
                value = PyLong_FromLong(hton.unpack_int16(p))
            elif oid == coids.INT8OID:
                value = PyLong_FromLongLong(hton.unpack_int64(p))
            else:
                value = PyFloat_FromDouble(hton.unpack_double(p))
        elif length == -1:
            value = None
        else:
            # A wrong length: the general path reports it, in its words.
            buf.buf -= 4
            buf.len += 4
            value = _decode_value(elem, ctx, buf)
        Py_INCREF(value)
        PyList_SET_ITEM(result, i, value)
    return result


cdef object _array_decode_level(Codec elem, CodecContext ctx, FRBuffer* buf,
                                int32_t* dims, int ndims, int level):
    cdef int32_t i, n = dims[level]
    cdef bint leaf = level == ndims - 1
    cdef int size
    if leaf:
        size = _fixed_size_element(elem)
        if size:
            return _array_decode_fixed(elem, ctx, buf, n, size)
    cdef list result = PyList_New(n)
    # PyList_New leaves the slots NULL, which the list's deallocator and the
    # garbage collector accept, so an error half-way simply drops the list.
    # Only Python code could trip over a NULL (through gc.get_objects()), and
    # only a Python codec runs Python code: then start from None.
    if leaf and not (elem.method == METHOD_C and elem.c_decoder is not NULL):
        for i in range(n):
            Py_INCREF(None)
            PyList_SET_ITEM(result, i, None)
        for i in range(n):
            value = _decode_value(elem, ctx, buf)
            Py_INCREF(value)
            Py_DECREF(<object>PyList_GET_ITEM(result, i))
            PyList_SET_ITEM(result, i, value)
        return result
    for i in range(n):
        if leaf:
            value = _decode_value(elem, ctx, buf)
        else:
            value = _array_decode_level(elem, ctx, buf, dims, ndims, level + 1)
        Py_INCREF(value)
        PyList_SET_ITEM(result, i, value)
    return result


cdef int _read_array_header(FRBuffer* buf, int32_t* dims, int* ndims_out,
                            int64_t* total_out) except -1:
    cdef int32_t ndims = hton.unpack_int32(frb_read(buf, 4))
    cdef int32_t flags = hton.unpack_int32(frb_read(buf, 4))
    cdef int i
    cdef int64_t total = 1
    frb_read(buf, 4)    # element type: the codec already knows it
    if ndims < 0 or ndims > ARRAY_MAXDIM:
        raise _DecodeError(f"malformed array: {ndims} dimensions (at most {ARRAY_MAXDIM} allowed)")
    if flags != 0 and flags != 1:
        raise _DecodeError(f"malformed array: invalid flags {flags}")
    for i in range(ndims):
        dims[i] = hton.unpack_int32(frb_read(buf, 4))
        frb_read(buf, 4)    # lower bound: ignored, as asyncpg does (lists start at 0)
        if dims[i] < 0:
            raise _DecodeError(f"malformed array: negative dimension size {dims[i]}")
    if ndims == 0:
        total = 0
    for i in range(ndims):
        if dims[i] == 0:
            total = 0
    if total:
        for i in range(ndims):
            total *= dims[i]
            # Every element takes at least its 4-byte length: refuse a count
            # the remaining bytes cannot hold before allocating anything for
            # it. (All dims are >= 1 here, so the product only grows.)
            if total > buf.len // 4:
                raise _DecodeError(
                    f"malformed array: {total if i == ndims - 1 else 'more than ' + str(total)} "
                    f"elements claimed but only {buf.len} bytes follow")
    ndims_out[0] = ndims
    total_out[0] = total
    return 0


cdef object _array_decode(Codec codec, CodecContext ctx, FRBuffer* buf):
    cdef int32_t dims[ARRAY_MAXDIM]
    cdef int ndims
    cdef int64_t total
    cdef Codec elem = codec.element_codec
    _read_array_header(buf, dims, &ndims, &total)
    if total == 0:
        return []
    return _array_decode_level(elem, ctx, buf, dims, ndims, 0)


# -- arrays (text) -----------------------------------------------------------------------
#
# Used when the element type only has a text codec (for example an extension
# type without a binary codec): the whole array then travels as text,
# '{a,"b c",NULL,{...}}', optionally preceded by '[lo:hi]...=' bounds.

cdef inline bint _array_isspace(char c) noexcept:
    return c == b' ' or c == b'\t' or c == b'\n' or c == b'\r' or c == b'\v' or c == b'\f'


cdef int _text_array_write(Codec codec, CodecContext ctx, WriteBuffer out, object obj,
                           int32_t* dims, int ndims, int level, int32_t* index,
                           WriteBuffer scratch) except -1:
    cdef Py_ssize_t n = len(obj)
    cdef int32_t i = 0
    cdef char delim = codec.element_delimiter
    cdef const char* p
    cdef Py_ssize_t k, length
    cdef bint quote
    cdef char c
    if n != dims[level]:
        raise ValueError(
            f"non-homogeneous array: inconsistent sub-array dimensions "
            f"(expected {dims[level]} elements, got {n})")
    out.write_byte(b'{')
    for item in obj:
        index[level] = i
        if i > 0:
            out.write_byte(delim)
        if level < ndims - 1:
            if not _is_sub_array(item):
                raise ValueError("non-homogeneous array: expected a sub-array, got "
                                 f"{type(item).__name__} at index {_index_text(index, level + 1)}")
            _text_array_write(codec, ctx, out, item, dims, ndims, level + 1, index, scratch)
        elif item is None:
            out.write_raw(b"NULL", 4)
        else:
            if _is_sub_array(item):
                raise ValueError("non-homogeneous array: unexpected sub-array at index "
                                 f"{_index_text(index, level + 1)}")
            scratch.reset()
            try:
                _encode_value(codec.element_codec, ctx, scratch, item)
            except TypeError as e:
                raise ValueError(
                    f"invalid array element at index {_index_text(index, level + 1)}: "
                    f"{e.args[0] if e.args else e}") from None
            p = scratch.data_ptr() + 4
            length = scratch.length() - 4
            quote = length == 0 or (length == 4 and (p[0] | 0x20) == b'n' and (p[1] | 0x20) == b'u'
                                    and (p[2] | 0x20) == b'l' and (p[3] | 0x20) == b'l')
            if not quote:
                for k in range(length):
                    c = p[k]
                    if (c == b'"' or c == b'\\' or c == b'{' or c == b'}' or c == delim
                            or _array_isspace(c)):
                        quote = True
                        break
            if not quote:
                out.write_raw(p, length)
            else:
                out.write_byte(b'"')
                for k in range(length):
                    c = p[k]
                    if c == b'"' or c == b'\\':
                        out.write_byte(b'\\')
                    out.write_byte(c)
                out.write_byte(b'"')
        i += 1
    if i != dims[level]:
        raise ValueError("non-homogeneous array: a sub-array changed size while encoding")
    out.write_byte(b'}')
    return 0


cdef int _text_array_encode(Codec codec, CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef int32_t dims[ARRAY_MAXDIM]
    cdef int32_t index[ARRAY_MAXDIM]
    cdef int ndims = 0
    cdef Py_ssize_t start = buf.length()
    cdef Py_ssize_t slot
    _check_array_arg(obj)
    _array_shape(obj, dims, &ndims)
    try:
        slot = buf.reserve_int32()
        _text_array_write(codec, ctx, buf, obj, dims, ndims, 0, index, WriteBuffer.new())
        buf.end_len_prefixed(slot)
    except BaseException:
        buf.truncate(start)
        raise
    return 0


cdef class _TextArrayParser:
    # Parses an array literal; positions in messages are 1-based byte offsets.
    cdef const char* s
    cdef Py_ssize_t n
    cdef Py_ssize_t pos
    cdef char delim
    cdef Codec elem
    cdef CodecContext ctx
    cdef char* scratch             # unescaped element text, reused
    cdef int32_t level_len[ARRAY_MAXDIM]
    cdef int level_kind[ARRAY_MAXDIM]   # 0 unknown (empty), 1 sub-arrays, 2 elements
    cdef int max_depth

    def __dealloc__(self):
        if self.scratch is not NULL:
            PyMem_Free(self.scratch)

    cdef int error(self, str what) except -1:
        raise _DecodeError(f"malformed array literal: {what} at position {self.pos + 1}")

    cdef inline void skip_space(self) noexcept:
        while self.pos < self.n and _array_isspace(self.s[self.pos]):
            self.pos += 1

    cdef inline char peek(self) noexcept:
        return self.s[self.pos] if self.pos < self.n else 0

    cdef int parse_bounds(self, int32_t* dims, int* ndims) except -1:
        cdef int nd = 0
        cdef int64_t lo, hi
        while True:
            self.skip_space()
            if self.peek() != b'[':
                break
            if nd >= ARRAY_MAXDIM:
                self.error("too many dimensions")
            self.pos += 1
            lo = 1
            hi = self.parse_int()
            if self.peek() == b':':
                self.pos += 1
                lo = hi
                hi = self.parse_int()
            if self.peek() != b']':
                self.error("expected ']'")
            self.pos += 1
            if hi < lo - 1 or hi - lo + 1 > INT32_MAX:
                self.error("invalid array bounds")
            dims[nd] = <int32_t>(hi - lo + 1)
            nd += 1
        if nd:
            if self.peek() != b'=':
                self.error("expected '=' after array dimensions")
            self.pos += 1
        ndims[0] = nd
        return 0

    cdef int64_t parse_int(self) except? -1:
        cdef int64_t v = 0
        cdef bint neg = False
        cdef Py_ssize_t digits = 0
        self.skip_space()
        if self.peek() == b'-' or self.peek() == b'+':
            neg = self.peek() == b'-'
            self.pos += 1
        while self.pos < self.n and b'0' <= self.s[self.pos] <= b'9':
            v = v * 10 + (<int>self.s[self.pos] - 48)
            digits += 1
            if v > INT32_MAX:
                self.error("array bound out of range")
            self.pos += 1
        if digits == 0:
            self.error("expected a number")
        self.skip_space()
        return -v if neg else v

    cdef object parse_level(self, int depth):
        # After '{'. Returns the list of this level.
        cdef list items = []
        cdef int kind = 0
        cdef char c
        if depth >= ARRAY_MAXDIM:
            self.error(f"more than {ARRAY_MAXDIM} dimensions")
        if depth + 1 > self.max_depth:
            self.max_depth = depth + 1
        self.skip_space()
        if self.peek() == b'}':
            self.pos += 1
            return self.finish_level(items, depth, kind)
        while True:
            self.skip_space()
            c = self.peek()
            if c == b'{':
                if kind == 2:
                    self.error("unexpected '{'")
                kind = 1
                self.pos += 1
                items.append(self.parse_level(depth + 1))
            else:
                if kind == 1:
                    self.error("expected '{'")
                kind = 2
                items.append(self.parse_element())
            self.skip_space()
            c = self.peek()
            if c == self.delim:
                self.pos += 1
                continue
            if c == b'}':
                self.pos += 1
                return self.finish_level(items, depth, kind)
            if c == 0 and self.pos >= self.n:
                self.error("unexpected end of input")
            self.error(f"unexpected character {chr(<unsigned char>c)!r}")

    cdef object finish_level(self, list items, int depth, int kind):
        cdef Py_ssize_t n = len(items)
        if self.level_kind[depth] == -1:
            self.level_kind[depth] = kind
            self.level_len[depth] = <int32_t>n
        elif self.level_kind[depth] != kind or self.level_len[depth] != n:
            self.error("inconsistent sub-array dimensions")
        return items

    cdef object parse_element(self):
        cdef Py_ssize_t out = 0
        cdef Py_ssize_t keep = 0      # length up to the last character that must be kept
        cdef bint escaped = False
        cdef char c
        cdef FRBuffer ebuf
        if self.peek() == b'"':
            self.pos += 1
            while True:
                if self.pos >= self.n:
                    self.error("unterminated quoted element")
                c = self.s[self.pos]
                self.pos += 1
                if c == b'"':
                    break
                if c == b'\\':
                    if self.pos >= self.n:
                        self.error("unexpected end of input after '\\'")
                    c = self.s[self.pos]
                    self.pos += 1
                self.scratch[out] = c
                out += 1
            keep = out
        else:
            while self.pos < self.n:
                c = self.s[self.pos]
                if c == self.delim or c == b'}':
                    break
                if c == b'{' or c == b'"':
                    self.error(f"unexpected character {chr(<unsigned char>c)!r}")
                self.pos += 1
                if c == b'\\':
                    if self.pos >= self.n:
                        self.error("unexpected end of input after '\\'")
                    c = self.s[self.pos]
                    self.pos += 1
                    escaped = True
                    self.scratch[out] = c
                    out += 1
                    keep = out
                    continue
                self.scratch[out] = c
                out += 1
                if not _array_isspace(c):
                    keep = out
            if keep == 0 and not escaped:
                self.error("empty element")
            if (not escaped and keep == 4 and (self.scratch[0] | 0x20) == b'n'
                    and (self.scratch[1] | 0x20) == b'u' and (self.scratch[2] | 0x20) == b'l'
                    and (self.scratch[3] | 0x20) == b'l'):
                return None
        frb_init(&ebuf, self.scratch, keep)
        return _decode_text_element(self.elem, self.ctx, &ebuf)


cdef object _decode_text_element(Codec elem, CodecContext ctx, FRBuffer* ebuf):
    cdef object value
    if elem.method == METHOD_C and elem.c_decoder is not NULL:
        value = elem.c_decoder(ctx, ebuf)
    else:
        value = elem.decode(ctx, ebuf)
    if ebuf.len != 0:
        raise _DecodeError(f"malformed {elem.name} value: {ebuf.len} unexpected trailing bytes")
    return value


cdef object _text_array_decode(Codec codec, CodecContext ctx, FRBuffer* buf):
    cdef _TextArrayParser p = _TextArrayParser.__new__(_TextArrayParser)
    cdef int32_t dims[ARRAY_MAXDIM]
    cdef int ndims = 0, i
    cdef Py_ssize_t n = buf.len
    p.s = frb_read_all(buf)
    p.n = n
    p.pos = 0
    p.delim = codec.element_delimiter
    p.elem = codec.element_codec
    p.ctx = ctx
    p.max_depth = 0
    for i in range(ARRAY_MAXDIM):
        p.level_kind[i] = -1
        p.level_len[i] = 0
    p.scratch = <char*>PyMem_Malloc(<size_t>(n + 1))
    if p.scratch is NULL:
        raise MemoryError()
    p.parse_bounds(dims, &ndims)
    p.skip_space()
    if p.peek() != b'{':
        p.error("expected '{'")
    p.pos += 1
    result = p.parse_level(0)
    p.skip_space()
    if p.pos != p.n:
        p.error("junk after closing '}'")
    if ndims:
        # Explicit bounds must describe the content exactly.
        if ndims != p.max_depth and not (p.max_depth == 1 and p.level_len[0] == 0):
            p.error("specified array dimensions do not match array content")
        for i in range(ndims):
            if i < p.max_depth and dims[i] != p.level_len[i]:
                p.error("specified array dimensions do not match array content")
    return result


# -- composite types ------------------------------------------------------------------
#
# record_send: int32 attribute count, then per attribute uint32 type OID,
# int32 length (-1 = NULL) and bytes.

cdef object _composite_decode(Codec codec, CodecContext ctx, FRBuffer* buf):
    cdef tuple codecs = codec.element_codecs
    cdef tuple type_oids = codec.element_type_oids
    cdef Py_ssize_t i, n = len(codecs)
    cdef int64_t count = <uint32_t>hton.unpack_int32(frb_read(buf, 4))
    cdef uint32_t typ, expected
    if count != n:
        raise SchemaMismatchError(
            f"unexpected number of attributes of composite type {codec.name}: {count}, "
            f"expected {n}",
            schema=codec.schema, data_type=codec.name)
    rec = record_new(Record, <RecordDescriptor>codec.record_desc, n)
    for i in range(n):
        typ = <uint32_t>hton.unpack_int32(frb_read(buf, 4))
        expected = <uint32_t>type_oids[i]
        if typ != expected:
            raise SchemaMismatchError(
                f"unexpected data type of attribute {i} of composite type {codec.name}: "
                f"{_oids.TYPE_NAMES.get(typ, typ)!r}, "
                f"expected {_oids.TYPE_NAMES.get(expected, expected)!r}",
                schema=codec.schema, data_type=codec.name, position=i)
        record_set_item(rec, i, _decode_value(<Codec>codecs[i], ctx, buf))
    return record_done(rec)


cdef int _composite_encode(Codec codec, CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef tuple codecs = codec.element_codecs
    cdef tuple type_oids = codec.element_type_oids
    cdef Py_ssize_t i, n = len(codecs)
    cdef Py_ssize_t start = buf.length()
    cdef Py_ssize_t slot
    cdef list values
    if isinstance(obj, _Mapping):
        values = [None] * n
        for key in obj:
            pos = (<dict>codec.element_names).get(key)
            if pos is None:
                raise ValueError(f"{key!r} is not a valid element of composite type {codec.name}")
            values[pos] = obj[key]
    elif (_is_trivial_container(obj) or not isinstance(obj, _Iterable)
            or not isinstance(obj, _Sized)):
        raise TypeError(f"expected a tuple or a mapping for composite type {codec.name}, "
                        f"got {type(obj).__name__}")
    else:
        values = list(obj)
        if len(values) != n:
            raise CompositeSizeError(
                f"composite type {codec.name} has {n} attributes, got {len(values)} values",
                expected=n, got=len(values))
    try:
        slot = buf.reserve_int32()
        buf.write_int32(<int32_t>n)
        for i in range(n):
            buf.write_uint32(<uint32_t>type_oids[i])
            _encode_value(<Codec>codecs[i], ctx, buf, values[i])
        buf.end_len_prefixed(slot)
    except BaseException:
        buf.truncate(start)
        raise
    return 0


# The anonymous "record" type: every attribute carries its type OID, looked
# up in the registry at decode time. Decodes to a tuple, like asyncpg.

cdef object _anon_record_decode(CodecContext ctx, FRBuffer* buf):
    cdef int64_t count = <uint32_t>hton.unpack_int32(frb_read(buf, 4))
    cdef Py_ssize_t i
    cdef uint32_t typ
    cdef int32_t n
    cdef FRBuffer vbuf
    cdef CodecRegistry registry
    cdef Codec elem
    cdef tuple result
    # Each attribute takes at least 8 bytes (type OID and length).
    if count > buf.len // 8:
        raise _DecodeError(
            f"malformed record: {count} attributes claimed but only {buf.len} bytes follow")
    registry = _registry_of(ctx)
    result = PyTuple_New(count)
    for i in range(count):
        Py_INCREF(None)
        PyTuple_SET_ITEM(result, i, None)
    for i in range(count):
        typ = <uint32_t>hton.unpack_int32(frb_read(buf, 4))
        n = hton.unpack_int32(frb_read(buf, 4))
        if n == -1:
            continue
        if n < 0:
            raise _DecodeError(f"malformed value: negative length {n}")
        frb_slice_from(&vbuf, buf, n)
        # Like asyncpg: the type's codec in whichever format it has (the
        # text codecs of unknown, enums and the like read the binary form).
        elem = registry.lookup(typ, PG_FORMAT_ANY)
        if elem is None or not elem.c_has_decoder():
            raise UnsupportedCodecError(
                f"no decoder for type OID {typ} of attribute {i} of a record value")
        value = elem.decode(registry, &vbuf)
        if vbuf.len != 0:
            raise _DecodeError(f"malformed {elem.name} value: {vbuf.len} unexpected trailing bytes")
        Py_INCREF(value)
        Py_DECREF(<object>PyTuple_GET_ITEM(result, i))
        PyTuple_SET_ITEM(result, i, value)
    return result


cdef int _anon_record_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1:
    raise UnsupportedCodecError(
        "input of anonymous composite types is not supported; cast the parameter "
        "to a declared composite type instead")


# -- ranges and multiranges ------------------------------------------------------------
#
# range_send: uint8 flags, then the lower bound and the upper bound (each an
# int32 length and bytes) when present.

cdef object _range_class = None


cdef object _get_range_class():
    global _range_class
    if _range_class is None:
        from pg_codecs.types import Range
        _range_class = Range
    return _range_class


# The member descriptors of Range's slots, in the order _new_range() fills
# them; () if Range's slots are not plain member descriptors (then Range is
# called instead).
cdef tuple _range_slots = None
_RANGE_SLOT_NAMES = ("_lower", "_upper", "_lower_inc", "_upper_inc", "_empty")


cdef object _new_range(object lower, object upper, bint lower_inc, bint upper_inc,
                       bint empty):
    # Range(lower, upper, lower_inc=..., upper_inc=..., empty=...) without a
    # Python-level call: a bare instance whose five slots are filled as
    # Range.__init__ fills them (test_types checks that they agree).
    global _range_slots
    cls = _get_range_class()
    if _range_slots is None:
        import types as pytypes
        slots = tuple(cls.__dict__.get(n) for n in _RANGE_SLOT_NAMES)
        plain = all(type(d) is pytypes.MemberDescriptorType for d in slots)
        _range_slots = slots if plain else ()
    if not _range_slots:
        return cls(lower, upper, lower_inc=lower_inc, upper_inc=upper_inc, empty=empty)
    if empty:
        lower = upper = None
        lower_inc = upper_inc = False
    else:
        lower_inc = lower_inc and lower is not None
        upper_inc = upper_inc and upper is not None
    obj = __pg_alloc_instance(cls)
    __pg_descr_set(_range_slots[0], obj, lower)
    __pg_descr_set(_range_slots[1], obj, upper)
    __pg_descr_set(_range_slots[2], obj, True if lower_inc else False)
    __pg_descr_set(_range_slots[3], obj, True if upper_inc else False)
    __pg_descr_set(_range_slots[4], obj, True if empty else False)
    return obj


cdef object _range_decode(Codec codec, CodecContext ctx, FRBuffer* buf):
    cdef uint8_t flags = <uint8_t>frb_read(buf, 1)[0]
    cdef Codec elem = codec.element_codec
    lower = upper = None
    if not (flags & (RANGE_EMPTY | RANGE_LB_INF)):
        lower = _decode_value(elem, ctx, buf)
    if not (flags & (RANGE_EMPTY | RANGE_UB_INF)):
        upper = _decode_value(elem, ctx, buf)
    return _new_range(lower, upper, (flags & RANGE_LB_INC) != 0,
                      (flags & RANGE_UB_INC) != 0, (flags & RANGE_EMPTY) != 0)


cdef int _range_encode(Codec codec, CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef uint8_t flags = 0
    cdef Py_ssize_t n
    cdef Py_ssize_t start = buf.length()
    cdef Py_ssize_t slot
    cdef Codec elem = codec.element_codec
    lower = upper = None
    if PyTuple_Check(obj) or isinstance(obj, list):
        n = len(obj)
        if n == 2:
            lower = obj[0]
            upper = obj[1]
            flags |= RANGE_LB_INC | RANGE_UB_INC
            if lower is None:
                flags |= RANGE_LB_INF
            if upper is None:
                flags |= RANGE_UB_INF
        elif n == 1:
            lower = obj[0]
            flags |= RANGE_LB_INC | RANGE_UB_INF
        elif n == 0:
            flags |= RANGE_EMPTY
        else:
            raise ValueError(f"expected 0, 1 or 2 elements in range (got {n})")
    elif isinstance(obj, _get_range_class()):
        if obj.isempty:
            flags |= RANGE_EMPTY
        else:
            lower = obj.lower
            upper = obj.upper
            if obj.lower_inc:
                flags |= RANGE_LB_INC
            elif lower is None:
                flags |= RANGE_LB_INF
            if obj.upper_inc:
                flags |= RANGE_UB_INC
            elif upper is None:
                flags |= RANGE_UB_INF
    else:
        raise TypeError(f"list, tuple or Range object expected (got type {type(obj).__name__})")
    try:
        slot = buf.reserve_int32()
        buf.write_byte(<char>flags)
        if not (flags & (RANGE_EMPTY | RANGE_LB_INF)):
            _encode_value(elem, ctx, buf, lower)
        if not (flags & (RANGE_EMPTY | RANGE_UB_INF)):
            _encode_value(elem, ctx, buf, upper)
        buf.end_len_prefixed(slot)
    except BaseException:
        buf.truncate(start)
        raise
    return 0


cdef object _multirange_decode(Codec codec, CodecContext ctx, FRBuffer* buf):
    cdef int32_t count = hton.unpack_int32(frb_read(buf, 4))
    cdef int32_t n
    cdef FRBuffer rbuf
    cdef list result
    if count < 0 or count > buf.len // 5:
        # Each range takes at least 5 bytes (length and flags).
        raise _DecodeError(
            f"malformed multirange: {count} ranges claimed but only {buf.len} bytes follow")
    result = []
    for _ in range(count):
        n = hton.unpack_int32(frb_read(buf, 4))
        if n < 0:
            raise _DecodeError(f"malformed multirange: invalid range length {n}")
        frb_slice_from(&rbuf, buf, n)
        result.append(_range_decode(codec, ctx, &rbuf))
        if rbuf.len != 0:
            raise _DecodeError(
                f"malformed multirange: {rbuf.len} unexpected trailing bytes in a range")
    return result


cdef int _multirange_encode(Codec codec, CodecContext ctx, WriteBuffer buf, object obj) except -1:
    cdef Py_ssize_t start = buf.length()
    cdef Py_ssize_t slot
    cdef Py_ssize_t count = 0
    if _is_trivial_container(obj) or not _is_array_like(obj):
        raise TypeError(f"expected a sequence of ranges (got type {type(obj).__name__!r})")
    if len(obj) > INT32_MAX:
        raise OverflowError("too many elements in multirange value")
    try:
        slot = buf.reserve_int32()
        buf.write_int32(<int32_t>len(obj))
        for item in obj:
            if item is None:
                raise ValueError("a multirange cannot contain NULL ranges")
            _range_encode(codec, ctx, buf, item)
            count += 1
        if count != len(obj):
            raise ValueError("the multirange changed size while encoding")
        buf.end_len_prefixed(slot)
    except BaseException:
        buf.truncate(start)
        raise
    return 0


# -- the registry ------------------------------------------------------------------------

cdef int _parse_format(object format) except -2:
    if format is None:
        return PG_FORMAT_ANY
    if format == "binary" or format == PG_FORMAT_BINARY:
        return PG_FORMAT_BINARY
    if format == "text" or format == PG_FORMAT_TEXT:
        return PG_FORMAT_TEXT
    raise ValueError(f"invalid format {format!r}: expected 'binary', 'text' or None")


cdef str _as_str(object v):
    if v is None:
        return None
    if isinstance(v, bytes):
        return (<bytes>v).decode("utf-8")
    return str(v)


cdef object _ti_field(object ti, str name):
    try:
        return ti[name]
    except (KeyError, IndexError):
        return None


cdef dict _normalize_type(object ti):
    # One row of the introspection query; see CodecRegistry.add_types().
    def field(name):
        return _ti_field(ti, name)
    oid = int(field("oid"))
    schema = field("ns")
    if schema is None:
        schema = field("schema")
    kind = _as_str(field("kind")) or "b"
    delim = _as_str(field("elemdelim")) or ","
    attrtypoids = field("attrtypoids")
    attrnames = field("attrnames")
    return {
        "oid": oid,
        "name": _as_str(field("name")) or str(oid),
        "schema": _as_str(schema) or "",
        "kind": kind[:1],
        "basetype": int(field("basetype") or 0),
        "elemtype": int(field("elemtype") or 0),
        "elemdelim": delim[:1],
        "range_subtype": int(field("range_subtype") or 0),
        "attrtypoids": tuple(int(o) for o in attrtypoids) if attrtypoids else None,
        "attrnames": tuple(_as_str(a) for a in attrnames) if attrnames else None,
        "elemtype_name": _as_str(field("elemtype_name")),
        "basetype_name": _as_str(field("basetype_name")),
        "range_subtype_name": _as_str(field("range_subtype_name")),
    }


cdef class CodecRegistry(CodecContext):
    """The codecs of one connection.

    Starts with every built-in codec; learns the server's other types from
    ``add_types()`` and the user's codecs from ``set_type_codec()`` and
    ``set_builtin_type_codec()``. It is also the context its codecs are
    called with.
    """

    def __init__(self):
        self.registry = None
        self._custom = {}
        self._derived = {}
        self._types = {}
        self._depth = 0

    # -- lookups ------------------------------------------------------------------------

    cdef Codec lookup(self, uint32_t oid, int format, bint ignore_custom=False):
        cdef Codec codec
        if format == PG_FORMAT_ANY:
            codec = self.lookup(oid, PG_FORMAT_BINARY, ignore_custom)
            if codec is None:
                codec = self.lookup(oid, PG_FORMAT_TEXT, ignore_custom)
            return codec
        if not ignore_custom and self._custom:
            codec = self._custom.get((oid, format))
            if codec is not None:
                return codec
            other = PG_FORMAT_BINARY if format == PG_FORMAT_TEXT else PG_FORMAT_TEXT
            if (oid, other) in self._custom:
                # The user chose the other format for this type: respect it
                # rather than falling back to a core codec.
                return None
        codec = _get_core_codec(oid, format)
        if codec is not None:
            return codec
        codec = self._derived.get(oid)
        if codec is None:
            codec = self._derive(oid)
            if codec is None:
                return None
        return codec if codec.format == format else None

    def get_codec(self, oid, format=None, *, ignore_custom_codec=False):
        """Return the codec for type *oid*, or None if there is none yet.

        :param oid: Type OID.
        :param format: ``'binary'``, ``'text'``, or None for the binary codec
            when there is one and else the text one (the format a column or
            parameter of this type should use).
        :param ignore_custom_codec: Skip codecs set with ``set_type_codec()``
            (for the client's own introspection queries).
        """
        return self.lookup(oid, _parse_format(format), ignore_custom_codec)

    def unknown_oids(self, oids):
        """Return the OIDs among *oids* that have no codec yet, in order, once each.

        These are the types to look up in the server's catalog before
        planning (then pass the rows to ``add_types()``).
        """
        seen = set()
        result = []
        for oid in oids:
            if oid in seen:
                continue
            seen.add(oid)
            if self.lookup(oid, PG_FORMAT_ANY) is None:
                result.append(oid)
        return result

    def type_info(self, oid):
        """Return the description added for *oid* by ``add_types()`` (a dict), or None."""
        info = self._types.get(oid)
        return dict(info) if info is not None else None

    # -- what the server's catalog says ------------------------------------------------

    def add_types(self, types):
        """Describe types found in the server's catalog, so that codecs can be built for them.

        Each item is a mapping (a Record of the introspection query, or a
        dict) with these keys; missing keys count as NULL:

        ``oid``
            The type's OID.
        ``ns`` (or ``schema``), ``name``
            Its schema and ``pg_type.typname``.
        ``kind``
            ``pg_type.typtype`` as ``str`` or ``bytes``: ``b`` base, ``c``
            composite, ``d`` domain, ``e`` enum, ``r`` range, ``m``
            multirange, ``p`` pseudo.
        ``elemtype``
            ``pg_type.typelem``: non-zero makes it an array of that type.
        ``elemdelim``
            The element type's ``typdelim`` (``str`` or ``bytes``), used by
            text arrays; ``,`` when NULL.
        ``basetype``
            For a domain, the OID of its (ultimate) base type.
        ``range_subtype``
            For a range or multirange, ``pg_range.rngsubtype``.
        ``attrtypoids``, ``attrnames``
            For a composite, its attribute types and names in order
            (dropped attributes left out).

        The rows of asyncpg's introspection query have exactly these keys.
        Codecs are built when first needed; a type whose element or base
        type is still unknown falls back to text then.
        """
        for ti in types:
            info = _normalize_type(ti)
            self._types[info["oid"]] = info
        self._derived.clear()

    cdef Codec _derive(self, uint32_t oid):
        cdef Codec codec = None
        cdef dict info = self._types.get(oid)
        if self._depth > 32:
            raise UnsupportedCodecError(f"type OID {oid} is nested too deeply")
        self._depth += 1
        try:
            if info is not None:
                codec = self._build(info)
            elif oid in _oids.ARRAY_ELEMENT_TYPES:
                codec = self._build({
                    "oid": oid, "name": _oids.TYPE_NAMES[oid], "schema": "pg_catalog", "kind": "b",
                    "elemtype": _oids.ARRAY_ELEMENT_TYPES[oid],
                    "elemdelim": _oids.ARRAY_DELIMITERS.get(oid, ","),
                    "basetype": 0, "range_subtype": 0, "attrtypoids": None, "attrnames": None,
                })
            elif oid in _oids.RANGE_SUBTYPES or oid in _oids.MULTIRANGE_SUBTYPES:
                multi = oid in _oids.MULTIRANGE_SUBTYPES
                codec = self._build({
                    "oid": oid, "name": _oids.TYPE_NAMES[oid], "schema": "pg_catalog",
                    "kind": "m" if multi else "r", "elemtype": 0, "elemdelim": ",", "basetype": 0,
                    "range_subtype": (_oids.MULTIRANGE_SUBTYPES if multi
                                      else _oids.RANGE_SUBTYPES)[oid],
                    "attrtypoids": None, "attrnames": None,
                })
        finally:
            self._depth -= 1
        if codec is not None:
            self._derived[oid] = codec
        return codec

    cdef Codec _element(self, uint32_t oid, object name, str schema):
        cdef Codec codec = self.lookup(oid, PG_FORMAT_ANY)
        if codec is None:
            codec = self._fallback(oid, name or str(oid), schema)
        return codec

    cdef Codec _fallback(self, uint32_t oid, str name, str schema):
        # A type nothing is known about travels as text and arrives as str.
        cdef Codec codec = _new_codec(oid, name, schema, "scalar", METHOD_C, PG_FORMAT_TEXT)
        codec.c_encoder = text_encode
        codec.c_decoder = text_decode
        self._derived[oid] = codec
        return codec

    cdef Codec _build(self, dict info):
        cdef uint32_t oid = info["oid"]
        cdef str name = info["name"]
        cdef str schema = info["schema"]
        cdef str kind = info["kind"]
        cdef Codec elem, codec
        cdef list elem_codecs
        if info["elemtype"]:
            elem = self._element(info["elemtype"], info.get("elemtype_name"), schema)
            if name.startswith("_"):
                name = name[1:]
            name = name + "[]"
            if elem.format == PG_FORMAT_BINARY:
                codec = _new_codec(oid, name, schema, "array", METHOD_ARRAY, PG_FORMAT_BINARY)
            else:
                codec = _new_codec(oid, name, schema, "array", METHOD_TEXT_ARRAY, PG_FORMAT_TEXT)
            codec.element_codec = elem
            codec.element_oid = info["elemtype"]
            delim = info["elemdelim"] or ","
            codec.element_delimiter = ord(delim[0]) if ord(delim[0]) < 128 else b','
            return codec
        if kind == "c":
            attrtypoids = info["attrtypoids"] or ()
            attrnames = info["attrnames"] or ()
            if len(attrtypoids) != len(attrnames):
                raise UnsupportedCodecError(
                    f"type description of composite {schema}.{name} has "
                    f"{len(attrtypoids)} attribute types but {len(attrnames)} names")
            elem_codecs = []
            for typoid in attrtypoids:
                elem = self._element(typoid, None, schema)
                if elem.format != PG_FORMAT_BINARY:
                    raise UnsupportedCodecError(
                        f'cannot decode type "{schema}"."{name}": text encoding of '
                        f'composite types is not supported (attribute type {elem.name})')
                elem_codecs.append(elem)
            codec = _new_codec(oid, name, schema, "composite", METHOD_COMPOSITE, PG_FORMAT_BINARY)
            codec.element_codecs = tuple(elem_codecs)
            codec.element_type_oids = tuple(attrtypoids)
            codec.element_names = {n: i for i, n in enumerate(attrnames)}
            codec.record_desc = RecordDescriptor(attrnames)
            return codec
        if kind == "d":
            if not info["basetype"]:
                raise UnsupportedCodecError(
                    f"type description of domain {schema}.{name} has no base type")
            # A domain travels exactly like its base type.
            return self._element(info["basetype"], info.get("basetype_name"), schema)
        if kind == "r" or kind == "m":
            if not info["range_subtype"]:
                raise UnsupportedCodecError(
                    f"type description of range {schema}.{name} has no subtype")
            elem = self._element(info["range_subtype"], info.get("range_subtype_name"), schema)
            if elem.format != PG_FORMAT_BINARY:
                raise UnsupportedCodecError(
                    f'cannot decode type "{schema}"."{name}": text encoding of '
                    f'range types is not supported (subtype {elem.name})')
            codec = _new_codec(oid, name, schema, "range" if kind == "r" else "multirange",
                               METHOD_RANGE if kind == "r" else METHOD_MULTIRANGE, PG_FORMAT_BINARY)
            codec.element_codec = elem
            codec.element_oid = info["range_subtype"]
            return codec
        if kind == "e":
            # Enum labels are text in both formats (enum_send sends the label).
            codec = _new_codec(oid, name, schema, "scalar", METHOD_C, PG_FORMAT_BINARY)
            codec.c_encoder = text_encode
            codec.c_decoder = text_decode
            return codec
        return self._fallback(oid, name, schema)

    def declare_fallback_codec(self, oid, name, schema):
        """Make type *oid* travel as text, decoded to ``str``; return its codec.

        What the client should do for a type it could not describe.
        """
        return self._fallback(oid, name, schema)

    def clear_type_cache(self):
        """Forget every type description and every codec built from them.

        For after a schema change (asyncpg's ``reload_schema_state()``).
        Codecs set with ``set_type_codec()`` stay.
        """
        self._types.clear()
        self._derived.clear()

    # -- user codecs ----------------------------------------------------------------------

    def set_type_codec(self, oid, name, schema, kind, encoder, decoder, format="text",
                       typeinfos=()):
        """Use Python callables to encode and decode type *oid* (asyncpg's set_type_codec).

        :param oid: The type's OID.
        :param name: Its name (for messages and Codec.name).
        :param schema: Its schema.
        :param kind: ``'scalar'`` or ``'composite'``.
        :param encoder: Callable from a Python object to the exchange form.
        :param decoder: Callable from the exchange form to a Python object.
        :param format: ``'text'``: the callables exchange ``str``;
            ``'binary'``: ``bytes`` (the encoder may return any bytes-like
            object); ``'tuple'``: the type's tuple form (the core codec's for
            a scalar type such as interval or timestamp; a Record of the
            attributes for a composite, from which a tuple or mapping is
            accepted back).
        :param typeinfos: Type descriptions to add first (``add_types()``),
            e.g. those of a composite and its attribute types.
        :raises UnsupportedCodecError: If the type has no tuple form.
        """
        cdef uint32_t coid = oid
        cdef Codec core, base, codec
        cdef int fmt
        cdef bint done = False
        if kind not in ("scalar", "composite"):
            raise UnsupportedCodecError(
                f"cannot use custom codec on type {schema}.{name}: it is neither a scalar type "
                f"nor a composite type")
        if kind == "composite" and format != "tuple":
            raise UnsupportedCodecError("only tuple-format codecs can be used on composite types")
        self.reset_type_codec(coid)
        if typeinfos:
            self.add_types(typeinfos)
        if format == "tuple":
            for fmt in (PG_FORMAT_BINARY, PG_FORMAT_TEXT):
                core = base = None
                if kind == "scalar":
                    core = _get_core_codec(coid, fmt, PG_XFORMAT_TUPLE)
                    if core is None:
                        continue
                else:
                    base = self.lookup(coid, fmt, True)
                    if base is None:
                        continue
                codec = _new_codec(coid, name, schema, kind, METHOD_PY, fmt)
                codec.xformat = PG_XFORMAT_TUPLE
                if core is not None:
                    codec.c_encoder = core.c_encoder
                    codec.c_decoder = core.c_decoder
                codec.base_codec = base
                codec.py_encoder = encoder
                codec.py_decoder = decoder
                self._custom[(coid, fmt)] = codec
                done = True
            if not done:
                raise UnsupportedCodecError(
                    f"{name} type does not support the 'tuple' exchange format")
        else:
            fmt = _parse_format(format)
            if fmt == PG_FORMAT_ANY:
                raise ValueError(f"invalid format {format!r}: expected 'text', 'binary' or 'tuple'")
            codec = _new_codec(coid, name, schema, kind, METHOD_PY, fmt)
            codec.py_encoder = encoder
            codec.py_decoder = decoder
            self._custom[(coid, fmt)] = codec
        self._derived.clear()

    def set_builtin_type_codec(self, oid, name, schema, codec_name, format=None):
        """Make type *oid* use a built-in codec (asyncpg's set_builtin_type_codec).

        :param oid: The type's OID (e.g. of an extension type).
        :param name: Its name.
        :param schema: Its schema.
        :param codec_name: A built-in type name (``'int4'``, ``'integer'``,
            ``'text'``...), a type OID, or the name of an extension codec
            such as ``'pg_contrib.hstore'``.
        :param format: ``'binary'``, ``'text'``, or None for every format the
            target has.
        :raises UnsupportedCodecError: If there is no such codec.
        """
        cdef uint32_t coid = oid
        cdef uint32_t alias_oid = 0
        cdef int fmt = _parse_format(format)
        cdef Codec target
        cdef bint done = False
        if isinstance(codec_name, int):
            alias_oid = codec_name
        else:
            alias_oid = (_oids.SQL_TYPE_ALIASES.get(codec_name)
                         or _oids.TYPE_OIDS.get(codec_name) or 0)
        if fmt == PG_FORMAT_ANY:
            formats = (<int>PG_FORMAT_BINARY, <int>PG_FORMAT_TEXT)
        else:
            formats = (fmt,)
        self.reset_type_codec(coid)
        for f in formats:
            if alias_oid:
                target = self.lookup(alias_oid, f)
            else:
                target = _extra_codecs.get((codec_name, f))
            if target is None:
                continue
            self._custom[(coid, f)] = target.copy_as(coid, name, schema, "scalar")
            done = True
        if not done:
            what = {PG_FORMAT_BINARY: "binary", PG_FORMAT_TEXT: "text"}.get(fmt, "text or binary")
            raise UnsupportedCodecError(
                f"cannot alias {name} to {codec_name}: there is no {what} codec for {codec_name}")
        self._derived.clear()

    def reset_type_codec(self, oid):
        """Forget the codec set for *oid* with set_type_codec or set_builtin_type_codec."""
        self._custom.pop((oid, PG_FORMAT_BINARY), None)
        self._custom.pop((oid, PG_FORMAT_TEXT), None)
        self._derived.clear()

    # -- planning -----------------------------------------------------------------------

    cdef Codec _plan_codec(self, uint32_t oid, bint ignore_custom, bint decoding):
        cdef Codec codec = self.lookup(oid, PG_FORMAT_ANY, ignore_custom)
        if codec is None:
            codec = self._fallback(oid, _oids.TYPE_NAMES.get(oid, str(oid)), "")
        return codec

    def plan_row_decoder(self, oids, names, record_class=Record, *, ignore_custom_codec=False):
        """Plan a RowDecoder for columns of types *oids* named *names*.

        Types without a codec (call ``unknown_oids()`` and ``add_types()``
        first) fall back to text. The columns' formats, to request in Bind,
        are in ``RowDecoder.result_formats``.

        :param record_class: Record, a subclass, or None for plain tuples.
        """
        codecs = [self._plan_codec(oid, ignore_custom_codec, True) for oid in oids]
        return RowDecoder(codecs, names, record_class, self)

    def plan_param_encoder(self, oids, *, ignore_custom_codec=False):
        """Plan a ParamEncoder for parameters of types *oids* (from ParameterDescription)."""
        codecs = [self._plan_codec(oid, ignore_custom_codec, False) for oid in oids]
        return ParamEncoder(codecs, self)

    # -- one value, for tests and for Python callers ----------------------------------

    def encode(self, oid, value, format=None):
        """Encode one value of type *oid*; return its bytes (without length prefix).

        :raises LookupError: If there is no codec for *oid* in *format*.
        """
        cdef Codec codec = self.lookup(oid, _parse_format(format))
        cdef WriteBuffer buf = WriteBuffer.new()
        if codec is None:
            raise LookupError(f"no codec for type OID {oid}")
        _encode_value(codec, self, buf, value)
        data = buf.to_bytes()
        if value is None:
            return None
        if hton.unpack_int32(PyBytes_AS_STRING(data)) != len(data) - 4:
            raise AssertionError(f"{codec.name} encoder wrote a wrong length prefix")
        return data[4:]

    def decode(self, oid, data, format=None):
        """Decode one value of type *oid* from *data* (its bytes, without length prefix).

        :raises LookupError: If there is no codec for *oid* in *format*.
        :raises DecodeError: If *data* is not a valid value.
        """
        cdef Codec codec = self.lookup(oid, _parse_format(format))
        cdef FRBuffer frb
        cdef bytes b
        if codec is None:
            raise LookupError(f"no codec for type OID {oid}")
        if data is None:
            return None
        b = bytes(data)
        frb_init(&frb, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
        value = codec.decode(self, &frb)
        if frb.len != 0:
            raise _DecodeError(f"malformed {codec.name} value: {frb.len} unexpected trailing bytes")
        return value


cdef CodecRegistry _DEFAULT = None


cdef CodecRegistry _default_registry():
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = CodecRegistry()
    return _DEFAULT


# -- rows -------------------------------------------------------------------------------

cdef object _decode_with_codec(Codec codec, CodecContext ctx, FRBuffer* buf):
    return codec.decode(ctx, buf)


cdef int _reraise() except -1:
    # Called with an exception already set: lets a try/except below see it.
    return -1


cdef class RowDecoder:
    """Decodes DataRow payloads of one result shape into Records (or tuples).

    :param codecs: The column codecs, in order (see
        ``CodecRegistry.plan_row_decoder()``).
    :param names: The column names (strings), or a RecordDescriptor.
    :param record_class: Record, a subclass of it, or None for tuples.
    :param context: The CodecContext passed to the codecs (the registry).
    """

    def __cinit__(self, *args, **kwargs):
        # Accepts anything, so that a subclass may have its own constructor.
        self._funcs = NULL
        self._codec_ptrs = NULL
        self._ncols = 0

    def __init__(self, codecs, names, record_class=Record, CodecContext context=None):
        cdef Py_ssize_t i, n
        cdef Codec codec
        cdef tuple cs = tuple(codecs)
        n = len(cs)
        if n > INT16_MAX:
            raise ValueError(f"too many columns: {n}")
        for i in range(n):
            codec = cs[i]
            if not codec.c_has_decoder():
                raise UnsupportedCodecError(f"no decoder for type {codec.name} (OID {codec.oid})")
        if isinstance(names, RecordDescriptor):
            desc = names
        else:
            desc = RecordDescriptor(names)
        if len((<RecordDescriptor>desc).names) != n:
            raise ValueError(
                f"{n} column codecs but {len((<RecordDescriptor>desc).names)} column names")
        if record_class is not None:
            check_record_class(record_class)
        self._free()
        self._funcs = <decode_func*>PyMem_Malloc(<size_t>(n + 1) * sizeof(decode_func))
        self._codec_ptrs = <PyObject**>PyMem_Malloc(<size_t>(n + 1) * sizeof(PyObject*))
        if self._funcs is NULL or self._codec_ptrs is NULL:
            self._free()
            raise MemoryError()
        self._all_binary = True
        for i in range(n):
            codec = cs[i]
            self._codec_ptrs[i] = <PyObject*>codec
            self._funcs[i] = codec.c_decoder if codec.method == METHOD_C else NULL
            if codec.format != PG_FORMAT_BINARY:
                self._all_binary = False
        self._codecs = cs
        self._ncols = n
        self._desc = <RecordDescriptor>desc
        self._record_class = record_class
        self._ctx = context if context is not None else _default_registry()

    def __dealloc__(self):
        self._free()

    cdef void _free(self) noexcept:
        if self._funcs is not NULL:
            PyMem_Free(self._funcs)
            self._funcs = NULL
        if self._codec_ptrs is not NULL:
            PyMem_Free(self._codec_ptrs)
            self._codec_ptrs = NULL

    @property
    def codecs(self):
        """The column codecs."""
        return self._codecs

    @property
    def names(self):
        """The column names."""
        return self._desc.names

    @property
    def descriptor(self):
        """The RecordDescriptor shared by the decoded records."""
        return self._desc

    @property
    def record_class(self):
        """The class of the decoded rows (None: tuples)."""
        return self._record_class

    @property
    def result_formats(self):
        """The format code (0 text, 1 binary) to request for each column in Bind."""
        return tuple([(<Codec>c).format for c in self._codecs])

    cdef int write_result_formats(self, WriteBuffer buf) except -1:
        cdef Py_ssize_t i
        if self._all_binary:
            # One code for all columns (also right for zero columns).
            buf.write_int16(1)
            return buf.write_int16(PG_FORMAT_BINARY)
        buf.write_int16(<int16_t>self._ncols)
        for i in range(self._ncols):
            buf.write_int16(<int16_t>(<Codec>self._codec_ptrs[i]).format)
        return 0

    def write_result_formats_to(self, WriteBuffer buf):
        """Write the Bind message's result-column format codes into *buf*."""
        self.write_result_formats(buf)

    cdef object decode_row(self, const char* data, Py_ssize_t length):
        cdef FRBuffer rbuf
        cdef FRBuffer vbuf
        cdef Py_ssize_t i, n = self._ncols
        cdef int32_t flen
        cdef int16_t fcount
        cdef PyObject* value
        cdef PyObject** slots
        cdef decode_func f
        cdef CodecContext ctx = self._ctx
        cdef object row
        cdef bint as_tuple = self._record_class is None
        frb_init(&rbuf, data, length)
        if length < 2:
            raise _RowFormatError(
                f"malformed DataRow: needs 2 more bytes but only {length} remain")
        fcount = hton.unpack_int16(frb_read(&rbuf, 2))
        if fcount != n:
            raise _RowFormatError(
                f"the number of columns in the result row ({fcount}) is different "
                f"from what was described ({n})")
        if as_tuple:
            row = PyTuple_New(n)
        else:
            row = record_new(self._record_class, self._desc, n)
        for i in range(n):
            if rbuf.len < 4:
                raise _RowFormatError(
                    f"malformed DataRow: it ends before the length of {self._column_text(i)}")
            flen = hton.unpack_int32(frb_read(&rbuf, 4))
            if flen == -1:
                value = <PyObject*>None
                Py_INCREF(None)
            else:
                if flen < 0 or flen > rbuf.len:
                    self._raise_bad_length(i, flen, rbuf.len)
                vbuf.buf = rbuf.buf
                vbuf.len = flen
                rbuf.buf += flen
                rbuf.len -= flen
                f = self._funcs[i]
                if f is not NULL:
                    value = (<raw_decode_func>f)(ctx, &vbuf)
                else:
                    value = (<raw_codec_decode_func><void*>_decode_with_codec)(
                        <Codec>self._codec_ptrs[i], ctx, &vbuf)
                if value is NULL:
                    self._raise_column_error(i)
                if vbuf.len != 0:
                    Py_DECREF(<object>value)
                    self._raise_trailing(i, vbuf.len)
            # Store the new reference (the slot is empty, or holds None for a
            # record_class instance).
            if as_tuple:
                PyTuple_SET_ITEM(row, i, <object>value)    # steals the reference
            else:
                slots = record_items(row)
                Py_XDECREF(slots[i])
                slots[i] = value
        if rbuf.len != 0:
            raise _RowFormatError(f"malformed DataRow: {rbuf.len} unexpected trailing bytes")
        if not as_tuple:
            # May be another object (a record moved into one with a GC header).
            row = record_done(row)
        elif not values_need_gc(__pg_tuple_items(row), n):
            # As CPython would do at its next collection: a tuple of atomic
            # values cannot be part of a cycle.
            PyObject_GC_UnTrack(<PyObject*>row)
        return row

    cdef str _column_text(self, Py_ssize_t i):
        cdef Codec codec = <Codec>self._codec_ptrs[i]
        return f"column {i} ({self._desc.names[i]!r}, type {codec.name})"

    cdef int _raise_bad_length(self, Py_ssize_t i, int32_t flen, Py_ssize_t left) except -1:
        if flen < 0:
            raise _RowFormatError(
                f"cannot decode {self._column_text(i)}: invalid value length {flen}")
        raise _RowFormatError(
            f"cannot decode {self._column_text(i)}: value of {flen} bytes but only {left} "
            f"bytes left in DataRow")

    cdef int _raise_trailing(self, Py_ssize_t i, Py_ssize_t left) except -1:
        raise _DecodeError(
            f"cannot decode {self._column_text(i)}: {left} unexpected trailing bytes")

    cdef int _raise_column_error(self, Py_ssize_t i) except -1:
        # A decoder failed (its exception is set): say which column it was.
        cdef Codec codec = <Codec>self._codec_ptrs[i]
        try:
            _reraise()
        except _DecodeError as e:
            msg = str(e.args[0]) if e.args else ""
            e.args = (f"cannot decode {self._column_text(i)}: {msg}",) + tuple(e.args[1:])
            e.column_index = i
            e.column_name = self._desc.names[i]
            e.type_oid = codec.oid
            raise
        except Exception as e:
            if hasattr(e, "add_note"):
                e.add_note(f"while decoding {self._column_text(i)}")
            raise
        return -1

    def decode(self, data):
        """Decode one DataRow payload (bytes-like: field count, then the fields).

        The Python entry to ``decode_row()``, for tests and Python code.
        """
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self.decode_row(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def decode_many(self, data):
        """Decode consecutive payloads, each preceded by its int32 length; return a list.

        The loop pg-wire runs, without the message framing: for benchmarks
        and tools.
        """
        cdef Py_buffer view
        cdef FRBuffer frb
        cdef int32_t n
        cdef list rows = []
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            frb_init(&frb, <const char*>view.buf, view.len)
            while frb.len > 0:
                n = hton.unpack_int32(frb_read(&frb, 4))
                if n < 0:
                    raise _DecodeError(f"invalid payload length {n}")
                rows.append(self.decode_row(frb_read(&frb, n), n))
        finally:
            PyBuffer_Release(&view)
        return rows


# -- parameters -------------------------------------------------------------------------

cdef class ParamEncoder:
    """Writes query arguments into a Bind message, planned from parameter types.

    :param codecs: The parameter codecs, in order (see
        ``CodecRegistry.plan_param_encoder()``).
    :param context: The CodecContext passed to the codecs (the registry).
    """

    def __cinit__(self, *args, **kwargs):
        self._funcs = NULL

    def __init__(self, codecs, CodecContext context=None):
        cdef Py_ssize_t i, n
        cdef Codec codec
        cdef tuple cs = tuple(codecs)
        n = len(cs)
        if n > INT16_MAX:
            raise ValueError(f"the number of query arguments cannot exceed {INT16_MAX}")
        for i in range(n):
            codec = cs[i]
            if not codec.c_has_encoder():
                raise UnsupportedCodecError(f"no encoder for type {codec.name} (OID {codec.oid})")
        if self._funcs is not NULL:
            PyMem_Free(self._funcs)
        self._funcs = <encode_func*>PyMem_Malloc(<size_t>(n + 1) * sizeof(encode_func))
        if self._funcs is NULL:
            raise MemoryError()
        self._all_binary = True
        for i in range(n):
            codec = cs[i]
            self._funcs[i] = codec.c_encoder if codec.method == METHOD_C else NULL
            if codec.format != PG_FORMAT_BINARY:
                self._all_binary = False
        self._codecs = cs
        self._nparams = n
        self._ctx = context if context is not None else _default_registry()

    def __dealloc__(self):
        if self._funcs is not NULL:
            PyMem_Free(self._funcs)
            self._funcs = NULL

    @property
    def codecs(self):
        """The parameter codecs."""
        return self._codecs

    @property
    def formats(self):
        """The format code (0 text, 1 binary) of each parameter."""
        return tuple([(<Codec>c).format for c in self._codecs])

    cdef int encode_params(self, WriteBuffer buf, object args) except -1:
        cdef Py_ssize_t i, n = self._nparams
        cdef Py_ssize_t nargs
        cdef Py_ssize_t start = buf.length()
        if not (PyTuple_Check(args) or isinstance(args, list)):
            # asyncpg's rule (a sequence), minus strings and bytes.
            if _is_trivial_container(args) or not PySequence_Check(args):
                raise TypeError(
                    f"expected a sequence of query arguments, got {type(args).__name__}")
            args = tuple(args)
        nargs = len(args)
        if nargs != n:
            raise ParameterCountError(n, nargs)
        if n == 0:
            buf.write_int16(0)
        elif self._all_binary:
            buf.write_int16(1)
            buf.write_int16(PG_FORMAT_BINARY)
        else:
            buf.write_int16(<int16_t>n)
            for i in range(n):
                buf.write_int16(<int16_t>(<Codec>self._codecs[i]).format)
        buf.write_int16(<int16_t>n)
        return self._encode_values(buf, args, start)

    cdef int _encode_values(self, WriteBuffer buf, object args, Py_ssize_t start) except -1:
        # Each value: int32 length (-1 for None) and its bytes. *args* is a
        # tuple or list of the right length; on error the buffer goes back
        # to *start*.
        # One try around the loop, not one per value: entering a try block
        # saves the exception state, which costs as much as encoding an int.
        cdef Py_ssize_t i = 0
        cdef Py_ssize_t n = self._nparams
        cdef Codec codec
        cdef encode_func f
        cdef CodecContext ctx = self._ctx
        cdef object arg
        cdef bint in_codec = False
        # A tuple cannot change size under us and the caller checked its
        # length: index it directly. Anything else is indexed with a bounds
        # check (this module is compiled without them): a Python codec may
        # shrink a list while we encode it.
        cdef bint is_tuple = PyTuple_CheckExact(args)
        try:
            while i < n:
                if is_tuple:
                    arg = <object>PyTuple_GET_ITEM(args, i)
                else:
                    arg = PySequence_GetItem(args, i)
                if arg is None:
                    buf.write_int32(-1)
                else:
                    in_codec = True
                    f = self._funcs[i]
                    if f is not NULL:
                        f(ctx, buf, arg)
                    else:
                        (<Codec>self._codecs[i]).encode(ctx, buf, arg)
                    in_codec = False
                i += 1
        except Exception as e:
            buf.truncate(start)
            if not in_codec:
                raise
            codec = <Codec>self._codecs[i]
            raise ParameterEncodeError(i, codec.name, arg, str(e)) from e
        except BaseException:
            buf.truncate(start)
            raise
        return 0

    cdef int encode_copy_row(self, WriteBuffer buf, object record) except -1:
        cdef Py_ssize_t start = buf.length()
        cdef Py_ssize_t n = self._nparams
        if not self._all_binary:
            raise UnsupportedCodecError(
                "binary COPY needs a binary codec for every column")
        if not (PyTuple_Check(record) or isinstance(record, list)):
            if _is_trivial_container(record) or not PySequence_Check(record):
                raise TypeError(f"expected a sequence of column values, got "
                                f"{type(record).__name__}")
            record = tuple(record)
        if len(record) != n:
            raise ParameterCountError(n, len(record))
        buf.write_int16(<int16_t>n)
        return self._encode_values(buf, record, start)

    def write_copy_records(self, WriteBuffer buf, records, Py_ssize_t max_bytes):
        """Append binary COPY tuples for items of the iterator *records* to *buf*.

        Stops once *buf* holds at least *max_bytes* bytes.

        :return: True when *records* is exhausted.
        """
        cdef object record
        for record in records:
            self.encode_copy_row(buf, record)
            if buf.length() >= max_bytes:
                return False
        return True

    def write_copy_record(self, WriteBuffer buf, record):
        """Append one binary COPY tuple (int16 count, then the values) to *buf*."""
        self.encode_copy_row(buf, record)

    def encode(self, args):
        """Return the parameter section of a Bind message for *args*, as bytes.

        The Python entry to ``encode_params()``, for tests and Python code.
        """
        cdef WriteBuffer buf = WriteBuffer.new()
        self.encode_params(buf, args)
        return buf.to_bytes()

    def write_params(self, WriteBuffer buf, args):
        """Append the parameter section of a Bind message for *args* to *buf*."""
        self.encode_params(buf, args)


# -- built-in codecs of this module ---------------------------------------------------

register_core_codec(_oids.RECORDOID, "record", _anon_record_encode, _anon_record_decode,
                    PG_FORMAT_BINARY)
