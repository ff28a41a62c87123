"""Binary codecs for date, time, timetz, timestamp, timestamptz, interval <-> datetime types.

The codecs themselves are C-level (registered with the codec registry on
import); Python sees only the test hooks below.
"""

from typing import Any

def _encode(typename: str, value: object, xformat: str = "object") -> bytes:
    """Internal, for tests: run this module's encoder for *typename*; return
    the bytes written, length prefix included."""

def _decode(typename: str, data: bytes, xformat: str = "object") -> Any:
    """Internal, for tests: run this module's decoder for *typename* on one
    value's bytes."""
