"""Exceptions raised by pg_codecs.

Encoders raise the built-in TypeError, ValueError or OverflowError for a
Python value they cannot encode (the client adds which parameter it was).
Decoders raise DecodeError for bytes that are not a valid value of the type:
truncated, with impossible lengths or counts, or with a bad version byte.
"""

from __future__ import annotations

__all__ = ["DecodeError"]


class DecodeError(ValueError):
    """Bytes received from the server are not a valid value of their type."""
