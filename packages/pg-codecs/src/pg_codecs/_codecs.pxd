# cython: language_level=3
"""C-level contract of the codec machinery.

Three parts, each used from another module or package:

* the signatures of a type's encode and decode functions, and
  ``register_core_codec``, through which the modules that implement the
  built-in types (``_scalar``, ``_datetime``, ...) put their functions into the
  core table when they are imported;
* ``Codec`` and ``CodecContext``, the objects those functions receive;
* ``RowDecoder``, the interface pg-wire calls once per DataRow, at C level,
  with the row's payload. pg-client plans one from a RowDescription.

Conventions every codec function follows:

* an encoder writes the value's int32 length prefix and then its bytes into
  the WriteBuffer (NULL is never passed to it; the caller writes -1);
* a decoder receives an FRBuffer spanning exactly the value's bytes (never
  NULL) and must consume all of them or raise;
* wrong Python types raise TypeError, out-of-range values ValueError or
  OverflowError, malformed bytes pg_codecs.DecodeError; the caller adds which
  parameter or column it was.
"""

cimport cython
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, uint32_t

from pg_codecs._buffer cimport FRBuffer, WriteBuffer
from pg_codecs._record cimport RecordDescriptor


cdef enum CodecFormat:
    PG_FORMAT_TEXT = 0
    PG_FORMAT_BINARY = 1

cdef enum:
    # For lookups only: the binary codec if there is one, else the text one.
    PG_FORMAT_ANY = -1


# What a core codec exchanges with Python code: the natural Python object
# (int, Decimal, datetime, ...) or, for set_type_codec(format='tuple'), the
# tuple form of the value (asyncpg's "tuple" exchange format).
cdef enum CodecExchangeFormat:
    PG_XFORMAT_OBJECT = 0
    PG_XFORMAT_TUPLE = 1


ctypedef int (*encode_func)(CodecContext ctx, WriteBuffer buf, object obj) except -1
ctypedef object (*decode_func)(CodecContext ctx, FRBuffer* buf)


cdef class CodecContext:
    # Per-connection state a codec may consult. Core scalar codecs ignore it.
    cdef public object registry


cdef int register_core_codec(uint32_t oid, str name,
                             encode_func encoder, decode_func decoder,
                             int format, int xformat=*) except -1

# A codec for a type without a fixed OID (an extension type such as hstore),
# found by name: set_builtin_type_codec(..., codec_name="pg_contrib.hstore").
cdef int register_extra_codec(str name, encode_func encoder, decode_func decoder,
                              int format) except -1

# Shared scalar codecs other modules may register or call: text (UTF-8 str,
# any format) and bytea (bytes; encodes any buffer-protocol object).
cdef int text_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1
cdef object text_decode(CodecContext ctx, FRBuffer* buf)
cdef int bytea_encode(CodecContext ctx, WriteBuffer buf, object obj) except -1
cdef object bytea_decode(CodecContext ctx, FRBuffer* buf)


@cython.final
cdef class Codec:
    cdef readonly uint32_t oid
    cdef readonly str name
    cdef readonly str schema
    cdef readonly str kind          # scalar, array, composite, range, multirange, enum, domain
    cdef readonly int format        # CodecFormat spoken on the wire
    cdef readonly int xformat       # CodecExchangeFormat
    cdef int method                 # how encode/decode dispatch (see _codecs.pyx)
    cdef encode_func c_encoder
    cdef decode_func c_decoder
    cdef object py_encoder          # set_type_codec() callables, or None
    cdef object py_decoder
    cdef readonly Codec element_codec     # array element, range subtype, domain base
    cdef tuple element_codecs             # composite attributes
    cdef tuple element_type_oids
    cdef object element_names             # composite attribute names
    cdef object record_desc               # composite's Record descriptor
    cdef char element_delimiter           # text arrays
    cdef uint32_t element_oid             # array element / range subtype OID written on the wire
    cdef Codec base_codec                 # set_type_codec(format='tuple') on a composite

    cdef int encode(self, CodecContext ctx, WriteBuffer buf, object obj) except -1
    cdef object decode(self, CodecContext ctx, FRBuffer* buf)
    cdef bint c_has_encoder(self)
    cdef bint c_has_decoder(self)
    cdef Codec copy_as(self, uint32_t oid, str name, str schema, str kind)


cdef class CodecRegistry(CodecContext):
    # The codecs of one connection: the core table plus what set_type_codec()
    # and the server's catalog (add_types()) added. It is also the
    # CodecContext its codecs receive.
    cdef dict _custom          # (oid, format) -> Codec from set_type_codec / set_builtin_type_codec
    cdef dict _derived         # oid -> Codec built from _types or the built-in array/range tables
    cdef dict _types           # oid -> normalized type description (add_types)
    cdef int _depth            # recursion guard while deriving codecs

    cdef Codec lookup(self, uint32_t oid, int format, bint ignore_custom=*)
    cdef Codec _derive(self, uint32_t oid)
    cdef Codec _element(self, uint32_t oid, object name, str schema)
    cdef Codec _fallback(self, uint32_t oid, str name, str schema)
    cdef Codec _build(self, dict info)
    cdef Codec _plan_codec(self, uint32_t oid, bint ignore_custom, bint decoding)


cdef class RowDecoder:
    # Called by pg-wire for each DataRow with its payload (after the message
    # header): int16 field count, then per field an int32 length (-1 = NULL)
    # and the bytes. Must validate the count and every length against
    # `length` and raise pg_codecs.DecodeError (or a subclass) on a mismatch.
    cdef object decode_row(self, const char* data, Py_ssize_t length)

    # The planned implementation (see _codecs.pyx); a subclass may ignore it.
    cdef CodecContext _ctx
    cdef tuple _codecs
    cdef Py_ssize_t _ncols
    cdef decode_func* _funcs           # per column: the C decoder to call directly, or NULL
    cdef PyObject** _codec_ptrs        # per column: borrowed from _codecs
    cdef RecordDescriptor _desc
    cdef type _record_class            # None: rows are tuples
    cdef bint _all_binary

    # The Bind message's result-column format codes for these columns.
    cdef int write_result_formats(self, WriteBuffer buf) except -1

    cdef void _free(self) noexcept
    cdef str _column_text(self, Py_ssize_t i)
    cdef int _raise_bad_length(self, Py_ssize_t i, int32_t flen, Py_ssize_t left) except -1
    cdef int _raise_trailing(self, Py_ssize_t i, Py_ssize_t left) except -1
    cdef int _raise_column_error(self, Py_ssize_t i) except -1


cdef class ParamEncoder:
    # Planned once per statement from its parameter types.
    cdef CodecContext _ctx
    cdef tuple _codecs
    cdef Py_ssize_t _nparams
    cdef encode_func* _funcs           # per parameter: the C encoder to call directly, or NULL
    cdef bint _all_binary

    # Writes the parameter part of a Bind message: int16 count of format
    # codes and the codes, int16 parameter count, then each value (int32
    # length, -1 for None, and its bytes). On error nothing is left written.
    cdef int encode_params(self, WriteBuffer buf, object args) except -1
    cdef int _encode_values(self, WriteBuffer buf, object args, Py_ssize_t start) except -1
    # One binary COPY tuple: int16 count, then the values as above.
    cdef int encode_copy_row(self, WriteBuffer buf, object record) except -1
