"""pg_client: a fast asyncio PostgreSQL client with asyncpg's API.

``import pg_client`` where a program had ``import asyncpg``: the names,
signatures, defaults, results and exception classes are asyncpg's.
"""

from __future__ import annotations

from . import exceptions, types
from ._codecs import Record
from .connection import Connection, connect
from .exceptions import *  # noqa: F403
from .types import *  # noqa: F403

__version__ = "0.1.0"

__all__ = ["Connection", "Record", "connect"]
__all__ += exceptions.__all__
__all__ += types.__all__
