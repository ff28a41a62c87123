"""Objects bound to one use of a connection (statements, cursors, transactions).

A pool hands the same Connection to many holders in turn. Objects a holder
made (a PreparedStatement, a Cursor, a Transaction) must stop working when
the connection goes back to the pool, as in asyncpg: each records the
connection's *generation* when made, and the connection moves to a new
generation when a pool takes it back (``Connection.detach_proxy()``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from .exceptions import InterfaceError

F = TypeVar("F", bound=Callable[..., Any])


class ConnectionResource:
    """Base of objects that belong to one generation of a connection."""

    __slots__ = ("_connection", "_con_generation")

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._con_generation = connection._generation

    def _check_conn_validity(self, meth_name: str) -> None:
        con = self._connection
        if con._generation != self._con_generation:
            raise InterfaceError(
                f"cannot call {type(self).__name__}.{meth_name}(): the underlying "
                "connection has been released back to the pool")
        if con.is_closed():
            raise InterfaceError(
                f"cannot call {type(self).__name__}.{meth_name}(): the underlying "
                "connection is closed")


def guarded(meth: F) -> F:
    """Check the connection is still this resource's before running *meth*.

    A coroutine function stays one (``inspect.iscoroutinefunction`` is true
    for the wrapper too).
    """
    if inspect.iscoroutinefunction(meth):

        @functools.wraps(meth)
        async def async_wrapper(self: ConnectionResource, *args: Any, **kwargs: Any) -> Any:
            self._check_conn_validity(meth.__name__)
            return await meth(self, *args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(meth)
    def wrapper(self: ConnectionResource, *args: Any, **kwargs: Any) -> Any:
        self._check_conn_validity(meth.__name__)
        return meth(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
