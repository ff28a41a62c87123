"""Binary and text codecs for PostgreSQL data types, and the Record row type.

pg-codecs turns PostgreSQL values into Python objects and back. It knows
nothing about protocol messages, sockets or asyncio.
"""

from __future__ import annotations

from pg_codecs._buffer import WriteBuffer
from pg_codecs.errors import DecodeError

__version__ = "0.1.0"

__all__ = ["DecodeError", "WriteBuffer", "__version__"]
