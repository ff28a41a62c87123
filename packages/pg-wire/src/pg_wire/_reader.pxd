# cython: language_level=3
"""C-level contract of the message reader and the backend payload parsers.

For Cython callers (pg-client's hot paths, should they move to Cython):

* ``MessageReader.next_message(&tag, &payload)`` hands out the next complete
  message as its tag byte and an FRBuffer over its payload (the bytes after
  the 5-byte header). The FRBuffer points into the reader's own buffers and
  is valid until the next call on the reader.
* ``MessageReader.read_rows(decoder, out)`` runs the DataRow loop in C.
* ``MessageReader.read_reply(reply)`` consumes the routine messages of an
  extended-query reply up to ReadyForQuery into an ``ExtendedReply``.
* ``c_parse_*(data, length)`` parse one backend payload; they raise
  pg_wire.errors.ProtocolError for anything malformed.
"""

cimport cython
from libc.stdint cimport int32_t

from pg_codecs._buffer cimport FRBuffer
from pg_codecs._codecs cimport RowDecoder


@cython.final
cdef class MessageReader:
    cdef:
        # The chunk being parsed: a bytes object fed in (zero copy) or one of
        # our own bytearrays of coalesced small chunks. _ptr points at its
        # data; [_pos, _end) is what is left of it.
        object _cur
        const char* _ptr
        Py_ssize_t _pos
        Py_ssize_t _end
        # Later chunks, oldest first, starting at index _head.
        list _chunks
        Py_ssize_t _head
        # The last pending chunk when it is a bytearray small chunks are
        # appended to; None otherwise. Never the current chunk.
        bytearray _acc
        # Bytes not yet consumed: the rest of _cur plus all pending chunks.
        Py_ssize_t _buffered
        # Owner of the payload of the last message when it had to be copied
        # together from several chunks.
        bytes _assembled
        # Largest acceptable length field per tag byte, already clamped to
        # _max_message_size; 0 marks a tag that is not allowed.
        int32_t _limits[256]
        int32_t _startup_limit
        Py_ssize_t _max_message_size
        bint _frontend
        bint _strict
        bint _startup
        str _failure
        # The last message taken.
        char _tag
        bint _is_startup
        FRBuffer _payload

    cdef int _build_limits(self) except -1
    cdef int _set_cur(self, object chunk) except -1
    cdef int _drop_cur(self) except -1
    cdef int _append_small(self, const char* data, Py_ssize_t n) except -1
    cdef int _next_chunk(self) except -1
    cdef int _peek(self, char* dst, Py_ssize_t n) except -1
    cdef int _peek_tag(self) except -2
    cdef int _consume(self, char* dst, Py_ssize_t n) except -1
    cdef int _take(self) except -1
    cdef int _take_slow(self) except -1
    cdef int _take_startup(self) except -1
    cdef int _bad_header(self, char tag, int32_t length) except -1
    cdef int _bad_startup(self, int32_t length) except -1
    cdef int _raise_failed(self) except -1
    cdef object _payload_bytes(self)

    cdef int next_message(self, char* tag, FRBuffer* payload) except -1
    cpdef Py_ssize_t read_rows(self, RowDecoder decoder, list out) except -1
    cpdef Py_ssize_t skip_rows(self) except -1
    cpdef Py_ssize_t read_copy_data(self, list out) except -1
    cpdef Py_ssize_t read_copy_data_into(self, bytearray out, Py_ssize_t max_size=*) except -1
    cpdef bint read_reply(self, ExtendedReply reply) except -1


@cython.final
cdef class ExtendedReply:
    # What MessageReader.read_reply() collects of one extended-query reply.
    cdef public RowDecoder decoder
    cdef public list rows
    cdef public object status
    cdef public bint suspended
    cdef public bint multi
    cdef public object transaction_status


@cython.final
cdef class RawRowDecoder(RowDecoder):
    pass


cdef object c_parse_authentication(const char* data, Py_ssize_t length)
cdef object c_parse_backend_key_data(const char* data, Py_ssize_t length,
                                     int32_t protocol_version)
cdef object c_parse_command_complete(const char* data, Py_ssize_t length)
cdef object c_parse_copy_response(const char* data, Py_ssize_t length)
cdef object c_parse_data_row(const char* data, Py_ssize_t length)
cdef object c_parse_error_response(const char* data, Py_ssize_t length)
cdef object c_parse_function_call_response(const char* data, Py_ssize_t length)
cdef object c_parse_negotiate_protocol_version(const char* data, Py_ssize_t length)
cdef object c_parse_notification_response(const char* data, Py_ssize_t length)
cdef object c_parse_parameter_description(const char* data, Py_ssize_t length)
cdef object c_parse_parameter_status(const char* data, Py_ssize_t length)
cdef object c_parse_ready_for_query(const char* data, Py_ssize_t length)
cdef object c_parse_row_description(const char* data, Py_ssize_t length)
