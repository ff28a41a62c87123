# cython: language_level=3
"""Placeholder; replaced by the codec machinery."""

cdef class CodecContext:
    pass

cdef int register_core_codec(uint32_t oid, str name,
                             encode_func encoder, decode_func decoder,
                             int format, int xformat=PG_XFORMAT_OBJECT) except -1:
    return 0

cdef class Codec:
    cdef int encode(self, CodecContext ctx, WriteBuffer buf, object obj) except -1:
        return 0
    cdef object decode(self, CodecContext ctx, FRBuffer* buf):
        return None

cdef class RowDecoder:
    cdef object decode_row(self, const char* data, Py_ssize_t length):
        raise NotImplementedError
