"""Errors the client raises that combine two of asyncpg's classes.

Where asyncpg and our reliability promises name different classes for one
situation, the client raises an instance of both, so code written for
either keeps working:

* NUL in query text: asyncpg lets the server refuse it (08P01,
  ProtocolViolationError); we refuse it before sending anything, and the
  error is a ProtocolViolationError and a ValueError.
* A connection the server ended with a FATAL error during a request
  (pg_terminate_backend, shutdown): asyncpg raises
  ConnectionDoesNotExistError; the server said AdminShutdownError (57P01)
  or similar. The error is both: its class is the server's, mixed with
  ConnectionDoesNotExistError.
"""

from __future__ import annotations

from typing import Any

from ._base import InterfaceError, PostgresError
from ._sqlstate import ConnectionDoesNotExistError, ProtocolViolationError

__all__: list[str] = []


class NulInQueryError(ProtocolViolationError, ValueError):
    """The query text contains a NUL byte; nothing was sent."""


_lost_classes: dict[tuple[type, bool], type] = {}


def connection_lost_by_server(server_error: PostgresError, *,
                              request_sent: bool | None = True,
                              interface_error: bool = False) -> PostgresError:
    """An error of the server's class that is also a ConnectionDoesNotExistError.

    :param interface_error: Also make it an InterfaceError: what asyncpg
        raises for a call on a connection the server closed while idle.
    """
    base = type(server_error)
    if isinstance(server_error, ConnectionDoesNotExistError) and not interface_error:
        return server_error
    key = (base, interface_error)
    cls = _lost_classes.get(key)
    if cls is None:
        bases: tuple[type, ...] = (base, ConnectionDoesNotExistError)
        if interface_error:
            bases += (InterfaceError,)
        if isinstance(server_error, ConnectionDoesNotExistError):
            bases = tuple(b for b in bases if b is not ConnectionDoesNotExistError)
        cls = type(base.__name__, bases,
                   {"__module__": base.__module__, "__doc__": base.__doc__})
        _lost_classes[key] = cls
    exc: Any = cls(*server_error.args)
    exc.__dict__.update(server_error.__dict__)
    exc.request_sent = request_sent
    return exc
