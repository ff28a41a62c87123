# cython: language_level=3, freethreading_compatible=True
"""Framing of incoming PostgreSQL v3 protocol messages, and payload parsers.

Turns a stream of bytes, fed in chunks of any size, into messages (a tag
byte and a payload), and parses the payloads of backend messages into small
Python objects. Works in both directions: a client reads backend messages, a
fake server or proxy reads frontend messages (startup packets included).
Knows nothing about sockets or asyncio (the caller feeds bytes in) and
nothing about what a column value means (DataRow payloads go to a
pg_codecs RowDecoder, values stay opaque bytes).

How it works
------------
Buffering. ``feed()`` keeps the chunks it is given instead of copying them
into one big buffer:

* a ``bytes`` chunk that arrives while nothing is buffered becomes the
  current chunk as it is: messages that lie wholly inside it are parsed in
  place, without any copy (the common case: asyncio hands each
  ``data_received`` chunk over as a new ``bytes`` object);
* a ``bytes`` chunk that arrives while something is buffered is queued as
  it is; a small one (under 1 KiB) is appended to a bytearray at the end of
  the queue instead, so that a peer trickling single bytes costs memory in
  proportion to the bytes, not to the number of chunks;
* other buffer objects (bytearray, memoryview) are copied once, since the
  caller may reuse their memory.

A message that straddles chunks is copied together once, into a ``bytes``
object of exactly its payload size, and only when all of it has arrived.

Validation. As soon as the 5 header bytes are buffered, the length field is
checked before anything else happens: below 4, above the limit for its tag,
or a tag that the direction does not allow (when strict), raise
FramingError. Nothing is ever allocated from a length field: a message is
only assembled once all its bytes are buffered. The limits are a table of
256 entries (one per tag byte) clamped to the overall cap, so the check is
one lookup and two comparisons.

Backend direction (the client side): libpq's rule, at most 30,000 bytes
except for RowDescription, DataRow, CopyData, FunctionCallResponse,
ErrorResponse, NoticeResponse, NotificationResponse, plus
ParameterDescription (65,535 parameters take 262,146 bytes).

Frontend direction (the server side): the server's own limits (Bind, Parse,
Query, FunctionCall and CopyData up to the cap; authentication responses up
to 65,535 bytes; everything else up to 10,000 bytes), and untagged startup
packets (8 to 10,000 bytes) while in startup mode. Startup mode ends after
a packet that is not SSLRequest or GSSENCRequest.

Failure. A framing error leaves the offending header at the front of the
buffer, so every later read raises again, and ``feed()`` refuses more data:
the stream has lost its message boundaries and the connection must be
closed. Errors inside a payload (from the parsers or a RowDecoder) do not
break the framing: the message has been consumed when they are raised.

Lifetime of payloads. The FRBuffer that ``next_message()`` hands to Cython
code points into the reader's buffers and is valid until the next call on
the reader. Python callers get ``bytes`` objects they own.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport (
    PyByteArray_AS_STRING,
    PyByteArray_FromStringAndSize,
    PyByteArray_GET_SIZE,
    PyByteArray_Resize,
)
from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int16_t, int32_t, uint16_t, uint32_t
from libc.string cimport memchr, memcpy

from pg_codecs cimport _hton as hton
from pg_codecs._buffer cimport FRBuffer
from pg_codecs._codecs cimport RowDecoder
from pg_wire cimport _tags

from pg_wire.errors import FramingError as _FramingError
from pg_wire.errors import ProtocolError as _ProtocolError


cdef extern from "Python.h":
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)


cdef enum:
    # pg_codecs' MAX_MESSAGE_SIZE (the server's MaxAllocSize - 1).
    _MAX_MESSAGE_SIZE = 0x3FFFFFFF
    # Chunks under this size that arrive while data is buffered are copied
    # into a shared bytearray rather than queued one object each.
    _SMALL_CHUNK = 1024
    # Once this many consumed slots sit at the front of the chunk queue (and
    # they are at least half of it), they are deleted.
    _COMPACT_AFTER = 64


# One-byte bytes objects for every tag value, so that handing a tag to
# Python never allocates.
cdef tuple _TAG_BYTES = tuple([bytes([i]) for i in range(256)])
cdef str _STATUS_IDLE = "I"
cdef str _STATUS_IN_BLOCK = "T"
cdef str _STATUS_FAILED = "E"


cdef str _tag_repr(char tag):
    cdef unsigned char t = <unsigned char>tag
    if 0x21 <= t <= 0x7e:
        return f"'{chr(t)}'"
    return f"0x{t:02x}"


@cython.final
cdef class MessageReader:
    """Splits a byte stream into PostgreSQL protocol messages.

    Feed it whatever arrives from the peer with :meth:`feed`, then take
    complete messages with :meth:`read_message`, :meth:`read_rows` or
    :meth:`read_copy_data` until they return nothing.

    :param frontend: Read messages a client sends (for fake servers and
        proxies) instead of messages a server sends.
    :param strict: Reject message types that the direction does not define.
        When False they are accepted with the small-message length limit.
    :param max_message_size: Largest acceptable value of a length field, in
        bytes: an overall cap on top of the per-type limits. At most (and by
        default) 1 GiB - 1, the server's own limit.
    :param startup: Expect an untagged startup packet first. Defaults to
        *frontend*; only meaningful when reading frontend messages.
    """

    def __cinit__(self):
        self._chunks = []
        self._head = 0
        self._cur = None
        self._ptr = NULL
        self._pos = 0
        self._end = 0
        self._buffered = 0
        self._acc = None
        self._assembled = None
        self._failure = None
        self._tag = 0
        self._is_startup = False
        self._payload.buf = NULL
        self._payload.len = 0

    def __init__(self, *, bint frontend=False, bint strict=True,
                 Py_ssize_t max_message_size=_MAX_MESSAGE_SIZE, startup=None):
        if not 5 <= max_message_size <= _MAX_MESSAGE_SIZE:
            raise ValueError(f"max_message_size must be in [5, {_MAX_MESSAGE_SIZE}]")
        if startup is None:
            startup = frontend
        if startup and not frontend:
            raise ValueError("startup packets are only read in the frontend direction")
        self._frontend = frontend
        self._strict = strict
        self._startup = startup
        self._max_message_size = max_message_size
        self._build_limits()

    # -- configuration ---------------------------------------------------------

    @property
    def frontend(self):
        """True when reading messages a client sends."""
        return self._frontend

    @property
    def strict(self):
        """True when unknown message types are rejected."""
        return self._strict

    @property
    def startup(self):
        """True while the next message is expected to be a startup packet."""
        return self._startup

    @startup.setter
    def startup(self, bint value):
        if value and not self._frontend:
            raise ValueError("startup packets are only read in the frontend direction")
        self._startup = value

    @property
    def max_message_size(self):
        """Largest acceptable message length field, in bytes."""
        return self._max_message_size

    @max_message_size.setter
    def max_message_size(self, Py_ssize_t value):
        if not 5 <= value <= _MAX_MESSAGE_SIZE:
            raise ValueError(f"max_message_size must be in [5, {_MAX_MESSAGE_SIZE}]")
        self._max_message_size = value
        self._build_limits()

    @property
    def buffered(self):
        """Bytes fed in and not yet consumed as messages."""
        return self._buffered

    cdef int _build_limits(self) except -1:
        cdef int i
        cdef unsigned char t
        cdef int32_t cap = <int32_t>self._max_message_size
        cdef int32_t unknown
        for i in range(256):
            self._limits[i] = 0
        if self._frontend:
            # The server's limits (postgres.c, SocketBackend).
            for t in b"BPQFd":
                self._limits[t] = cap
            for t in b"CDEHSXcf":
                self._limits[t] = _tags.SMALL_FRONTEND_MESSAGE_LIMIT
            self._limits[<unsigned char>_tags.PASSWORD_MESSAGE_TAG] = _tags.AUTH_MESSAGE_LIMIT
            unknown = _tags.SMALL_FRONTEND_MESSAGE_LIMIT
        else:
            for t in b"RK23CWGHDIEVvnNAtS1sZTdc":
                self._limits[t] = _tags.SMALL_MESSAGE_LIMIT
            for t in b"TDdVENAt":
                self._limits[t] = cap
            unknown = _tags.SMALL_MESSAGE_LIMIT
        if not self._strict:
            # Tag byte 0 stays invalid in every mode: it marks startup packets.
            for i in range(1, 256):
                if self._limits[i] == 0:
                    self._limits[i] = unknown
        for i in range(256):
            if self._limits[i] > cap:
                self._limits[i] = cap
        self._startup_limit = _tags.MAX_STARTUP_PACKET_SIZE
        if self._startup_limit > cap:
            self._startup_limit = cap
        return 0

    # -- input -----------------------------------------------------------------

    def feed(self, data):
        """Add bytes received from the peer.

        :param data: Any number of bytes, from part of a message to many
            messages. ``bytes`` are kept without copying; other buffer
            objects (bytearray, memoryview) are copied, since their memory
            may be reused by the caller.
        :raises FramingError: If the reader failed earlier.
        """
        cdef Py_buffer view
        cdef Py_ssize_t n
        cdef object chunk
        if self._failure is not None:
            self._raise_failed()
        if PyBytes_CheckExact(data):
            n = PyBytes_GET_SIZE(data)
            if n == 0:
                return
            if self._buffered == 0:
                self._set_cur(data)
            elif n < _SMALL_CHUNK:
                self._append_small(PyBytes_AS_STRING(data), n)
            else:
                self._chunks.append(data)
                self._acc = None
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                n = view.len
                if n == 0:
                    return
                if self._buffered != 0 and n < _SMALL_CHUNK:
                    self._append_small(<const char*>view.buf, n)
                else:
                    chunk = PyBytes_FromStringAndSize(<const char*>view.buf, n)
                    if self._buffered == 0:
                        self._set_cur(chunk)
                    else:
                        self._chunks.append(chunk)
                        self._acc = None
            finally:
                PyBuffer_Release(&view)
        self._buffered += n

    cdef int _set_cur(self, object chunk) except -1:
        # Called with nothing buffered, or from _next_chunk(): the queue
        # holds no chunk before this one.
        self._cur = chunk
        if PyBytes_CheckExact(chunk):
            self._ptr = PyBytes_AS_STRING(chunk)
            self._end = PyBytes_GET_SIZE(chunk)
        else:
            self._ptr = PyByteArray_AS_STRING(chunk)
            self._end = PyByteArray_GET_SIZE(chunk)
        self._pos = 0
        return 0

    cdef int _drop_cur(self) except -1:
        # Nothing is buffered: let go of the last chunk (it may be large).
        self._cur = None
        self._ptr = NULL
        self._pos = 0
        self._end = 0
        return 0

    cdef int _append_small(self, const char* data, Py_ssize_t n) except -1:
        cdef Py_ssize_t old
        if self._acc is None:
            self._acc = PyByteArray_FromStringAndSize(data, n)
            self._chunks.append(self._acc)
        else:
            # _acc is never the current chunk, so no pointer into it exists.
            old = PyByteArray_GET_SIZE(self._acc)
            PyByteArray_Resize(self._acc, old + n)
            memcpy(PyByteArray_AS_STRING(self._acc) + old, data, <size_t>n)
        return 0

    cdef int _next_chunk(self) except -1:
        # Make the oldest queued chunk current. Only called when the current
        # chunk is used up and _buffered says more bytes exist.
        cdef list chunks = self._chunks
        cdef Py_ssize_t size = len(chunks)
        cdef object chunk
        if self._head >= size:
            raise RuntimeError("MessageReader: buffered byte count out of step with its chunks")
        chunk = chunks[self._head]
        chunks[self._head] = None
        self._head += 1
        if self._head == size:
            del chunks[:]
            self._head = 0
        elif self._head >= _COMPACT_AFTER and self._head * 2 >= size:
            del chunks[:self._head]
            self._head = 0
        if chunk is self._acc:
            self._acc = None
        self._set_cur(chunk)
        return 0

    cdef int _peek(self, char* dst, Py_ssize_t n) except -1:
        # Copy the next n bytes to dst without consuming them; the caller
        # checked that n <= _buffered.
        cdef Py_ssize_t have = self._end - self._pos
        cdef Py_ssize_t i = self._head
        cdef Py_ssize_t size, k
        cdef object chunk
        cdef const char* src
        if have > n:
            have = n
        if have > 0:
            memcpy(dst, self._ptr + self._pos, <size_t>have)
        while have < n:
            if i >= len(self._chunks):
                raise RuntimeError("MessageReader: buffered byte count out of step with its chunks")
            chunk = self._chunks[i]
            if PyBytes_CheckExact(chunk):
                src = PyBytes_AS_STRING(chunk)
                size = PyBytes_GET_SIZE(chunk)
            else:
                src = PyByteArray_AS_STRING(chunk)
                size = PyByteArray_GET_SIZE(chunk)
            k = n - have
            if k > size:
                k = size
            memcpy(dst + have, src, <size_t>k)
            have += k
            i += 1
        return 0

    cdef int _peek_tag(self) except -2:
        # The first buffered byte, or -1 if none (or a startup packet is due).
        cdef object chunk
        if self._startup or self._buffered == 0:
            return -1
        if self._pos < self._end:
            return <unsigned char>self._ptr[self._pos]
        chunk = self._chunks[self._head]
        if PyBytes_CheckExact(chunk):
            return <unsigned char>PyBytes_AS_STRING(chunk)[0]
        return <unsigned char>PyByteArray_AS_STRING(chunk)[0]

    cdef int _consume(self, char* dst, Py_ssize_t n) except -1:
        # Move the next n bytes to dst, or drop them when dst is NULL.
        cdef Py_ssize_t k
        while n > 0:
            if self._pos == self._end:
                self._next_chunk()
            k = self._end - self._pos
            if k > n:
                k = n
            if dst is not NULL:
                memcpy(dst, self._ptr + self._pos, <size_t>k)
                dst += k
            self._pos += k
            self._buffered -= k
            n -= k
        return 0

    # -- taking messages -------------------------------------------------------

    cdef int _take(self) except -1:
        # Take the next complete message into _tag/_payload: 1, or 0 when it
        # has not fully arrived yet.
        cdef Py_ssize_t avail = self._end - self._pos
        cdef const char* p
        cdef int32_t length
        if self._assembled is not None:
            self._assembled = None
        if avail >= 5 and not self._startup:
            p = self._ptr + self._pos
            length = hton.unpack_int32(p + 1)
            if length < 4 or length > self._limits[<unsigned char>p[0]]:
                self._bad_header(p[0], length)
            if length < avail:
                # Whole message inside the current chunk: no copy.
                self._tag = p[0]
                self._is_startup = False
                self._payload.buf = p + 5
                self._payload.len = length - 4
                self._pos += length + 1
                self._buffered -= length + 1
                return 1
        return self._take_slow()

    cdef int _take_slow(self) except -1:
        cdef char header[5]
        cdef int32_t length
        cdef bytes owner
        if self._buffered == 0:
            if self._cur is not None:
                self._drop_cur()
            return 0
        if self._pos == self._end:
            self._next_chunk()
            if not self._startup:
                return self._take()   # the new chunk may hold the whole message
        if self._startup:
            return self._take_startup()
        if self._buffered < 5:
            return 0
        self._peek(header, 5)
        length = hton.unpack_int32(header + 1)
        if length < 4 or length > self._limits[<unsigned char>header[0]]:
            self._bad_header(header[0], length)
        if self._buffered - 1 < length:
            return 0
        # The message straddles chunks and is complete: copy it together.
        self._consume(NULL, 5)
        owner = PyBytes_FromStringAndSize(NULL, length - 4)
        self._consume(PyBytes_AS_STRING(owner), length - 4)
        self._assembled = owner
        self._tag = header[0]
        self._is_startup = False
        self._payload.buf = PyBytes_AS_STRING(owner)
        self._payload.len = length - 4
        return 1

    cdef int _take_startup(self) except -1:
        cdef char header[4]
        cdef int32_t length, code
        cdef bytes owner
        if self._buffered < 4:
            return 0
        self._peek(header, 4)
        length = hton.unpack_int32(header)
        if length < 8 or length > self._startup_limit:
            self._bad_startup(length)
        if self._buffered < length:
            return 0
        if self._end - self._pos >= length:
            self._payload.buf = self._ptr + self._pos + 4
            self._payload.len = length - 4
            self._pos += length
            self._buffered -= length
        else:
            self._consume(NULL, 4)
            owner = PyBytes_FromStringAndSize(NULL, length - 4)
            self._consume(PyBytes_AS_STRING(owner), length - 4)
            self._assembled = owner
            self._payload.buf = PyBytes_AS_STRING(owner)
            self._payload.len = length - 4
        code = hton.unpack_int32(self._payload.buf)
        # After SSLRequest / GSSENCRequest the client sends another startup
        # packet (over TLS / GSSAPI, or in the clear after a refusal).
        self._startup = code == _tags.SSL_REQUEST_CODE or code == _tags.GSSENC_REQUEST_CODE
        self._tag = 0
        self._is_startup = True
        return 1

    cdef int _bad_header(self, char tag, int32_t length) except -1:
        cdef int32_t limit = self._limits[<unsigned char>tag]
        cdef str what = _tag_repr(tag)
        cdef str side = "frontend" if self._frontend else "backend"
        if length < 4:
            msg = (f"invalid length {length} in the header of a message of type {what}: "
                   f"a length counts itself, so it is at least 4")
        elif limit == 0:
            msg = f"unknown {side} message type {what} (length {length})"
        elif length > self._max_message_size:
            msg = (f"message of type {what} declares {length} bytes, more than the "
                   f"limit of {self._max_message_size}")
        else:
            msg = (f"message of type {what} declares {length} bytes; {side} messages of "
                   f"this type are at most {limit} bytes")
        self._failure = "lost message synchronization: " + msg
        raise _FramingError(self._failure)

    cdef int _bad_startup(self, int32_t length) except -1:
        self._failure = (f"invalid startup packet length {length} "
                         f"(must be between 8 and {self._startup_limit})")
        raise _FramingError(self._failure)

    cdef int _raise_failed(self) except -1:
        raise _FramingError(f"{self._failure} (the reader failed earlier; close the connection)")

    cdef object _payload_bytes(self):
        cdef bytes owner = self._assembled
        if (owner is not None and self._payload.buf == PyBytes_AS_STRING(owner)
                and self._payload.len == PyBytes_GET_SIZE(owner)):
            return owner
        return PyBytes_FromStringAndSize(self._payload.buf, self._payload.len)

    cdef int next_message(self, char* tag, FRBuffer* payload) except -1:
        # C-level: 1 and the message, or 0 when none is complete. tag is 0
        # for a startup packet, whose payload starts with its Int32 code.
        if self._take() == 0:
            return 0
        tag[0] = self._tag
        payload[0] = self._payload
        return 1

    def read_message(self):
        """Take the next complete message.

        :return: ``(tag, payload)``: the one-byte tag (``b""`` for an
            untagged startup packet) and the bytes after the length field;
            or None if no complete message is buffered.
        :raises FramingError: If the next message header is invalid.
        """
        if self._take() == 0:
            return None
        if self._is_startup:
            return (b"", self._payload_bytes())
        return (_TAG_BYTES[<unsigned char>self._tag], self._payload_bytes())

    def __iter__(self):
        return self

    def __next__(self):
        """The next complete message, as :meth:`read_message` returns it."""
        message = self.read_message()
        if message is None:
            raise StopIteration
        return message

    cpdef Py_ssize_t read_rows(self, RowDecoder decoder, list out) except -1:
        """Decode consecutive DataRow messages with *decoder*.

        Stops at the first message that is not a DataRow, or that has not
        fully arrived, and leaves it in the buffer. Each row's payload (after
        the 5-byte header) goes to ``decoder.decode_row`` at C level.

        :param decoder: The RowDecoder planned from the RowDescription.
        :param out: List the decoded rows are appended to.
        :return: The number of rows appended.
        :raises FramingError: If a DataRow header is invalid.
        :raises Exception: Whatever ``decode_row`` raises; that DataRow has
            been consumed, and the rows decoded before it are in *out*.
        """
        cdef Py_ssize_t count = 0
        cdef Py_ssize_t avail
        cdef const char* p
        cdef int32_t length
        cdef int32_t limit
        cdef object row
        if decoder is None or out is None:
            raise TypeError("read_rows() needs a RowDecoder and a list")
        if self._frontend:
            raise RuntimeError("read_rows() reads DataRow messages; this reader reads "
                               "frontend messages")
        limit = self._limits[<unsigned char>_tags.DATA_ROW_TAG]
        if self._assembled is not None:
            self._assembled = None
        while True:
            avail = self._end - self._pos
            if avail >= 5:
                p = self._ptr + self._pos
                if p[0] != _tags.DATA_ROW_TAG:
                    break
                length = hton.unpack_int32(p + 1)
                if length < 4 or length > limit:
                    self._bad_header(p[0], length)
                if length < avail:
                    # Consume first: an exception from the decoder must not
                    # leave this row in the buffer.
                    self._pos += length + 1
                    self._buffered -= length + 1
                    row = decoder.decode_row(p + 5, length - 4)
                    out.append(row)
                    count += 1
                    continue
            # Near the end of a chunk: the general path.
            if self._peek_tag() != <unsigned char>_tags.DATA_ROW_TAG:
                break
            if self._take() == 0:
                break
            row = decoder.decode_row(self._payload.buf, self._payload.len)
            out.append(row)
            count += 1
        return count

    cpdef Py_ssize_t skip_rows(self) except -1:
        """Consume consecutive DataRow messages without decoding them.

        For the rest of a result nobody wants (after a decoding error, or a
        cancelled fetch). Stops like :meth:`read_rows`.

        :return: The number of rows skipped.
        :raises FramingError: If a DataRow header is invalid.
        """
        cdef Py_ssize_t count = 0
        if self._frontend:
            raise RuntimeError("skip_rows() reads DataRow messages; this reader reads "
                               "frontend messages")
        while self._peek_tag() == <unsigned char>_tags.DATA_ROW_TAG:
            if self._take() == 0:
                break
            count += 1
        return count

    cpdef Py_ssize_t read_copy_data(self, list out) except -1:
        """Take consecutive CopyData messages.

        Stops at the first message that is not CopyData, or that has not
        fully arrived, and leaves it in the buffer.

        :param out: List each message's data (``bytes``) is appended to.
        :return: The number of messages taken.
        :raises FramingError: If a CopyData header is invalid.
        """
        cdef Py_ssize_t count = 0
        if out is None:
            raise TypeError("read_copy_data() needs a list")
        while self._peek_tag() == <unsigned char>_tags.COPY_DATA_TAG:
            if self._take() == 0:
                break
            out.append(self._payload_bytes())
            count += 1
        return count

    cpdef Py_ssize_t read_copy_data_into(self, bytearray out, Py_ssize_t max_size=0) except -1:
        """Take consecutive CopyData messages, appending their data to *out*.

        Like :meth:`read_copy_data`, without a ``bytes`` object per message:
        COPY OUT sends one message per row. The messages that lie whole in
        the current chunk are measured first and copied with one resize of
        *out*.

        :param max_size: When above 0, stop taking messages once *out* holds
            this many bytes or more (the message that crosses the mark is
            taken whole, whatever its size). Keeping each buffer below the
            C library's threshold for mapping fresh memory (128 KiB for
            glibc) lets it reuse freed memory instead of faulting in new
            pages for every buffer.
        :return: The number of messages taken.
        :raises FramingError: If a CopyData header is invalid.
        """
        cdef Py_ssize_t count = 0
        cdef Py_ssize_t old, avail, off, total, n
        cdef Py_ssize_t room = PY_SSIZE_T_MAX
        cdef const char* p
        cdef char* dst
        cdef int32_t length
        cdef int32_t limit = self._limits[<unsigned char>_tags.COPY_DATA_TAG]
        if out is None:
            raise TypeError("read_copy_data_into() needs a bytearray")
        if max_size > 0:
            room = max_size - PyByteArray_GET_SIZE(out)
        if self._assembled is not None:
            self._assembled = None
        while room > 0:
            # Fast path: the run of complete CopyData messages in this chunk.
            avail = self._end - self._pos
            p = self._ptr + self._pos
            off = 0
            total = 0
            n = 0
            while total < room and avail - off >= 5 and p[off] == _tags.COPY_DATA_TAG:
                length = hton.unpack_int32(p + off + 1)
                if length < 4 or length > limit:
                    if n == 0:
                        self._bad_header(p[off], length)
                    break   # copy what precedes it; the next call raises
                if <Py_ssize_t>length + 1 > avail - off:
                    break
                total += length - 4
                n += 1
                off += length + 1
            if n:
                old = PyByteArray_GET_SIZE(out)
                PyByteArray_Resize(out, old + total)
                dst = PyByteArray_AS_STRING(out) + old
                off = 0
                for _ in range(n):
                    length = hton.unpack_int32(p + off + 1)
                    memcpy(dst, p + off + 5, <size_t>(length - 4))
                    dst += length - 4
                    off += length + 1
                self._pos += off
                self._buffered -= off
                count += n
                room -= total
                continue
            # A message across chunks (or the end of this one): one at a time.
            if self._peek_tag() != <unsigned char>_tags.COPY_DATA_TAG:
                break
            if self._take() == 0:
                break
            old = PyByteArray_GET_SIZE(out)
            PyByteArray_Resize(out, old + self._payload.len)
            memcpy(PyByteArray_AS_STRING(out) + old, self._payload.buf,
                   <size_t>self._payload.len)
            count += 1
            room -= self._payload.len
        return count

    cpdef bint read_reply(self, ExtendedReply reply) except -1:
        """Consume the routine messages of an extended-query reply.

        One call takes, in the order they come, every complete message of
        the reply to Parse/Bind/Execute/Sync requests that needs no decision
        from the caller: ParseComplete, BindComplete, CloseComplete, NoData,
        EmptyQueryResponse, DataRow (decoded with ``reply.decoder`` into
        ``reply.rows``), CommandComplete (its tag into ``reply.status``),
        PortalSuspended and, last, ReadyForQuery.

        It stops before any other message (ErrorResponse, NoticeResponse,
        ParameterStatus, a DataRow while ``reply.decoder`` is None, ...),
        leaving it for :meth:`read_message`, and before a message that has
        not fully arrived.

        After CommandComplete, EmptyQueryResponse, NoData or PortalSuspended
        ``reply.decoder`` is set to None (no more rows are expected), unless
        ``reply.multi`` is true (several Executes under one Sync).

        :return: True when ReadyForQuery was consumed (its status is in
            ``reply.transaction_status``): the reply is complete.
        :raises FramingError: If a message header is invalid.
        :raises ProtocolError: If a CommandComplete or ReadyForQuery payload
            is malformed.
        :raises Exception: Whatever the decoder raises; that DataRow has been
            consumed, and the rows before it are in ``reply.rows``.
        """
        cdef int tag
        if reply is None:
            raise TypeError("read_reply() needs an ExtendedReply")
        if self._frontend:
            raise RuntimeError("read_reply() reads backend messages; this reader reads "
                               "frontend messages")
        while True:
            tag = self._peek_tag()
            if tag == <unsigned char>_tags.DATA_ROW_TAG:
                if reply.decoder is None or reply.rows is None:
                    return False
                self.read_rows(reply.decoder, reply.rows)
                if self._peek_tag() == <unsigned char>_tags.DATA_ROW_TAG:
                    return False   # a DataRow that has not fully arrived
                continue
            if (tag != <unsigned char>_tags.BIND_COMPLETE_TAG
                    and tag != <unsigned char>_tags.PARSE_COMPLETE_TAG
                    and tag != <unsigned char>_tags.CLOSE_COMPLETE_TAG
                    and tag != <unsigned char>_tags.COMMAND_COMPLETE_TAG
                    and tag != <unsigned char>_tags.READY_FOR_QUERY_TAG
                    and tag != <unsigned char>_tags.NO_DATA_TAG
                    and tag != <unsigned char>_tags.EMPTY_QUERY_RESPONSE_TAG
                    and tag != <unsigned char>_tags.PORTAL_SUSPENDED_TAG):
                return False   # nothing buffered, or the caller's message
            if self._take() == 0:
                return False
            if tag == <unsigned char>_tags.COMMAND_COMPLETE_TAG:
                reply.status = c_parse_command_complete(self._payload.buf, self._payload.len)
                if not reply.multi:
                    reply.decoder = None
            elif tag == <unsigned char>_tags.READY_FOR_QUERY_TAG:
                reply.transaction_status = c_parse_ready_for_query(
                    self._payload.buf, self._payload.len)
                reply.decoder = None
                return True
            elif tag == <unsigned char>_tags.PORTAL_SUSPENDED_TAG:
                reply.suspended = True
                if not reply.multi:
                    reply.decoder = None
            elif (tag == <unsigned char>_tags.NO_DATA_TAG
                    or tag == <unsigned char>_tags.EMPTY_QUERY_RESPONSE_TAG):
                if not reply.multi:
                    reply.decoder = None


# -- payload parsing ---------------------------------------------------------------
#
# Every parser walks the payload with a _Cursor, checks each read against the
# bytes left, and requires the payload to be used up exactly. Anything else
# raises ProtocolError naming the message.

cdef struct _Cursor:
    const char* p
    const char* end
    const char* what


cdef inline void _init(_Cursor* c, const char* data, Py_ssize_t length,
                       const char* what) noexcept:
    c.p = data
    c.end = data + length
    c.what = what


cdef str _name(_Cursor* c):
    return (<bytes>c.what).decode("ascii")


cdef int _short(_Cursor* c, Py_ssize_t n) except -1:
    raise _ProtocolError(
        f"malformed {_name(c)} message: needs {n} more bytes, {c.end - c.p} left")


cdef inline int _need(_Cursor* c, Py_ssize_t n) except -1:
    if c.end - c.p < n:
        _short(c, n)
    return 0


cdef inline int _done(_Cursor* c) except -1:
    if c.p != c.end:
        raise _ProtocolError(
            f"malformed {_name(c)} message: {c.end - c.p} unexpected bytes at its end")
    return 0


# The getters below do not check bounds: the caller called _need() first.
cdef inline int32_t _int32(_Cursor* c) noexcept:
    cdef int32_t v = hton.unpack_int32(c.p)
    c.p += 4
    return v


cdef inline uint32_t _uint32(_Cursor* c) noexcept:
    cdef uint32_t v = hton.unpack_uint32(c.p)
    c.p += 4
    return v


cdef inline int16_t _int16(_Cursor* c) noexcept:
    cdef int16_t v = hton.unpack_int16(c.p)
    c.p += 2
    return v


cdef inline uint16_t _uint16(_Cursor* c) noexcept:
    cdef uint16_t v = hton.unpack_uint16(c.p)
    c.p += 2
    return v


cdef inline Py_ssize_t _cstr(_Cursor* c, const char** out) except -1:
    # The next NUL-terminated string: its start in *out, its length returned.
    cdef const char* nul = <const char*>memchr(c.p, 0, <size_t>(c.end - c.p))
    if nul is NULL:
        raise _ProtocolError(
            f"malformed {_name(c)} message: string without a NUL terminator")
    out[0] = c.p
    c.p = nul + 1
    return nul - out[0]


cdef str _text(_Cursor* c):
    # The next NUL-terminated string, which must be valid UTF-8.
    cdef const char* s = NULL
    cdef Py_ssize_t n = _cstr(c, &s)
    try:
        return PyUnicode_DecodeUTF8(s, n, NULL)
    except UnicodeDecodeError as exc:
        raise _ProtocolError(
            f"malformed {_name(c)} message: text is not valid UTF-8 "
            f"({exc.reason} at byte {exc.start})") from None


cdef bytes _rest(_Cursor* c):
    cdef bytes b = PyBytes_FromStringAndSize(c.p, c.end - c.p)
    c.p = c.end
    return b


cdef bytes _as_bytes(object payload):
    if PyBytes_CheckExact(payload):
        return <bytes>payload
    return bytes(memoryview(payload))


cdef object c_parse_authentication(const char* data, Py_ssize_t length):
    cdef _Cursor c
    cdef int32_t code
    cdef const char* s = NULL
    cdef Py_ssize_t n
    cdef list mechanisms
    _init(&c, data, length, "Authentication")
    _need(&c, 4)
    code = _int32(&c)
    if code == 0 or code == 2 or code == 3 or code == 7 or code == 9:
        _done(&c)
        return (code, None)
    if code == 5:
        if c.end - c.p != 4:
            raise _ProtocolError(
                f"malformed AuthenticationMD5Password message: a salt of "
                f"{c.end - c.p} bytes instead of 4")
        return (code, _rest(&c))
    if code == 8 or code == 11 or code == 12:
        return (code, _rest(&c))
    if code == 10:
        mechanisms = []
        while True:
            n = _cstr(&c, &s)
            if n == 0:
                break
            try:
                mechanisms.append(PyUnicode_DecodeUTF8(s, n, NULL))
            except UnicodeDecodeError:
                raise _ProtocolError(
                    "malformed AuthenticationSASL message: mechanism name is not "
                    "valid UTF-8") from None
        _done(&c)
        return (code, tuple(mechanisms))
    raise _ProtocolError(f"unknown authentication request code {code}")


cdef object c_parse_backend_key_data(const char* data, Py_ssize_t length,
                                     int32_t protocol_version):
    cdef _Cursor c
    cdef int32_t pid
    cdef Py_ssize_t key_length
    _init(&c, data, length, "BackendKeyData")
    _need(&c, 4)
    pid = _int32(&c)
    key_length = c.end - c.p
    if protocol_version >= _tags.PROTOCOL_3_2:
        if not _tags.MIN_CANCEL_KEY_LENGTH <= key_length <= _tags.MAX_CANCEL_KEY_LENGTH:
            raise _ProtocolError(
                f"malformed BackendKeyData message: a secret key of {key_length} bytes "
                f"(protocol 3.2 allows {_tags.MIN_CANCEL_KEY_LENGTH} to "
                f"{_tags.MAX_CANCEL_KEY_LENGTH})")
    elif key_length != 4:
        raise _ProtocolError(
            f"malformed BackendKeyData message: a secret key of {key_length} bytes "
            f"(protocol 3.0 requires exactly 4)")
    return (pid, _rest(&c))


cdef object c_parse_command_complete(const char* data, Py_ssize_t length):
    cdef _Cursor c
    _init(&c, data, length, "CommandComplete")
    tag = _text(&c)
    _done(&c)
    return tag


cdef object c_parse_copy_response(const char* data, Py_ssize_t length):
    cdef _Cursor c
    cdef int overall
    cdef uint16_t count, i
    cdef int16_t fmt
    cdef tuple formats
    cdef object value
    _init(&c, data, length, "Copy*Response")
    _need(&c, 3)
    overall = <unsigned char>c.p[0]
    c.p += 1
    if overall > 1:
        raise _ProtocolError(f"malformed Copy*Response message: overall format {overall}")
    count = _uint16(&c)
    _need(&c, <Py_ssize_t>count * 2)
    formats = PyTuple_New(count)
    for i in range(count):
        fmt = _int16(&c)
        if fmt != 0 and fmt != 1:
            raise _ProtocolError(
                f"malformed Copy*Response message: format code {fmt} for column {i}")
        value = fmt
        Py_INCREF(value)
        PyTuple_SET_ITEM(formats, i, value)
    _done(&c)
    return (overall, formats)


cdef object _data_row(const char* data, Py_ssize_t length, bint as_tuple):
    cdef _Cursor c
    cdef uint16_t count, i
    cdef int32_t field_length
    cdef object value
    cdef object result
    _init(&c, data, length, "DataRow")
    _need(&c, 2)
    count = _uint16(&c)
    if <Py_ssize_t>count * 4 > c.end - c.p:
        raise _ProtocolError(
            f"malformed DataRow message: {count} fields declared but only "
            f"{c.end - c.p} bytes follow")
    if as_tuple:
        result = PyTuple_New(count)
    else:
        result = [None] * count
    for i in range(count):
        _need(&c, 4)
        field_length = _int32(&c)
        if field_length == -1:
            value = None
        elif field_length < 0:
            raise _ProtocolError(
                f"malformed DataRow message: field {i} has length {field_length}")
        else:
            _need(&c, field_length)
            value = PyBytes_FromStringAndSize(c.p, field_length)
            c.p += field_length
        if as_tuple:
            Py_INCREF(value)
            PyTuple_SET_ITEM(result, i, value)
        else:
            (<list>result)[i] = value
    _done(&c)
    return result


cdef object c_parse_data_row(const char* data, Py_ssize_t length):
    return _data_row(data, length, False)


cdef object c_parse_error_response(const char* data, Py_ssize_t length):
    cdef _Cursor c
    cdef char code
    cdef const char* s = NULL
    cdef Py_ssize_t n
    cdef dict fields = {}
    _init(&c, data, length, "ErrorResponse/NoticeResponse")
    while True:
        _need(&c, 1)
        code = c.p[0]
        c.p += 1
        if code == 0:
            break
        n = _cstr(&c, &s)
        # Server text is kept as sent; bytes that are not UTF-8 (possible
        # before client_encoding applies) become U+FFFD.
        fields[chr(<unsigned char>code)] = PyUnicode_DecodeUTF8(s, n, "replace")
    _done(&c)
    return fields


cdef object c_parse_function_call_response(const char* data, Py_ssize_t length):
    cdef _Cursor c
    cdef int32_t size
    _init(&c, data, length, "FunctionCallResponse")
    _need(&c, 4)
    size = _int32(&c)
    if size == -1:
        _done(&c)
        return None
    if size < 0:
        raise _ProtocolError(f"malformed FunctionCallResponse message: result length {size}")
    if size != c.end - c.p:
        raise _ProtocolError(
            f"malformed FunctionCallResponse message: result length {size} but "
            f"{c.end - c.p} bytes follow")
    return _rest(&c)


cdef object c_parse_negotiate_protocol_version(const char* data, Py_ssize_t length):
    cdef _Cursor c
    cdef int32_t version, count
    cdef list options = []
    _init(&c, data, length, "NegotiateProtocolVersion")
    _need(&c, 8)
    version = _int32(&c)
    count = _int32(&c)
    if version < 0:
        raise _ProtocolError(f"malformed NegotiateProtocolVersion message: version {version}")
    if version < 0x10000:
        # The docs call this field the newest *minor* version; servers send
        # the whole version number. Accept both spellings.
        version |= _tags.PROTOCOL_3_0
    if count < 0 or count > c.end - c.p:
        raise _ProtocolError(
            f"malformed NegotiateProtocolVersion message: {count} options declared "
            f"in {c.end - c.p} bytes")
    for _ in range(count):
        options.append(_text(&c))
    _done(&c)
    return (version, tuple(options))


cdef object c_parse_notification_response(const char* data, Py_ssize_t length):
    cdef _Cursor c
    cdef int32_t pid
    _init(&c, data, length, "NotificationResponse")
    _need(&c, 4)
    pid = _int32(&c)
    channel = _text(&c)
    payload = _text(&c)
    _done(&c)
    return (pid, channel, payload)


cdef object c_parse_parameter_description(const char* data, Py_ssize_t length):
    cdef _Cursor c
    cdef uint16_t count, i
    cdef tuple oids
    cdef object oid
    _init(&c, data, length, "ParameterDescription")
    _need(&c, 2)
    count = _uint16(&c)
    if <Py_ssize_t>count * 4 != c.end - c.p:
        raise _ProtocolError(
            f"malformed ParameterDescription message: {count} parameters declared "
            f"in {c.end - c.p} bytes")
    oids = PyTuple_New(count)
    for i in range(count):
        oid = _uint32(&c)
        Py_INCREF(oid)
        PyTuple_SET_ITEM(oids, i, oid)
    return oids


cdef object c_parse_parameter_status(const char* data, Py_ssize_t length):
    cdef _Cursor c
    _init(&c, data, length, "ParameterStatus")
    name = _text(&c)
    value = _text(&c)
    _done(&c)
    return (name, value)


cdef object c_parse_ready_for_query(const char* data, Py_ssize_t length):
    cdef char status
    if length != 1:
        raise _ProtocolError(
            f"malformed ReadyForQuery message: {length} bytes of payload instead of 1")
    status = data[0]
    if status == b"I":
        return _STATUS_IDLE
    if status == b"T":
        return _STATUS_IN_BLOCK
    if status == b"E":
        return _STATUS_FAILED
    raise _ProtocolError(
        f"malformed ReadyForQuery message: transaction status {_tag_repr(status)}")


cdef object c_parse_row_description(const char* data, Py_ssize_t length):
    cdef _Cursor c
    cdef uint16_t count, i
    cdef int16_t fmt
    cdef list fields
    _init(&c, data, length, "RowDescription")
    _need(&c, 2)
    count = _uint16(&c)
    # Each field takes at least 19 bytes: an empty name's NUL and 18 fixed.
    if <Py_ssize_t>count * 19 > c.end - c.p:
        raise _ProtocolError(
            f"malformed RowDescription message: {count} fields declared but only "
            f"{c.end - c.p} bytes follow")
    fields = [None] * count
    for i in range(count):
        name = _text(&c)
        _need(&c, 18)
        table_oid = _uint32(&c)
        attnum = _int16(&c)
        type_oid = _uint32(&c)
        type_size = _int16(&c)
        type_modifier = _int32(&c)
        fmt = _int16(&c)
        if fmt != 0 and fmt != 1:
            raise _ProtocolError(
                f"malformed RowDescription message: format code {fmt} for field {i}")
        fields[i] = (name, table_oid, attnum, type_oid, type_size, type_modifier, fmt)
    _done(&c)
    return fields


# -- Python entry points of the parsers ------------------------------------------

def parse_authentication(payload):
    """Parse an Authentication* message (tag ``R``).

    :param payload: The message payload (bytes-like).
    :return: ``(code, detail)``. *detail* is None for AuthenticationOk,
        KerberosV5, CleartextPassword, GSS and SSPI; the 4-byte salt for
        MD5Password; a tuple of mechanism names for SASL; the data (bytes)
        for GSSContinue, SASLContinue and SASLFinal.
    :raises ProtocolError: For an unknown code or a malformed payload.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_authentication(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_backend_key_data(payload, int protocol_version=_tags.PROTOCOL_3_0):
    """Parse a BackendKeyData message (tag ``K``).

    :param payload: The message payload.
    :param protocol_version: The negotiated protocol version: under 3.0 the
        secret key must be exactly 4 bytes, under 3.2 from 4 to 256 bytes.
    :return: ``(process_id, secret_key)``.
    :raises ProtocolError: If the key length is not allowed.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_backend_key_data(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b),
                                    protocol_version)


def parse_command_complete(payload):
    """Parse a CommandComplete message (tag ``C``).

    :return: The command tag, e.g. ``"SELECT 1"``.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_command_complete(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_copy_response(payload):
    """Parse a CopyInResponse, CopyOutResponse or CopyBothResponse message.

    :return: ``(format, column_formats)``: the overall format (0 text,
        1 binary) and a tuple with each column's format code.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_copy_response(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_data_row(payload):
    """Parse a DataRow message (tag ``D``) into raw values.

    For tests and proxies; the client decodes rows with a RowDecoder.

    :return: A list with each value's bytes, or None for NULL.
    :raises ProtocolError: If a length is negative (other than -1 for
        NULL), or the counts and lengths do not fit the payload.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_data_row(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_error_response(payload):
    """Parse an ErrorResponse or NoticeResponse message (tag ``E`` / ``N``).

    :return: A dict from field type (one character, e.g. ``"C"`` for the
        SQLSTATE, ``"M"`` for the message) to the server's text, decoded as
        UTF-8 with undecodable bytes replaced.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_error_response(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_function_call_response(payload):
    """Parse a FunctionCallResponse message (tag ``V``).

    :return: The result bytes, or None for NULL.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_function_call_response(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_negotiate_protocol_version(payload):
    """Parse a NegotiateProtocolVersion message (tag ``v``).

    :return: ``(version, unrecognized_options)``: the newest protocol
        version the server supports for the requested major version, as a
        whole version number (``196608`` for 3.0), and a tuple of the
        ``_pq_.`` options it did not recognize.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_negotiate_protocol_version(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_notification_response(payload):
    """Parse a NotificationResponse message (tag ``A``).

    :return: ``(process_id, channel, payload)``.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_notification_response(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_parameter_description(payload):
    """Parse a ParameterDescription message (tag ``t``).

    :return: A tuple of parameter type OIDs.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_parameter_description(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_parameter_status(payload):
    """Parse a ParameterStatus message (tag ``S``).

    :return: ``(name, value)``.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_parameter_status(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_ready_for_query(payload):
    """Parse a ReadyForQuery message (tag ``Z``).

    :return: The transaction status: ``"I"`` (idle), ``"T"`` (in a
        transaction block) or ``"E"`` (in a failed transaction block).
    :raises ProtocolError: For any other status or payload size.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_ready_for_query(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_row_description(payload):
    """Parse a RowDescription message (tag ``T``).

    :return: A list with one tuple per field: ``(name, table_oid,
        column_attnum, type_oid, type_size, type_modifier, format)``.
    :raises ProtocolError: If the field count does not fit the payload, or a
        name is not valid UTF-8.
    """
    cdef bytes b = _as_bytes(payload)
    return c_parse_row_description(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


def parse_empty(payload, str message="message"):
    """Check the payload of a message that has none.

    For ParseComplete, BindComplete, CloseComplete, NoData, PortalSuspended,
    EmptyQueryResponse and CopyDone (and Sync, Flush, Terminate).

    :param payload: The message payload.
    :param message: The message name, for the error text.
    :raises ProtocolError: If the payload is not empty.
    """
    if len(payload) != 0:
        raise _ProtocolError(f"malformed {message}: {len(payload)} bytes of payload "
                             f"where none is allowed")


@cython.final
cdef class RawRowDecoder(RowDecoder):
    """A RowDecoder that keeps values as raw bytes.

    Each DataRow becomes a tuple with one ``bytes`` object per value, or None
    for NULL. For proxies, tests and benchmarks; the client plans real
    decoders from the RowDescription. Raises ProtocolError for a malformed
    DataRow, like :func:`parse_data_row`.
    """

    def __init__(self):
        # Nothing to plan: RowDecoder's own __init__ (codecs, names) is not
        # called, and its fields stay empty.
        pass

    cdef object decode_row(self, const char* data, Py_ssize_t length):
        return _data_row(data, length, True)


@cython.final
cdef class ExtendedReply:
    """What :meth:`MessageReader.read_reply` collects of one reply.

    :param decoder: The RowDecoder planned for the result, or None when the
        request returns no rows.
    :param multi: True when several Executes share the Sync (their rows all
        go to ``rows``).

    Attributes: ``decoder`` (set to None once no more rows are expected),
    ``rows`` (the decoded rows), ``status`` (the last CommandComplete tag,
    or None), ``suspended`` (a PortalSuspended arrived: the portal has more
    rows), ``multi`` and ``transaction_status`` (``"I"``, ``"T"`` or
    ``"E"`` from ReadyForQuery; None until it arrives).
    """

    def __init__(self, RowDecoder decoder=None, bint multi=False):
        self.decoder = decoder
        self.rows = []
        self.status = None
        self.suspended = False
        self.multi = multi
        self.transaction_status = None

    def __repr__(self):
        return (f"<ExtendedReply rows={len(self.rows)} status={self.status!r} "
                f"suspended={self.suspended} transaction_status={self.transaction_status!r}>")
