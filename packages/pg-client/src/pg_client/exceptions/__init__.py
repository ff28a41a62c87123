"""Exceptions raised by pg_client; the names and classes are asyncpg's.

Errors the server reports are ``PostgresError`` subclasses, one per
SQLSTATE, grouped by SQLSTATE class (``UniqueViolationError`` is an
``IntegrityConstraintViolationError``). Server warnings and notices are
``PostgresLogMessage`` objects, ``PostgresWarning`` for warnings. Mistakes in
using the API raise ``InterfaceError`` subclasses; client bugs and protocol
surprises raise ``InternalClientError`` subclasses.

Invalid query arguments raise ``DataError``, which, as in asyncpg, is the
class of SQLSTATE 22000 (data_exception).
"""

from __future__ import annotations

from . import _base, _sqlstate
from ._base import *  # noqa: F403
from ._client import NulInQueryError as NulInQueryError
from ._client import connection_lost_by_server as connection_lost_by_server
from ._sqlstate import *  # noqa: F403

__all__ = _sqlstate.__all__ + _base.__all__
