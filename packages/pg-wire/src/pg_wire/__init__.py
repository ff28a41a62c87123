"""Sans-I/O PostgreSQL v3 protocol: message framing and authentication exchanges.

pg-wire turns bytes into protocol messages and messages into bytes, in both
directions, without touching a socket or an event loop.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
