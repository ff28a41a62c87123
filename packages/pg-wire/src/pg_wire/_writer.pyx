# cython: language_level=3, freethreading_compatible=True
"""Encoding of PostgreSQL v3 frontend messages into a WriteBuffer.

Writes what a client sends (startup packets, authentication responses,
simple and extended query messages, COPY and function calls), straight into
a pg_codecs WriteBuffer, length prefix included. Knows nothing about
sockets or asyncio (the caller sends the buffer) and nothing about what a
parameter value means (Bind carries an opaque parameter section that
pg_codecs encoded).

How it works
------------
Every writer validates and writes one whole message, or raises and leaves
the buffer exactly as it found it:

* names, query text and other strings are refused with ValueError when
  they contain a NUL byte (a NUL would end the string early and let the
  rest be read as something else, e.g. another startup parameter);
* counts that travel as 16-bit integers (parameters, format codes) are
  refused above 65,535, and values that do not fit their field raise
  OverflowError;
* sizes known in advance are checked against the buffer's message limit
  before anything is copied; WriteBuffer.end_message() checks every
  message again before it is complete;
* whatever fails half-way (including MemoryError), the buffer is truncated
  back to where the message started, so no partial message can be sent.

Bind is the one message whose middle the caller may write: ``start_bind()``
writes the header, portal and statement names and leaves the message open;
the caller encodes the parameter format codes and values into the same
buffer (pg_codecs does this, or :func:`write_bind_params`); ``end_bind()``
adds the result format codes and closes the message. If encoding a value
fails, ``abort_message()`` drops the open message. ``write_bind()`` does
all three with a parameter section encoded beforehand.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int16_t, int32_t, uint16_t, uint32_t
from libc.string cimport memchr

from pg_codecs._buffer cimport WriteBuffer
from pg_codecs._codecs cimport ParamEncoder, RowDecoder
from pg_wire cimport _tags


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


# -- helpers ---------------------------------------------------------------------

cdef inline Py_ssize_t _begin(WriteBuffer buf) except -1:
    # Where the new message starts; refuses to interleave with an open one.
    if buf is None:
        raise TypeError("buf must be a WriteBuffer, not None")
    if buf._message_pos >= 0:
        raise RuntimeError("a message is still open in this WriteBuffer "
                           "(finish it with end_bind() or drop it with abort_message())")
    return buf._length


cdef int _rollback(WriteBuffer buf, Py_ssize_t mark) except -1:
    # Drop everything written since mark (the start of the failed message).
    if buf._length > mark:
        buf.truncate(mark)
    buf._message_pos = -1
    return 0


cdef inline int _check_size(WriteBuffer buf, Py_ssize_t size, str what) except -1:
    # size: the value the message's length field would hold.
    if size > buf._max_message_size:
        raise ValueError(
            f"{what} message of {size} bytes exceeds the limit of "
            f"{buf._max_message_size} bytes; nothing was sent")
    return 0


cdef inline const char* _utf8(str s, Py_ssize_t* n, str what) except NULL:
    # UTF-8 bytes of s, refused if they hold a NUL. The error text never
    # includes the value: it may be a password.
    cdef const char* p
    if s is None:
        raise TypeError(f"{what} must be a str, not None")
    p = PyUnicode_AsUTF8AndSize(s, n)
    if memchr(p, 0, <size_t>n[0]) is not NULL:
        raise ValueError(f"{what} contains a NUL byte, which PostgreSQL strings cannot hold")
    return p


cdef inline int _write_cstr(WriteBuffer buf, str s, str what) except -1:
    cdef Py_ssize_t n
    cdef const char* p = _utf8(s, &n, what)
    buf.write_raw(p, n)
    return buf.write_byte(0)


cdef int _write_formats(WriteBuffer buf, object formats, str what) except -1:
    # Int16 count, then one Int16 format code (0 text, 1 binary) each.
    cdef Py_ssize_t n
    cdef int code
    if formats is None:
        return buf.write_int16(0)
    n = len(formats)
    if n > _tags.MAX_PARAMETERS:
        raise ValueError(f"{n} {what} format codes; the protocol allows at most "
                         f"{_tags.MAX_PARAMETERS}")
    buf.write_uint16(<uint16_t>n)
    for f in formats:
        code = f
        if code != 0 and code != 1:
            raise ValueError(f"{what} format code must be 0 (text) or 1 (binary), not {code}")
        buf.write_int16(<int16_t>code)
    return 0


cdef int _write_values(WriteBuffer buf, object values, str what) except -1:
    # Int16 count, then each value: Int32 length (-1 for None) and its bytes.
    cdef Py_ssize_t n = 0 if values is None else len(values)
    if n > _tags.MAX_PARAMETERS:
        raise ValueError(f"{n} {what}; the protocol allows at most {_tags.MAX_PARAMETERS}")
    buf.write_uint16(<uint16_t>n)
    if n:
        for value in values:
            if value is None:
                buf.write_int32(-1)
            else:
                buf.write_len_prefixed_buffer(value)
    return 0


cdef int _write_result_formats(WriteBuffer buf, object formats) except -1:
    # A RowDecoder knows the formats it planned for; anything else is a
    # sequence of codes.
    if isinstance(formats, RowDecoder):
        return (<RowDecoder>formats).write_result_formats(buf)
    return _write_formats(buf, formats, "result")


cdef char _kind(object kind, str what) except 0:
    if kind == "S" or kind == b"S":
        return b"S"
    if kind == "P" or kind == b"P":
        return b"P"
    raise ValueError(f"{what} target must be 'S' (statement) or 'P' (portal), not {kind!r}")


cdef int _write_data_message(WriteBuffer buf, char tag, object data, str what,
                             Py_ssize_t limit) except -1:
    # A message whose payload is the bytes of *data* (CopyData, SASLResponse).
    cdef Py_buffer view
    cdef Py_ssize_t mark = _begin(buf)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len + 4 > limit:
            raise ValueError(f"{what} message of {view.len + 4} bytes exceeds the limit of "
                             f"{limit} bytes; nothing was sent")
        _check_size(buf, view.len + 4, what)
        buf.start_message(tag)
        buf.write_raw(<const char*>view.buf, view.len)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise
    finally:
        PyBuffer_Release(&view)
    return 0


cdef int _write_empty(WriteBuffer buf, char tag) except -1:
    cdef Py_ssize_t mark = _begin(buf)
    try:
        buf.start_message(tag)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise
    return 0


# -- startup packets -----------------------------------------------------------------

cpdef void write_startup_message(WriteBuffer buf, object parameters,
                                 int32_t protocol_version=_tags.PROTOCOL_3_0) except *:
    """Write a StartupMessage.

    :param buf: The buffer to append to.
    :param parameters: Run-time parameters, a mapping or an iterable of
        ``(name, value)`` pairs of str: ``user`` (required by the server),
        ``database``, ``application_name``, ``client_encoding``, ...
    :param protocol_version: The version to request (the newest one the
        client accepts): ``PROTOCOL_3_0`` or ``PROTOCOL_3_2``.
    :raises ValueError: If a name is empty, a name or value holds a NUL byte
        (checked for all parameters before anything is written), the major
        version is not 3, or the packet would exceed the server's limit of
        10,000 bytes.
    """
    cdef Py_ssize_t mark = _begin(buf)
    cdef Py_ssize_t size = 9   # length, version, final NUL
    cdef Py_ssize_t n
    cdef list pairs
    if (protocol_version >> 16) != 3:
        raise ValueError(f"protocol version {protocol_version >> 16}."
                         f"{protocol_version & 0xFFFF} is not a 3.x version")
    items = parameters.items() if hasattr(parameters, "items") else parameters
    pairs = [(name, value) for name, value in items]
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("startup parameter names and values must be str")
        _utf8(name, &n, f"startup parameter name {name[:63]!r}")
        if n == 0:
            raise ValueError("a startup parameter name is empty (it would end the list)")
        size += n + 1
        _utf8(value, &n, f"the value of startup parameter {name!r}")
        size += n + 1
    if size > _tags.MAX_STARTUP_PACKET_SIZE:
        raise ValueError(f"startup packet of {size} bytes exceeds the server's limit of "
                         f"{_tags.MAX_STARTUP_PACKET_SIZE} bytes; nothing was sent")
    try:
        buf.start_message(0)
        buf.write_int32(protocol_version)
        for name, value in pairs:
            _write_cstr(buf, name, "startup parameter name")
            _write_cstr(buf, value, "startup parameter value")
        buf.write_byte(0)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise


cdef int _write_request(WriteBuffer buf, int32_t code) except -1:
    cdef Py_ssize_t mark = _begin(buf)
    try:
        buf.start_message(0)
        buf.write_int32(code)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise
    return 0


cpdef void write_ssl_request(WriteBuffer buf) except *:
    """Write an SSLRequest (``Int32(8) Int32(80877103)``)."""
    _write_request(buf, _tags.SSL_REQUEST_CODE)


cpdef void write_gssenc_request(WriteBuffer buf) except *:
    """Write a GSSENCRequest (``Int32(8) Int32(80877104)``)."""
    _write_request(buf, _tags.GSSENC_REQUEST_CODE)


cpdef void write_cancel_request(WriteBuffer buf, int32_t process_id,
                                object secret_key) except *:
    """Write a CancelRequest, sent on a new connection of its own.

    :param process_id: The process ID from BackendKeyData.
    :param secret_key: The secret key from BackendKeyData: 4 bytes under
        protocol 3.0, 4 to 256 bytes under 3.2.
    :raises ValueError: If the key length is outside 4..256.
    """
    cdef Py_ssize_t mark = _begin(buf)
    cdef Py_buffer view
    PyObject_GetBuffer(secret_key, &view, PyBUF_SIMPLE)
    try:
        if not _tags.MIN_CANCEL_KEY_LENGTH <= view.len <= _tags.MAX_CANCEL_KEY_LENGTH:
            raise ValueError(f"a cancel key of {view.len} bytes; keys are "
                             f"{_tags.MIN_CANCEL_KEY_LENGTH} to {_tags.MAX_CANCEL_KEY_LENGTH} "
                             f"bytes long")
        buf.start_message(0)
        buf.write_int32(_tags.CANCEL_REQUEST_CODE)
        buf.write_int32(process_id)
        buf.write_raw(<const char*>view.buf, view.len)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise
    finally:
        PyBuffer_Release(&view)


# -- authentication ------------------------------------------------------------------

cpdef void write_password_message(WriteBuffer buf, object password) except *:
    """Write a PasswordMessage: a cleartext password or an MD5 hash.

    :param password: str (sent as UTF-8) or bytes, without NUL bytes.
    :raises ValueError: If it holds a NUL byte (the text is not echoed).
    """
    cdef Py_ssize_t mark = _begin(buf)
    cdef Py_buffer view
    cdef bint have_view = False
    cdef Py_ssize_t n
    cdef const char* p
    if isinstance(password, str):
        p = _utf8(<str>password, &n, "the password")
    else:
        PyObject_GetBuffer(password, &view, PyBUF_SIMPLE)
        have_view = True
        p = <const char*>view.buf
        n = view.len
    try:
        if memchr(p, 0, <size_t>n) is not NULL:
            raise ValueError("the password contains a NUL byte")
        if n + 5 > _tags.AUTH_MESSAGE_LIMIT:
            raise ValueError(f"a password of {n} bytes is longer than the server accepts")
        buf.start_message(_tags.PASSWORD_MESSAGE_TAG)
        buf.write_raw(p, n)
        buf.write_byte(0)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise
    finally:
        if have_view:
            PyBuffer_Release(&view)


cpdef void write_sasl_initial_response(WriteBuffer buf, str mechanism,
                                       object data) except *:
    """Write a SASLInitialResponse.

    :param mechanism: The chosen mechanism, e.g. ``"SCRAM-SHA-256"``.
    :param data: The mechanism's initial response (bytes-like), or None
        for none (sent as length -1).
    """
    cdef Py_ssize_t mark = _begin(buf)
    try:
        buf.start_message(_tags.PASSWORD_MESSAGE_TAG)
        _write_cstr(buf, mechanism, "the SASL mechanism name")
        if data is None:
            buf.write_int32(-1)
        else:
            buf.write_len_prefixed_buffer(data)
        if buf._length - mark > _tags.AUTH_MESSAGE_LIMIT:
            raise ValueError("SASLInitialResponse is longer than the server accepts")
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise


cpdef void write_sasl_response(WriteBuffer buf, object data) except *:
    """Write a SASLResponse carrying the mechanism's *data* (bytes-like)."""
    _write_data_message(buf, _tags.PASSWORD_MESSAGE_TAG, data, "SASLResponse",
                        _tags.AUTH_MESSAGE_LIMIT)


cpdef void write_gss_response(WriteBuffer buf, object data) except *:
    """Write a GSSResponse carrying a GSSAPI or SSPI token (bytes-like)."""
    _write_data_message(buf, _tags.PASSWORD_MESSAGE_TAG, data, "GSSResponse",
                        _tags.AUTH_MESSAGE_LIMIT)


# -- simple query ------------------------------------------------------------------

cpdef void write_query(WriteBuffer buf, str query) except *:
    """Write a Query (simple query protocol).

    :raises ValueError: If *query* holds a NUL byte or is too long.
    """
    cdef Py_ssize_t mark = _begin(buf)
    cdef Py_ssize_t n
    cdef const char* p = _utf8(query, &n, "the query text")
    _check_size(buf, n + 5, "Query")
    try:
        buf.start_message(_tags.QUERY_TAG)
        buf.write_raw(p, n)
        buf.write_byte(0)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise


# -- extended query ----------------------------------------------------------------

cpdef void write_parse(WriteBuffer buf, str name, str query,
                       object param_types=()) except *:
    """Write a Parse.

    :param name: Prepared statement name; ``""`` for the unnamed statement.
    :param query: SQL text with ``$n`` placeholders.
    :param param_types: Parameter type OIDs (0 lets the server infer one);
        may be shorter than the number of placeholders.
    :raises ValueError: For a NUL byte, more than 65,535 types, or a
        message over the size limit.
    :raises OverflowError: For an OID outside 0..2**32-1.
    """
    cdef Py_ssize_t mark = _begin(buf)
    cdef Py_ssize_t n_types = 0 if param_types is None else len(param_types)
    cdef Py_ssize_t n_name, n_query
    cdef const char* p_name = _utf8(name, &n_name, "the statement name")
    cdef const char* p_query = _utf8(query, &n_query, "the query text")
    if n_types > _tags.MAX_PARAMETERS:
        raise ValueError(f"{n_types} parameter types; the protocol allows at most "
                         f"{_tags.MAX_PARAMETERS} parameters")
    _check_size(buf, 4 + n_name + 1 + n_query + 1 + 2 + 4 * n_types, "Parse")
    try:
        buf.start_message(_tags.PARSE_TAG)
        buf.write_raw(p_name, n_name)
        buf.write_byte(0)
        buf.write_raw(p_query, n_query)
        buf.write_byte(0)
        buf.write_uint16(<uint16_t>n_types)
        if n_types:
            for oid in param_types:
                buf.write_uint32(<uint32_t>oid)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise


cdef int _open_bind(WriteBuffer buf, str portal, str statement) except -1:
    # The start of a Bind: header and the two names; the message stays open.
    buf.start_message(_tags.BIND_TAG)
    _write_cstr(buf, portal, "the portal name")
    _write_cstr(buf, statement, "the statement name")
    return 0


cdef int _write_execute(WriteBuffer buf, str portal, int32_t max_rows) except -1:
    # A whole Execute; the caller rolls back on error.
    if max_rows < 0:
        raise ValueError(f"max_rows must be 0 (no limit) or positive, not {max_rows}")
    buf.start_message(_tags.EXECUTE_TAG)
    _write_cstr(buf, portal, "the portal name")
    buf.write_int32(max_rows)
    buf.end_message()
    return 0


cpdef void start_bind(WriteBuffer buf, str portal, str statement) except *:
    """Open a Bind message: header, portal name and statement name.

    The caller then writes the parameter section (format codes and values,
    as pg_codecs or :func:`write_bind_params` encode it) into *buf*, and
    closes the message with :func:`end_bind`, or drops it with
    :func:`abort_message` if encoding fails.

    :param portal: Portal name; ``""`` for the unnamed portal.
    :param statement: Prepared statement name; ``""`` for the unnamed one.
    """
    cdef Py_ssize_t mark = _begin(buf)
    try:
        _open_bind(buf, portal, statement)
    except BaseException:
        _rollback(buf, mark)
        raise


cpdef void write_bind_params(WriteBuffer buf, object formats, object values) except *:
    """Write a Bind parameter section from already encoded values.

    For use between :func:`start_bind` and :func:`end_bind` (the client's
    codecs write this section themselves; this is for tests and proxies).

    :param formats: Parameter format codes (0 or 1): none (all text), one
        (for all) or one per value.
    :param values: Each parameter's encoded bytes (bytes-like), or None
        for NULL.
    :raises ValueError: For more than 65,535 values or format codes. On
        any error the buffer is left as it was before this call.
    """
    cdef Py_ssize_t mark
    if buf is None:
        raise TypeError("buf must be a WriteBuffer, not None")
    mark = buf._length
    try:
        _write_formats(buf, formats, "parameter")
        _write_values(buf, values, "parameters")
    except BaseException:
        if buf._length > mark:
            buf.truncate(mark)
        raise


cpdef void end_bind(WriteBuffer buf, object result_formats=()) except *:
    """Close the Bind opened by :func:`start_bind`.

    :param result_formats: Result column format codes (0 or 1): none (all
        text), one (for all columns) or one per column; or the RowDecoder
        planned for the result, which writes the codes it expects.
    :raises ValueError: For a bad format code or a message over the size
        limit; the whole Bind is then dropped from the buffer.
    """
    cdef Py_ssize_t start
    if buf is None:
        raise TypeError("buf must be a WriteBuffer, not None")
    if buf._message_pos < 1 or buf.data_ptr()[buf._message_pos - 1] != _tags.BIND_TAG:
        raise RuntimeError("end_bind() without start_bind()")
    start = buf._message_pos - 1
    try:
        _write_result_formats(buf, result_formats)
        buf.end_message()
    except BaseException:
        _rollback(buf, start)
        raise


cpdef void abort_message(WriteBuffer buf) except *:
    """Drop the message left open by :func:`start_bind`, if any."""
    if buf is None:
        raise TypeError("buf must be a WriteBuffer, not None")
    if buf._message_pos >= 0:
        _rollback(buf, buf._message_pos - (1 if buf._message_tagged else 0))


cpdef void write_bind(WriteBuffer buf, str portal, str statement,
                      object bind_data, object result_formats=()) except *:
    """Write a whole Bind around a parameter section encoded beforehand.

    :param portal: Portal name; ``""`` for the unnamed portal.
    :param statement: Prepared statement name; ``""`` for the unnamed one.
    :param bind_data: The parameter section exactly as it goes on the wire
        (Int16 format count, format codes, Int16 value count, values), as a
        WriteBuffer or bytes-like object; None for no parameters.
    :param result_formats: Result column format codes, or a RowDecoder, as
        for :func:`end_bind`.
    :raises ValueError: For a NUL byte in a name, a bad format code, a
        parameter section shorter than its two counts, or a message over
        the size limit.
    """
    cdef Py_ssize_t mark = _begin(buf)
    cdef Py_buffer view
    cdef bint have_view = False
    cdef WriteBuffer wbuf
    cdef Py_ssize_t n_portal, n_stmt
    cdef const char* p_portal = _utf8(portal, &n_portal, "the portal name")
    cdef const char* p_stmt = _utf8(statement, &n_stmt, "the statement name")
    try:
        buf.start_message(_tags.BIND_TAG)
        buf.write_raw(p_portal, n_portal)
        buf.write_byte(0)
        buf.write_raw(p_stmt, n_stmt)
        buf.write_byte(0)
        if bind_data is None:
            buf.write_int32(0)   # no format codes, no values
        elif type(bind_data) is WriteBuffer:
            wbuf = <WriteBuffer>bind_data
            if wbuf is buf:
                # Growing buf would move the bytes being copied.
                raise ValueError("bind_data must not be the buffer the Bind is written to")
            if wbuf._length < 4:
                raise ValueError("bind_data is shorter than its two counts")
            _check_size(buf, buf._length - mark + wbuf._length, "Bind")
            buf.write_wbuf(wbuf)
        else:
            PyObject_GetBuffer(bind_data, &view, PyBUF_SIMPLE)
            have_view = True
            if view.len < 4:
                raise ValueError("bind_data is shorter than its two counts")
            _check_size(buf, buf._length - mark + view.len, "Bind")
            buf.write_raw(<const char*>view.buf, view.len)
        _write_result_formats(buf, result_formats)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise
    finally:
        if have_view:
            PyBuffer_Release(&view)


cpdef void write_bind_execute(WriteBuffer buf, str portal, str statement, object encoder,
                              object args, object result_formats=(), int32_t max_rows=0,
                              bint sync=True) except *:
    """Write Bind, Execute and (by default) Sync: one extended-query request.

    The parameter section of the Bind is encoded straight into *buf* by
    *encoder*: a pg_codecs ParamEncoder (at C level), or any object with a
    ``write_params(buf, args)`` method that appends the section.

    :param portal: Portal name; ``""`` for the unnamed portal.
    :param statement: Prepared statement name; ``""`` for the unnamed one.
    :param args: The parameter values, as *encoder* takes them.
    :param result_formats: Result column format codes, or a RowDecoder, as
        for :func:`end_bind`.
    :param max_rows: Most rows to return; 0 for no limit.
    :param sync: Also write the Sync that ends the request.
    :raises ValueError: As :func:`start_bind`, :func:`end_bind` and
        :func:`write_execute` do; whatever the encoder raises. On any error
        the buffer is left as it was before this call.
    """
    cdef Py_ssize_t mark = _begin(buf)
    try:
        _open_bind(buf, portal, statement)
        if type(encoder) is ParamEncoder:
            (<ParamEncoder>encoder).encode_params(buf, args)
        else:
            encoder.write_params(buf, args)
        _write_result_formats(buf, result_formats)
        buf.end_message()
        _write_execute(buf, portal, max_rows)
        if sync:
            buf.start_message(_tags.SYNC_TAG)
            buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise

cdef int _write_target(WriteBuffer buf, char tag, object kind, str name,
                       str what) except -1:
    # Describe and Close: a kind byte (S or P) and the target's name.
    cdef Py_ssize_t mark = _begin(buf)
    cdef char k = _kind(kind, what)
    try:
        buf.start_message(tag)
        buf.write_byte(k)
        _write_cstr(buf, name, f"the {what} target name")
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise
    return 0


cpdef void write_describe(WriteBuffer buf, object kind, str name) except *:
    """Write a Describe.

    :param kind: ``"S"`` (prepared statement) or ``"P"`` (portal); str or
        bytes.
    :param name: Its name; ``""`` for the unnamed one.
    """
    _write_target(buf, _tags.DESCRIBE_TAG, kind, name, "Describe")


cpdef void write_execute(WriteBuffer buf, str portal, int32_t max_rows=0) except *:
    """Write an Execute.

    :param portal: Portal name; ``""`` for the unnamed portal.
    :param max_rows: Most rows to return; 0 for no limit.
    :raises ValueError: If *max_rows* is negative.
    """
    cdef Py_ssize_t mark = _begin(buf)
    try:
        _write_execute(buf, portal, max_rows)
    except BaseException:
        _rollback(buf, mark)
        raise


cpdef void write_close(WriteBuffer buf, object kind, str name) except *:
    """Write a Close of a prepared statement (``"S"``) or portal (``"P"``)."""
    _write_target(buf, _tags.CLOSE_TAG, kind, name, "Close")


cpdef void write_sync(WriteBuffer buf) except *:
    """Write a Sync."""
    _write_empty(buf, _tags.SYNC_TAG)


cpdef void write_flush(WriteBuffer buf) except *:
    """Write a Flush."""
    _write_empty(buf, _tags.FLUSH_TAG)


cpdef void write_terminate(WriteBuffer buf) except *:
    """Write a Terminate."""
    _write_empty(buf, _tags.TERMINATE_TAG)


# -- COPY ------------------------------------------------------------------------

cpdef void write_copy_data(WriteBuffer buf, object data) except *:
    """Write a CopyData carrying *data* (bytes-like).

    :raises ValueError: If the message would exceed the size limit; checked
        before any byte is copied.
    """
    _write_data_message(buf, _tags.COPY_DATA_TAG, data, "CopyData", buf._max_message_size
                        if buf is not None else 0)


cpdef bint write_copy_records(WriteBuffer buf, object encoder, object records,
                              Py_ssize_t max_bytes) except -1:
    """Write a CopyData of binary COPY tuples, encoded in place by *encoder*.

    *encoder* (a pg_codecs ParamEncoder, or any object with its
    ``write_copy_records(buf, records, max_bytes)`` method) appends the
    tuples for the next items of the iterator *records* straight into *buf*,
    inside the message, until the payload holds at least *max_bytes* bytes
    or *records* runs out. So a binary COPY needs no buffer of its own and no
    copy of its data before the socket. The stream's header and trailer are
    written with :func:`write_copy_data`.

    :return: True when *records* is exhausted. When it yielded nothing, no
        message is written.
    :raises ValueError: If the message would exceed the size limit. On any
        error (whatever the encoder raises, too) the buffer is left as it
        was before this call: no tuple of this message is sent.
    """
    cdef Py_ssize_t mark = _begin(buf)
    cdef Py_ssize_t payload
    cdef bint done
    if max_bytes > buf._max_message_size:
        max_bytes = buf._max_message_size  # no more fits a message (and no overflow below)
    try:
        buf.start_message(_tags.COPY_DATA_TAG)
        payload = buf._length
        # The encoder's limit is on the whole buffer, which may hold other
        # messages before this one.
        done = bool(encoder.write_copy_records(buf, records, payload + max_bytes))
        if buf._length == payload:
            _rollback(buf, mark)
        else:
            buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise
    return done


cpdef void write_copy_done(WriteBuffer buf) except *:
    """Write a CopyDone."""
    _write_empty(buf, _tags.COPY_DONE_TAG)


cpdef void write_copy_fail(WriteBuffer buf, str message) except *:
    """Write a CopyFail with the reason *message*."""
    cdef Py_ssize_t mark = _begin(buf)
    cdef Py_ssize_t n
    cdef const char* p = _utf8(message, &n, "the CopyFail message")
    if n + 5 > _tags.SMALL_FRONTEND_MESSAGE_LIMIT:
        raise ValueError(f"a CopyFail message of {n} bytes is longer than the server accepts")
    try:
        buf.start_message(_tags.COPY_FAIL_TAG)
        buf.write_raw(p, n)
        buf.write_byte(0)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise


# -- function call ---------------------------------------------------------------

cpdef void write_function_call(WriteBuffer buf, uint32_t function_oid,
                               object arg_formats, object args,
                               int result_format=0) except *:
    """Write a FunctionCall.

    :param function_oid: OID of the function to call.
    :param arg_formats: Argument format codes: none, one, or one per argument.
    :param args: Each argument's encoded bytes, or None for NULL.
    :param result_format: Format code for the result (0 or 1).
    """
    cdef Py_ssize_t mark = _begin(buf)
    if result_format != 0 and result_format != 1:
        raise ValueError(f"result format code must be 0 or 1, not {result_format}")
    try:
        buf.start_message(_tags.FUNCTION_CALL_TAG)
        buf.write_uint32(function_oid)
        _write_formats(buf, arg_formats, "argument")
        _write_values(buf, args, "arguments")
        buf.write_int16(<int16_t>result_format)
        buf.end_message()
    except BaseException:
        _rollback(buf, mark)
        raise
