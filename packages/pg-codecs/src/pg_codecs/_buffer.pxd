# cython: language_level=3
"""C-level contract of pg_codecs' buffers, shared with pg-wire and pg-client.

``WriteBuffer`` is the growable output buffer every encoder and every
outgoing protocol message writes into (length prefixes included), so that
encoding never creates an intermediate ``bytes`` object.

``FRBuffer`` ("fast read buffer") is a plain struct: a pointer and a length
over bytes owned by someone else (a received DataRow, a value inside it).
Decoders consume it with ``frb_read``; every read is checked against the bytes
left, so a hostile length can never read past the end.

The hot methods are ``cdef inline`` here so that they compile into the caller,
also in other packages.
"""

from libc.stdint cimport int16_t, int32_t, int64_t, uint16_t, uint32_t
from libc.string cimport memcpy

from pg_codecs cimport _hton as hton


# A message longer than this is refused before it is written: the server's
# own limit (MaxAllocSize - 1). WriteBuffer uses it unless told lower.
cdef enum:
    MAX_MESSAGE_SIZE = 0x3FFFFFFF


cdef class WriteBuffer:
    cdef:
        char* _buf
        Py_ssize_t _size          # allocated bytes
        Py_ssize_t _length        # bytes written
        Py_ssize_t _message_pos   # start of the open message's length, -1 when none
        bint _message_tagged      # the open message has a tag byte before its length
        Py_ssize_t _max_message_size
        int _view_count           # exported memoryviews; no growth while > 0
        char _small[1024]         # inline storage for the common small buffer

    cdef int _grow(self, Py_ssize_t needed) except -1
    cdef int _raise_message_too_long(self, Py_ssize_t length) except -1

    # -- low level ---------------------------------------------------------
    cdef inline int ensure(self, Py_ssize_t extra) except -1:
        if self._length + extra > self._size:
            self._grow(self._length + extra)
        return 0

    cdef inline int write_byte(self, char b) except -1:
        self.ensure(1)
        self._buf[self._length] = b
        self._length += 1
        return 0

    cdef inline int write_int16(self, int16_t v) except -1:
        self.ensure(2)
        hton.pack_int16(&self._buf[self._length], v)
        self._length += 2
        return 0

    cdef inline int write_uint16(self, uint16_t v) except -1:
        self.ensure(2)
        hton.pack_uint16(&self._buf[self._length], v)
        self._length += 2
        return 0

    cdef inline int write_int32(self, int32_t v) except -1:
        self.ensure(4)
        hton.pack_int32(&self._buf[self._length], v)
        self._length += 4
        return 0

    cdef inline int write_uint32(self, uint32_t v) except -1:
        self.ensure(4)
        hton.pack_uint32(&self._buf[self._length], v)
        self._length += 4
        return 0

    cdef inline int write_int64(self, int64_t v) except -1:
        self.ensure(8)
        hton.pack_int64(&self._buf[self._length], v)
        self._length += 8
        return 0

    cdef inline int write_float(self, float v) except -1:
        self.ensure(4)
        hton.pack_float(&self._buf[self._length], v)
        self._length += 4
        return 0

    cdef inline int write_double(self, double v) except -1:
        self.ensure(8)
        hton.pack_double(&self._buf[self._length], v)
        self._length += 8
        return 0

    cdef inline int write_raw(self, const char* data, Py_ssize_t n) except -1:
        self.ensure(n)
        memcpy(&self._buf[self._length], data, <size_t>n)
        self._length += n
        return 0

    # -- higher level (implemented in _buffer.pyx) ---------------------------
    cdef int write_bytes(self, bytes data) except -1
    # write_buffer: any object with the buffer protocol (bytes, bytearray, ...)
    cdef int write_buffer(self, object data) except -1
    # write_str: UTF-8 bytes of s, no terminator, no length prefix
    cdef int write_str(self, str s) except -1
    # write_cstr: UTF-8 bytes of s plus a NUL; ValueError if s contains NUL
    cdef int write_cstr(self, str s) except -1
    # write_len_prefixed_str: int32 byte length, then the UTF-8 bytes
    cdef int write_len_prefixed_str(self, str s) except -1
    cdef int write_len_prefixed_buffer(self, object data) except -1
    cdef int write_wbuf(self, WriteBuffer other) except -1

    # A length slot: reserve 4 bytes now, fill them once the size is known.
    cdef Py_ssize_t reserve_int32(self) except -1
    cdef int patch_int32(self, Py_ssize_t pos, int32_t v) except -1
    # end_len_prefixed: patch the slot at pos with the bytes written after it
    cdef int end_len_prefixed(self, Py_ssize_t pos) except -1

    # Protocol messages: tag byte (0 for the untagged startup packets) and an
    # int32 length that end_message() fills in, refusing anything over the
    # protocol limit before a byte leaves the process.
    cdef int start_message(self, char tag) except -1
    cdef int end_message(self) except -1

    cdef int reset(self) except -1
    cdef int truncate(self, Py_ssize_t length) except -1
    cdef inline Py_ssize_t length(self):
        return self._length
    cdef bytes to_bytes(self)
    cdef char* data_ptr(self)

    @staticmethod
    cdef WriteBuffer new()


cdef struct FRBuffer:
    const char* buf
    Py_ssize_t len


cdef int frb_raise_overrun(FRBuffer* frb, Py_ssize_t n) except -1


cdef inline void frb_init(FRBuffer* frb, const char* buf, Py_ssize_t length) noexcept:
    frb.buf = buf
    frb.len = length


cdef inline const char* frb_read(FRBuffer* frb, Py_ssize_t n) except NULL:
    cdef const char* p
    if n > frb.len or n < 0:
        frb_raise_overrun(frb, n)
        return NULL
    p = frb.buf
    frb.buf += n
    frb.len -= n
    return p


cdef inline const char* frb_read_all(FRBuffer* frb) noexcept:
    cdef const char* p = frb.buf
    frb.buf += frb.len
    frb.len = 0
    return p


cdef inline Py_ssize_t frb_get_len(FRBuffer* frb) noexcept:
    return frb.len


cdef inline int frb_check_consumed(FRBuffer* frb) except -1:
    # A decoder that leaves bytes behind misread the value: say so instead of
    # silently returning something.
    if frb.len != 0:
        frb_raise_overrun(frb, -1)
    return 0


cdef inline FRBuffer* frb_slice_from(FRBuffer* dst, FRBuffer* src, Py_ssize_t n) except NULL:
    # dst becomes a view of the next n bytes of src; src skips them.
    dst.buf = frb_read(src, n)
    dst.len = n
    return dst
