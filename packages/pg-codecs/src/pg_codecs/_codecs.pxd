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

from libc.stdint cimport int32_t, uint32_t

from pg_codecs._buffer cimport FRBuffer, WriteBuffer


cdef enum CodecFormat:
    PG_FORMAT_TEXT = 0
    PG_FORMAT_BINARY = 1


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

    cdef int encode(self, CodecContext ctx, WriteBuffer buf, object obj) except -1
    cdef object decode(self, CodecContext ctx, FRBuffer* buf)


cdef class RowDecoder:
    # Called by pg-wire for each DataRow with its payload (after the message
    # header): int16 field count, then per field an int32 length (-1 = NULL)
    # and the bytes. Must validate the count and every length against
    # `length` and raise pg_codecs.DecodeError (or a subclass) on a mismatch.
    cdef object decode_row(self, const char* data, Py_ssize_t length)
