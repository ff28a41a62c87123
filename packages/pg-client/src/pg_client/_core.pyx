# cython: language_level=3
"""The per-query part of the protocol state machine, compiled.

``_protocol`` is the sans-I/O core of a connection (read its docstring for
how the operation queue works). The classes every query goes through live
here as Cython classes: ``Operation`` (the base of every request in flight),
``ExecuteOp`` / ``ExecuteManyOp`` (Bind + Execute replies) and
``ProtocolCore`` (the queue and the byte stream). Their fields are C struct
members and the loop over received bytes calls pg-wire's reader at C level;
``_protocol`` re-exports them and keeps the rarer operations (startup,
prepare, simple query, COPY) as Python subclasses of ``Operation``.

Nothing here does I/O. Operations take any waiter with ``done()``,
``set_result()`` and ``set_exception()``; ``StreamProtocol.new_waiter()``
makes the connection's own, a ``Waiter`` (asyncio's Future protocol, with
the wake-up described in its docstring).
"""

cimport cython
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int32_t
from pg_codecs._buffer cimport WriteBuffer
from pg_codecs._buffer cimport FRBuffer
from pg_wire._reader cimport (
    ExtendedReply,
    MessageReader,
    c_parse_command_complete,
    c_parse_ready_for_query,
)
from pg_wire._writer cimport write_bind_execute

import asyncio
import collections
import contextvars

from pg_wire import errors as wire_errors

from . import _wire
from .exceptions import (
    ConnectionDoesNotExistError,
    InterfaceError,
    PostgresError,
    PostgresLogMessage,
    ProtocolError,
    connection_lost_by_server,
)

# Backend message tags as ints (payloads come from the reader as bytes).
AUTH = ord("R")
KEY_DATA = ord("K")
BIND_COMPLETE = ord("2")
CLOSE_COMPLETE = ord("3")
COMMAND_COMPLETE = ord("C")
COPY_DATA = ord("d")
COPY_DONE = ord("c")
COPY_IN = ord("G")
COPY_OUT = ord("H")
COPY_BOTH = ord("W")
DATA_ROW = ord("D")
EMPTY_QUERY = ord("I")
ERROR = ord("E")
NOTICE = ord("N")
NOTIFICATION = ord("A")
NEGOTIATE = ord("v")
NO_DATA = ord("n")
PARAM_DESC = ord("t")
PARAM_STATUS = ord("S")
PARSE_COMPLETE = ord("1")
PORTAL_SUSPENDED = ord("s")
READY = ord("Z")
ROW_DESC = ord("T")

cdef int _NOTICE = NOTICE
cdef int _NOTIFICATION = NOTIFICATION
cdef int _PARAM_STATUS = PARAM_STATUS
cdef int _ERROR = ERROR
cdef int _READY = READY
cdef int _COMMAND_COMPLETE = COMMAND_COMPLETE
cdef int _DATA_ROW = DATA_ROW
cdef int _ROW_DESC = ROW_DESC
cdef int _EMPTY_QUERY = EMPTY_QUERY
cdef int _COPY_DATA = COPY_DATA
cdef int _COPY_DONE = COPY_DONE
cdef int _COPY_IN = COPY_IN
cdef int _COPY_OUT = COPY_OUT
cdef int _COPY_BOTH = COPY_BOTH
cdef frozenset _ROUTINE = frozenset(
    {PARSE_COMPLETE, BIND_COMPLETE, CLOSE_COMPLETE, NO_DATA, EMPTY_QUERY})

# SQLSTATEs of the WARNING a server sends before it closes every session:
# crash of another backend, and the shutdown variants.
cdef frozenset _TERMINATION_NOTICES = frozenset({"57P01", "57P02", "57P03"})


# Waiter states.
cdef enum:
    _PENDING = 0
    _FINISHED = 1
    _CANCELLED = 2

# Defined below; the operations settle Waiters with C calls.
cdef class StreamProtocol
cdef class Waiter

cdef object _CancelledError = asyncio.CancelledError
cdef object _TimeoutError = asyncio.TimeoutError
cdef object _InvalidStateError = asyncio.InvalidStateError
cdef object _current_task = asyncio.current_task
cdef object _BaseEventLoop = asyncio.BaseEventLoop
cdef object _copy_context = contextvars.copy_context

# get_buffer()'s buffer. Each read is copied out of it into a bytes object,
# which at this size stays below glibc's mmap threshold (128 KiB): a heap
# allocation, where asyncio's own recv() of up to 256 KiB maps and unmaps
# memory (and faults its pages in) for every read.
cdef Py_ssize_t _READ_BUFFER_SIZE = 65536
# See the COPY OUT branch of ProtocolCore.data_received().
cdef Py_ssize_t _COPY_BATCH_SIZE = 65536

# Waiting for the rest of a reply without sleeping (StreamProtocol._received).
#
# A big result comes from the server in 8 KiB sends (its output buffer), a
# fraction of a microsecond to some tens apart on a local socket, depending on
# how much work each row is for the server. The client handles one such chunk
# sooner than the next arrives, goes back to epoll_wait and sleeps; every
# sleep costs a context switch here and a wake-up (an inter-processor
# interrupt, a VM exit on a virtual machine) in the server's send path, the
# last one on the reply's critical path. Instead, a connection in the middle
# of a reply that comes in full chunks polls its socket for up to
# _SPIN_BUDGET_NS before returning to the loop, when it is the only
# connection of the process awaiting a reply (with more, the loop may have
# another socket to read). The client then spends the gaps polling rather
# than asleep: its CPU time per query rises to about the reply's duration.
# Measured with one connection per client in one process, alternating
# 0.25 s segments (bench workloads, 2-core VM), q/s vs asyncpg, budget
# 2 us -> 30 us: arrays 1.05x -> 1.12x, pg_type 1.06x -> 1.16x, COPY OUT
# 1.00x -> 1.06x, large_bytea and generate_series +1-4%; 10 us bought
# about nothing on arrays (its gaps are 10-20 us).
cdef extern from *:
    """
    #if defined(_WIN32)
    static int pgc_wait_readable(int fd, long long budget_ns) { return 0; }
    #else
    #include <poll.h>
    #include <time.h>
    /* 1 as soon as fd is readable (or in error: the loop will see it),
       0 once budget_ns have passed without that. */
    static int pgc_wait_readable(int fd, long long budget_ns) {
        struct pollfd p;
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            p.fd = fd;
            p.events = POLLIN;
            p.revents = 0;
            if (poll(&p, 1, 0) != 0)
                return 1;
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((long long)(t.tv_sec - t0.tv_sec) * 1000000000LL
                    + (t.tv_nsec - t0.tv_nsec) >= budget_ns)
                return 0;
        }
    }
    #endif
    """
    int pgc_wait_readable(int fd, long long budget_ns) nogil

cdef long long _SPIN_BUDGET_NS = 30000
# A read this large says the server filled its output buffer: it is sending
# a result, not waiting on a slow query between two small messages.
cdef Py_ssize_t _SPIN_MIN_CHUNK = 8192
# After a wait that saw nothing, skip this many chunks before the next,
# doubling up to _SPIN_MAX_SKIP (a slow or remote server stops the waits).
cdef int _SPIN_MAX_SKIP = 256
# Connections of this process with requests in flight. A wait only happens
# when this is 1: with more, the loop may have another socket to read.
cdef Py_ssize_t _busy_streams = 0


def _busy_count():
    """Connections of this process awaiting a reply (for tests)."""
    return _busy_streams


# Operations take any waiter; the connection's own (Waiter) is checked and
# given its result with C calls instead of attribute lookups (an exception,
# rare, goes through set_exception() and its checks).
cdef inline bint _waiter_done(waiter) except -1:
    if type(waiter) is Waiter:
        return (<Waiter>waiter)._state != _PENDING
    return waiter.done()


cdef inline int _waiter_set_result(waiter, value) except -1:
    if type(waiter) is Waiter:
        (<Waiter>waiter)._settle(value, None)
    else:
        waiter.set_result(value)
    return 0


cdef inline int _waiter_set_exception(waiter, exc) except -1:
    if type(waiter) is Waiter:
        (<Waiter>waiter).set_exception(exc)
    else:
        waiter.set_exception(exc)
    return 0


@cython.auto_pickle(False)
cdef class Operation:
    """One request in flight: collects the server's reply up to ReadyForQuery.

    Subclasses override ``on_message`` for the messages their request
    produces; anything else is a protocol error. ``result()`` builds the value
    the waiter receives once ReadyForQuery arrives without an error.
    """

    cdef public object waiter
    cdef public object error
    cdef public bint abandoned
    cdef public object query
    cdef public ExtendedReply reply
    cdef public object status
    cdef public bint sent
    cdef public object on_done
    cdef public object copy_chunks
    # When the caller stops waiting, in the loop's time (0: never); see
    # StreamProtocol.set_deadline().
    cdef public double deadline

    def __init__(self, waiter, query=None):
        self.waiter = waiter
        self.error = None
        self.abandoned = False
        self.query = query
        # The ExtendedReply pg-wire's reader fills for requests whose reply
        # it can consume by itself (ExecuteOp); None for the others.
        self.reply = None
        self.status = None
        self.sent = False
        self.on_done = None
        # While the operation takes CopyData in bulk (COPY OUT): the batches
        # received and not yet drained, one bytearray per read.
        self.copy_chunks = None

    # Messages every extended-protocol request may see.
    def on_message(self, ProtocolCore core, int tag, payload):
        if tag == _COMMAND_COMPLETE:
            self.status = _wire.parse_command_complete(payload)
        elif tag in _ROUTINE:
            pass
        else:
            core.unexpected(tag, self)

    def on_error(self, ProtocolCore core, exc):
        if self.error is None:
            self.error = exc
        self.rows_done()

    def rows_done(self):
        """No more rows will be decoded (an error, or ReadyForQuery)."""

    def result(self):
        return self.status

    cdef object _ending(self):
        # The operation is over: tell on_done, and return the waiter if the
        # outcome is still wanted (None if abandoned, absent or settled).
        if self.on_done is not None:
            self.on_done(self)
        waiter = self.waiter
        if self.abandoned or waiter is None or _waiter_done(waiter):
            return None
        return waiter

    cpdef finish(self, ProtocolCore core):
        """ReadyForQuery arrived: hand the outcome to the waiter."""
        waiter = self._ending()
        if waiter is None:
            return
        if self.error is not None:
            _waiter_set_exception(waiter, self.error)
        else:
            try:
                value = self.result()
            except BaseException as exc:
                _waiter_set_exception(waiter, exc)
            else:
                _waiter_set_result(waiter, value)

    def fail(self, exc):
        """The connection ended before ReadyForQuery."""
        waiter = self._ending()
        if waiter is not None:
            _waiter_set_exception(waiter, exc)


@cython.auto_pickle(False)
cdef class ExecuteOp(Operation):
    """Bind + Execute + Sync of a prepared statement; rows decoded on arrival.

    pg-wire's ``read_reply`` consumes the whole reply into ``reply`` (an
    ExtendedReply: rows, command status, whether the portal was suspended by
    a row limit), which is the waiter's result. Only an ErrorResponse, the
    asynchronous messages and anything out of place come through
    ``on_message``/``on_error``.

    *multi*: several Executes under one Sync (fetchmany); rows keep being
    decoded after each CommandComplete.
    """

    def __init__(self, waiter, query, row_decoder, bint multi=False):
        # Operation's fields are C members zeroed to None/False by Cython;
        # set only those that differ (this runs once per query).
        self.waiter = waiter
        self.query = query
        self.reply = ExtendedReply(row_decoder, multi)

    def on_message(self, ProtocolCore core, int tag, payload):
        # Everything a well-behaved server sends here was taken by
        # read_reply(); a DataRow reaching this point came without a
        # RowDescription planned for it.
        core.unexpected(tag, self)

    def rows_done(self):
        self.reply.decoder = None

    cpdef finish(self, ProtocolCore core):
        # Operation.finish() without the result() call (once per query):
        # the waiter gets the reply, not the operation (op -> waiter ->
        # result -> op would be a cycle keeping every batch of rows alive
        # until the GC).
        waiter = self._ending()
        if waiter is None:
            return
        if self.error is not None:
            _waiter_set_exception(waiter, self.error)
        else:
            _waiter_set_result(waiter, self.reply)


@cython.auto_pickle(False)
cdef class ExecuteManyOp(ExecuteOp):
    """Many Bind + Execute pairs under one Sync: atomic, like asyncpg's.

    Their BindCompletes and CommandCompletes are consumed by pg-wire's
    ``read_reply``; rows (an INSERT ... RETURNING, say) are dropped, as
    asyncpg's executemany drops them.
    """

    def __init__(self, waiter, query):
        ExecuteOp.__init__(self, waiter, query, None, True)

    def on_message(self, ProtocolCore core, int tag, payload):
        if tag != _DATA_ROW:
            core.unexpected(tag, self)


@cython.final
@cython.auto_pickle(False)
cdef class SimpleQueryOp(Operation):
    """A simple Query: several statements allowed; rows are dropped.

    The status of the last command is the result, as asyncpg's execute().
    A COPY started by the query text is refused (CopyFail / drained).
    The core consumes its routine messages (RowDescription, DataRow,
    EmptyQueryResponse, CommandComplete, ReadyForQuery) at C level, without
    a bytes object or a call per message; the others come through
    ``on_message``/``on_error``.
    """

    def on_message(self, ProtocolCore core, int tag, payload):
        if tag == _COMMAND_COMPLETE:
            self.status = _wire.parse_command_complete(payload)
        elif (tag == _ROW_DESC or tag == _DATA_ROW or tag == _EMPTY_QUERY
                or tag == _COPY_DATA or tag == _COPY_DONE):
            pass
        elif tag == _COPY_IN:
            _wire.write_copy_fail(core.out, "COPY FROM STDIN is not supported by execute(); "
                                  "use copy_to_table() or copy_records_to_table()")
        elif tag == _COPY_OUT or tag == _COPY_BOTH:
            if self.error is None:
                self.error = InterfaceError(
                    "COPY TO STDOUT is not supported by execute(); use copy_from_query()")
        else:
            core.unexpected(tag, self)


@cython.auto_pickle(False)
cdef class ProtocolCore:
    """The protocol state of one connection (see ``_protocol``'s docstring)."""

    cdef public MessageReader reader
    cdef public WriteBuffer out
    cdef readonly object pending
    # pending.append and pending.popleft, bound once (a lookup per query).
    cdef object _append
    cdef object _popleft
    cdef public object transaction_status
    cdef public dict parameters
    cdef public object backend_pid
    cdef public object backend_key
    cdef public bint closed
    cdef public object fatal_error
    cdef public object termination_notice
    cdef public bint loss_reported
    cdef public object on_notification
    cdef public object on_notice
    cdef public object on_parameter

    def __init__(self, *, max_message_size=None):
        self.reader = _wire.new_reader(max_message_size)
        self.out = WriteBuffer()
        self.pending = collections.deque()
        self._append = self.pending.append
        self._popleft = self.pending.popleft
        self.transaction_status = "I"
        self.parameters = {}
        self.backend_pid = 0
        self.backend_key = b""
        self.closed = False
        self.fatal_error = None
        self.termination_notice = None
        # The loss was reported to a caller already (later calls only say
        # "connection is closed", as asyncpg does).
        self.loss_reported = False
        self.on_notification = None
        self.on_notice = None
        self.on_parameter = None

    # -- requests -------------------------------------------------------------
    cpdef push(self, Operation op):
        """Queue *op*, whose messages the caller has just written to ``out``."""
        if self.closed:
            raise ConnectionDoesNotExistError(
                "connection is closed", request_sent=False)
        op.sent = True
        self._append(op)

    @property
    def busy(self):
        return bool(self.pending)

    # -- incoming bytes -------------------------------------------------------
    cpdef data_received(self, data):
        cdef MessageReader reader = self.reader
        cdef Operation op
        cdef ExtendedReply reply
        reader.feed(data)
        pending = self.pending
        while True:
            if pending:
                op = <Operation>pending[0]
                reply = op.reply
                if reply is not None:
                    # Bind/Execute replies: pg-wire consumes the routine
                    # messages (rows included) at C level, up to
                    # ReadyForQuery or the first message needing us.
                    try:
                        done = reader.read_reply(reply)
                    except wire_errors.ProtocolError:
                        raise
                    except Exception as exc:
                        self._row_decode_failed(op, exc)
                        continue
                    if done:
                        self.transaction_status = reply.transaction_status
                        self._popleft()
                        op.finish(self)
                        continue
                elif op.copy_chunks is not None:
                    # Exactly sized buffers, each new (the consumer may keep
                    # it): growing one buffer across reads made glibc fault
                    # in fresh pages each time. Each at most about 64 KiB,
                    # below glibc's mmap threshold: a bigger one (uvloop
                    # reads up to 256 KiB at once) was mapped afresh and its
                    # every page faulted in. 10 connections on uvloop, COPY
                    # OUT of 600 KB: 86 -> 10-16 page faults per COPY.
                    while True:
                        batch = bytearray()
                        if not reader.read_copy_data_into(batch, _COPY_BATCH_SIZE):
                            break
                        op.copy_data_arrived(batch)
                elif type(op) is SimpleQueryOp:
                    if self._read_simple(<SimpleQueryOp>op):
                        continue
                    return
            msg = reader.read_message()
            if msg is None:
                return
            self.dispatch(msg[0][0], msg[1])

    cdef bint _read_simple(self, SimpleQueryOp op) except -1:
        # The messages of a simple Query, as dispatch() and on_message()
        # would handle them: True after one that may have changed the
        # queue (ReadyForQuery, or one handed to dispatch()), False when no
        # complete message is left.
        cdef MessageReader reader = self.reader
        cdef char tag
        cdef FRBuffer payload
        while reader.next_message(&tag, &payload):
            if tag == b"D" or tag == b"T" or tag == b"I":
                continue
            if tag == b"C":
                op.status = c_parse_command_complete(payload.buf, payload.len)
            elif tag == b"Z":
                self.transaction_status = c_parse_ready_for_query(payload.buf, payload.len)
                self._popleft()
                op.finish(self)
                return True
            else:
                self.dispatch(<unsigned char>tag,
                              PyBytes_FromStringAndSize(payload.buf, payload.len))
                return True
        return False

    def _row_decode_failed(self, Operation op, exc):
        from pg_codecs import RowFormatError

        if isinstance(exc, RowFormatError):
            # The row's framing is wrong, not a value: the peer is not
            # speaking the protocol. Close (W3/W4).
            raise ProtocolError(str(exc)) from exc
        # The row's bytes were consumed whole: the stream is still in step.
        # Keep consuming the rest of the reply, report the decoding error.
        from pg_codecs import SchemaMismatchError

        from .exceptions import OutdatedSchemaCacheError

        if op.error is None:
            if isinstance(exc, SchemaMismatchError):
                # A composite type changed after it was introspected: the
                # connection drops its type cache and the next call works.
                err = OutdatedSchemaCacheError(
                    f"the type of a result column changed since it was looked up ({exc}); "
                    "the type cache was cleared, run the query again",
                    schema=exc.schema, data_type=exc.data_type, position=exc.position)
            else:
                # A value Python cannot represent (a BC date, say): asyncpg
                # lets the codec's ValueError/OverflowError through as is.
                err = exc
            if err is not exc:
                err.__cause__ = exc
            op.error = err
        op.reply.decoder = _wire.skip_rows_decoder()

    cpdef dispatch(self, int tag, payload):
        cdef Operation op
        if tag == _NOTICE:
            self._notice(payload)
            return
        if tag == _NOTIFICATION:
            pid, channel, data = _wire.parse_notification(payload)
            if self.on_notification is not None:
                self.on_notification(pid, channel, data)
            return
        if tag == _PARAM_STATUS:
            name, value = _wire.parse_parameter_status(payload)
            if name == "client_encoding" and value.upper() not in ("UTF8", "UTF-8", "UNICODE"):
                # Decided in RELIABILITY.md: refuse, at once and before any
                # further row is decoded, rather than follow a switch away
                # from UTF-8, which every codec here assumes.
                raise ProtocolError(
                    f"the server switched client_encoding to {value!r}; "
                    "only UTF8 is supported")
            self.parameters[name] = value
            if self.on_parameter is not None:
                self.on_parameter(name, value)
            return
        pending = self.pending
        if not pending:
            if tag == _ERROR:
                # A FATAL error outside a request: the server ends the session
                # (pg_terminate_backend, shutdown, idle timeouts).
                self.fatal_error = PostgresError.new(_wire.parse_error_fields(payload))
                return
            raise ProtocolError(f"unexpected message {chr(tag)!r} while idle")
        op = <Operation>pending[0]
        if tag == _READY:
            self.transaction_status = _wire.parse_ready_for_query(payload)
            self._popleft()
            op.finish(self)
        elif tag == _ERROR:
            op.on_error(self, PostgresError.new(_wire.parse_error_fields(payload), op.query))
        else:
            op.on_message(self, tag, payload)

    def _notice(self, payload):
        fields = _wire.parse_error_fields(payload)
        if fields.get("C") in _TERMINATION_NOTICES:
            # The server is about to drop us (crash of another backend,
            # shutdown): keep its reason for the error the loss will raise.
            self.termination_notice = PostgresError.new(fields)
        msg = PostgresLogMessage.new(fields)
        if self.on_notice is not None:
            self.on_notice(msg)

    def unexpected(self, int tag, op):
        raise ProtocolError(
            f"unexpected message {chr(tag)!r} in reply to {type(op).__name__}")

    # -- the end --------------------------------------------------------------
    def connection_lost(self, exc):
        """Fail every operation in flight; the connection is gone."""
        self.closed = True
        pending = list(self.pending)
        self.pending.clear()
        for op in pending:
            # An error the server sent before going away (57P01 from
            # pg_terminate_backend, say) says more than "connection lost";
            # it is also a ConnectionDoesNotExistError, as asyncpg raises.
            err = op.error
            if isinstance(err, PostgresError):
                err = connection_lost_by_server(err, request_sent=op.sent)
            op.fail(err or self.lost_error(exc, request_sent=op.sent))
            self.loss_reported = True

    def lost_error(self, exc, *, request_sent):
        reason = self.fatal_error or self.termination_notice
        if isinstance(reason, PostgresError):
            # The server said why it went away: an error of its class that
            # is also a ConnectionDoesNotExistError.
            return connection_lost_by_server(reason, request_sent=request_sent)
        if reason is not None:
            return reason
        text = "connection was closed in the middle of operation"
        if exc is not None:
            text += f": {exc}"
        err = ConnectionDoesNotExistError(text, request_sent=request_sent)
        if exc is not None:
            err.__cause__ = exc
        return err

    def check_usable(self):
        if self.closed:
            if self.fatal_error is not None:
                raise ConnectionDoesNotExistError(
                    f"connection was closed by the server: {self.fatal_error}",
                    request_sent=False)
            raise InterfaceError("connection is closed")


cdef class StreamProtocol:
    """The per-query half of the asyncio protocol of a connection.

    ``_transport.ClientProtocol`` subclasses it (with ``asyncio.Protocol``)
    and adds flow control, TLS-free setup and the end of the connection;
    feeding received bytes to the core and writing what the core queued
    happen here, once or twice per query.

    Waiters it makes (``new_waiter()``) and that a reply settles inside
    ``data_received()`` wake their tasks when that call ends, not on the
    event loop's next pass (see ``Waiter``).
    """

    cdef public ProtocolCore core
    cdef object _transport
    # The transport's write() and the loop's create_future(), bound once:
    # looking a method up on uvloop's objects costs 300 instructions.
    cdef object _write
    cdef object _create_future
    cdef public object loop
    cdef public bint lost
    # Count of data_received calls (cancel sweeps use it).
    cdef public Py_ssize_t data_events
    # Inside data_received(): waiters settled now go to _settled.
    cdef bint _dispatching
    cdef list _settled
    # new_waiter() makes Waiters, else the loop's futures.
    cdef public bint eager
    # get_buffer()'s buffer and a memoryview of it, made on first use.
    cdef bytearray _read_buffer
    cdef object _read_view
    # The socket's descriptor, for the wait at the end of _received(); -1
    # when the transport has none.
    cdef int _fd
    # Counted in _busy_streams.
    cdef bint _busy
    cdef int _spin_skip
    cdef int _spin_backoff
    # Waits that saw more data coming, and waits that ran out (for tests).
    cdef public Py_ssize_t spin_hits
    cdef public Py_ssize_t spin_misses
    # The one timer of the deadlines of this connection's requests, and the
    # loop time it is set for (see set_deadline).
    cdef object _timer
    cdef double _timer_when

    def __init__(self, ProtocolCore core, loop=None):
        self.core = core
        self.transport = None
        self.loop = loop
        self._create_future = loop.create_future if loop is not None else None
        self.lost = False
        self.data_events = 0
        self._dispatching = False
        self._settled = []
        # The standard library's loops poll the sockets again before they
        # run what call_soon() queued; uvloop does not, and its futures are
        # a little cheaper for it than a Waiter (measured: 23.2k vs 23.7k
        # user-space instructions per SELECT 1+1).
        self.eager = isinstance(loop, _BaseEventLoop)

    def data_received(self, data):
        self._received(data)

    # asyncio.BufferedProtocol's methods (used when a subclass is one).
    def get_buffer(self, sizehint):
        if self._read_view is None:
            # Not zero-filled: untouched pages cost no memory.
            self._read_buffer = PyByteArray_FromStringAndSize(NULL, _READ_BUFFER_SIZE)
            self._read_view = memoryview(self._read_buffer)
        return self._read_view

    def buffer_updated(self, Py_ssize_t nbytes):
        if nbytes < 0 or self._read_buffer is None or nbytes > len(self._read_buffer):
            raise ValueError(f"buffer_updated({nbytes}) is out of the buffer's bounds")
        self._received(PyBytes_FromStringAndSize(
            PyByteArray_AS_STRING(self._read_buffer), nbytes))

    cdef int _received(self, data) except -1:
        cdef bint ok = False
        cdef object midway = None
        self.data_events += 1
        core = self.core
        # The core's one queue (never replaced): read before and after the
        # waiters run.
        pending = core.pending
        self._dispatching = True
        try:
            try:
                core.data_received(data)
            except Exception as exc:
                # ProtocolError from either layer, or anything unexpected:
                # _protocol_failure() decides what the callers see.
                self._protocol_failure(exc)
            else:
                if core.out._length:
                    self.flush()
            ok = True
        finally:
            self._dispatching = False
            if pending:
                # The request this chunk was part of a reply to, still
                # waiting for the rest (known before the waiters run: on the
                # standard library's loops a woken task runs inside _wake()
                # and may send its next request).
                midway = pending[0]
            if self._settled:
                self._wake(ok)
        self._set_busy(len(pending) != 0)
        if (midway is not None and self._busy and len(data) >= _SPIN_MIN_CHUNK
                and self._fd >= 0 and _busy_streams == 1 and pending[0] is midway):
            self._wait_for_more()
        return 0

    cdef int _wait_for_more(self) except -1:
        # See _SPIN_BUDGET_NS.
        if self._spin_skip > 0:
            self._spin_skip -= 1
        elif pgc_wait_readable(self._fd, _SPIN_BUDGET_NS):
            self.spin_hits += 1
            self._spin_backoff = 0
        else:
            self.spin_misses += 1
            self._spin_backoff = min(self._spin_backoff * 2 or 1, _SPIN_MAX_SKIP)
            self._spin_skip = self._spin_backoff
        return 0

    cdef int _wake(self, bint now) except -1:
        # Run the callbacks of the waiters settled by this data_received():
        # now, when we are the event loop's callback (no task running, the
        # reply consumed and the core in a consistent state), else (an
        # exception on its way out, a caller inside a task) on the loop.
        # Only Waiters of an eager stream get here, so self.loop is set.
        cdef Waiter waiter
        cdef Py_ssize_t i = 0
        settled = self._settled
        if now and _current_task(self.loop) is not None:
            now = False
        try:
            while i < len(settled):
                waiter = <Waiter>settled[i]
                i += 1
                if now:
                    waiter._run_callbacks()
                else:
                    waiter._schedule_callbacks()
        finally:
            # SystemExit or KeyboardInterrupt from a task: the others still
            # run, on the loop.
            while i < len(settled):
                (<Waiter>settled[i])._schedule_callbacks()
                i += 1
            del settled[:]
        return 0

    def _protocol_failure(self, exc):
        raise NotImplementedError

    def new_waiter(self):
        """A Waiter for a request on this connection."""
        return self._new_waiter()

    cdef object _new_waiter(self):
        if not self.eager:
            return self._create_future()
        cdef Waiter waiter = Waiter.__new__(Waiter)
        waiter._loop = self.loop
        waiter._stream = self
        return waiter

    @property
    def transport(self):
        return self._transport

    @transport.setter
    def transport(self, transport):
        self._transport = transport
        self._write = transport.write if transport is not None else None
        self._fd = -1
        if transport is not None:
            try:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    self._fd = sock.fileno()
            except Exception:
                pass  # A transport without a socket (a test's, a pipe): no waits.
        else:
            # The connection is gone (its operations fail next).
            self._set_busy(False)
            self._cancel_timer()

    cdef inline int _set_busy(self, bint busy) except -1:
        global _busy_streams
        if busy != self._busy:
            self._busy = busy
            if busy:
                _busy_streams += 1
            else:
                _busy_streams -= 1
        return 0

    def __dealloc__(self):
        global _busy_streams
        if self._busy:
            _busy_streams -= 1

    cdef int _send_out(self) except -1:
        # Hand what core.out holds to the transport, if there is one.
        cdef WriteBuffer out = self.core.out
        if self._write is not None and not self.lost:
            data = out.to_bytes()
            out.reset()
            self._write(data)
        return 0

    cpdef flush(self):
        """Send whatever the core has queued."""
        if self.core.out._length:
            self._send_out()

    cdef int _push_and_send(self, Operation op) except -1:
        # Queue *op* (a request is in flight: counted for the wait in
        # _received) and write what core.out holds.
        self._queue(op)
        self._send_out()
        return 0

    cdef inline int _queue(self, Operation op) except -1:
        self.core.push(op)
        self._set_busy(True)
        return 0

    cpdef send(self, Operation op):
        """Queue *op* (its messages are already in ``core.out``) and send."""
        self._push_and_send(op)
        return op.waiter

    cpdef queue(self, Operation op):
        """Queue *op* as send() does, but leave its messages in ``core.out``.

        For a request whose next messages are ready at once (a COPY's first
        data): they go out together at the caller's flush(), in one write.
        """
        self._queue(op)
        return op.waiter

    # -- deadlines --------------------------------------------------------------
    cpdef set_timeout(self, Operation op, double seconds):
        """set_deadline() *seconds* from now."""
        self.set_deadline(op, self.loop.time() + seconds)

    cpdef set_deadline(self, Operation op, double when):
        """At the loop's time *when*, settle *op*'s waiter with asyncio.TimeoutError.

        Unless the operation ends first: the task awaiting it then sees what
        ``asyncio.wait_for()`` would raise, and abandons the request (which
        stays queued until its ReadyForQuery). *op* must be queued already.

        One loop timer serves every request of the connection: it is set
        for the earliest deadline, and only moved to an earlier one. When it
        fires, the requests whose deadlines have come time out and the timer
        is set again for the next one still queued. Requests that end first
        cost nothing more: queries back to back under the same timeout
        re-arm it once per timeout, where a timer (or ``wait_for()``) per
        request costs a timer handle made and cancelled per query (measured
        on uvloop, user-space instructions per fetchval("SELECT 1+1",
        timeout=30): 52.5k with wait_for(), 28.9k with a timer per query,
        24.8k this way; 23.4k without a timeout).
        """
        op.deadline = when
        if self._timer is None or when < self._timer_when:
            self._cancel_timer()
            self._arm_timer(when)

    def _deadline_passed(self):
        cdef Operation op
        cdef double when = self._timer_when
        cdef double next_when = 0.0
        self._timer = None
        for op in list(self.core.pending):
            if op.deadline == 0.0:
                continue
            if op.deadline <= when:
                op.deadline = 0.0
                waiter = op.waiter
                if waiter is not None and not op.abandoned and not _waiter_done(waiter):
                    _waiter_set_exception(waiter, _TimeoutError())
            elif next_when == 0.0 or op.deadline < next_when:
                next_when = op.deadline
        if next_when != 0.0 and not self.lost:
            self._arm_timer(next_when)

    cdef int _arm_timer(self, double when) except -1:
        self._timer = self.loop.call_at(when, self._deadline_passed)
        self._timer_when = when
        return 0

    cdef int _cancel_timer(self) except -1:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return 0

    cpdef ExecuteOp send_bind_execute(self, str portal, str statement, encoder,
                                      args, result_formats, int32_t max_rows, query,
                                      row_decoder):
        """Bind + Execute + Sync of a prepared statement, queued and sent.

        pg-wire's ``write_bind_execute`` (which leaves ``core.out`` as it was
        when a value cannot be encoded) and a new ExecuteOp for its reply,
        with a new waiter, in one call: the request of every fetch/execute
        with arguments.
        """
        cdef ProtocolCore core = self.core
        cdef ExecuteOp op
        write_bind_execute(core.out, portal, statement, encoder, args,
                           result_formats, max_rows, True)
        op = ExecuteOp.__new__(ExecuteOp)
        op.waiter = self._new_waiter()
        op.query = query
        op.reply = ExtendedReply(row_decoder, False)
        self._push_and_send(op)
        return op


@cython.final
@cython.auto_pickle(False)
cdef class Waiter:
    """The outcome of one request: asyncio's Future protocol, woken sooner.

    Tasks, ``asyncio.wait_for()``, ``shield()``, ``gather()`` and
    ``ensure_future()`` take it as they take an ``asyncio.Future``: it has the
    same methods and the ``_asyncio_future_blocking`` flag tasks look for.

    What differs is when its callbacks run. A Future schedules them with
    ``loop.call_soon()``: the task awaiting a reply resumes on the loop's
    next pass, after another poll of the sockets (on the default loop, an
    ``epoll_wait`` system call per query). A Waiter settled by its
    connection's ``data_received()`` runs them when that call returns
    instead, in the callbacks' own contexts, unless a task is running (then,
    and whenever it is settled or cancelled elsewhere, through
    ``call_soon()`` like a Future). Either way a callback never runs in the
    middle of parsing, and an exception from one goes to the loop's
    exception handler, as from a loop callback.

    A waiter whose exception nobody retrieves is not logged: the connection
    abandons the waiters of cancelled requests on purpose.
    """

    cdef object _loop
    cdef StreamProtocol _stream
    cdef int _state
    cdef object _result
    cdef object _exception
    cdef object _exception_tb
    cdef object _cancel_message
    # The first callback and its context (almost always the only one: the
    # awaiting task's wake-up), then the others as (callback, context).
    cdef object _callback
    cdef object _context
    cdef list _more
    cdef public bint _asyncio_future_blocking

    def __init__(self, loop):
        self._loop = loop

    def __repr__(self):
        state = ("pending", "finished", "cancelled")[self._state]
        if self._state == _FINISHED:
            if self._exception is not None:
                state += f" exception={self._exception!r}"
            else:
                state += f" result={self._result!r}"
        return f"<Waiter {state}>"

    # -- asyncio.Future's methods ---------------------------------------------
    def get_loop(self):
        return self._loop

    def done(self):
        return self._state != _PENDING

    def cancelled(self):
        return self._state == _CANCELLED

    def result(self):
        if self._state == _FINISHED:
            if self._exception is not None:
                raise self._exception.with_traceback(self._exception_tb)
            return self._result
        if self._state == _CANCELLED:
            raise self._cancelled_error()
        raise _InvalidStateError("Result is not ready.")

    def exception(self):
        if self._state == _FINISHED:
            return self._exception
        if self._state == _CANCELLED:
            raise self._cancelled_error()
        raise _InvalidStateError("Exception is not set.")

    def add_done_callback(self, fn, *, context=None):
        if context is None:
            context = _copy_context()
        if self._state != _PENDING:
            self._loop.call_soon(fn, self, context=context)
        elif self._callback is None and not self._more:
            self._callback = fn
            self._context = context
        else:
            if self._more is None:
                self._more = []
            self._more.append((fn, context))

    def remove_done_callback(self, fn):
        callbacks = self._take_callbacks()
        kept = [(f, ctx) for f, ctx in callbacks if f != fn]
        if kept:
            self._callback, self._context = kept[0]
            self._more = kept[1:] or None
        return len(callbacks) - len(kept)

    def cancel(self, msg=None):
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        self._cancel_message = msg
        self._schedule_callbacks()
        return True

    def set_result(self, result):
        if self._state != _PENDING:
            raise _InvalidStateError(f"invalid state: {self!r}")
        self._settle(result, None)

    def set_exception(self, exception):
        if self._state != _PENDING:
            raise _InvalidStateError(f"invalid state: {self!r}")
        if isinstance(exception, type):
            exception = exception()
        if type(exception) is StopIteration:
            raise TypeError("StopIteration interacts badly with generators "
                            "and cannot be raised into a Future")
        self._settle(None, exception)

    def __await__(self):
        # A generator: the coroutine awaiting it gets the value back through
        # the generator's send slot. An iterator whose __next__ raised
        # StopIteration(value) cost 1.9k instructions more per query.
        if self._state == _PENDING:
            self._asyncio_future_blocking = True
            yield self
        if self._state == _FINISHED and self._exception is None:
            return self._result
        return self.result()

    def __iter__(self):
        return self.__await__()

    # -- internals ------------------------------------------------------------
    cdef int _settle(self, result, exception) except -1:
        self._result = result
        if exception is not None:
            self._exception = exception
            self._exception_tb = exception.__traceback__
        self._state = _FINISHED
        self._schedule_callbacks()
        return 0

    cdef object _cancelled_error(self):
        if self._cancel_message is None:
            return _CancelledError()
        return _CancelledError(self._cancel_message)

    cdef list _take_callbacks(self):
        callbacks = []
        if self._callback is not None:
            callbacks.append((self._callback, self._context))
        if self._more:
            callbacks.extend(self._more)
        self._callback = self._context = self._more = None
        return callbacks

    cdef int _schedule_callbacks(self) except -1:
        cdef StreamProtocol stream = self._stream
        if self._callback is None and not self._more:
            return 0
        if stream is not None and stream._dispatching:
            stream._settled.append(self)
            return 0
        for fn, context in self._take_callbacks():
            self._loop.call_soon(fn, self, context=context)
        return 0

    cdef int _run_callbacks(self) except -1:
        cdef Py_ssize_t i = 0
        if self._more is None:
            # The common case: one callback, the awaiting task's wake-up.
            fn = self._callback
            context = self._context
            self._callback = self._context = None
            if fn is not None:
                self._run_one(fn, context)
            return 0
        callbacks = self._take_callbacks()
        try:
            while i < len(callbacks):
                fn, context = callbacks[i]
                i += 1
                self._run_one(fn, context)
        finally:
            while i < len(callbacks):
                fn, context = callbacks[i]
                i += 1
                self._loop.call_soon(fn, self, context=context)
        return 0

    cdef int _run_one(self, fn, context) except -1:
        # As the loop runs a callback: errors go to its exception handler.
        try:
            context.run(fn, self)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": f"Exception in callback {fn!r}({self!r})",
                "exception": exc,
                "future": self,
            })
        return 0
