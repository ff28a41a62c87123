"""The client's protocol state machine, without I/O.

Bytes from the server go in through ``data_received``; bytes for the server
accumulate in ``out`` (a pg_codecs WriteBuffer) for the transport to send.
Nothing here imports asyncio: operations carry a *waiter*, any object with
``done()``, ``set_result()`` and ``set_exception()`` (the transport glue gives
them asyncio futures).

How it works
------------

Every request the client makes ends with exactly one message that makes the
server answer ReadyForQuery: a Sync, a simple Query, or (for the startup
exchange) the StartupMessage. So the in-flight requests form a queue, and
each ``Operation`` in it owns the server's messages from the one after the
previous ReadyForQuery up to and including its own. ReadyForQuery completes
the head of the queue and makes the next operation the head. The queue is
what lets several operations be in flight on one connection; the Connection
above still allows one at a time (asyncpg's rule), except that an operation
abandoned by a timeout or a cancelled task stays in the queue until its
ReadyForQuery arrives, so the connection never gets out of step.

Messages that can arrive at any time (NoticeResponse, NotificationResponse,
ParameterStatus) are handled here, whoever is the head, and reported through
callbacks. An ErrorResponse while no operation is in flight is the server
closing the session (FATAL); it is recorded as the reason the connection
ended.

Rows take a fast path: while the head operation expects DataRow messages, the
core hands the receive buffer to pg-wire's reader, which decodes consecutive
DataRows straight into Records with the operation's planned RowDecoder, at C
level, without returning here per row.

States of an operation: QUEUED (written, no reply yet) -> ACTIVE (head of
the queue) -> DONE. ``abandoned`` marks one whose caller gave up; its
messages are consumed and dropped, its ReadyForQuery still ends it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from pg_codecs import WriteBuffer
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
_AUTH = ord("R")
_KEY_DATA = ord("K")
_BIND_COMPLETE = ord("2")
_CLOSE_COMPLETE = ord("3")
_COMMAND_COMPLETE = ord("C")
_COPY_DATA = ord("d")
_COPY_DONE = ord("c")
_COPY_IN = ord("G")
_COPY_OUT = ord("H")
_COPY_BOTH = ord("W")
_DATA_ROW = ord("D")
_EMPTY_QUERY = ord("I")
_ERROR = ord("E")
_NOTICE = ord("N")
_NOTIFICATION = ord("A")
_NEGOTIATE = ord("v")
_NO_DATA = ord("n")
_PARAM_DESC = ord("t")
_PARAM_STATUS = ord("S")
_PARSE_COMPLETE = ord("1")
_PORTAL_SUSPENDED = ord("s")
_READY = ord("Z")
_ROW_DESC = ord("T")

# SQLSTATEs of the WARNING a server sends before it closes every session:
# crash of another backend, and the shutdown variants.
_TERMINATION_NOTICES = frozenset({"57P01", "57P02", "57P03"})


class Operation:
    """One request in flight: collects the server's reply up to ReadyForQuery.

    Subclasses override ``on_message`` for the messages their request
    produces; anything else is a protocol error. ``result()`` builds the value
    the waiter receives once ReadyForQuery arrives without an error.
    """

    __slots__ = (
        "waiter", "error", "abandoned", "query", "reply",
        "status", "sent", "on_done", "copy_chunks",
    )

    def __init__(self, waiter: Any, query: str | None = None) -> None:
        self.waiter = waiter
        self.error: BaseException | None = None
        self.abandoned = False
        self.query = query
        # The ExtendedReply pg-wire's reader fills for requests whose reply
        # it can consume by itself (ExecuteOp); None for the others.
        self.reply: Any = None
        self.status: str | None = None
        self.sent = False
        self.on_done: Callable[[Operation], None] | None = None
        # While the operation takes CopyData in bulk (COPY OUT): the batches
        # received and not yet drained, one bytearray per read.
        self.copy_chunks: collections.deque[bytearray] | None = None

    # Messages every extended-protocol request may see.
    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None:
        if tag == _COMMAND_COMPLETE:
            self.status = _wire.parse_command_complete(payload)
        elif tag in (_PARSE_COMPLETE, _BIND_COMPLETE, _CLOSE_COMPLETE, _NO_DATA, _EMPTY_QUERY):
            pass
        else:
            core.unexpected(tag, self)

    def on_error(self, core: ProtocolCore, exc: PostgresError) -> None:
        if self.error is None:
            self.error = exc
        self.rows_done()

    def rows_done(self) -> None:
        """No more rows will be decoded (an error, or ReadyForQuery)."""

    def result(self) -> Any:
        return self.status

    def finish(self, core: ProtocolCore) -> None:
        """ReadyForQuery arrived: hand the outcome to the waiter."""
        if self.on_done is not None:
            self.on_done(self)
        waiter = self.waiter
        if self.abandoned or waiter is None or waiter.done():
            return
        if self.error is not None:
            waiter.set_exception(self.error)
        else:
            try:
                value = self.result()
            except BaseException as exc:
                waiter.set_exception(exc)
            else:
                waiter.set_result(value)

    def fail(self, exc: BaseException) -> None:
        """The connection ended before ReadyForQuery."""
        if self.on_done is not None:
            self.on_done(self)
        waiter = self.waiter
        if waiter is not None and not waiter.done() and not self.abandoned:
            waiter.set_exception(exc)


class ProtocolCore:
    """The protocol state of one connection (see the module docstring)."""

    def __init__(self, *, max_message_size: int | None = None) -> None:
        self.reader = _wire.new_reader(max_message_size)
        self.out = WriteBuffer()
        self.pending: collections.deque[Operation] = collections.deque()
        self.transaction_status = "I"
        self.parameters: dict[str, str] = {}
        self.backend_pid = 0
        self.backend_key: bytes = b""
        self.closed = False
        self.fatal_error: BaseException | None = None
        self.termination_notice: PostgresError | None = None
        # The loss was reported to a caller already (later calls only say
        # "connection is closed", as asyncpg does).
        self.loss_reported = False
        self.on_notification: Callable[[int, str, str], None] | None = None
        self.on_notice: Callable[[PostgresLogMessage], None] | None = None
        self.on_parameter: Callable[[str, str], None] | None = None

    # -- requests -------------------------------------------------------------
    def push(self, op: Operation) -> None:
        """Queue *op*, whose messages the caller has just written to ``out``."""
        if self.closed:
            raise ConnectionDoesNotExistError(
                "connection is closed", request_sent=False)
        op.sent = True
        self.pending.append(op)

    @property
    def busy(self) -> bool:
        return bool(self.pending)

    # -- incoming bytes -------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        pending = self.pending
        while True:
            if pending:
                op = pending[0]
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
                        pending.popleft()
                        op.finish(self)
                        continue
                elif op.copy_chunks is not None:
                    # One exactly sized buffer per read: growing one buffer
                    # across reads made glibc fault in fresh pages each time.
                    batch = bytearray()
                    if reader.read_copy_data_into(batch):
                        op.copy_data_arrived(batch)  # type: ignore[attr-defined]
            msg = reader.read_message()
            if msg is None:
                return
            self.dispatch(msg[0][0], msg[1])

    def _row_decode_failed(self, op: Operation, exc: Exception) -> None:
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
            err: Exception
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

    def dispatch(self, tag: int, payload: bytes) -> None:
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
        op = pending[0]
        if tag == _READY:
            self.transaction_status = _wire.parse_ready_for_query(payload)
            pending.popleft()
            op.finish(self)
        elif tag == _ERROR:
            op.on_error(self, PostgresError.new(_wire.parse_error_fields(payload), op.query))
        else:
            op.on_message(self, tag, payload)

    def _notice(self, payload: bytes) -> None:
        fields = _wire.parse_error_fields(payload)
        if fields.get("C") in _TERMINATION_NOTICES:
            # The server is about to drop us (crash of another backend,
            # shutdown): keep its reason for the error the loss will raise.
            self.termination_notice = PostgresError.new(fields)
        msg: Any = PostgresLogMessage.new(fields)
        if self.on_notice is not None:
            self.on_notice(msg)

    def unexpected(self, tag: int, op: Operation) -> None:
        raise ProtocolError(
            f"unexpected message {chr(tag)!r} in reply to {type(op).__name__}")

    # -- the end --------------------------------------------------------------
    def connection_lost(self, exc: BaseException | None) -> None:
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

    def lost_error(self, exc: BaseException | None, *, request_sent: bool) -> BaseException:
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

    def check_usable(self) -> None:
        if self.closed:
            if self.fatal_error is not None:
                raise ConnectionDoesNotExistError(
                    f"connection was closed by the server: {self.fatal_error}",
                    request_sent=False)
            raise InterfaceError("connection is closed")


# -- the operations ------------------------------------------------------------


class StartupOp(Operation):
    """StartupMessage up to the first ReadyForQuery: authentication included.

    *auth* is the client's authentication driver: ``auth.respond(out, code,
    data)`` writes the answer (if any) into the output buffer,
    ``auth.check_ok()`` raises if AuthenticationOk came too early (a SCRAM
    exchange not verified, a method require_auth forbids), and its
    ``started`` / ``ok_received`` tell how far authentication got.

    The order of the startup phase is checked as libpq does: at most one
    NegotiateProtocolVersion, before authentication; BackendKeyData once,
    after AuthenticationOk; no authentication request after it; and no
    ReadyForQuery without it. An ErrorResponse ends the startup at once.
    """

    __slots__ = ("auth", "negotiated_minor", "max_minor", "min_minor", "_negotiated")

    def __init__(self, waiter: Any, auth: Any, *, min_minor: int = 0, max_minor: int = 0) -> None:
        super().__init__(waiter)
        self.auth = auth
        self.min_minor = min_minor
        self.max_minor = max_minor
        self.negotiated_minor = max_minor
        self._negotiated = False

    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None:
        auth = self.auth
        if tag == _AUTH:
            if auth.ok_received:
                raise ProtocolError(
                    "the server sent an authentication request after AuthenticationOk")
            code, data = _wire.parse_authentication(payload)
            if code == 0:
                auth.check_ok()
                return
            auth.respond(core.out, code, data)
        elif tag == _KEY_DATA:
            if not auth.ok_received:
                raise ProtocolError("the server sent BackendKeyData before AuthenticationOk")
            if core.backend_pid:
                raise ProtocolError("the server sent BackendKeyData twice")
            core.backend_pid, core.backend_key = _wire.parse_backend_key_data(
                payload, self.negotiated_minor)
        elif tag == _NEGOTIATE:
            self._negotiate(payload)
        else:
            core.unexpected(tag, self)

    def _negotiate(self, payload: bytes) -> None:
        # "Protocol versions": NegotiateProtocolVersion comes first, if at
        # all, and carries the newest version the server supports.
        if self._negotiated or self.auth.started:
            raise ProtocolError("unexpected NegotiateProtocolVersion during authentication")
        self._negotiated = True
        version, unrecognized = _wire.parse_negotiate_protocol_version(payload)
        major, minor = version >> 16, version & 0xFFFF
        if unrecognized:
            # We send no _pq_ options, so the server cannot have ignored any.
            raise ProtocolError("the server reported protocol options the client never sent")
        if major != 3 or minor >= self.max_minor:
            raise ProtocolError(
                "received invalid protocol negotiation message: the server offered "
                f"protocol {major}.{minor} in reply to 3.{self.max_minor}")
        if minor < self.min_minor:
            from .exceptions import UnsupportedServerFeatureError

            raise UnsupportedServerFeatureError(
                f"the server only supports protocol version 3.{minor}, but "
                f"min_protocol_version was set to 3.{self.min_minor}")
        self.negotiated_minor = minor

    def on_error(self, core: ProtocolCore, exc: PostgresError) -> None:
        # An error during startup ends the session (FATAL): report it now,
        # whether or not the server closes the socket promptly.
        super().on_error(core, exc)
        core.fatal_error = exc
        self.fail(exc)

    def finish(self, core: ProtocolCore) -> None:
        if self.error is None and not self.auth.ok_received:
            # ReadyForQuery without AuthenticationOk: the server (or someone
            # on the path) skipped authentication altogether.
            self.error = ProtocolError(
                "the server sent ReadyForQuery before authenticating the client")
            core.fatal_error = self.error
        super().finish(core)

    def result(self) -> Any:
        return self.negotiated_minor


class SimpleQueryOp(Operation):
    """A simple Query: several statements allowed; rows are dropped.

    The status of the last command is the result, as asyncpg's execute().
    A COPY started by the query text is refused (CopyFail / drained).
    """

    __slots__ = ()

    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None:
        if tag == _COMMAND_COMPLETE:
            self.status = _wire.parse_command_complete(payload)
        elif tag in (_ROW_DESC, _DATA_ROW, _EMPTY_QUERY, _COPY_DATA, _COPY_DONE):
            pass
        elif tag == _COPY_IN:
            _wire.write_copy_fail(core.out, "COPY FROM STDIN is not supported by execute(); "
                                  "use copy_to_table() or copy_records_to_table()")
        elif tag in (_COPY_OUT, _COPY_BOTH):
            if self.error is None:
                self.error = InterfaceError(
                    "COPY TO STDOUT is not supported by execute(); use copy_from_query()")
        else:
            core.unexpected(tag, self)


class PrepareOp(Operation):
    """Parse + Describe(statement) + Sync: parameter types and result columns."""

    __slots__ = ("param_oids", "fields")

    def __init__(self, waiter: Any, query: str) -> None:
        super().__init__(waiter, query)
        self.param_oids: list[int] = []
        self.fields: list[Any] | None = None

    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None:
        if tag == _PARSE_COMPLETE or tag == _CLOSE_COMPLETE:
            pass
        elif tag == _PARAM_DESC:
            self.param_oids = list(_wire.parse_parameter_description(payload))
        elif tag == _ROW_DESC:
            self.fields = _wire.parse_row_description(payload)
        elif tag == _NO_DATA:
            self.fields = None
        else:
            core.unexpected(tag, self)

    def result(self) -> Any:
        return self.param_oids, self.fields


class ExecuteOp(Operation):
    """Bind + Execute + Sync of a prepared statement; rows decoded on arrival.

    pg-wire's ``read_reply`` consumes the whole reply into ``reply`` (an
    ExtendedReply: rows, command status, whether the portal was suspended by
    a row limit), which is the waiter's result. Only an ErrorResponse, the
    asynchronous messages and anything out of place come through
    ``on_message``/``on_error``.

    *multi*: several Executes under one Sync (fetchmany); rows keep being
    decoded after each CommandComplete.
    """

    __slots__ = ()

    def __init__(self, waiter: Any, query: str | None, row_decoder: Any,
                 multi: bool = False) -> None:
        # Operation.__init__ inlined: this runs once per query, and the extra
        # call costs ~1.6k of ~35k instructions per SELECT 1+1. A unit test
        # (test_protocol_ops.py) checks every slot of Operation is set here.
        self.waiter = waiter
        self.error = None
        self.abandoned = False
        self.query = query
        self.reply = _wire.ExtendedReply(row_decoder, multi)
        self.status = None
        self.sent = False
        self.on_done = None
        self.copy_chunks = None

    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None:
        # Everything a well-behaved server sends here was taken by
        # read_reply(); a DataRow reaching this point came without a
        # RowDescription planned for it.
        core.unexpected(tag, self)

    def rows_done(self) -> None:
        self.reply.decoder = None

    def finish(self, core: ProtocolCore) -> None:
        if self.on_done is not None:
            self.on_done(self)
        waiter = self.waiter
        if self.abandoned or waiter is None or waiter.done():
            return
        if self.error is not None:
            waiter.set_exception(self.error)
        else:
            # The reply, not the operation: op -> waiter -> result -> op
            # would be a cycle keeping every batch of rows alive until the GC.
            waiter.set_result(self.reply)


class ExecuteManyOp(ExecuteOp):
    """Many Bind + Execute pairs under one Sync: atomic, like asyncpg's.

    Their BindCompletes and CommandCompletes are consumed by pg-wire's
    ``read_reply``; rows (an INSERT ... RETURNING, say) are dropped, as
    asyncpg's executemany drops them.
    """

    __slots__ = ()

    def __init__(self, waiter: Any, query: str) -> None:
        super().__init__(waiter, query, None, multi=True)

    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None:
        if tag != _DATA_ROW:
            core.unexpected(tag, self)


class CopyOutOp(Operation):
    """COPY ... TO STDOUT: CopyData chunks are queued for the caller to drain.

    ``on_data`` is called after each chunk is queued (the glue wakes the
    draining task and pauses reading when too much is buffered).
    """

    __slots__ = ("on_data", "started", "buffered")

    def __init__(self, waiter: Any, query: str, on_data: Callable[[], None]) -> None:
        super().__init__(waiter, query)
        self.on_data = on_data
        self.started = False
        self.buffered = 0  # bytes queued in copy_chunks

    def take_data(self) -> bytearray | None:
        """The oldest batch of COPY data not yet drained, or None."""
        chunks = self.copy_chunks
        if not chunks:
            return None
        data = chunks.popleft()
        self.buffered -= len(data)
        return data

    def drop_data(self) -> None:
        """Forget what is queued (the caller gave up)."""
        if self.copy_chunks is not None:
            self.copy_chunks.clear()
        self.buffered = 0

    def copy_data_arrived(self, data: bytearray) -> None:
        if self.abandoned or self.copy_chunks is None:
            return
        self.copy_chunks.append(data)
        self.buffered += len(data)
        self.on_data()

    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None:
        if tag == _COPY_DATA:
            # The bulk path in data_received() takes CopyData once
            # CopyOutResponse has arrived; this is a stray one before it.
            self.copy_data_arrived(bytearray(payload))
        elif tag == _COPY_OUT:
            self.started = True
            self.copy_chunks = collections.deque()
        elif tag == _COPY_DONE:
            pass
        elif tag == _COMMAND_COMPLETE:
            self.status = _wire.parse_command_complete(payload)
        elif tag in (_COPY_IN, _COPY_BOTH):
            _wire.write_copy_fail(core.out, "expected COPY TO STDOUT")
            if self.error is None:
                self.error = InterfaceError("the query did not start a COPY TO STDOUT")
        elif tag in (_ROW_DESC, _DATA_ROW, _EMPTY_QUERY):
            if self.error is None:
                self.error = InterfaceError("the query did not start a COPY TO STDOUT")
        else:
            core.unexpected(tag, self)

    def finish(self, core: ProtocolCore) -> None:
        super().finish(core)
        self.on_data()

    def fail(self, exc: BaseException) -> None:
        super().fail(exc)
        self.on_data()


class CopyInOp(Operation):
    """COPY ... FROM STDIN: ``ready`` is set when the server wants data.

    The caller streams CopyData and ends with CopyDone or CopyFail. A server
    error during the copy (a bad row) arrives while we are still sending:
    ``error`` is set at once so the sender can stop early.
    """

    __slots__ = ("ready", "on_ready", "binary")

    def __init__(self, waiter: Any, query: str, on_ready: Callable[[], None]) -> None:
        super().__init__(waiter, query)
        self.ready = False
        self.on_ready = on_ready
        self.binary = False

    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None:
        if tag == _COPY_IN:
            self.ready = True
            self.binary = _wire.parse_copy_response_format(payload) == 1
            if self.abandoned:
                # Nobody will send the data: end the COPY, or the server
                # would wait for it forever.
                _wire.write_copy_fail(core.out, "COPY abandoned by the client")
            self.on_ready()
        elif tag == _COMMAND_COMPLETE:
            self.status = _wire.parse_command_complete(payload)
        elif tag in (_COPY_OUT, _COPY_BOTH, _COPY_DATA, _COPY_DONE, _ROW_DESC, _DATA_ROW,
                     _EMPTY_QUERY):
            if self.error is None:
                self.error = InterfaceError("the query did not start a COPY FROM STDIN")
        else:
            core.unexpected(tag, self)

    def on_error(self, core: ProtocolCore, exc: PostgresError) -> None:
        super().on_error(core, exc)
        self.on_ready()

    def finish(self, core: ProtocolCore) -> None:
        super().finish(core)
        self.on_ready()

    def fail(self, exc: BaseException) -> None:
        super().fail(exc)
        self.on_ready()
