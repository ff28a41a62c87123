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

# The classes every query goes through are compiled (_core.pyx) and
# re-exported here; the rarer operations below subclass Operation.
from . import _core, _wire
from ._core import ExecuteManyOp, ExecuteOp, Operation, ProtocolCore, SimpleQueryOp
from .exceptions import InterfaceError, PostgresError, ProtocolError

# Backend message tags (ints), defined once in _core.
_AUTH = _core.AUTH
_KEY_DATA = _core.KEY_DATA
_CLOSE_COMPLETE = _core.CLOSE_COMPLETE
_COMMAND_COMPLETE = _core.COMMAND_COMPLETE
_COPY_DATA = _core.COPY_DATA
_COPY_DONE = _core.COPY_DONE
_COPY_IN = _core.COPY_IN
_COPY_OUT = _core.COPY_OUT
_COPY_BOTH = _core.COPY_BOTH
_DATA_ROW = _core.DATA_ROW
_EMPTY_QUERY = _core.EMPTY_QUERY
_NEGOTIATE = _core.NEGOTIATE
_NO_DATA = _core.NO_DATA
_PARAM_DESC = _core.PARAM_DESC
_PARSE_COMPLETE = _core.PARSE_COMPLETE
_ROW_DESC = _core.ROW_DESC

__all__ = ["ExecuteManyOp", "ExecuteOp", "Operation", "ProtocolCore", "SimpleQueryOp"]


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

    The caller streams CopyData and ends with CopyDone or CopyFail, and sets
    ``ended`` when it has written either. It may start before CopyInResponse
    (``ready``) arrives: if the COPY fails before copy-in mode, the server
    drops any CopyData, CopyDone and CopyFail that follow the Query
    (Protocol Flow: COPY Operations). A server error during the copy (a bad
    row) arrives while we are still sending: ``error`` is set at once so the
    sender can stop early.
    """

    __slots__ = ("ready", "on_ready", "binary", "ended")

    def __init__(self, waiter: Any, query: str, on_ready: Callable[[], None]) -> None:
        super().__init__(waiter, query)
        self.ready = False
        self.on_ready = on_ready
        self.binary = False
        self.ended = False

    def on_message(self, core: ProtocolCore, tag: int, payload: bytes) -> None:
        if tag == _COPY_IN:
            self.ready = True
            self.binary = _wire.parse_copy_response_format(payload) == 1
            if self.abandoned and not self.ended:
                # Nobody will send the data: end the COPY, or the server
                # would wait for it forever.
                _wire.write_copy_fail(core.out, "COPY abandoned by the client")
                self.ended = True
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
