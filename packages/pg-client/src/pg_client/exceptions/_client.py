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

from ._base import PostgresError
from ._sqlstate import ConnectionDoesNotExistError, ProtocolViolationError

__all__: list[str] = []


class NulInQueryError(ProtocolViolationError, ValueError):
    """The query text contains a NUL byte; nothing was sent."""


_lost_classes: dict[type, type] = {}


def connection_lost_by_server(server_error: PostgresError, *,
                              request_sent: bool | None = True) -> PostgresError:
    """An error of the server's class that is also a ConnectionDoesNotExistError."""
    base = type(server_error)
    if isinstance(server_error, ConnectionDoesNotExistError):
        return server_error
    cls = _lost_classes.get(base)
    if cls is None:
        cls = type(base.__name__, (base, ConnectionDoesNotExistError),
                   {"__module__": base.__module__, "__doc__": base.__doc__})
        _lost_classes[base] = cls
    exc: Any = cls(*server_error.args)
    exc.__dict__.update(server_error.__dict__)
    exc.request_sent = request_sent
    return exc
