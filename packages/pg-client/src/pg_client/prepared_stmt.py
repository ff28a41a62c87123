"""Prepared statements: ``stmt = await connection.prepare(query)``.

A PreparedStatement keeps its server-side statement (and its planned
parameter encoders and row decoder) for repeated runs, and describes its
parameters and result columns. Like asyncpg's, it stops working once the
connection is released to a pool.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from ._resource import ConnectionResource, guarded
from .cursor import CursorFactory
from .exceptions import InterfaceError
from .types import Attribute, Type

__all__ = ("PreparedStatement",)


class PreparedStatement(ConnectionResource):
    """A prepared statement; made by ``Connection.prepare()``."""

    __slots__ = ("_last_status", "_query", "_state")

    def __init__(self, connection: Any, query: str, state: Any) -> None:
        super().__init__(connection)
        self._state = state
        self._query = query
        self._last_status: str | None = None

    @guarded
    def get_name(self) -> str:
        """The statement's name on the server."""
        return self._state.name

    @guarded
    def get_query(self) -> str:
        """The SQL text of the statement."""
        return self._query

    @guarded
    def get_statusmsg(self) -> str | None:
        """The status of the last run (``'SELECT 3'``), or None."""
        return self._last_status

    @guarded
    def get_parameters(self) -> tuple[Type, ...]:
        """Types of the statement's parameters, as ``Type`` tuples."""
        return self._connection._codecs.describe_types(self._state.param_oids)

    @guarded
    def get_attributes(self) -> tuple[Attribute, ...]:
        """The result columns, as ``Attribute(name, type)`` tuples."""
        fields = self._state.fields or []
        types = self._connection._codecs.describe_types([f[3] for f in fields])
        return tuple(Attribute(f[0], t) for f, t in zip(fields, types, strict=True))

    @guarded
    def cursor(self, *args: Any, prefetch: int | None = None,
               timeout: float | None = None) -> CursorFactory:
        """A cursor over this statement's result (inside a transaction)."""
        return CursorFactory(self._connection, self._query, self._state, args, prefetch,
                             timeout, self._state.record_class)

    @guarded
    async def explain(self, *args: Any, analyze: bool = False) -> Any:
        """The statement's plan, parsed from ``EXPLAIN (FORMAT JSON, VERBOSE)``.

        :param analyze: Run the statement too (EXPLAIN ANALYZE), inside a
            transaction that is rolled back afterwards.
        """
        query = "EXPLAIN (FORMAT JSON, VERBOSE" + (", ANALYZE) " if analyze else ") ")
        query += self._state.query
        con = self._connection
        if analyze:
            tr = con.transaction()
            await tr.start()
            try:
                data = await con.fetchval(query, *args)
            finally:
                await tr.rollback()
        else:
            data = await con.fetchval(query, *args)
        return json.loads(data)

    async def _run(self, args: Sequence[Any], limit: int, timeout: float | None,
                   name: str) -> Any:
        # guarded's check, inline: a wrapper coroutine per call costs more
        # than the rest of this method.
        self._check_conn_validity(name)
        con = self._connection
        self._check_open_state()
        op = con._start_bound(self._state, args, limit, timeout)
        if op is None:
            async with con._operation(timeout) as deadline:
                reply = await con._bind_execute(self._state, args, limit, deadline)
        else:
            try:
                reply = await op.waiter
            except BaseException as exc:
                con._sent_op_failed(op, exc)
                raise
            con._busy = False
        self._last_status = reply.status
        return reply

    def _check_open_state(self) -> None:
        if self._state.closed:
            raise InterfaceError("the prepared statement is closed")

    async def fetch(self, *args: Any, timeout: float | None = None) -> list[Any]:
        """Run the statement and return all rows."""
        return (await self._run(args, 0, timeout, "fetch")).rows

    async def fetchval(self, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        """Run the statement and return one value of the first row (or None)."""
        rows = (await self._run(args, 1, timeout, "fetchval")).rows
        return rows[0][column] if rows else None

    async def fetchrow(self, *args: Any, timeout: float | None = None) -> Any:
        """Run the statement and return its first row, or None."""
        rows = (await self._run(args, 1, timeout, "fetchrow")).rows
        return rows[0] if rows else None

    @guarded
    async def fetchmany(self, args: Iterable[Sequence[Any]], *,
                        timeout: float | None = None) -> list[Any]:
        """Run the statement once per argument tuple; return all rows."""
        con = self._connection
        self._check_open_state()
        async with con._operation(timeout) as deadline:
            return await con._fetchmany(self._state, args, deadline)

    @guarded
    async def executemany(self, args: Iterable[Sequence[Any]], *,
                          timeout: float | None = None) -> None:
        """Run the statement once per argument tuple, atomically."""
        con = self._connection
        self._check_open_state()
        async with con._operation(timeout) as deadline:
            await con._executemany(self._state, args, deadline)

    def __del__(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None:
            state.refs -= 1
