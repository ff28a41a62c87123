"""The Connection: asyncpg's API on top of the protocol core.

One ``Connection`` owns one server session. Its public methods are asyncpg's
(same names, signatures, defaults and results); the comments below say where
we do more than asyncpg.

How a query runs (``fetch`` and friends):

1. ``_operation()`` makes sure no other operation of the caller is running
   (asyncpg's InterfaceError), waits for an earlier operation that was
   abandoned (timeout, cancelled task) to drain, and computes one deadline
   for everything that follows: prepare, type introspection and execution all
   count against the same ``timeout`` / ``command_timeout``.
2. The statement comes from the LRU cache, or is prepared (Parse + Describe +
   Sync); types the codec registry does not know are introspected once per
   connection.
3. Bind + Execute + Sync go out in one write; rows are decoded into Records
   as they arrive.
4. A timeout or a cancelled task abandons the request: a CancelRequest goes
   out on a side connection with the same TLS settings, and the protocol
   keeps consuming the reply until ReadyForQuery, so the next operation
   starts in step. If the server does not finish within a bounded time, the
   connection is closed instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from pg_codecs import WriteBuffer

from . import _codecs as codecs
from . import _copy, _protocol, _wire, exceptions, introspection
from ._connect import session_fits
from ._connect_params import SessionAttribute
from ._transport import upkeep_task
from .cursor import CursorFactory
from .exceptions import InterfaceError
from .prepared_stmt import PreparedStatement
from .transaction import Transaction
from .types import ServerVersion

__all__ = ("Connection", "ConnectionProxy", "LoggedQuery", "connect")

# Bounded time for a cancelled request to finish after its CancelRequest
# before the connection is given up on (closed).
_CANCEL_BUDGET = 5.0
# copy_records_to_table statements kept per connection (see _copy_records_sql).
_COPY_SQL_CACHE_SIZE = 32

_stmt_ids = itertools.count(1)


# target_session_attrs under which any server will do (prefer-standby settles
# for a primary): the pool asks on every acquire and release.
_ANY_SERVER = frozenset({SessionAttribute.any, SessionAttribute.prefer_standby})


def _usable_timeout(seconds: object) -> bool:
    """A timeout the paths that send at once take: a positive int or float.

    Anything else (a bool, a string, zero, NaN) goes the general way, which
    raises the error asyncpg raises for it.
    """
    if type(seconds) is float:
        return seconds > 0.0
    return type(seconds) is int and seconds > 0


class ConnectionMeta(type):
    """Makes pool proxies (ConnectionProxy subclasses) pass isinstance()."""

    def __instancecheck__(cls, instance: object) -> bool:
        mro = type(instance).__mro__
        return cls in mro or ConnectionProxy in mro


class ConnectionProxy:
    """Base class for objects that stand in for a Connection (pool proxies).

    For pool implementers: ``isinstance(proxy, pg_client.Connection)`` is
    true for instances of subclasses of this class, as asyncpg's pool proxies
    are for asyncpg.Connection.
    """

    __slots__ = ()


class LoggedQuery(NamedTuple):
    """What a query logger receives after each query (asyncpg's fields)."""

    query: str
    args: Sequence[Any]
    timeout: float | None
    elapsed: float
    exception: BaseException | None
    conn_addr: Any
    conn_params: Any


class ConnectionSettings:
    """The server's run-time parameters (ParameterStatus), as attributes."""

    __slots__ = ("_params",)

    def __init__(self, params: dict[str, str]) -> None:
        self._params = params

    def __getattr__(self, name: str) -> str:
        try:
            return self._params[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"<ConnectionSettings {self._params!r}>"


class _Statement:
    """A prepared statement on the server, with its planned codecs."""

    __slots__ = (
        "name", "query", "param_oids", "fields", "encoder", "decoder", "record_class",
        "closed", "expiry", "ignore_custom_codec", "result_formats", "param_types",
        "attributes", "refs", "copy_encoder",
    )

    def __init__(self, name: str, query: str) -> None:
        self.name = name
        self.query = query
        self.param_oids: list[int] = []
        self.fields: list[Any] | None = None
        self.encoder: Any = None
        self.decoder: Any = None
        self.record_class: type | None = None
        self.closed = False
        # The timer that drops it from the statement cache after
        # max_cached_statement_lifetime (None when not cached or no lifetime).
        self.expiry: asyncio.TimerHandle | None = None
        self.ignore_custom_codec = False
        self.result_formats: list[int] = []
        self.param_types: tuple[Any, ...] = ()
        self.attributes: tuple[Any, ...] = ()
        self.refs = 0
        # copy_records_to_table()'s encoder of these result columns, made on
        # first use (a codec change drops the cached statements).
        self.copy_encoder: Any = None

    def stop_expiry(self) -> None:
        """It left the statement cache: cancel its lifetime timer."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None


def _statement_expired(con_ref: weakref.ref[Connection], key: Any, stmt: _Statement) -> None:
    """The timer of a cached statement: its max_cached_statement_lifetime is over.

    It holds the connection weakly: a connection dropped without close() must
    still be collected (and warned about) before its statements expire.
    """
    stmt.expiry = None
    con = con_ref()
    if con is not None and con._stmt_cache.get(key) is stmt:
        del con._stmt_cache[key]
        con._close_statement(stmt)


class _Operation:
    """Connection._operation()'s context manager.

    Entering checks the connection is open and idle, marks it busy, turns
    the timeout into a deadline (the loop's time, or None) and waits for
    the drain of an abandoned request; leaving marks it idle again. A class
    rather than an ``asynccontextmanager`` generator: about 5k fewer
    user-space instructions per use, on every cursor step, transaction
    and ``executemany()``.
    """

    __slots__ = ("_con", "_timeout")

    def __init__(self, con: Connection, timeout: float | None) -> None:
        self._con = con
        self._timeout = timeout

    async def __aenter__(self) -> float | None:
        con = self._con
        con._check_open()
        if con._busy:
            raise InterfaceError(
                "cannot perform operation: another operation is in progress")
        con._busy = True
        try:
            deadline = con._deadline(self._timeout)
            if con._drain_task is not None:
                await con._wait_drained(deadline)
            con._check_open()
        except BaseException:
            con._busy = False
            raise
        return deadline

    async def __aexit__(self, *exc_info: object) -> None:
        self._con._busy = False


class _Config(NamedTuple):
    command_timeout: float | None
    statement_cache_size: int
    max_cached_statement_lifetime: float
    max_cacheable_statement_size: int


class Connection(metaclass=ConnectionMeta):
    """A connection to a PostgreSQL server; make one with :func:`connect`."""

    __slots__ = (
        "_protocol", "_transport", "_loop", "_addr", "_config", "_params",
        "_core", "_codecs", "_stmt_cache", "_stmt_cache_size", "_pending_closes", "_busy",
        "_drain_task", "_listeners", "_log_listeners", "_termination_listeners",
        "_query_loggers", "_closed", "_aborted", "_top_xact", "_server_version",
        "_cancel_info", "_record_class", "_introspected", "_source_traceback",
        "__weakref__", "_settings", "_ssl_in_use", "_protocol_minor", "_reset_query",
        "_holder", "_generation", "_proxy", "_user_closed", "_on_cache_drop", "_query_count",
        "_started", "_copy_sql",
    )

    def __init__(
        self,
        protocol: Any,
        transport: Any,
        loop: asyncio.AbstractEventLoop,
        addr: Any,
        config: Any,
        params: Any,
    ) -> None:
        self._protocol = protocol
        self._transport = transport
        self._loop = loop
        self._addr = addr
        self._config = config
        self._params = params
        self._core: _protocol.ProtocolCore = protocol.core
        self._codecs = codecs.ConnectionCodecs()
        self._stmt_cache: collections.OrderedDict[Any, _Statement] = collections.OrderedDict()
        self._stmt_cache_size = config.statement_cache_size
        # (b"S", statement) and (b"P", portal) to close with the next request.
        self._pending_closes: list[tuple[bytes, str]] = []
        self._busy = False
        # When the operation in flight started (its query log entry's
        # elapsed); None when no query logger was there at its start.
        self._started: float | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._listeners: dict[str, list[Callable[..., Any]]] = {}
        self._log_listeners: list[Callable[..., Any]] = []
        self._termination_listeners: list[Callable[..., Any]] = []
        self._query_loggers: list[Callable[..., Any]] = []
        self._closed = False
        self._aborted = False
        self._top_xact: Any = None
        self._server_version: ServerVersion | None = None
        self._cancel_info: Any = None
        self._record_class: type = codecs.Record
        self._introspected: set[int] = set()
        self._settings = ConnectionSettings(self._core.parameters)
        self._ssl_in_use = False
        self._protocol_minor = 0
        self._reset_query: str | None = None
        self._holder: Any = None
        self._generation = 0
        self._proxy: Any = None
        self._user_closed = False
        self._on_cache_drop: Callable[[str], None] | None = None
        self._query_count = 0
        self._copy_sql: dict[Any, tuple[str, str]] = {}
        self._source_traceback = None
        if loop.get_debug():
            import traceback

            self._source_traceback = traceback.extract_stack(sys._getframe(1))
        # The protocol outlives nobody: it refers back to us only weakly, so
        # an unclosed Connection can be collected (and warn, see __del__).
        ref = weakref.ref(self)
        core = self._core
        core.on_notification = _weak_callback(ref, "_on_notification")
        core.on_notice = _weak_callback(ref, "_on_notice")
        core.on_parameter = _weak_callback(ref, "_on_parameter")
        protocol.on_lost = _weak_callback(ref, "_on_connection_lost")

    def __del__(self) -> None:
        protocol = getattr(self, "_protocol", None)
        if protocol is None or getattr(self, "_core", None) is None:
            return
        if not self.is_closed() and not protocol.lost:
            # Mirror asyncpg: warn and close the socket. The context holds
            # no reference to self: a handler keeping it must not resurrect
            # the connection.
            context: dict[str, Any] = {"connection": repr(self)}
            if self._source_traceback is not None:
                context["source_traceback"] = self._source_traceback
            warnings.warn(f"unclosed connection {self!r}", ResourceWarning, stacklevel=1,
                          source=self)
            if self._source_traceback is not None and not self._loop.is_closed():
                # In debug mode, say where the connection was made.
                context["message"] = "unclosed connection, created at:"
                self._loop.call_exception_handler(context)
            with contextlib.suppress(Exception):
                self._transport.abort()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else "open"
        return f"<{type(self).__module__}.{type(self).__qualname__} {state} addr={self._addr!r}>"

    # -- internal plumbing ----------------------------------------------------
    def _check_open(self) -> None:
        if self._closed or self._core.closed:
            core = self._core
            reason = core.fatal_error or core.termination_notice
            if reason is not None and not self._user_closed:
                if not core.loss_reported and isinstance(reason, exceptions.PostgresError):
                    # The first call after the server ended the session
                    # while we were idle gets the server's error (R8, X6),
                    # which is also asyncpg's InterfaceError and a
                    # ConnectionDoesNotExistError; later calls the plain one.
                    core.loss_reported = True
                    err = exceptions.connection_lost_by_server(
                        reason, request_sent=False, interface_error=True)
                    err.args = (f"cannot perform operation: connection is closed ({reason})",)
                    raise err from None
                raise InterfaceError(
                    f"cannot perform operation: connection is closed ({reason})") from reason
            raise InterfaceError("cannot perform operation: connection is closed")

    def _operation(self, timeout: float | None) -> _Operation:
        """Run one public operation: exclusive, in step, under one deadline.

        ``async with con._operation(timeout) as deadline:``, see _Operation.
        """
        return _Operation(self, timeout)

    def _deadline(self, timeout: float | None) -> float | None:
        if timeout is None:
            timeout = self._config.command_timeout
        if timeout is None:
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise InterfaceError(f"invalid timeout value {timeout!r}: expected a number")
        if timeout <= 0:
            raise asyncio.TimeoutError()
        return self._loop.time() + timeout

    def _remaining(self, deadline: float | None) -> float | None:
        if deadline is None:
            return None
        left = deadline - self._loop.time()
        if left <= 0:
            raise asyncio.TimeoutError()
        return left

    async def _wait_drained(self, deadline: float | None) -> None:
        task = self._drain_task
        if task is None:
            return
        left = self._remaining(deadline)
        try:
            await asyncio.wait_for(asyncio.shield(task), left)
        finally:
            if task.done():
                self._drain_task = None

    async def _wait(self, op: _protocol.Operation, deadline: float | None) -> Any:
        """Await *op*'s result; on timeout or cancellation, abandon it."""
        waiter = op.waiter
        try:
            if deadline is not None:
                left = deadline - self._loop.time()
                if left <= 0:
                    raise asyncio.TimeoutError()
                # The deadline settles the waiter with TimeoutError.
                self._protocol.set_deadline(op, deadline)
            return await waiter
        except (asyncio.CancelledError, asyncio.TimeoutError):
            self._abandon(op)
            raise

    def _send(self, op: _protocol.Operation) -> None:
        self._query_count += 1
        self._protocol.send(op)

    def _abandon(self, op: _protocol.Operation) -> None:
        """Give up on *op*: cancel it server-side, drain its reply in the background."""
        _discard(op)
        if op not in self._core.pending:
            return
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = upkeep_task(self._loop, self._cancel_and_drain(op))

    async def _cancel_and_drain(self, op: _protocol.Operation) -> None:
        done = self._loop.create_future()

        def _done(_: Any) -> None:
            if not done.done():
                done.set_result(None)

        op.on_done = _done
        if op not in self._core.pending:
            return
        deadline = self._loop.time() + _CANCEL_BUDGET
        try:
            # One budget for sending the CancelRequest and for the server
            # to finish the request.
            with contextlib.suppress(Exception):
                await self._send_cancel(_CANCEL_BUDGET)
            left = max(deadline - self._loop.time(), 0.0)
            await asyncio.wait_for(asyncio.shield(done), left)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            # The server did not finish the request in time: the session can
            # no longer be trusted to be in step. Close it.
            self._abort()

    def _rollback_orphaned_begin(self) -> None:
        """A BEGIN whose caller gave up may still have run: undo it.

        Called by Transaction.start() when it is cancelled or times out. The
        next operation waits for this (like for any abandoned request), so
        it never runs inside a transaction nobody owns.
        """
        previous = self._drain_task

        async def rollback() -> None:
            if previous is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(previous)
            if self.is_closed() or self._core.transaction_status == "I":
                return
            _wire.write_query(self._core.out, "ROLLBACK")
            op = _protocol.SimpleQueryOp(self._loop.create_future(), "ROLLBACK")
            self._send(op)
            try:
                await asyncio.wait_for(op.waiter, _CANCEL_BUDGET)
            except BaseException:
                self._abort()

        self._drain_task = upkeep_task(self._loop, rollback())

    async def _send_cancel(self, timeout: float) -> None:
        info = self._cancel_info
        if info is None or self._core.backend_pid == 0:
            return
        request = _wire.cancel_request(
            self._core.backend_pid, self._core.backend_key, self._protocol_minor)
        await info(request, timeout)

    def _abort(self) -> None:
        self._aborted = True
        self._closed = True
        self._core.closed = True
        with contextlib.suppress(Exception):
            self._protocol.abort()

    # -- asynchronous server messages ---------------------------------------------
    def _target(self) -> Any:
        """What callbacks receive as the connection: the pool proxy, if lent."""
        return self._proxy if self._proxy is not None else self

    def _on_notification(self, pid: int, channel: str, payload: str) -> None:
        for cb in list(self._listeners.get(channel, ())):
            self._call_soon(cb, self._target(), pid, channel, payload)

    def _on_notice(self, message: exceptions.PostgresLogMessage) -> None:
        for cb in list(self._log_listeners):
            self._call_soon(cb, self._target(), message)

    def _on_parameter(self, name: str, value: str) -> None:
        if name == "server_version":
            self._server_version = None
            self._reset_query = None

    def _on_connection_lost(self, exc: BaseException | None) -> None:
        self._closed = True
        self._cleanup()

    def _call_soon(self, cb: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            try:
                result = cb(*args)
                if asyncio.iscoroutine(result):
                    task = self._loop.create_task(result)
                    task.add_done_callback(self._report_callback_task)
            except Exception as exc:
                self._loop.call_exception_handler({
                    "message": f"unhandled exception in callback {cb!r}",
                    "exception": exc, "connection": self})

        self._loop.call_soon(run)

    def _report_callback_task(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._loop.call_exception_handler({
                "message": "unhandled exception in a connection callback",
                "exception": task.exception(), "connection": self})

    def _cleanup(self) -> None:
        listeners = list(self._termination_listeners)
        self._termination_listeners.clear()
        target = self._target()
        for cb in listeners:
            self._call_soon(cb, target)
        self._listeners.clear()
        self._log_listeners.clear()
        for stmt in self._stmt_cache.values():
            stmt.closed = True
            stmt.stop_expiry()
        self._stmt_cache.clear()

    # -- listeners --------------------------------------------------------------
    async def add_listener(self, channel: str, callback: Callable[..., Any]) -> None:
        """Call *callback* for every NOTIFY on *channel*.

        :param channel: Channel name (LISTEN is issued the first time).
        :param callback: ``callback(connection, pid, channel, payload)``; may be
            a coroutine function.
        """
        _check_callback(callback)
        self._check_open()
        callbacks = self._listeners.get(channel)
        if callbacks is None:
            await self.fetch(f"LISTEN {_quote_ident(channel)}")
            callbacks = self._listeners.setdefault(channel, [])
        callbacks.append(callback)

    async def remove_listener(self, channel: str, callback: Callable[..., Any]) -> None:
        """Stop calling *callback* for *channel*; UNLISTEN after the last one."""
        if self.is_closed():
            return
        callbacks = self._listeners.get(channel)
        if not callbacks:
            return
        with contextlib.suppress(ValueError):
            callbacks.remove(callback)
        if not callbacks:
            del self._listeners[channel]
            await self.fetch(f"UNLISTEN {_quote_ident(channel)}")

    def add_log_listener(self, callback: Callable[..., Any]) -> None:
        """Call ``callback(connection, message)`` for each server notice or warning."""
        _check_callback(callback)
        if self.is_closed():
            raise InterfaceError("connection is closed")
        self._log_listeners.append(callback)

    def remove_log_listener(self, callback: Callable[..., Any]) -> None:
        """Remove a callback added with :meth:`add_log_listener`."""
        with contextlib.suppress(ValueError):
            self._log_listeners.remove(callback)

    def add_termination_listener(self, callback: Callable[..., Any]) -> None:
        """Call ``callback(connection)`` once when the connection closes."""
        _check_callback(callback)
        self._termination_listeners.append(callback)

    def remove_termination_listener(self, callback: Callable[..., Any]) -> None:
        """Remove a callback added with :meth:`add_termination_listener`."""
        with contextlib.suppress(ValueError):
            self._termination_listeners.remove(callback)

    def add_query_logger(self, callback: Callable[..., Any]) -> None:
        """Call ``callback(LoggedQuery)`` after each query this connection runs."""
        _check_callback(callback)
        self._query_loggers.append(callback)

    def remove_query_logger(self, callback: Callable[..., Any]) -> None:
        """Remove a callback added with :meth:`add_query_logger`."""
        with contextlib.suppress(ValueError):
            self._query_loggers.remove(callback)

    @contextlib.contextmanager
    def query_logger(self, callback: Callable[..., Any]) -> Any:
        """Context manager: *callback* logs the queries run inside the block."""
        self.add_query_logger(callback)
        try:
            yield callback
        finally:
            self.remove_query_logger(callback)

    def _log_query(self, query: str, args: Sequence[Any], timeout: float | None,
                   started: float | None, exc: BaseException | None) -> None:
        # started is None: no logger was there when the query started, and
        # asyncpg logs only what it timed from the start.
        if not self._query_loggers or started is None:
            return
        record = LoggedQuery(query, args, timeout, time.monotonic() - started, exc,
                             self._addr, self._params)
        for cb in list(self._query_loggers):
            self._call_soon(cb, record)

    # -- information ----------------------------------------------------------------
    def get_server_pid(self) -> int:
        """The process ID of the server backend of this connection."""
        return self._core.backend_pid

    def get_server_version(self) -> ServerVersion:
        """The server's version as ``ServerVersion(major, minor, micro, releaselevel, serial)``."""
        if self._server_version is None:
            self._server_version = _parse_server_version(
                self._core.parameters.get("server_version", ""))
        return self._server_version

    def get_settings(self) -> ConnectionSettings:
        """The server's run-time parameters reported to this connection."""
        return self._settings

    def get_reset_query(self) -> str:
        """The SQL that :meth:`reset` runs to return the session to a clean state."""
        if self._reset_query is None:
            parts = []
            version = self.get_server_version()
            if version >= (8, 2):
                parts.append("SELECT pg_advisory_unlock_all();")
                parts.append("CLOSE ALL;")
            if version >= (9, 0):
                parts.append("UNLISTEN *;")
            parts.append("RESET ALL;")
            self._reset_query = "\n".join(parts)
        return self._reset_query

    def is_in_transaction(self) -> bool:
        """True when the session is inside a transaction block (also a failed one)."""
        return self._core.transaction_status != "I"

    def is_closed(self) -> bool:
        """True once the connection is closed or lost."""
        return self._closed or self._core.closed

    # -- the end ----------------------------------------------------------------------
    async def close(self, *, timeout: float | None = None) -> None:
        """Close the connection gracefully (Terminate, then wait for the server).

        :param timeout: Seconds to wait; on expiry the connection is aborted
            and TimeoutError raised.
        """
        self._user_closed = True
        if self.is_closed():
            self._closed = True
            self._cleanup()
            return
        self._closed = True
        try:
            closed = self._loop.create_future()
            previous = self._protocol.on_lost

            def _lost(exc: BaseException | None) -> None:
                if previous is not None:
                    previous(exc)
                if not closed.done():
                    closed.set_result(None)

            self._protocol.on_lost = _lost
            if not self._protocol.lost:
                # Terminate, then wait for the server to hang up, as asyncpg
                # does; a request still in flight fails with
                # ConnectionDoesNotExistError when it does.
                _wire.write_terminate(self._core.out)
                self._protocol.flush()
                await asyncio.wait_for(closed, timeout)
        except BaseException:
            self._abort()
            raise
        finally:
            self._cleanup()

    def terminate(self) -> None:
        """Close the connection at once, without telling the server."""
        self._user_closed = True
        self._abort()
        self._cleanup()

    async def reset(self, *, timeout: float | None = None) -> None:
        """Return the session to a clean state (for pools).

        Rolls back an open transaction, then runs :meth:`get_reset_query`.
        """
        await self.execute(self._begin_reset(), timeout=timeout)

    def start_reset(self, *, timeout: float | None = None) -> asyncio.Future[str]:
        """Begin :meth:`reset` and return a future of its outcome (for pool implementers).

        The reset goes on to its end whatever becomes of the future: a pool
        can release a connection from a task that may be cancelled without
        running the reset in a task of its own (or behind
        ``asyncio.shield()``). The future settles when the server has run
        the reset, with the status of its last command or the exception
        :meth:`reset` would raise (on *timeout*, ``asyncio.TimeoutError``,
        and the request is cancelled on the server as for any query). Await
        it or add a done callback: its exception is otherwise reported as
        never retrieved.

        :raises InterfaceError: The connection is closed (at once, not
            through the future).
        """
        query = self._begin_reset()
        if not self._query_loggers:
            # Sent now, finished by the protocol: no coroutine, no task.
            op = self._start_simple(query, timeout)
            if op is not None:
                def ended(_: Any) -> None:
                    # Called at ReadyForQuery (or when the connection ends).
                    # A request given up on at its timeout freed the
                    # connection already, which may be busy again.
                    if not op.abandoned:
                        self._busy = False

                op.on_done = ended
                waiter = op.waiter
                if timeout is not None or self._config.command_timeout is not None:
                    def settled(_: Any) -> None:
                        if (not waiter.cancelled() and not op.abandoned
                                and op in self._core.pending):
                            exc = waiter.exception()
                            if isinstance(exc, asyncio.TimeoutError):
                                self._sent_op_failed(op, exc)

                    waiter.add_done_callback(settled)
                return waiter  # type: ignore[no-any-return]
        # Busy, draining, or logging queries: the general path, in a task
        # the caller's cancellation cannot reach.
        return asyncio.shield(self._loop.create_task(self.execute(query, timeout=timeout)))

    def _begin_reset(self) -> str:
        """reset()'s first half: forget the session's client-side state; -> the SQL."""
        self._check_open()
        self._top_xact = None
        self._listeners.clear()
        self._log_listeners.clear()
        query = self.get_reset_query()
        if self.is_in_transaction():
            query = "ROLLBACK;\n" + query
        return query

    # -- for pool implementers ----------------------------------------------------------
    def attach_proxy(self, proxy: ConnectionProxy, *,
                     on_cache_drop: Callable[[str], None] | None = None) -> None:
        """Start lending this connection through *proxy* (for pool implementers).

        Until :meth:`detach_proxy`, notification, log and termination
        callbacks receive *proxy* as their connection argument.

        :param on_cache_drop: Called with ``'statements'`` or ``'types'`` when
            this connection drops a cache because the schema changed, so the
            pool can drop it on its other connections too.
        :raises InterfaceError: A proxy is attached already.
        """
        if self._proxy is not None:
            raise InterfaceError("the connection is already lent through a proxy")
        self._proxy = proxy
        self._on_cache_drop = on_cache_drop

    def detach_proxy(self) -> None:
        """End the loan (for pool implementers).

        Every PreparedStatement, Cursor and Transaction made until now stops
        working (InterfaceError when used), as in asyncpg's pool. Warns
        with an InterfaceWarning when notification or log listeners remain.
        """
        if self._listeners or self._log_listeners:
            warnings.warn(exceptions.InterfaceWarning(
                "Connection.add_listener() or add_log_listener() callbacks are still "
                "registered on a connection being released to the pool; they are "
                "removed. Remove them before releasing the connection."), stacklevel=2)
        self._proxy = None
        self._on_cache_drop = None
        self._generation += 1

    def matches_target_session_attrs(self) -> bool:
        """Whether the server still fits connect()'s ``target_session_attrs``.

        For pool implementers: a server can turn read-only (or be demoted to
        a standby) under open connections; it reports this through
        ``default_transaction_read_only`` and ``in_hot_standby``, and a pool
        asked for ``read-write`` or ``primary`` should stop lending such a
        connection.
        """
        attr = getattr(self._params, "target_session_attrs", None)
        if attr is None or attr in _ANY_SERVER:
            return True
        return session_fits(self.get_settings(), attr)

    def get_query_count(self) -> int:
        """How many queries this connection has run (for pool ``max_queries``)."""
        return self._query_count

    async def reset_transaction_and_listeners(self, *, timeout: float | None = None) -> None:
        """Roll back an open transaction and drop listeners (for pool implementers).

        The part of :meth:`reset` that must run before a pool's own reset
        hook: the session leaves any transaction, the active Transaction
        object is forgotten, notification and log listeners are removed.
        """
        self._check_open()
        self._top_xact = None
        channels = list(self._listeners)
        self._listeners.clear()
        self._log_listeners.clear()
        query = "ROLLBACK;" if self.is_in_transaction() else ""
        if channels:
            query += "UNLISTEN *;"
        if query:
            await self.execute(query, timeout=timeout)

    def drop_local_cache(self, kind: str) -> None:
        """Forget this connection's ``'statements'`` or ``'types'`` cache."""
        if kind == "statements":
            self._clear_statements()
        elif kind == "types":
            self._codecs.reset_introspected()
            self._clear_statements()
        else:
            raise ValueError(f"unknown cache kind {kind!r}: expected 'statements' or 'types'")

    def _cache_dropped(self, kind: str) -> None:
        if self._on_cache_drop is not None:
            self._on_cache_drop(kind)

    # -- queries ----------------------------------------------------------------------
    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        """Run SQL; return the status of the last command (``'INSERT 0 1'``).

        Without *args* the simple protocol is used, so *query* may hold several
        statements; with *args* it is one statement with ``$n`` placeholders.
        """
        if args:
            # The common case without a coroutine in between (see _start_execute).
            xop = self._start_execute(query, args, 0, timeout, None)
            if xop is None:
                reply = await self._execute(query, args, 0, timeout)
            else:
                try:
                    reply = await xop.waiter
                except BaseException as fail:
                    reply = await self._execute_failed(xop, fail, query, args, 0, timeout, None)
                else:
                    self._busy = False
                    if self._query_loggers:
                        self._log_query(query, args, timeout, self._started, None)
            return reply.status or ""
        op = self._start_simple(query, timeout)
        if op is None:
            return await self._simple_query(query, timeout)
        try:
            await op.waiter
        except BaseException as fail:
            self._sent_op_failed(op, fail)
            if self._query_loggers:
                self._log_query(query, args, timeout, self._started, fail)
            raise
        self._busy = False
        if self._query_loggers:
            self._log_query(query, args, timeout, self._started, None)
        return op.status or ""

    def _start_simple(self, query: str, timeout: float | None) -> _protocol.Operation | None:
        """execute() without arguments, when nothing needs awaiting first: send now.

        The simple-protocol twin of _start_execute(): write the Query, mark
        the connection busy, set its deadline if it has a timeout, and
        return the operation; None sends the caller to _simple_query().
        """
        if (type(query) is not str or self._busy or self._closed or self._core.closed
                or self._drain_task is not None or "\x00" in query):
            return None
        seconds = self._config.command_timeout if timeout is None else timeout
        if seconds is not None and not _usable_timeout(seconds):
            return None
        self._busy = True
        self._started = time.monotonic() if self._query_loggers else None
        try:
            if self._pending_closes:
                self._write_pending_closes()
            _wire.write_query(self._core.out, query)
            op = _protocol.SimpleQueryOp(self._protocol.new_waiter(), query)
            self._send(op)
        except BaseException as exc:
            self._busy = False
            if self._query_loggers:
                self._log_query(query, (), timeout, self._started, exc)
            raise
        if seconds is not None:
            self._protocol.set_timeout(op, seconds)
        return op

    async def _simple_query(self, query: str, timeout: float | None) -> str:
        """execute() without arguments, the general case (see _start_simple)."""
        self._check_query(query)
        started = time.monotonic()
        exc: BaseException | None = None
        try:
            async with self._operation(timeout) as deadline:
                out = self._core.out
                self._write_pending_closes()
                _wire.write_query(out, query)
                op = _protocol.SimpleQueryOp(self._protocol.new_waiter(), query)
                self._send(op)
                await self._wait(op, deadline)
                return op.status or ""
        except BaseException as e:
            exc = e
            raise
        finally:
            self._log_query(query, (), timeout, started, exc)

    async def executemany(self, command: str, args: Iterable[Sequence[Any]], *,
                          timeout: float | None = None) -> None:
        """Run *command* once per argument tuple in *args*, atomically.

        All the Bind/Execute pairs go out under one Sync, so a failure rolls
        back every row (the whole call is one implicit transaction, or part of
        the caller's).
        """
        self._check_query(command)
        started = time.monotonic()
        exc: BaseException | None = None
        try:
            async with self._operation(timeout) as deadline:
                stmt = await self._get_statement(command, deadline)
                await self._executemany(stmt, args, deadline)
        except BaseException as e:
            exc = e
            raise
        finally:
            self._log_query(command, (), timeout, started, exc)

    async def _executemany(self, stmt: _Statement, args: Iterable[Sequence[Any]],
                           deadline: float | None) -> None:
        out = self._core.out
        self._write_pending_closes()
        mark = len(out)
        flushed = False
        # _write_bind_execute() per row, inlined with its lookups hoisted:
        # the call alone was 17% of the instructions of a 1,000-row batch.
        nparams = len(stmt.param_oids)
        write = _wire.write_bind_execute
        try:
            for element, row_args in enumerate(args):
                if stmt.closed or len(row_args) != nparams:
                    self._check_bind(stmt, row_args)
                try:
                    write(out, "", stmt.name, stmt.encoder, row_args, stmt.result_formats, 0,
                          False)
                except (codecs.ParameterEncodeError, codecs.ParameterCountError) as exc:
                    raise codecs.param_error(exc, element) from exc.__cause__
                if len(out) > 1 << 20:
                    # Keep memory flat for millions of rows: send as we go.
                    self._protocol.flush()
                    flushed = True
                    mark = 0
                    await self._protocol.drain()
        except BaseException:
            out.rewind(mark)
            if flushed and not self._protocol.lost:
                # Part of the batch already ran. Execute a portal that does not
                # exist: the error aborts the implicit transaction at Sync, so
                # the batch stays all-or-nothing.
                _wire.write_execute(out, "__pgc_abort_batch__", 0)
                _wire.write_sync(out)
                op = _protocol.ExecuteManyOp(self._protocol.new_waiter(), stmt.query)
                self._send(op)
                with contextlib.suppress(Exception):
                    await asyncio.shield(op.waiter)
            raise
        _wire.write_sync(out)
        op = _protocol.ExecuteManyOp(self._protocol.new_waiter(), stmt.query)
        self._send(op)
        await self._wait(op, deadline)

    async def fetch(self, query: str, *args: Any, timeout: float | None = None,
                    record_class: type | None = None) -> list[Any]:
        """Run *query* and return all its rows as a list of Records."""
        # The common case without a coroutine in between (see _start_execute).
        op = self._start_execute(query, args, 0, timeout, record_class)
        if op is None:
            reply = await self._execute(query, args, 0, timeout, record_class=record_class)
        else:
            try:
                reply = await op.waiter
            except BaseException as fail:
                reply = await self._execute_failed(op, fail, query, args, 0, timeout, record_class)
            else:
                self._busy = False
                if self._query_loggers:
                    self._log_query(query, args, timeout, self._started, None)
        return reply.rows

    async def fetchval(self, query: str, *args: Any, column: int = 0,
                       timeout: float | None = None) -> Any:
        """Run *query* and return one value of its first row (None when no rows)."""
        # The common case without a coroutine in between (see _start_execute).
        op = self._start_execute(query, args, 1, timeout, None)
        if op is None:
            reply = await self._execute(query, args, 1, timeout)
        else:
            try:
                reply = await op.waiter
            except BaseException as fail:
                reply = await self._execute_failed(op, fail, query, args, 1, timeout, None)
            else:
                self._busy = False
                if self._query_loggers:
                    self._log_query(query, args, timeout, self._started, None)
        rows = reply.rows
        return rows[0][column] if rows else None

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None,
                       record_class: type | None = None) -> Any:
        """Run *query* and return its first row, or None."""
        # The common case without a coroutine in between (see _start_execute).
        op = self._start_execute(query, args, 1, timeout, record_class)
        if op is None:
            reply = await self._execute(query, args, 1, timeout, record_class=record_class)
        else:
            try:
                reply = await op.waiter
            except BaseException as fail:
                reply = await self._execute_failed(op, fail, query, args, 1, timeout, record_class)
            else:
                self._busy = False
                if self._query_loggers:
                    self._log_query(query, args, timeout, self._started, None)
        rows = reply.rows
        return rows[0] if rows else None

    async def fetchmany(self, query: str, args: Iterable[Sequence[Any]], *,
                        timeout: float | None = None,
                        record_class: type | None = None) -> list[Any]:
        """Run *query* once per argument tuple; return all rows of all runs."""
        self._check_query(query)
        started = time.monotonic()
        exc: BaseException | None = None
        try:
            async with self._operation(timeout) as deadline:
                stmt = await self._get_statement(query, deadline, record_class=record_class)
                return await self._fetchmany(stmt, args, deadline)
        except BaseException as e:
            exc = e
            raise
        finally:
            self._log_query(query, (), timeout, started, exc)

    async def _fetchmany(self, stmt: _Statement, args: Iterable[Sequence[Any]],
                         deadline: float | None) -> list[Any]:
        out = self._core.out
        self._write_pending_closes()
        mark = len(out)
        try:
            for element, row_args in enumerate(args):
                self._write_bind_execute(out, stmt, "", row_args, 0, False, element)
        except BaseException:
            out.rewind(mark)
            raise
        _wire.write_sync(out)
        # Several CommandCompletes: keep collecting rows after each.
        op = _protocol.ExecuteOp(self._protocol.new_waiter(), stmt.query, stmt.decoder,
                                 multi=True)
        self._send(op)
        reply = await self._wait(op, deadline)
        return reply.rows or []

    async def _extended(self, timeout: float | None, stmt: _Statement | None,
                        write: Callable[[WriteBuffer], None]) -> Any:
        """Send what *write* puts in the buffer, then Sync; return the ExecuteOp.

        Used by cursors and prepared statements for Bind / Execute / Close
        sequences on named portals.
        """
        async with self._operation(timeout) as deadline:
            out = self._core.out
            self._write_pending_closes()
            mark = len(out)
            try:
                write(out)
            except BaseException:
                out.rewind(mark)
                raise
            _wire.write_sync(out)
            op = _protocol.ExecuteOp(
                self._protocol.new_waiter(), stmt.query if stmt else None,
                stmt.decoder if stmt else None)
            self._send(op)
            return await self._wait(op, deadline)

    def _check_query(self, query: str) -> None:
        if not isinstance(query, str):
            raise InterfaceError(f"query must be a str, got {type(query).__name__}")
        if "\x00" in query:
            # asyncpg lets the server refuse it (08P01); we refuse it before a
            # byte is sent, with the same class.
            raise exceptions.NulInQueryError(
                "the query text contains a NUL byte, which PostgreSQL strings cannot hold")

    def _start_execute(self, query: str, args: Sequence[Any], limit: int,
                       timeout: float | None,
                       record_class: type | None) -> _protocol.ExecuteOp | None:
        """The common case of _execute(), without a coroutine: send now, or None.

        When the statement is cached, send it as _start_bound() does (its
        body inlined: a call more costs 0.5k of the 23.4k user-space
        instructions of a cached ``fetchval("SELECT 1+1")`` on uvloop). The
        caller awaits ``op.waiter``, then clears ``_busy`` and logs the
        query, or hands a failure to _execute_failed(). None: the caller
        uses _execute(), which handles everything else (errors included).
        """
        if (type(query) is not str or self._busy or self._closed or self._core.closed
                or self._drain_task is not None):
            return None
        if record_class is not None and record_class is not self._record_class:
            return None
        seconds = self._config.command_timeout if timeout is None else timeout
        if seconds is not None and not _usable_timeout(seconds):
            return None  # _execute() says what is wrong with it
        # _cached() inlined for the key of this case, the query text (see
        # _statement_key). A cached query text passed
        # _check_query() when it was prepared.
        stmt = self._stmt_cache.get(query)
        if stmt is None:
            return None
        self._stmt_cache.move_to_end(query)
        self._busy = True
        self._started = time.monotonic() if self._query_loggers else None
        try:
            op = self._send_bind_execute(stmt, args, limit, "")
        except BaseException as exc:
            self._busy = False
            if self._query_loggers:
                self._log_query(query, args, timeout, self._started, exc)
            raise
        if seconds is not None:
            # As _wait() does: the deadline settles the waiter with TimeoutError.
            self._protocol.set_timeout(op, seconds)
        return op

    def _start_bound(self, stmt: _Statement, args: Sequence[Any], limit: int,
                     timeout: float | None) -> _protocol.ExecuteOp | None:
        """Bind, Execute and Sync of *stmt* (a PreparedStatement's) sent now, or None.

        When nothing needs awaiting first (no reply of an abandoned request
        to drain), write the request, mark the connection busy, set its
        deadline if it has a timeout (or command_timeout), and return the
        operation; an error in writing it is raised. None: the caller takes
        its general path. _start_execute() has the same body inline.
        """
        if self._busy or self._closed or self._core.closed or self._drain_task is not None:
            return None
        seconds = self._config.command_timeout if timeout is None else timeout
        if seconds is not None and not _usable_timeout(seconds):
            return None
        self._busy = True
        try:
            op = self._send_bind_execute(stmt, args, limit, "")
        except BaseException:
            self._busy = False
            raise
        if seconds is not None:
            self._protocol.set_timeout(op, seconds)
        return op

    def _cached(self, key: Any) -> _Statement | None:
        """The statement cached under *key* (see _statement_key), now the most recent."""
        stmt = self._stmt_cache.get(key)
        if stmt is not None:
            self._stmt_cache.move_to_end(key)
        return stmt

    def _statement_key(self, query: str, record_class: type | None,
                       ignore_custom_codec: bool) -> Any:
        """The statement cache's key of *query* run with these options.

        The common case (the connection's record class, custom codecs on) is
        keyed by the query text alone: a str caches its hash, and
        ``move_to_end()`` of the key that is already last is one identity
        test. A tuple key is hashed anew on every lookup (measured: 1.1k of
        27k instructions per cached SELECT 1+1).
        """
        if ignore_custom_codec or (record_class is not None
                                   and record_class is not self._record_class):
            return (query, record_class, ignore_custom_codec)
        return query

    async def _execute_failed(self, op: _protocol.ExecuteOp, exc: BaseException, query: str,
                              args: Sequence[Any], limit: int, timeout: float | None,
                              record_class: type | None) -> Any:
        """Awaiting a _start_execute() operation raised *exc*: as _execute() would."""
        if (not self._sent_op_failed(op, exc) and self._statement_failed(exc)
                and not self.is_in_transaction()):
            # Prepared again once, as _execute() does.
            return await self._execute(query, args, limit, timeout,
                                       record_class=record_class, retried=True)
        if self._query_loggers:
            self._log_query(query, args, timeout, self._started, exc)
        raise exc

    def _sent_op_failed(self, op: _protocol.Operation, exc: BaseException) -> bool:
        """Awaiting *op* from a send-at-once path raised *exc*: the connection is
        free again, and a request given up on (cancelled, timed out) is
        abandoned as _wait() does. True when it was given up on."""
        self._busy = False
        if isinstance(exc, (asyncio.CancelledError, asyncio.TimeoutError)):
            self._abandon(op)
            return True
        return False

    def _statement_failed(self, exc: BaseException) -> bool:
        """Forget what *exc* says is stale; True if the query may run again."""
        if isinstance(exc, exceptions.OutdatedSchemaCacheError):
            # asyncpg raises it once and forgets the types, so the next call
            # introspects the new shape.
            self._codecs.reset_introspected()
            self._clear_statements()
            self._cache_dropped("types")
        elif isinstance(exc, exceptions.InvalidCachedStatementError):
            # The schema changed under a cached statement: outside a
            # transaction, prepare it again once, as asyncpg does.
            self._clear_statements()
            self._cache_dropped("statements")
            return True
        return False

    async def _execute(self, query: str, args: Sequence[Any], limit: int,
                       timeout: float | None, *, record_class: type | None = None,
                       ignore_custom_codec: bool = False, retried: bool = False) -> Any:
        self._check_query(query)
        started = time.monotonic()
        exc: BaseException | None = None
        # _operation() inlined: this is the path of every fetch*/execute
        # _start_execute() does not take.
        if self._closed or self._core.closed:
            self._check_open()
        if self._busy:
            raise InterfaceError(
                "cannot perform operation: another operation is in progress")
        self._busy = True
        try:
            if timeout is None and self._config.command_timeout is None:
                deadline = None
            else:
                deadline = self._deadline(timeout)
            if self._drain_task is not None:
                await self._wait_drained(deadline)
                self._check_open()
            while True:
                stmt = self._cached(
                    self._statement_key(query, record_class, ignore_custom_codec))
                if stmt is None:
                    # Not cached, expired, or not cacheable.
                    stmt = await self._get_statement(
                        query, deadline, record_class=record_class,
                        ignore_custom_codec=ignore_custom_codec)
                try:
                    op = self._send_bind_execute(stmt, args, limit, "")
                    if deadline is not None:
                        return await self._wait(op, deadline)
                    try:
                        return await op.waiter
                    except asyncio.CancelledError:
                        self._abandon(op)
                        raise
                except Exception as e:
                    if (not self._statement_failed(e) or retried
                            or self.is_in_transaction()):
                        raise
                    retried = True
        except BaseException as e:
            exc = e
            raise
        finally:
            self._busy = False
            if self._query_loggers:
                self._log_query(query, args, timeout, started, exc)

    async def _bind_execute(self, stmt: _Statement, args: Sequence[Any], limit: int,
                            deadline: float | None, portal: str = "") -> Any:
        op = self._send_bind_execute(stmt, args, limit, portal)
        if deadline is not None:
            return await self._wait(op, deadline)
        try:
            return await op.waiter
        except asyncio.CancelledError:
            self._abandon(op)
            raise

    def _send_bind_execute(self, stmt: _Statement, args: Sequence[Any], limit: int,
                           portal: str) -> _protocol.ExecuteOp:
        """Send Bind, Execute and Sync (one compiled call); return the queued op."""
        if self._pending_closes:
            self._write_pending_closes()
        if stmt.closed or len(args) != len(stmt.param_oids):
            self._check_bind(stmt, args)
        try:
            op = self._protocol.send_bind_execute(
                portal, stmt.name, stmt.encoder, args,
                stmt.result_formats, limit, stmt.query, stmt.decoder)
        except (codecs.ParameterEncodeError, codecs.ParameterCountError) as exc:
            raise codecs.param_error(exc, None) from exc.__cause__
        self._query_count += 1
        return op

    @staticmethod
    def _check_bind(stmt: _Statement, args: Sequence[Any]) -> None:
        if stmt.closed:
            raise InterfaceError("cannot use a prepared statement that was closed")
        if len(args) != len(stmt.param_oids):
            if len(args) > 32767:
                raise InterfaceError("the number of query arguments cannot exceed 32767")
            raise codecs.arg_count_error(len(stmt.param_oids), len(args))

    def _write_bind(self, out: WriteBuffer, stmt: _Statement, portal: str,
                    args: Sequence[Any], element: int | None = None) -> None:
        """Bind *stmt* to *args* on *portal* (Execute written by the caller)."""
        self._check_bind(stmt, args)
        try:
            _wire.write_bind(out, portal, stmt.name, stmt.encoder, args, stmt.result_formats)
        except (codecs.ParameterEncodeError, codecs.ParameterCountError) as exc:
            raise codecs.param_error(exc, element) from exc.__cause__

    def _write_bind_execute(self, out: WriteBuffer, stmt: _Statement, portal: str,
                            args: Sequence[Any], limit: int, sync: bool,
                            element: int | None = None) -> None:
        """Bind and Execute (and Sync) in one pg-wire call; the errors of _write_bind."""
        if stmt.closed or len(args) != len(stmt.param_oids):
            self._check_bind(stmt, args)
        try:
            _wire.write_bind_execute(out, portal, stmt.name, stmt.encoder, args,
                                     stmt.result_formats, limit, sync)
        except (codecs.ParameterEncodeError, codecs.ParameterCountError) as exc:
            raise codecs.param_error(exc, element) from exc.__cause__

    # -- statements -------------------------------------------------------------------
    def _write_pending_closes(self) -> None:
        # Closes of evicted statements and of exhausted cursors' portals
        # ride along with the next request, under their own Sync: an error
        # there (there should be none) then cannot make the server skip the
        # request that follows.
        if self._pending_closes and not self._protocol.lost:
            out = self._core.out
            for kind, name in self._pending_closes:
                _wire.write_close(out, kind, name)
            self._pending_closes.clear()
            _wire.write_sync(out)
            self._core.push(_protocol.Operation(None))

    def _cache_statement(self, key: Any, stmt: _Statement) -> None:
        self._stmt_cache[key] = stmt
        lifetime = self._config.max_cached_statement_lifetime
        if lifetime:
            # A timer per statement, as asyncpg has: a cache hit reads no clock.
            stmt.expiry = self._loop.call_later(
                lifetime, _statement_expired, weakref.ref(self), key, stmt)
        while len(self._stmt_cache) > self._stmt_cache_size:
            _old_key, old = self._stmt_cache.popitem(last=False)
            self._uncache(old)

    def _uncache(self, stmt: _Statement) -> None:
        """*stmt* left the statement cache: stop its timer, close it when unused."""
        stmt.stop_expiry()
        self._close_statement(stmt)

    def _close_statement(self, stmt: _Statement) -> None:
        # A statement a PreparedStatement or cursor still uses stays open
        # on the server (asyncpg does the same); it goes with the connection.
        if not stmt.closed and stmt.refs <= 0:
            stmt.closed = True
            if stmt.name:
                self._pending_closes.append((b"S", stmt.name))

    async def _get_statement(self, query: str, deadline: float | None, *,
                             record_class: type | None = None, name: str | None = None,
                             named: bool = False,
                             ignore_custom_codec: bool = False) -> _Statement:
        if record_class is None:
            record_class = self._record_class
        elif record_class is not self._record_class:
            codecs.check_record_class(record_class)
        key = self._statement_key(query, record_class, ignore_custom_codec)
        config = self._config
        use_cache = (name is None and self._stmt_cache_size > 0
                     and (config.max_cacheable_statement_size == 0
                          or len(query) <= config.max_cacheable_statement_size))
        if use_cache:
            stmt = self._cached(key)
            if stmt is not None:
                return stmt
        if name is None:
            name = f"__asyncpg_stmt_{next(_stmt_ids):x}__" if (use_cache or named) else ""
        stmt = await self._prepare_statement(query, name, deadline, record_class,
                                             ignore_custom_codec)
        if use_cache:
            self._cache_statement(key, stmt)
        return stmt

    async def _prepare_statement(self, query: str, name: str, deadline: float | None,
                                 record_class: type, ignore_custom_codec: bool) -> _Statement:
        out = self._core.out
        self._write_pending_closes()
        _wire.write_parse(out, name, query, ())
        _wire.write_describe(out, b"S", name)
        _wire.write_sync(out)
        op = _protocol.PrepareOp(self._protocol.new_waiter(), query)
        self._send(op)
        try:
            param_oids, fields = await self._wait(op, deadline)
        except BaseException:
            if name:
                # The Parse may have succeeded before the timeout: free it.
                self._pending_closes.append((b"S", name))
            raise
        stmt = _Statement(name, query)
        stmt.param_oids = list(param_oids)
        stmt.fields = fields
        stmt.record_class = record_class
        stmt.ignore_custom_codec = ignore_custom_codec
        try:
            oids = set(param_oids)
            if fields:
                oids.update(f[3] for f in fields)
            missing = self._codecs.missing(oids)
            if missing:
                await self._introspect(missing, deadline)
            self._codecs.plan(stmt, record_class, ignore_custom_codec)
        except BaseException:
            if name:
                self._pending_closes.append((b"S", name))
            raise
        return stmt

    async def _introspect(self, oids: set[int], deadline: float | None) -> None:
        rows = await introspection.fetch_types(self, oids, deadline)
        self._codecs.add_types(rows)

    async def prepare(self, query: str, *, name: str | None = None,
                      timeout: float | None = None,
                      record_class: type | None = None) -> Any:
        """Create a prepared statement for *query*.

        :param name: Server-side name; generated when None.
        :return: A :class:`~pg_client.prepared_stmt.PreparedStatement`.
        """
        self._check_query(query)
        async with self._operation(timeout) as deadline:
            stmt = await self._get_statement(query, deadline, record_class=record_class,
                                             name=name, named=True)
        stmt.refs += 1
        return PreparedStatement(self, query, stmt)

    def cursor(self, query: str, *args: Any, prefetch: int | None = None,
               timeout: float | None = None, record_class: type | None = None) -> Any:
        """A cursor factory: ``async for`` over it, or ``await`` it for a Cursor.

        Must be used inside a transaction.
        """
        self._check_open()
        return CursorFactory(self, query, None, args, prefetch, timeout, record_class)

    def transaction(self, *, isolation: str | None = None, readonly: bool = False,
                    deferrable: bool = False) -> Any:
        """A :class:`~pg_client.transaction.Transaction` (use ``async with``).

        Nested transactions become savepoints.
        """
        self._check_open()
        return Transaction(self, isolation, readonly, deferrable)

    # -- COPY ------------------------------------------------------------------------
    async def copy_from_table(self, table_name: str, *, output: Any,
                              columns: Sequence[str] | None = None,
                              schema_name: str | None = None, timeout: float | None = None,
                              format: str | None = None, oids: bool | None = None,
                              delimiter: str | None = None, null: str | None = None,
                              header: bool | None = None, quote: str | None = None,
                              escape: str | None = None,
                              force_quote: bool | Sequence[str] | None = None,
                              encoding: str | None = None) -> str:
        """Copy a table's contents to *output* (a path, a file-like object, or a
        coroutine function receiving bytes). Returns the COPY status."""
        table = _copy.table_ref(table_name, schema_name)
        cols = _copy.column_list(columns)
        opts = _copy.format_options(format=format, oids=oids, delimiter=delimiter, null=null,
                                    header=header, quote=quote, escape=escape,
                                    force_quote=force_quote, encoding=encoding)
        return await self._copy_out(f"COPY {table}{cols} TO STDOUT {opts}", output, timeout)

    async def copy_from_query(self, query: str, *args: Any, output: Any,
                              timeout: float | None = None, format: str | None = None,
                              oids: bool | None = None, delimiter: str | None = None,
                              null: str | None = None, header: bool | None = None,
                              quote: str | None = None, escape: str | None = None,
                              force_quote: bool | Sequence[str] | None = None,
                              encoding: str | None = None) -> str:
        """Copy the result of *query* to *output*. Returns the COPY status."""
        if args:
            query = await _copy.interpolate_args(self, query, args)
        opts = _copy.format_options(format=format, oids=oids, delimiter=delimiter, null=null,
                                    header=header, quote=quote, escape=escape,
                                    force_quote=force_quote, encoding=encoding)
        return await self._copy_out(f"COPY ({query}) TO STDOUT {opts}", output, timeout)

    async def copy_to_table(self, table_name: str, *, source: Any,
                            columns: Sequence[str] | None = None,
                            schema_name: str | None = None, timeout: float | None = None,
                            format: str | None = None, oids: bool | None = None,
                            freeze: bool | None = None, delimiter: str | None = None,
                            null: str | None = None, header: bool | None = None,
                            quote: str | None = None, escape: str | None = None,
                            force_quote: bool | Sequence[str] | None = None,
                            force_not_null: bool | Sequence[str] | None = None,
                            force_null: bool | Sequence[str] | None = None,
                            encoding: str | None = None, where: str | None = None) -> str:
        """Copy data from *source* (a path, file-like object, async iterable of
        bytes, or a buffer) into a table. Returns the COPY status."""
        table = _copy.table_ref(table_name, schema_name)
        cols = _copy.column_list(columns)
        opts = _copy.format_options(format=format, oids=oids, freeze=freeze,
                                    delimiter=delimiter, null=null, header=header, quote=quote,
                                    escape=escape, force_quote=force_quote,
                                    force_not_null=force_not_null, force_null=force_null,
                                    encoding=encoding)
        where_clause = self._copy_where(where)
        sql = f"COPY {table}{cols} FROM STDIN {opts}{where_clause}"
        chunks, close_source, private = await _copy.open_source(source)
        try:
            return await self._copy_in(sql, chunks, timeout, early=private)
        finally:
            await close_source()

    async def copy_records_to_table(self, table_name: str, *, records: Any,
                                    columns: Sequence[str] | None = None,
                                    schema_name: str | None = None,
                                    timeout: float | None = None,
                                    where: str | None = None) -> str:
        """Copy Python records (tuples) into a table with binary COPY.

        *records* may be an iterable or an async iterable.
        """
        intro, sql = self._copy_records_sql(table_name, schema_name, columns, where)
        # A cached introduction needs no operation of its own: _copy_in's
        # checks that the connection is open and free.
        stmt = self._cached(intro) if self._stmt_cache_size > 0 else None
        if stmt is None:
            async with self._operation(timeout) as deadline:
                stmt = await self._get_statement(intro, deadline)
        encoder = stmt.copy_encoder
        if encoder is None:
            encoder = stmt.copy_encoder = self._codecs.copy_encoder(stmt)
        if hasattr(records, "__aiter__"):
            return await self._copy_in(
                sql, _copy.binary_record_chunks(encoder, records), timeout)
        # Reading a list or tuple ahead changes nothing the caller can see;
        # an iterator is only consumed once the server has accepted the COPY.
        return await self._copy_in(sql, _copy.RecordStream(encoder, records), timeout,
                                   early=isinstance(records, (list, tuple)))

    def _copy_records_sql(self, table_name: str, schema_name: str | None,
                          columns: Any, where: str | None) -> tuple[str, str]:
        """copy_records_to_table's statements: the target columns' query, the COPY.

        Quoting the names costs more than a small COPY's other client work
        (about 40k user-space instructions for seven columns), so the
        statements are kept per connection, for the last few targets.
        """
        names = tuple(columns) if columns and not isinstance(columns, str) else columns
        key: Any = (table_name, schema_name, names, where)
        cache = self._copy_sql
        try:
            found = cache.get(key)
        except TypeError:
            # Something unhashable: quoting it below says what is wrong.
            found = key = None
        if found is not None:
            return found
        table = _copy.table_ref(table_name, schema_name)
        cols = _copy.column_list(names)
        where_clause = self._copy_where(where)
        col_sql = ", ".join(_copy.quote_ident(c) for c in names) if names else "*"
        found = (f"SELECT {col_sql} FROM {table} LIMIT 0",
                 f"COPY {table}{cols} FROM STDIN (FORMAT binary){where_clause}")
        if key is not None:
            if len(cache) >= _COPY_SQL_CACHE_SIZE:
                del cache[next(iter(cache))]
            cache[key] = found
        return found

    def _copy_where(self, where: str | None) -> str:
        if not where:
            return ""
        if self.get_server_version() < (12, 0):
            raise exceptions.UnsupportedServerFeatureError(
                "the `where` parameter requires PostgreSQL 12 or later")
        return f" WHERE {where}"

    async def _copy_out(self, sql: str, output: Any, timeout: float | None) -> str:
        sink, close_sink = await _copy.open_sink(output)
        try:
            async with self._operation(timeout) as deadline:
                wake = asyncio.Event()
                proto = self._protocol

                def on_data() -> None:
                    wake.set()
                    # Backpressure only while someone drains the chunks: an
                    # abandoned or finished copy must never leave reading off.
                    if (not op.abandoned and not op.waiter.done()
                            and op.buffered > 4 * 1024 * 1024):
                        proto.pause_reading()

                op = _protocol.CopyOutOp(proto.new_waiter(), sql, on_data)
                self._write_pending_closes()
                _wire.write_query(self._core.out, sql)
                self._send(op)
                try:
                    while True:
                        data = op.take_data()
                        if data is not None:
                            # One sink call per batch of CopyData messages,
                            # not one per row (a bytearray, as asyncpg gives).
                            await _copy.with_deadline(sink(data), self, deadline)
                            continue
                        # Everything received so far is consumed: read on.
                        proto.resume_reading()
                        if op.waiter.done():
                            break
                        wake.clear()
                        if op.copy_chunks:
                            continue
                        await _copy.with_deadline(wake.wait(), self, deadline)
                except BaseException:
                    self._abandon(op)
                    op.drop_data()
                    proto.resume_reading()
                    raise
                proto.resume_reading()
                await op.waiter
                return op.status or ""
        finally:
            await close_sink()

    async def _copy_in(self, sql: str, source: Any, timeout: float | None, *,
                       early: bool = False) -> str:
        """Run COPY ... FROM STDIN *sql* with the data of *source*.

        *source* is an async iterable of bytes-like chunks, or a
        ``_copy.RecordStream`` that encodes records straight into the
        outgoing buffer. With *early*, the data follows the Query at once
        instead of a round trip later, after CopyInResponse: if the COPY
        fails before copy-in mode (no such table, no privilege, a bad WHERE),
        the server drops the CopyData, CopyDone and CopyFail that follow
        (Protocol Flow: COPY Operations), and the error is raised as usual.
        Only for sources that can be read ahead without the caller seeing it.
        """
        async with self._operation(timeout) as deadline:
            ready = None if early else asyncio.Event()
            proto = self._protocol
            out = self._core.out
            op = _protocol.CopyInOp(proto.new_waiter(), sql,
                                    _ignore if ready is None else ready.set)
            records = source if isinstance(source, _copy.RecordStream) else None
            self._write_pending_closes()
            _wire.write_query(out, sql)
            if ready is None and records is not None:
                # The first records are encoded at once: the Query goes
                # out with them, in one write, at the loop's first flush().
                self._query_count += 1
                proto.queue(op)
            else:
                self._send(op)
            if ready is not None:
                try:
                    await _copy.with_deadline(ready.wait(), self, deadline, op)
                except BaseException:
                    # Cancelled before the server asked for data.
                    self._abandon_copy(op)
                    raise
                if not op.ready:
                    # The server refused the COPY (or the connection went).
                    return await self._wait(op, deadline)
            chunks: Any = None if records is not None else source.__aiter__()
            sent = 0
            try:
                # Stop as soon as the server has failed the COPY.
                while op.error is None and not op.waiter.done():
                    if records is not None:
                        if deadline is not None and self._loop.time() >= deadline:
                            raise asyncio.TimeoutError()
                        if records.write(out):
                            # The end goes out with the last data: one send
                            # for a small COPY. Nothing to wait for after it
                            # but the server's answer.
                            _wire.write_copy_done(out)
                            op.ended = True
                            proto.flush()
                            break
                    else:
                        try:
                            chunk = await _copy.with_deadline(
                                chunks.__anext__(), self, deadline, op)
                        except StopAsyncIteration:
                            break
                        if not chunk:
                            continue
                        _wire.write_copy_data(out, chunk)
                    sent += len(out)
                    proto.flush()
                    if not proto.writable:
                        # Paused (or the connection is gone: drain() raises).
                        await _copy.with_deadline(proto.drain(), self, deadline, op)
                    if sent >= 1 << 20:
                        # Let the loop run (a lost connection or the server's
                        # error is only noticed then), even when the source
                        # never waits.
                        sent = 0
                        await asyncio.sleep(0)
            except BaseException as exc:
                # The source failed, or we were cancelled / timed out: abort
                # the COPY so nothing is inserted, and let the server confirm.
                if proto.lost or op not in self._core.pending:
                    _discard(op)
                else:
                    _wire.write_copy_fail(out, f"COPY aborted by the client: {type(exc).__name__}")
                    op.ended = True
                    proto.flush()
                    op.abandoned = isinstance(exc, (asyncio.CancelledError, asyncio.TimeoutError))
                    if op.abandoned:
                        self._abandon_copy(op)
                    else:
                        with contextlib.suppress(Exception):
                            await self._wait(op, deadline)
                raise
            if op.error is None and not op.waiter.done() and not op.ended:
                _wire.write_copy_done(out)
                op.ended = True
                proto.flush()
            return await self._wait(op, deadline)

    def _abandon_copy(self, op: _protocol.CopyInOp) -> None:
        if not op.ready:
            # No CopyInResponse yet: the server may be short of copy-in mode
            # (waiting for a lock on the table, say), where it reads no
            # CopyFail. Cancel it as any other request; the CopyFail (sent,
            # or sent by CopyInOp when the response comes) ends the COPY if
            # the server gets there first.
            self._abandon(op)
            return
        # CopyFail was sent: the server answers with an error and
        # ReadyForQuery without a CancelRequest; drain it.
        _discard(op)
        if self._drain_task is None or self._drain_task.done():
            async def drain() -> None:
                done = self._loop.create_future()
                def _done(_op: _protocol.Operation) -> None:
                    if not done.done():
                        done.set_result(None)

                op.on_done = _done
                if op not in self._core.pending:
                    return
                try:
                    await asyncio.wait_for(done, _CANCEL_BUDGET)
                except asyncio.TimeoutError:
                    self._abort()

            self._drain_task = upkeep_task(self._loop, drain())

    # -- type codecs ------------------------------------------------------------------
    async def set_type_codec(self, typename: str, *, schema: str = "public",
                             encoder: Callable[[Any], Any], decoder: Callable[[Any], Any],
                             format: str = "text") -> None:
        """Use *encoder* and *decoder* for values of a type (asyncpg's semantics).

        :param format: ``'text'`` (str), ``'binary'`` (bytes) or ``'tuple'``
            (the type's tuple form).
        """
        info = await self._type_info(typename, schema)
        self._codecs.set_type_codec(info, encoder=encoder, decoder=decoder, format=format)
        self._clear_statements()

    async def reset_type_codec(self, typename: str, *, schema: str = "public") -> None:
        """Undo :meth:`set_type_codec` / :meth:`set_builtin_type_codec` for a type."""
        info = await self._type_info(typename, schema)
        self._codecs.reset_type_codec(info)
        self._clear_statements()

    async def set_builtin_type_codec(self, typename: str, *, schema: str = "public",
                                     codec_name: str, format: str | None = None) -> None:
        """Give a type the codec of a built-in type (or ``'pg_contrib.hstore'``)."""
        info = await self._type_info(typename, schema)
        self._codecs.set_builtin_type_codec(info, codec_name=codec_name, format=format)
        self._clear_statements()

    async def _type_info(self, typename: str, schema: str) -> Any:
        return await introspection.type_by_name(self, typename, schema)

    def _clear_statements(self) -> None:
        for stmt in list(self._stmt_cache.values()):
            self._uncache(stmt)
        self._stmt_cache.clear()

    async def reload_schema_state(self) -> None:
        """Forget cached types and statements (after the schema changed)."""
        self._codecs.reset_introspected()
        self._clear_statements()
        self._cache_dropped("types")


def _discard(op: _protocol.Operation) -> None:
    """Nobody will await *op*'s waiter: keep its outcome from being logged."""
    op.abandoned = True
    waiter = op.waiter
    if waiter is not None and waiter.done() and not waiter.cancelled():
        waiter.exception()


def _check_callback(callback: object) -> None:
    if not callable(callback):
        raise InterfaceError(
            f"expected a callable or an `async def` function, got {callback!r}")


def _weak_callback(ref: weakref.ref[Connection], name: str) -> Callable[..., None]:
    def callback(*args: Any) -> None:
        con = ref()
        if con is not None:
            getattr(con, name)(*args)

    return callback


def _ignore() -> None:
    pass


def _quote_ident(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"identifier must be a str, got {type(name).__name__}")
    if "\x00" in name:
        raise ValueError("identifiers cannot contain NUL bytes")
    return '"' + name.replace('"', '""') + '"'


def _parse_server_version(text: str) -> ServerVersion:
    """``'16.2 (Debian 16.2-1)'`` -> ServerVersion(16, 2, 0, 'final', 0)."""
    import re

    match = re.match(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*(devel|alpha|beta|rc)?(\d+)?", text)
    if not match:
        return ServerVersion(0, 0, 0, "final", 0)
    major = int(match.group(1))
    minor = int(match.group(2) or 0)
    micro = int(match.group(3) or 0)
    level = match.group(4) or "final"
    serial = int(match.group(5) or 0)
    if major >= 10:
        # Since 10 the version has two parts; asyncpg reports "16.2" as
        # (16, 0, 2): the second part is the micro (patch) release.
        minor, micro = 0, minor
    if level == "devel":
        level = "alpha"
    return ServerVersion(major, minor, micro, level, serial)


async def connect(
    dsn: str | None = None,
    *,
    host: Any = None,
    port: Any = None,
    user: str | None = None,
    password: Any = None,
    passfile: Any = None,
    service: str | None = None,
    servicefile: Any = None,
    database: str | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    timeout: float = 60,
    statement_cache_size: int = 100,
    max_cached_statement_lifetime: int = 300,
    max_cacheable_statement_size: int = 1024 * 15,
    command_timeout: float | None = None,
    ssl: Any = None,
    direct_tls: bool | None = None,
    connection_class: type[Connection] = Connection,
    record_class: type = codecs.Record,
    server_settings: dict[str, str] | None = None,
    target_session_attrs: Any = None,
    krbsrvname: str | None = None,
    gsslib: str | None = None,
    channel_binding: str | None = None,
    require_auth: str | None = None,
    min_protocol_version: str | None = None,
    max_protocol_version: str | None = None,
    load_balance_hosts: str | None = None,
) -> Connection:
    """Open a connection to a PostgreSQL server (asyncpg's ``connect()``).

    :param dsn: A ``postgresql://`` URI or a libpq ``key=value`` string.
        Explicit keyword arguments win over the DSN, which wins over the
        service file and the ``PG*`` environment variables.
    :param host: Host name, IP address, Unix socket directory, or a list of
        them (tried in order).
    :param port: Port, or one port per host.
    :param user: Role to log in as (default: ``PGUSER``, else the OS user).
    :param password: A str, or a callable (sync or async) called for each
        connection attempt. Default: ``PGPASSWORD``, then the password file.
    :param passfile: Password file (default: ``PGPASSFILE``, else ``~/.pgpass``).
    :param service: Name of a section of the connection service file.
    :param servicefile: The service file (default: ``PGSERVICEFILE``, else
        ``~/.pg_service.conf``).
    :param database: Database name (default: ``PGDATABASE``, else the user).
    :param loop: Accepted for asyncpg compatibility; the running loop is used.
    :param timeout: Seconds for the whole connection attempt, all hosts.
    :param statement_cache_size: Prepared statements kept per connection
        (0 disables the cache).
    :param max_cached_statement_lifetime: Seconds a cached statement lives
        (0: forever).
    :param max_cacheable_statement_size: Longest query text that is cached
        (0: no limit).
    :param command_timeout: Default timeout of every operation, in seconds.
    :param ssl: ``None`` (``PGSSLMODE``, else ``prefer``), ``True``,
        ``False``, an sslmode name (``disable`` ... ``verify-full``) or an
        ``ssl.SSLContext``. ``prefer`` falls back to plaintext when the
        server refuses TLS: use ``require`` or ``verify-full`` where that is
        not acceptable.
    :param direct_tls: Start TLS at once (PostgreSQL 17+), with ALPN.
    :param connection_class: A subclass of Connection to instantiate.
    :param record_class: A subclass of Record for the rows returned.
    :param server_settings: Run-time parameters sent at startup.
    :param target_session_attrs: ``any``, ``primary``, ``standby``,
        ``prefer-standby``, ``read-write`` or ``read-only``.
    :param krbsrvname: Kerberos service name (GSSAPI is not supported yet).
    :param gsslib: ``gssapi`` or ``sspi`` (GSSAPI is not supported yet).
    :param channel_binding: ``disable``, ``prefer`` or ``require`` SCRAM
        channel binding (beyond asyncpg).
    :param require_auth: libpq's ``require_auth`` list, checked before any
        credential is sent (beyond asyncpg).
    :param min_protocol_version: ``'3.0'`` or ``'3.2'`` (beyond asyncpg).
    :param max_protocol_version: ``'3.0'`` (default) or ``'3.2'``.
    :param load_balance_hosts: ``disable`` or ``random``.
    :return: A ``connection_class`` instance.
    """
    from . import _connect, _connect_params

    if not (isinstance(connection_class, type) and issubclass(connection_class, Connection)):
        raise InterfaceError(
            "connection_class is expected to be a subclass of "
            f"pg_client.Connection, got {connection_class!r}")
    codecs.check_record_class(record_class)
    if loop is None:
        loop = asyncio.get_running_loop()
    params = _connect_params.resolve(
        dsn, host=host, port=port, user=user, password=password, passfile=passfile,
        service=service, servicefile=servicefile, database=database, timeout=timeout,
        statement_cache_size=statement_cache_size,
        max_cached_statement_lifetime=max_cached_statement_lifetime,
        max_cacheable_statement_size=max_cacheable_statement_size,
        command_timeout=command_timeout, ssl=ssl, direct_tls=direct_tls,
        server_settings=server_settings, target_session_attrs=target_session_attrs,
        krbsrvname=krbsrvname, gsslib=gsslib, channel_binding=channel_binding,
        require_auth=require_auth, min_protocol_version=min_protocol_version,
        max_protocol_version=max_protocol_version, load_balance_hosts=load_balance_hosts)
    source_traceback = None
    if loop.get_debug():
        # Where the caller asked for the connection (the Connection itself is
        # made in another task): shown if it is never closed.
        import traceback

        source_traceback = traceback.extract_stack(sys._getframe(1))
    con = await _connect.connect_to_hosts(loop, params, connection_class, record_class)
    if source_traceback is not None:
        con._source_traceback = source_traceback
    return con
