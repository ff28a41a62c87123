"""Server-side cursors: iterate over a query's rows without fetching them all.

``connection.cursor(query, *args)`` returns a CursorFactory: ``async for``
over it streams rows, ``prefetch`` at a time; ``await`` it for a Cursor with
``fetch``, ``fetchrow`` and ``forward``. Both live in a named portal, which
PostgreSQL keeps only inside a transaction block, so a cursor outside a
transaction raises NoActiveSQLTransactionError, as in asyncpg.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Sequence
from typing import Any

from . import _wire
from ._resource import ConnectionResource, guarded
from .exceptions import InterfaceError, NoActiveSQLTransactionError

__all__ = ("Cursor", "CursorFactory", "CursorIterator")

_portal_ids = itertools.count(1)


class CursorFactory(ConnectionResource):
    """What ``Connection.cursor()`` returns: ``async for`` it or ``await`` it."""

    __slots__ = ("_args", "_prefetch", "_query", "_record_class", "_state", "_timeout")

    def __init__(self, connection: Any, query: str, state: Any, args: Sequence[Any],
                 prefetch: int | None, timeout: float | None,
                 record_class: type | None) -> None:
        super().__init__(connection)
        self._args = args
        self._prefetch = prefetch
        self._query = query
        self._timeout = timeout
        self._state = state
        self._record_class = record_class
        if state is not None:
            state.refs += 1

    @guarded
    def __aiter__(self) -> CursorIterator:
        prefetch = 50 if self._prefetch is None else self._prefetch
        return CursorIterator(self._connection, self._query, self._state, self._args,
                              self._record_class, prefetch, self._timeout)

    @guarded
    def __await__(self) -> Any:
        if self._prefetch is not None:
            raise InterfaceError("prefetch argument can only be specified for iterable cursor")
        cursor = Cursor(self._connection, self._query, self._state, self._args,
                        self._record_class)
        return cursor._init(self._timeout).__await__()

    def __del__(self) -> None:
        if self._state is not None:
            self._state.refs -= 1


class BaseCursor(ConnectionResource):
    __slots__ = ("_args", "_exhausted", "_portal_name", "_query", "_record_class", "_state")

    def __init__(self, connection: Any, query: str, state: Any, args: Sequence[Any],
                 record_class: type | None) -> None:
        super().__init__(connection)
        self._args = args
        self._state = state
        self._portal_name: str | None = None
        self._exhausted = False
        self._query = query
        self._record_class = record_class

    def _check_ready(self) -> None:
        if self._state is None:
            raise InterfaceError("cursor: no associated prepared statement")
        if self._state.closed:
            raise InterfaceError("cursor: the prepared statement is closed")
        if not self._connection.is_in_transaction():
            raise NoActiveSQLTransactionError("cursor cannot be created outside of a transaction")

    async def _prepare(self, timeout: float | None) -> None:
        if self._state is None:
            con = self._connection
            async with con._operation(timeout) as deadline:
                self._state = await con._get_statement(
                    self._query, deadline, named=True, record_class=self._record_class)
            self._state.refs += 1

    async def _bind_exec(self, n: int, timeout: float | None) -> list[Any]:
        self._check_ready()
        if self._portal_name:
            raise InterfaceError("cursor already has an open portal")
        con = self._connection
        stmt = self._state
        portal = f"__pgc_portal_{next(_portal_ids):x}__"

        op = await con._extended(
            timeout, stmt,
            lambda out: con._write_bind_execute(out, stmt, portal, self._args, n, False))
        self._portal_name = portal
        self._exhausted = not op.suspended
        return op.rows

    async def _bind(self, timeout: float | None) -> None:
        self._check_ready()
        if self._portal_name:
            raise InterfaceError("cursor already has an open portal")
        con = self._connection
        stmt = self._state
        portal = f"__pgc_portal_{next(_portal_ids):x}__"
        await con._extended(timeout, stmt, lambda out: con._write_bind(out, stmt, portal,
                                                                        self._args))
        self._portal_name = portal

    async def _exec(self, n: int, timeout: float | None) -> list[Any]:
        self._check_ready()
        if not self._portal_name:
            raise InterfaceError("cursor does not have an open portal")
        portal = self._portal_name
        op = await self._connection._extended(
            timeout, self._state, lambda out: _wire.write_execute(out, portal, n))
        self._exhausted = not op.suspended
        return op.rows

    def _close_portal(self) -> None:
        """Close the portal with the connection's next request.

        Not a round trip of its own: the Close goes out ahead of whatever
        the connection sends next (the COMMIT, usually), so the server has
        dropped the portal before it runs anything else of ours. Closing a
        portal the end of its transaction already dropped is no error.
        """
        self._check_ready()
        if not self._portal_name:
            raise InterfaceError("cursor does not have an open portal")
        self._connection._pending_closes.append((b"P", self._portal_name))
        self._portal_name = None

    def __repr__(self) -> str:
        attrs = []
        if self._exhausted:
            attrs.append("exhausted")
        if self._state is not None:
            attrs.append(f"query={self._state.query!r}"[:60])
        return f"<pg_client.{type(self).__name__} {' '.join(attrs)} {id(self):#x}>"

    def __del__(self) -> None:
        if self._state is not None:
            self._state.refs -= 1
            self._state = None


class CursorIterator(BaseCursor):
    """``async for`` over a cursor: fetches *prefetch* rows per round trip."""

    __slots__ = ("_buffer", "_prefetch", "_timeout")

    def __init__(self, connection: Any, query: str, state: Any, args: Sequence[Any],
                 record_class: type | None, prefetch: int, timeout: float | None) -> None:
        super().__init__(connection, query, state, args, record_class)
        if state is not None:
            state.refs += 1
        if prefetch <= 0:
            raise InterfaceError("prefetch argument must be greater than zero")
        self._buffer: collections.deque[Any] = collections.deque()
        self._prefetch = prefetch
        self._timeout = timeout

    def __aiter__(self) -> CursorIterator:
        return self

    async def __anext__(self) -> Any:
        # guarded's check, inline (no wrapper coroutine per row).
        self._check_conn_validity("__anext__")
        buffer = self._buffer
        if buffer and not (self._exhausted and self._portal_name):
            # Rows fetched earlier (the common case): what the steps below
            # would come to, without them.
            return buffer.popleft()
        await self._prepare(self._timeout)
        if not self._portal_name and not self._exhausted:
            self._buffer.extend(await self._bind_exec(self._prefetch, self._timeout))
        if not self._buffer and not self._exhausted:
            self._buffer.extend(await self._exec(self._prefetch, self._timeout))
        if self._portal_name and self._exhausted:
            self._close_portal()
        if self._buffer:
            return self._buffer.popleft()
        raise StopAsyncIteration


class Cursor(BaseCursor):
    """An open portal on a query's result; made by awaiting ``connection.cursor()``."""

    __slots__ = ()

    def __init__(self, connection: Any, query: str, state: Any, args: Sequence[Any],
                 record_class: type | None) -> None:
        super().__init__(connection, query, state, args, record_class)
        if state is not None:
            state.refs += 1

    async def _init(self, timeout: float | None) -> Cursor:
        await self._prepare(timeout)
        self._check_ready()
        await self._bind(timeout)
        return self

    @guarded
    async def fetch(self, n: int, *, timeout: float | None = None) -> list[Any]:
        """Return the next *n* rows (fewer at the end) as a list of Records."""
        self._check_ready()
        if n <= 0:
            raise InterfaceError("n must be greater than zero")
        if self._exhausted:
            return []
        rows = await self._exec(n, timeout)
        if len(rows) < n:
            self._exhausted = True
        return rows

    @guarded
    async def fetchrow(self, *, timeout: float | None = None) -> Any:
        """Return the next row, or None at the end."""
        self._check_ready()
        if self._exhausted:
            return None
        rows = await self._exec(1, timeout)
        if not rows:
            self._exhausted = True
            return None
        return rows[0]

    @guarded
    async def forward(self, n: int, *, timeout: float | None = None) -> int:
        """Skip the next *n* rows; return how many were skipped (<= n)."""
        self._check_ready()
        if n <= 0:
            raise InterfaceError("n must be greater than zero")
        status = await self._connection.execute(
            f'MOVE FORWARD {int(n):d} "{self._portal_name}"', timeout=timeout)
        advanced = int(status.split()[1])
        if advanced < n:
            self._exhausted = True
        return advanced
