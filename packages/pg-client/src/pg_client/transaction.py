"""Transactions and savepoints: ``async with connection.transaction(): ...``.

The outermost block issues BEGIN (with the isolation level, READ ONLY and
DEFERRABLE asked for) and COMMIT or ROLLBACK; blocks nested inside it become
savepoints. The rules and error messages follow asyncpg's.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from typing import Any

from ._resource import ConnectionResource, guarded
from .exceptions import InterfaceError

__all__ = ("Transaction", "TransactionState")

_savepoint_ids = itertools.count(1)


class TransactionState(enum.Enum):
    NEW = 0
    STARTED = 1
    COMMITTED = 2
    ROLLEDBACK = 3
    FAILED = 4


ISOLATION_LEVELS = {"read_committed", "read_uncommitted", "serializable", "repeatable_read"}
_ISOLATION_BY_SETTING = {
    "read committed": "read_committed",
    "read uncommitted": "read_uncommitted",
    "serializable": "serializable",
    "repeatable read": "repeatable_read",
}
_ISOLATION_SQL = {
    "read_committed": " ISOLATION LEVEL READ COMMITTED",
    "read_uncommitted": " ISOLATION LEVEL READ UNCOMMITTED",
    "repeatable_read": " ISOLATION LEVEL REPEATABLE READ",
    "serializable": " ISOLATION LEVEL SERIALIZABLE",
}


class Transaction(ConnectionResource):
    """A transaction or savepoint block; made by ``Connection.transaction()``."""

    __slots__ = ("_isolation", "_readonly", "_deferrable", "_state", "_nested", "_id",
                 "_managed")

    def __init__(self, connection: Any, isolation: str | None, readonly: bool,
                 deferrable: bool) -> None:
        super().__init__(connection)
        if isolation and isolation not in ISOLATION_LEVELS:
            raise ValueError(
                f"isolation is expected to be either of {ISOLATION_LEVELS}, got {isolation!r}")
        self._isolation = isolation
        self._readonly = readonly
        self._deferrable = deferrable
        self._state = TransactionState.NEW
        self._nested = False
        self._id: str | None = None
        self._managed = False

    async def __aenter__(self) -> None:
        if self._managed:
            raise InterfaceError("cannot enter context: already in an `async with` block")
        self._managed = True
        await self.start()

    async def __aexit__(self, extype: Any, ex: Any, tb: Any) -> None:
        try:
            self._check_conn_validity("__aexit__")
        except InterfaceError:
            if extype is GeneratorExit:
                return
            raise
        try:
            if extype is not None:
                await self._rollback()
            else:
                await self._commit()
        finally:
            self._managed = False

    async def start(self) -> None:
        """Enter the transaction or savepoint block."""
        # guarded's check, inline (no wrapper coroutine per transaction).
        self._check_conn_validity("start")
        self._check_not_over("start")
        if self._state is TransactionState.STARTED:
            raise InterfaceError("cannot start; the transaction is already started")
        con = self._connection
        if con._top_xact is None:
            if con.is_in_transaction():
                raise InterfaceError(
                    "cannot use Connection.transaction() in a manually started transaction")
            con._top_xact = self
        else:
            if self._isolation:
                outer = con._top_xact._isolation
                if outer is None:
                    outer = _ISOLATION_BY_SETTING[
                        await con.fetchval("SHOW transaction_isolation;")]
                if self._isolation != outer:
                    raise InterfaceError(
                        "nested transaction has a different isolation level: "
                        f"current {self._isolation!r} != outer {outer!r}")
            self._nested = True

        if self._nested:
            self._id = f"pgc_savepoint_{next(_savepoint_ids)}"
            query = f"SAVEPOINT {self._id};"
        else:
            query = "BEGIN" + _ISOLATION_SQL.get(self._isolation or "", "")
            if self._readonly:
                query += " READ ONLY"
            if self._deferrable:
                query += " DEFERRABLE"
            query += ";"
        try:
            await con.execute(query)
        except BaseException as exc:
            self._state = TransactionState.FAILED
            if con._top_xact is self:
                con._top_xact = None
            if not self._nested and isinstance(exc, (asyncio.CancelledError, TimeoutError)):
                # The BEGIN may have run anyway: do not leave the session in
                # a transaction that no Transaction object owns.
                con._rollback_orphaned_begin()
            raise
        self._state = TransactionState.STARTED

    def _check_not_over(self, opname: str) -> None:
        if self._state is TransactionState.COMMITTED:
            raise InterfaceError(f"cannot {opname}; the transaction is already committed")
        if self._state is TransactionState.ROLLEDBACK:
            raise InterfaceError(f"cannot {opname}; the transaction is already rolled back")
        if self._state is TransactionState.FAILED:
            raise InterfaceError(f"cannot {opname}; the transaction is in error state")

    def _check_started(self, opname: str) -> None:
        if self._state is not TransactionState.STARTED:
            if self._state is TransactionState.NEW:
                raise InterfaceError(f"cannot {opname}; the transaction is not yet started")
            self._check_not_over(opname)

    async def _finish(self, opname: str, query: str, done: TransactionState) -> None:
        self._check_started(opname)
        con = self._connection
        if con._top_xact is self:
            con._top_xact = None
        try:
            await con.execute(query)
        except BaseException:
            self._state = TransactionState.FAILED
            raise
        self._state = done

    async def _commit(self) -> None:
        query = f"RELEASE SAVEPOINT {self._id};" if self._nested else "COMMIT;"
        await self._finish("commit", query, TransactionState.COMMITTED)

    async def _rollback(self) -> None:
        query = f"ROLLBACK TO {self._id};" if self._nested else "ROLLBACK;"
        await self._finish("rollback", query, TransactionState.ROLLEDBACK)

    @guarded
    async def commit(self) -> None:
        """Leave the block and commit its changes."""
        if self._managed:
            raise InterfaceError("cannot manually commit from within an `async with` block")
        await self._commit()

    @guarded
    async def rollback(self) -> None:
        """Leave the block and undo its changes."""
        if self._managed:
            raise InterfaceError("cannot manually rollback from within an `async with` block")
        await self._rollback()

    def __repr__(self) -> str:
        attrs = [f"state:{self._state.name.lower()}"]
        if self._isolation is not None:
            attrs.append(self._isolation)
        if self._readonly:
            attrs.append("readonly")
        if self._deferrable:
            attrs.append("deferrable")
        return f"<pg_client.{type(self).__name__} {' '.join(attrs)} {id(self):#x}>"
