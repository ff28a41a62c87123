"""Exceptions raised by pg_wire when a peer breaks the v3 protocol.

Knows nothing about SQLSTATEs or the errors a server reports on purpose
(those arrive as ErrorResponse messages and are data to pg_wire); pg-client
maps these exceptions onto asyncpg's exception hierarchy.

Invalid input *we* were asked to send (a NUL byte in a name, a message over
the size limit, too many parameters) is not a protocol error: the writers
raise the built-in ValueError, TypeError or OverflowError for it, before a
byte is written.
"""

from __future__ import annotations

__all__ = ["FramingError", "ProtocolError", "ProtocolVersionError"]


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow.

    Raised for bad message framing, lengths or counts that do not fit the
    bytes present, unknown message types or codes, invalid UTF-8 where text
    is required, and malformed startup packets. After a ProtocolError the
    connection cannot be trusted any more and should be closed.
    """


class FramingError(ProtocolError):
    """A message header is invalid, so message boundaries are lost.

    Raised by :class:`pg_wire.MessageReader` for a length below 4, a length
    over the limit for the message type or over the reader's overall cap, an
    unknown message type (when the reader is strict), or an invalid startup
    packet length. The reader stays failed: every later call raises again.
    """


class ProtocolVersionError(ProtocolError):
    """The server cannot speak any protocol version the client accepts.

    Raised when a NegotiateProtocolVersion message offers a version below the
    client's minimum, or one the client never asked for.
    """
