"""The server side of the v3 protocol: read what a client sends, build replies.

For fake servers (pg-client's tests script one with these), proxies and
protocol tools. :class:`BackendReader` turns the bytes a client sends into
frontend message dataclasses, startup packets first; the functions below
build the byte strings a server sends. Knows nothing about sockets, TLS or
asyncio: the caller moves the bytes, and does the TLS handshake itself
after answering an SSLRequest.

Example, a server that accepts anyone and answers every query with one
row::

    reader = BackendReader()
    reader.feed(received)
    for message in reader:
        if isinstance(message, SSLRequest):
            send(b"N")                       # no TLS here
        elif isinstance(message, StartupMessage):
            send(startup_response())
        elif isinstance(message, Query):
            send(query_result([("x", 23)], [[b"1"]]))  # 23: int4
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from pg_wire import tags
from pg_wire._reader import MessageReader
from pg_wire.errors import ProtocolError
from pg_wire.messages import (
    AuthenticationOk,
    AuthenticationRequest,
    BackendKeyData,
    BackendMessage,
    CommandComplete,
    DataRow,
    ErrorResponse,
    FieldDescription,
    FrontendMessage,
    GSSENCRequest,
    NoticeResponse,
    ParameterStatus,
    ReadyForQuery,
    RowDescription,
    SSLRequest,
    parse_frontend,
)

__all__ = [
    "DEFAULT_SERVER_PARAMETERS",
    "BackendReader",
    "encode_messages",
    "error_response",
    "notice_response",
    "query_result",
    "startup_response",
]

#: ParameterStatus values a PostgreSQL 18 server reports at startup.
DEFAULT_SERVER_PARAMETERS: Mapping[str, str] = {
    "application_name": "",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "default_transaction_read_only": "off",
    "in_hot_standby": "off",
    "integer_datetimes": "on",
    "IntervalStyle": "postgres",
    "is_superuser": "off",
    "scram_iterations": "4096",
    "search_path": '"$user", public',
    "server_encoding": "UTF8",
    "server_version": "18.0",
    "session_authorization": "postgres",
    "standard_conforming_strings": "on",
    "TimeZone": "UTC",
}

_AUTH_KINDS = ("password", "sasl_initial", "sasl", "gss")


class BackendReader:
    """Reads the messages a client sends, as a server does.

    Expects a startup packet first (StartupMessage, SSLRequest,
    GSSENCRequest or CancelRequest), then tagged frontend messages.

    :param strict: Reject message types a client never sends.
    :param max_message_size: Overall cap on a message's length field.
    :param startup: Expect a startup packet first (False to read a stream
        that is already past startup).
    :param check_ssl_request: Refuse bytes that arrive together with an
        SSLRequest or GSSENCRequest: a client must wait for the server's
        one-byte answer, so such bytes were injected by someone else
        (CVE-2021-23214 on the server side).
    """

    def __init__(
        self,
        *,
        strict: bool = True,
        max_message_size: int = tags.MAX_MESSAGE_SIZE,
        startup: bool = True,
        check_ssl_request: bool = True,
    ) -> None:
        self._reader = MessageReader(
            frontend=True, strict=strict, max_message_size=max_message_size, startup=startup
        )
        self._auth = "password"
        self._check_ssl_request = check_ssl_request

    @property
    def auth(self) -> str:
        """How the next ``p`` message is read.

        ``"password"`` (PasswordMessage), ``"sasl_initial"``
        (SASLInitialResponse), ``"sasl"`` (SASLResponse) or ``"gss"``
        (GSSResponse): set it to match the Authentication request sent.
        """
        return self._auth

    @auth.setter
    def auth(self, value: str) -> None:
        if value not in _AUTH_KINDS:
            raise ValueError(f"auth must be one of {_AUTH_KINDS}, not {value!r}")
        self._auth = value

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read as messages."""
        return self._reader.buffered

    @property
    def startup(self) -> bool:
        """True while the next message is expected to be a startup packet."""
        return self._reader.startup

    @startup.setter
    def startup(self, value: bool) -> None:
        self._reader.startup = value

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes received from the client."""
        self._reader.feed(data)

    def read_raw(self) -> tuple[bytes, bytes] | None:
        """The next complete message as ``(tag, payload)``, or None.

        For proxies that forward messages without parsing them; the tag is
        ``b""`` for a startup packet.
        """
        return self._reader.read_message()

    def read_message(self) -> FrontendMessage | None:
        """The next complete message, parsed, or None if none is complete.

        :raises FramingError: If the framing is broken (close the connection).
        :raises ProtocolError: If a message is malformed, or bytes follow an
            SSLRequest / GSSENCRequest.
        """
        raw = self._reader.read_message()
        if raw is None:
            return None
        message = parse_frontend(raw[0], raw[1], auth=self._auth)
        if (
            self._check_ssl_request
            and isinstance(message, (SSLRequest, GSSENCRequest))
            and self._reader.buffered
        ):
            raise ProtocolError(
                f"received {self._reader.buffered} bytes after "
                f"{type(message).__name__} before answering it"
            )
        return message

    def __iter__(self) -> Iterator[FrontendMessage]:
        """Yield every complete message buffered now."""
        while True:
            message = self.read_message()
            if message is None:
                return
            yield message


def encode_messages(*messages: BackendMessage | FrontendMessage | bytes) -> bytes:
    """Concatenate the wire bytes of *messages* (bytes are taken as they are)."""
    return b"".join(m if isinstance(m, bytes) else m.encode() for m in messages)


def startup_response(
    *,
    auth: Sequence[AuthenticationRequest] = (),
    parameters: Mapping[str, str] = DEFAULT_SERVER_PARAMETERS,
    process_id: int = 4242,
    secret_key: bytes = b"\x00\x00\x10\x92",
    status: str = tags.TRANSACTION_IDLE,
) -> bytes:
    """What a server sends once it accepts a client.

    AuthenticationOk, one ParameterStatus per parameter, BackendKeyData and
    ReadyForQuery.

    :param auth: Authentication requests to send before AuthenticationOk
        (rarely useful: a real exchange needs the client's replies between).
    :param parameters: The ParameterStatus values to report.
    :param process_id: BackendKeyData process ID.
    :param secret_key: BackendKeyData key: 4 bytes for protocol 3.0, up to
        256 for 3.2.
    :param status: ReadyForQuery transaction status.
    """
    parts: list[BackendMessage] = [*auth, AuthenticationOk()]
    parts.extend(ParameterStatus(name, value) for name, value in parameters.items())
    parts.append(BackendKeyData(process_id, secret_key))
    parts.append(ReadyForQuery(status))
    return encode_messages(*parts)


def query_result(
    fields: Iterable[FieldDescription | tuple[str, int] | str],
    rows: Iterable[Sequence[bytes | None]],
    *,
    command_tag: str | None = None,
    status: str | None = tags.TRANSACTION_IDLE,
) -> bytes:
    """What a server sends for a query that returns rows.

    RowDescription, one DataRow per row, CommandComplete and (unless
    *status* is None) ReadyForQuery.

    :param fields: Per column a FieldDescription, a ``(name, type_oid)``
        pair, or just a name (type text).
    :param rows: Encoded values per row: bytes, or None for NULL.
    :param command_tag: Defaults to ``"SELECT <number of rows>"``.
    :param status: ReadyForQuery status, or None to leave it out (extended
        protocol, where ReadyForQuery answers Sync).
    """
    descriptions = []
    for f in fields:
        if isinstance(f, str):
            descriptions.append(FieldDescription(f))
        elif isinstance(f, FieldDescription):
            descriptions.append(f)
        else:
            descriptions.append(FieldDescription(f[0], type_oid=f[1]))
    data_rows = [DataRow(tuple(row)) for row in rows]
    parts: list[BackendMessage] = [RowDescription(tuple(descriptions)), *data_rows]
    parts.append(CommandComplete(command_tag or f"SELECT {len(data_rows)}"))
    if status is not None:
        parts.append(ReadyForQuery(status))
    return encode_messages(*parts)


_FIELD_CODES = {
    "detail": "D",
    "hint": "H",
    "position": "P",
    "internal_position": "p",
    "internal_query": "q",
    "where": "W",
    "schema_name": "s",
    "table_name": "t",
    "column_name": "c",
    "data_type_name": "d",
    "constraint_name": "n",
    "file": "F",
    "line": "L",
    "routine": "R",
}


def _fields(severity: str, sqlstate: str, message: str, extra: Mapping[str, str]) -> dict[str, str]:
    fields = {"S": severity, "V": severity, "C": sqlstate, "M": message}
    for name, value in extra.items():
        code = _FIELD_CODES.get(name)
        if code is None:
            raise TypeError(f"unknown error field {name!r}")
        fields[code] = str(value)
    return fields


def error_response(
    sqlstate: str, message: str, *, severity: str = "ERROR", **fields: str
) -> ErrorResponse:
    """Build an ErrorResponse.

    :param sqlstate: The five-character SQLSTATE, e.g. ``"42P01"``.
    :param message: The primary message.
    :param severity: ``ERROR``, ``FATAL`` or ``PANIC``.
    :param fields: Optional fields by name: ``detail``, ``hint``,
        ``position``, ``where``, ``schema_name``, ``table_name``,
        ``column_name``, ``data_type_name``, ``constraint_name``, ...
    """
    return ErrorResponse(_fields(severity, sqlstate, message, fields))


def notice_response(
    message: str, *, sqlstate: str = "00000", severity: str = "NOTICE", **fields: str
) -> NoticeResponse:
    """Build a NoticeResponse (see :func:`error_response` for *fields*)."""
    return NoticeResponse(_fields(severity, sqlstate, message, fields))
