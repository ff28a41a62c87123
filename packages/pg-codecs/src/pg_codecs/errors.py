"""Exceptions raised by pg_codecs.

Encoders raise the built-in TypeError, ValueError or OverflowError for a
Python value they cannot encode (the client adds which parameter it was).
Decoders raise DecodeError for bytes that are not a valid value of the type:
truncated, with impossible lengths or counts, or with a bad version byte.
"""

from __future__ import annotations

__all__ = ["DecodeError", "RowFormatError"]


class DecodeError(ValueError):
    """Bytes received from the server are not a valid value of their type."""


class RowFormatError(DecodeError):
    """A DataRow's own framing is wrong (field count, field lengths).

    Unlike a bad value, this means the peer is not speaking the protocol:
    a client should treat it as a protocol violation and close.
    """
