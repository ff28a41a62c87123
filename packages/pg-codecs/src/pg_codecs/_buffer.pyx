# cython: language_level=3, freethreading_compatible=True
"""Growable write buffer and bounds-checked read helpers (see _buffer.pxd)."""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int32_t
from libc.string cimport memchr, memcpy

from pg_codecs.errors import DecodeError as _DecodeError


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


@cython.final
cdef class WriteBuffer:
    """A growable byte buffer that protocol messages and values are built in.

    Python code sees only a small surface (``len()``, ``bytes()`` and the
    buffer protocol); Cython code uses the methods declared in _buffer.pxd.
    """

    def __cinit__(self):
        self._buf = self._small
        self._size = sizeof(self._small)
        self._length = 0
        self._message_pos = -1
        self._max_message_size = MAX_MESSAGE_SIZE
        self._view_count = 0

    def __dealloc__(self):
        if self._buf is not NULL and self._buf is not self._small:
            PyMem_Free(self._buf)
        self._buf = NULL

    def __len__(self):
        return self._length

    def __bytes__(self):
        return self.to_bytes()

    def __getbuffer__(self, Py_buffer* view, int flags):
        self._view_count += 1
        view.buf = self._buf
        view.obj = self
        view.len = self._length
        view.readonly = 1
        view.itemsize = 1
        view.format = NULL
        if flags & 0x0004:   # PyBUF_FORMAT
            view.format = "B"
        view.ndim = 1
        view.shape = NULL
        view.strides = NULL
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer* view):
        self._view_count -= 1

    def take(self):
        """Return the bytes written so far and empty the buffer."""
        cdef bytes data = self.to_bytes()
        self.reset()
        return data

    def clear(self):
        """Forget everything written."""
        self.reset()

    def rewind(self, Py_ssize_t length):
        """Drop everything written after the first *length* bytes."""
        self.truncate(length)

    @property
    def max_message_size(self):
        """Largest protocol message end_message() accepts, in bytes."""
        return self._max_message_size

    @max_message_size.setter
    def max_message_size(self, value):
        if not 5 <= value <= MAX_MESSAGE_SIZE:
            raise ValueError(f"max_message_size must be in [5, {MAX_MESSAGE_SIZE}]")
        self._max_message_size = value

    @staticmethod
    cdef WriteBuffer new():
        return WriteBuffer.__new__(WriteBuffer)

    cdef int _grow(self, Py_ssize_t needed) except -1:
        cdef Py_ssize_t new_size
        cdef char* new_buf
        if self._view_count:
            raise BufferError("cannot grow a WriteBuffer while a memoryview of it exists")
        if needed > 0x7FFFFFFF:
            # Nothing the protocol can carry needs more; refuse early instead
            # of allocating gigabytes first.
            raise ValueError(f"buffer would exceed 2 GiB ({needed} bytes)")
        new_size = self._size * 2
        if new_size < needed:
            new_size = needed + 1024
        if self._buf is self._small:
            new_buf = <char*>PyMem_Malloc(<size_t>new_size)
            if new_buf is NULL:
                raise MemoryError()
            memcpy(new_buf, self._buf, <size_t>self._length)
        else:
            new_buf = <char*>PyMem_Realloc(self._buf, <size_t>new_size)
            if new_buf is NULL:
                raise MemoryError()
        self._buf = new_buf
        self._size = new_size
        return 0

    cdef int _raise_message_too_long(self, Py_ssize_t length) except -1:
        raise ValueError(
            f"message of {length} bytes exceeds the limit of "
            f"{self._max_message_size} bytes; nothing was sent")

    cdef int write_bytes(self, bytes data) except -1:
        return self.write_raw(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))

    cdef int write_buffer(self, object data) except -1:
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.write_raw(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return 0

    cdef int write_str(self, str s) except -1:
        cdef Py_ssize_t n
        cdef const char* p = PyUnicode_AsUTF8AndSize(s, &n)
        return self.write_raw(p, n)

    cdef int write_cstr(self, str s) except -1:
        cdef Py_ssize_t n
        cdef const char* p = PyUnicode_AsUTF8AndSize(s, &n)
        if memchr(p, 0, <size_t>n) is not NULL:
            # The string is not quoted back: it may be a password.
            raise ValueError("NUL byte in a string: PostgreSQL strings cannot contain NUL")
        self.write_raw(p, n)
        return self.write_byte(0)

    cdef int write_len_prefixed_str(self, str s) except -1:
        cdef Py_ssize_t n
        cdef const char* p = PyUnicode_AsUTF8AndSize(s, &n)
        if n > MAX_MESSAGE_SIZE:
            raise ValueError(f"string value of {n} bytes is too long for PostgreSQL")
        self.write_int32(<int32_t>n)
        return self.write_raw(p, n)

    cdef int write_len_prefixed_buffer(self, object data) except -1:
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if view.len > MAX_MESSAGE_SIZE:
                raise ValueError(f"value of {view.len} bytes is too long for PostgreSQL")
            self.write_int32(<int32_t>view.len)
            self.write_raw(<const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return 0

    cdef int write_wbuf(self, WriteBuffer other) except -1:
        return self.write_raw(other._buf, other._length)

    cdef Py_ssize_t reserve_int32(self) except -1:
        cdef Py_ssize_t pos = self._length
        self.ensure(4)
        self._length += 4
        return pos

    cdef int patch_int32(self, Py_ssize_t pos, int32_t v) except -1:
        if pos < 0 or pos + 4 > self._length:
            raise IndexError("patch position outside the written data")
        hton.pack_int32(&self._buf[pos], v)
        return 0

    cdef int end_len_prefixed(self, Py_ssize_t pos) except -1:
        cdef Py_ssize_t n = self._length - pos - 4
        if n > MAX_MESSAGE_SIZE:
            raise ValueError(f"value of {n} bytes is too long for PostgreSQL")
        return self.patch_int32(pos, <int32_t>n)

    cdef int start_message(self, char tag) except -1:
        if self._message_pos >= 0:
            raise RuntimeError("start_message() while another message is open")
        self._message_tagged = tag != 0
        if self._message_tagged:
            self.write_byte(tag)
        self._message_pos = self._length
        self.ensure(4)
        self._length += 4
        return 0

    cdef int end_message(self) except -1:
        cdef Py_ssize_t pos = self._message_pos
        cdef Py_ssize_t n
        if pos < 0:
            raise RuntimeError("end_message() without start_message()")
        n = self._length - pos
        if n > self._max_message_size:
            # Drop the partial message so the buffer holds only whole ones.
            self._length = pos - 1 if self._message_tagged else pos
            self._message_pos = -1
            self._raise_message_too_long(n)
        hton.pack_int32(&self._buf[pos], <int32_t>n)
        self._message_pos = -1
        return 0

    cdef int reset(self) except -1:
        if self._view_count:
            raise BufferError("cannot reset a WriteBuffer while a memoryview of it exists")
        self._length = 0
        self._message_pos = -1
        if self._buf is not self._small and self._size > 65536:
            # One huge message must not pin its memory for the connection's life.
            PyMem_Free(self._buf)
            self._buf = self._small
            self._size = sizeof(self._small)
        return 0

    cdef int truncate(self, Py_ssize_t length) except -1:
        if length < 0 or length > self._length:
            raise IndexError("truncate length outside the written data")
        self._length = length
        if self._message_pos >= length:
            self._message_pos = -1
        return 0

    cdef bytes to_bytes(self):
        return PyBytes_FromStringAndSize(self._buf, self._length)

    cdef char* data_ptr(self):
        return self._buf


cdef int frb_raise_overrun(FRBuffer* frb, Py_ssize_t n) except -1:
    if n < 0:
        if n == -1:
            raise _DecodeError(f"malformed value: {frb.len} unexpected trailing bytes")
        raise _DecodeError(f"malformed value: negative length {n}")
    raise _DecodeError(
        f"malformed value: needs {n} more bytes but only {frb.len} remain")
