"""Every v3 protocol message as a Python dataclass, with encoding and parsing.

One frozen dataclass per message of the PostgreSQL docs ("Message Formats"),
named as there. Each has ``encode()``, which returns the message's complete
wire bytes, and :func:`parse_backend` / :func:`parse_frontend` turn a
``(tag, payload)`` pair from :class:`pg_wire.MessageReader` back into the
dataclass. Also the protocol-version helpers (3.0 / 3.2 negotiation).

For tests, fake servers and proxies; the client's hot paths use the
Cython writers and parsers directly. Frontend messages encode through those
same writers (so the NUL and size checks are the ones the client gets);
backend messages encode in pure Python here, and parse through the Cython
parsers. Knows nothing about sockets or asyncio, and nothing about what a
value means: DataRow values, Bind parameters and CopyData stay bytes.

Text fields are ``str``. Frontend text must be valid UTF-8 (the client
always sends UTF-8); backend text likewise, except ErrorResponse and
NoticeResponse fields, which keep undecodable bytes as U+FFFD.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from pg_codecs import WriteBuffer
from pg_wire import _reader, _writer, tags
from pg_wire.errors import ProtocolError, ProtocolVersionError

__all__ = [
    "AuthenticationCleartextPassword",
    "AuthenticationGSS",
    "AuthenticationGSSContinue",
    "AuthenticationKerberosV5",
    "AuthenticationMD5Password",
    "AuthenticationOk",
    "AuthenticationRequest",
    "AuthenticationSASL",
    "AuthenticationSASLContinue",
    "AuthenticationSASLFinal",
    "AuthenticationSSPI",
    "BackendKeyData",
    "BackendMessage",
    "Bind",
    "BindComplete",
    "CancelRequest",
    "Close",
    "CloseComplete",
    "CommandComplete",
    "CopyBothResponse",
    "CopyData",
    "CopyDone",
    "CopyFail",
    "CopyInResponse",
    "CopyOutResponse",
    "DataRow",
    "Describe",
    "EmptyQueryResponse",
    "ErrorResponse",
    "Execute",
    "FieldDescription",
    "Flush",
    "FrontendMessage",
    "FunctionCall",
    "FunctionCallResponse",
    "GSSENCRequest",
    "GSSResponse",
    "Message",
    "NegotiateProtocolVersion",
    "NoData",
    "NoticeResponse",
    "NotificationResponse",
    "ParameterDescription",
    "ParameterStatus",
    "Parse",
    "ParseComplete",
    "PasswordMessage",
    "PortalSuspended",
    "Query",
    "ReadyForQuery",
    "RowDescription",
    "SASLInitialResponse",
    "SASLResponse",
    "SSLRequest",
    "StartupMessage",
    "Sync",
    "Terminate",
    "choose_protocol_version",
    "parse_backend",
    "parse_frontend",
    "parse_startup_packet",
    "protocol_version",
    "split_protocol_version",
]

_FROZEN: dict[str, Any] = {"frozen": True, "slots": True}


# -- base classes --------------------------------------------------------------------


class Message:
    """A protocol message; ``encode()`` gives its complete wire bytes."""

    __slots__ = ()
    tag: ClassVar[bytes]

    def encode(self) -> bytes:
        """Return the message as sent on the wire: tag, length and payload."""
        raise NotImplementedError


class FrontendMessage(Message):
    """A message a client sends."""

    __slots__ = ()


class BackendMessage(Message):
    """A message a server sends."""

    __slots__ = ()


def _with_writer(write: Callable[..., None], *args: Any) -> bytes:
    buf = WriteBuffer()
    write(buf, *args)
    return bytes(buf)


def _frame(tag: bytes, payload: bytes) -> bytes:
    if len(payload) + 4 > tags.MAX_MESSAGE_SIZE:
        raise ValueError(f"message of {len(payload) + 4} bytes exceeds the protocol limit")
    return tag + struct.pack("!i", len(payload) + 4) + payload


def _cstr(text: str, what: str) -> bytes:
    data = text.encode("utf-8")
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL byte, which PostgreSQL strings cannot hold")
    return data + b"\0"


def _pack(fmt: str, *values: int) -> bytes:
    try:
        return struct.pack(fmt, *values)
    except struct.error as exc:
        raise ValueError(f"value out of range for its field: {exc}") from None


def _count(n: int, what: str) -> bytes:
    if n > tags.MAX_PARAMETERS:
        raise ValueError(f"{n} {what}; the protocol allows at most {tags.MAX_PARAMETERS}")
    return struct.pack("!H", n)


def _value(data: bytes | None) -> bytes:
    if data is None:
        return b"\xff\xff\xff\xff"
    return struct.pack("!i", len(data)) + bytes(data)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


# -- frontend messages ---------------------------------------------------------------


@dataclass(**_FROZEN)
class StartupMessage(FrontendMessage):
    """StartupMessage: the first packet of a session (untagged)."""

    tag: ClassVar[bytes] = tags.STARTUP_PACKET_TAG
    parameters: dict[str, str] = field(default_factory=dict)
    protocol_version: int = tags.PROTOCOL_3_0

    def encode(self) -> bytes:
        return _with_writer(_writer.write_startup_message, self.parameters, self.protocol_version)


@dataclass(**_FROZEN)
class SSLRequest(FrontendMessage):
    """SSLRequest: asks the server to switch to TLS (untagged)."""

    tag: ClassVar[bytes] = tags.STARTUP_PACKET_TAG

    def encode(self) -> bytes:
        return _with_writer(_writer.write_ssl_request)


@dataclass(**_FROZEN)
class GSSENCRequest(FrontendMessage):
    """GSSENCRequest: asks the server for GSSAPI encryption (untagged)."""

    tag: ClassVar[bytes] = tags.STARTUP_PACKET_TAG

    def encode(self) -> bytes:
        return _with_writer(_writer.write_gssenc_request)


@dataclass(**_FROZEN)
class CancelRequest(FrontendMessage):
    """CancelRequest: cancels the query running in another session (untagged)."""

    tag: ClassVar[bytes] = tags.STARTUP_PACKET_TAG
    process_id: int
    secret_key: bytes

    def encode(self) -> bytes:
        return _with_writer(_writer.write_cancel_request, self.process_id, self.secret_key)


@dataclass(**_FROZEN)
class PasswordMessage(FrontendMessage):
    """PasswordMessage: a cleartext password or an MD5 hash, as bytes."""

    tag: ClassVar[bytes] = tags.PASSWORD_MESSAGE_TAG
    password: bytes

    def __repr__(self) -> str:
        return "PasswordMessage(password=<hidden>)"

    def encode(self) -> bytes:
        return _with_writer(_writer.write_password_message, self.password)


@dataclass(**_FROZEN)
class SASLInitialResponse(FrontendMessage):
    """SASLInitialResponse: the chosen mechanism and its first message."""

    tag: ClassVar[bytes] = tags.SASL_INITIAL_RESPONSE_TAG
    mechanism: str
    data: bytes | None = None

    def encode(self) -> bytes:
        return _with_writer(_writer.write_sasl_initial_response, self.mechanism, self.data)


@dataclass(**_FROZEN)
class SASLResponse(FrontendMessage):
    """SASLResponse: a further SASL message from the client."""

    tag: ClassVar[bytes] = tags.SASL_RESPONSE_TAG
    data: bytes

    def encode(self) -> bytes:
        return _with_writer(_writer.write_sasl_response, self.data)


@dataclass(**_FROZEN)
class GSSResponse(FrontendMessage):
    """GSSResponse: a GSSAPI or SSPI token from the client."""

    tag: ClassVar[bytes] = tags.GSS_RESPONSE_TAG
    data: bytes

    def encode(self) -> bytes:
        return _with_writer(_writer.write_gss_response, self.data)


@dataclass(**_FROZEN)
class Query(FrontendMessage):
    """Query: a simple-protocol query string."""

    tag: ClassVar[bytes] = tags.QUERY_TAG
    query: str

    def encode(self) -> bytes:
        return _with_writer(_writer.write_query, self.query)


@dataclass(**_FROZEN)
class Parse(FrontendMessage):
    """Parse: creates a prepared statement."""

    tag: ClassVar[bytes] = tags.PARSE_TAG
    name: str
    query: str
    param_types: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "param_types", tuple(self.param_types))

    def encode(self) -> bytes:
        return _with_writer(_writer.write_parse, self.name, self.query, self.param_types)


@dataclass(**_FROZEN)
class Bind(FrontendMessage):
    """Bind: creates a portal from a prepared statement and parameter values."""

    tag: ClassVar[bytes] = tags.BIND_TAG
    portal: str
    statement: str
    param_formats: tuple[int, ...] = ()
    params: tuple[bytes | None, ...] = ()
    result_formats: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "param_formats", tuple(self.param_formats))
        _set(self, "params", tuple(self.params))
        _set(self, "result_formats", tuple(self.result_formats))

    def encode(self) -> bytes:
        buf = WriteBuffer()
        _writer.start_bind(buf, self.portal, self.statement)
        try:
            _writer.write_bind_params(buf, self.param_formats, self.params)
        except BaseException:
            _writer.abort_message(buf)
            raise
        _writer.end_bind(buf, self.result_formats)
        return bytes(buf)


@dataclass(**_FROZEN)
class Describe(FrontendMessage):
    """Describe: asks for a statement's (``"S"``) or portal's (``"P"``) description."""

    tag: ClassVar[bytes] = tags.DESCRIBE_TAG
    kind: str
    name: str = ""

    def encode(self) -> bytes:
        return _with_writer(_writer.write_describe, self.kind, self.name)


@dataclass(**_FROZEN)
class Execute(FrontendMessage):
    """Execute: runs a portal, returning at most *max_rows* rows (0: all)."""

    tag: ClassVar[bytes] = tags.EXECUTE_TAG
    portal: str = ""
    max_rows: int = 0

    def encode(self) -> bytes:
        return _with_writer(_writer.write_execute, self.portal, self.max_rows)


@dataclass(**_FROZEN)
class Close(FrontendMessage):
    """Close: closes a statement (``"S"``) or portal (``"P"``)."""

    tag: ClassVar[bytes] = tags.CLOSE_TAG
    kind: str
    name: str = ""

    def encode(self) -> bytes:
        return _with_writer(_writer.write_close, self.kind, self.name)


@dataclass(**_FROZEN)
class Sync(FrontendMessage):
    """Sync: ends an extended-query sequence."""

    tag: ClassVar[bytes] = tags.SYNC_TAG

    def encode(self) -> bytes:
        return _with_writer(_writer.write_sync)


@dataclass(**_FROZEN)
class Flush(FrontendMessage):
    """Flush: asks the server to send what it has buffered."""

    tag: ClassVar[bytes] = tags.FLUSH_TAG

    def encode(self) -> bytes:
        return _with_writer(_writer.write_flush)


@dataclass(**_FROZEN)
class Terminate(FrontendMessage):
    """Terminate: ends the session."""

    tag: ClassVar[bytes] = tags.TERMINATE_TAG

    def encode(self) -> bytes:
        return _with_writer(_writer.write_terminate)


@dataclass(**_FROZEN)
class CopyData(FrontendMessage, BackendMessage):
    """CopyData: part of a COPY data stream (sent by either side)."""

    tag: ClassVar[bytes] = tags.COPY_DATA_TAG
    data: bytes

    def encode(self) -> bytes:
        return _with_writer(_writer.write_copy_data, self.data)


@dataclass(**_FROZEN)
class CopyDone(FrontendMessage, BackendMessage):
    """CopyDone: the end of a COPY data stream (sent by either side)."""

    tag: ClassVar[bytes] = tags.COPY_DONE_TAG

    def encode(self) -> bytes:
        return _with_writer(_writer.write_copy_done)


@dataclass(**_FROZEN)
class CopyFail(FrontendMessage):
    """CopyFail: the client aborts COPY FROM STDIN, giving a reason."""

    tag: ClassVar[bytes] = tags.COPY_FAIL_TAG
    message: str

    def encode(self) -> bytes:
        return _with_writer(_writer.write_copy_fail, self.message)


@dataclass(**_FROZEN)
class FunctionCall(FrontendMessage):
    """FunctionCall: calls a function by OID (the fast-path interface)."""

    tag: ClassVar[bytes] = tags.FUNCTION_CALL_TAG
    function_oid: int
    arg_formats: tuple[int, ...] = ()
    args: tuple[bytes | None, ...] = ()
    result_format: int = 0

    def __post_init__(self) -> None:
        _set(self, "arg_formats", tuple(self.arg_formats))
        _set(self, "args", tuple(self.args))

    def encode(self) -> bytes:
        return _with_writer(
            _writer.write_function_call,
            self.function_oid,
            self.arg_formats,
            self.args,
            self.result_format,
        )


# -- backend messages ----------------------------------------------------------------


class AuthenticationRequest(BackendMessage):
    """Base of the Authentication* messages; ``code`` is the request code."""

    __slots__ = ()
    tag: ClassVar[bytes] = tags.AUTHENTICATION_TAG
    code: ClassVar[int]

    def _payload(self) -> bytes:
        return b""

    def encode(self) -> bytes:
        return _frame(self.tag, struct.pack("!i", self.code) + self._payload())


@dataclass(**_FROZEN)
class AuthenticationOk(AuthenticationRequest):
    """AuthenticationOk: authentication succeeded."""

    code: ClassVar[int] = tags.AUTHENTICATION_OK


@dataclass(**_FROZEN)
class AuthenticationKerberosV5(AuthenticationRequest):
    """AuthenticationKerberosV5: an obsolete method no server uses any more."""

    code: ClassVar[int] = tags.AUTHENTICATION_KERBEROS_V5


@dataclass(**_FROZEN)
class AuthenticationCleartextPassword(AuthenticationRequest):
    """AuthenticationCleartextPassword: send the password as it is."""

    code: ClassVar[int] = tags.AUTHENTICATION_CLEARTEXT_PASSWORD


@dataclass(**_FROZEN)
class AuthenticationMD5Password(AuthenticationRequest):
    """AuthenticationMD5Password: send an MD5 hash salted with *salt* (4 bytes)."""

    code: ClassVar[int] = tags.AUTHENTICATION_MD5_PASSWORD
    salt: bytes

    def _payload(self) -> bytes:
        if len(self.salt) != 4:
            raise ValueError("the MD5 salt must be 4 bytes")
        return bytes(self.salt)


@dataclass(**_FROZEN)
class AuthenticationGSS(AuthenticationRequest):
    """AuthenticationGSS: start a GSSAPI exchange."""

    code: ClassVar[int] = tags.AUTHENTICATION_GSS


@dataclass(**_FROZEN)
class AuthenticationGSSContinue(AuthenticationRequest):
    """AuthenticationGSSContinue: GSSAPI or SSPI data from the server."""

    code: ClassVar[int] = tags.AUTHENTICATION_GSS_CONTINUE
    data: bytes

    def _payload(self) -> bytes:
        return bytes(self.data)


@dataclass(**_FROZEN)
class AuthenticationSSPI(AuthenticationRequest):
    """AuthenticationSSPI: start an SSPI exchange."""

    code: ClassVar[int] = tags.AUTHENTICATION_SSPI


@dataclass(**_FROZEN)
class AuthenticationSASL(AuthenticationRequest):
    """AuthenticationSASL: start SASL with one of *mechanisms*."""

    code: ClassVar[int] = tags.AUTHENTICATION_SASL
    mechanisms: tuple[str, ...]

    def __post_init__(self) -> None:
        _set(self, "mechanisms", tuple(self.mechanisms))

    def _payload(self) -> bytes:
        parts = []
        for name in self.mechanisms:
            if not name:
                raise ValueError("a SASL mechanism name is empty (it would end the list)")
            parts.append(_cstr(name, "a SASL mechanism name"))
        return b"".join(parts) + b"\0"


@dataclass(**_FROZEN)
class AuthenticationSASLContinue(AuthenticationRequest):
    """AuthenticationSASLContinue: a SASL challenge."""

    code: ClassVar[int] = tags.AUTHENTICATION_SASL_CONTINUE
    data: bytes

    def _payload(self) -> bytes:
        return bytes(self.data)


@dataclass(**_FROZEN)
class AuthenticationSASLFinal(AuthenticationRequest):
    """AuthenticationSASLFinal: the SASL outcome data from the server."""

    code: ClassVar[int] = tags.AUTHENTICATION_SASL_FINAL
    data: bytes

    def _payload(self) -> bytes:
        return bytes(self.data)


@dataclass(**_FROZEN)
class BackendKeyData(BackendMessage):
    """BackendKeyData: the process ID and secret key for CancelRequest."""

    tag: ClassVar[bytes] = tags.BACKEND_KEY_DATA_TAG
    process_id: int
    secret_key: bytes

    def encode(self) -> bytes:
        if not tags.MIN_CANCEL_KEY_LENGTH <= len(self.secret_key) <= tags.MAX_CANCEL_KEY_LENGTH:
            raise ValueError(f"a secret key of {len(self.secret_key)} bytes (4 to 256 allowed)")
        return _frame(self.tag, _pack("!i", self.process_id) + bytes(self.secret_key))


class _EmptyBackendMessage(BackendMessage):
    __slots__ = ()

    def encode(self) -> bytes:
        return _frame(self.tag, b"")


@dataclass(**_FROZEN)
class ParseComplete(_EmptyBackendMessage):
    """ParseComplete: Parse succeeded."""

    tag: ClassVar[bytes] = tags.PARSE_COMPLETE_TAG


@dataclass(**_FROZEN)
class BindComplete(_EmptyBackendMessage):
    """BindComplete: Bind succeeded."""

    tag: ClassVar[bytes] = tags.BIND_COMPLETE_TAG


@dataclass(**_FROZEN)
class CloseComplete(_EmptyBackendMessage):
    """CloseComplete: Close succeeded."""

    tag: ClassVar[bytes] = tags.CLOSE_COMPLETE_TAG


@dataclass(**_FROZEN)
class NoData(_EmptyBackendMessage):
    """NoData: the described statement or portal returns no rows."""

    tag: ClassVar[bytes] = tags.NO_DATA_TAG


@dataclass(**_FROZEN)
class PortalSuspended(_EmptyBackendMessage):
    """PortalSuspended: Execute reached its row limit."""

    tag: ClassVar[bytes] = tags.PORTAL_SUSPENDED_TAG


@dataclass(**_FROZEN)
class EmptyQueryResponse(_EmptyBackendMessage):
    """EmptyQueryResponse: the query string was empty."""

    tag: ClassVar[bytes] = tags.EMPTY_QUERY_RESPONSE_TAG


@dataclass(**_FROZEN)
class CommandComplete(BackendMessage):
    """CommandComplete: a command finished; *tag* is e.g. ``"INSERT 0 1"``."""

    tag: ClassVar[bytes] = tags.COMMAND_COMPLETE_TAG
    command_tag: str

    def encode(self) -> bytes:
        return _frame(self.tag, _cstr(self.command_tag, "the command tag"))


class _CopyResponse(BackendMessage):
    __slots__ = ()
    format: int
    column_formats: tuple[int, ...]

    def encode(self) -> bytes:
        payload = _pack("!b", self.format) + _count(len(self.column_formats), "columns")
        payload += b"".join(_pack("!h", f) for f in self.column_formats)
        return _frame(self.tag, payload)


@dataclass(**_FROZEN)
class CopyInResponse(_CopyResponse):
    """CopyInResponse: the server is ready for COPY FROM STDIN data."""

    tag: ClassVar[bytes] = tags.COPY_IN_RESPONSE_TAG
    format: int = 0
    column_formats: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "column_formats", tuple(self.column_formats))


@dataclass(**_FROZEN)
class CopyOutResponse(_CopyResponse):
    """CopyOutResponse: COPY TO STDOUT data follows."""

    tag: ClassVar[bytes] = tags.COPY_OUT_RESPONSE_TAG
    format: int = 0
    column_formats: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "column_formats", tuple(self.column_formats))


@dataclass(**_FROZEN)
class CopyBothResponse(_CopyResponse):
    """CopyBothResponse: a bidirectional copy (streaming replication) starts."""

    tag: ClassVar[bytes] = tags.COPY_BOTH_RESPONSE_TAG
    format: int = 0
    column_formats: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "column_formats", tuple(self.column_formats))


@dataclass(**_FROZEN)
class DataRow(BackendMessage):
    """DataRow: one result row; each value is bytes, or None for NULL."""

    tag: ClassVar[bytes] = tags.DATA_ROW_TAG
    values: tuple[bytes | None, ...]

    def __post_init__(self) -> None:
        _set(self, "values", tuple(self.values))

    def encode(self) -> bytes:
        payload = _count(len(self.values), "values") + b"".join(map(_value, self.values))
        return _frame(self.tag, payload)


class _FieldsMessage(BackendMessage):
    __slots__ = ()
    fields: dict[str, str]

    @property
    def severity(self) -> str | None:
        """The non-localized severity (``V``), else the localized one (``S``)."""
        return self.fields.get("V", self.fields.get("S"))

    @property
    def sqlstate(self) -> str | None:
        """The SQLSTATE code (field ``C``)."""
        return self.fields.get("C")

    @property
    def message(self) -> str | None:
        """The primary message (field ``M``)."""
        return self.fields.get("M")

    def encode(self) -> bytes:
        parts = []
        for code, value in self.fields.items():
            raw = code.encode("latin-1") if len(code) == 1 else b""
            if len(raw) != 1 or raw == b"\0":
                raise ValueError(f"field type {code!r} is not a single non-NUL byte")
            parts.append(raw + _cstr(value, f"field {code!r}"))
        return _frame(self.tag, b"".join(parts) + b"\0")


@dataclass(**_FROZEN)
class ErrorResponse(_FieldsMessage):
    """ErrorResponse: fields by type code (``S``, ``V``, ``C``, ``M``, ``D``, ...)."""

    tag: ClassVar[bytes] = tags.ERROR_RESPONSE_TAG
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(**_FROZEN)
class NoticeResponse(_FieldsMessage):
    """NoticeResponse: like ErrorResponse, for a notice or warning."""

    tag: ClassVar[bytes] = tags.NOTICE_RESPONSE_TAG
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(**_FROZEN)
class FunctionCallResponse(BackendMessage):
    """FunctionCallResponse: the function's result bytes, or None for NULL."""

    tag: ClassVar[bytes] = tags.FUNCTION_CALL_RESPONSE_TAG
    result: bytes | None

    def encode(self) -> bytes:
        return _frame(self.tag, _value(self.result))


@dataclass(**_FROZEN)
class NegotiateProtocolVersion(BackendMessage):
    """NegotiateProtocolVersion: the newest version the server supports.

    *version* is a whole version number (``PROTOCOL_3_0``), as servers send
    it; *unrecognized_options* lists the ``_pq_.`` options it ignored.
    """

    tag: ClassVar[bytes] = tags.NEGOTIATE_PROTOCOL_VERSION_TAG
    version: int
    unrecognized_options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "unrecognized_options", tuple(self.unrecognized_options))

    def encode(self) -> bytes:
        payload = _pack("!ii", self.version, len(self.unrecognized_options))
        payload += b"".join(_cstr(o, "an option name") for o in self.unrecognized_options)
        return _frame(self.tag, payload)


@dataclass(**_FROZEN)
class NotificationResponse(BackendMessage):
    """NotificationResponse: a NOTIFY on a channel this session listens to."""

    tag: ClassVar[bytes] = tags.NOTIFICATION_RESPONSE_TAG
    process_id: int
    channel: str
    payload: str = ""

    def encode(self) -> bytes:
        return _frame(
            self.tag,
            _pack("!i", self.process_id)
            + _cstr(self.channel, "the channel name")
            + _cstr(self.payload, "the payload"),
        )


@dataclass(**_FROZEN)
class ParameterDescription(BackendMessage):
    """ParameterDescription: the type OIDs of a statement's parameters."""

    tag: ClassVar[bytes] = tags.PARAMETER_DESCRIPTION_TAG
    type_oids: tuple[int, ...]

    def __post_init__(self) -> None:
        _set(self, "type_oids", tuple(self.type_oids))

    def encode(self) -> bytes:
        payload = _count(len(self.type_oids), "parameters")
        payload += b"".join(_pack("!I", oid) for oid in self.type_oids)
        return _frame(self.tag, payload)


@dataclass(**_FROZEN)
class ParameterStatus(BackendMessage):
    """ParameterStatus: the current value of a reported run-time parameter."""

    tag: ClassVar[bytes] = tags.PARAMETER_STATUS_TAG
    name: str
    value: str

    def encode(self) -> bytes:
        return _frame(
            self.tag, _cstr(self.name, "the parameter name") + _cstr(self.value, "the value")
        )


@dataclass(**_FROZEN)
class ReadyForQuery(BackendMessage):
    """ReadyForQuery: *status* is ``"I"`` (idle), ``"T"`` or ``"E"``."""

    tag: ClassVar[bytes] = tags.READY_FOR_QUERY_TAG
    status: str = tags.TRANSACTION_IDLE

    def encode(self) -> bytes:
        if self.status not in ("I", "T", "E"):
            raise ValueError(f"transaction status must be 'I', 'T' or 'E', not {self.status!r}")
        return _frame(self.tag, self.status.encode("ascii"))


class FieldDescription(NamedTuple):
    """One field of a RowDescription."""

    name: str
    table_oid: int = 0
    column_attnum: int = 0
    type_oid: int = 25  # text
    type_size: int = -1
    type_modifier: int = -1
    format: int = 0


@dataclass(**_FROZEN)
class RowDescription(BackendMessage):
    """RowDescription: the fields of the rows that follow."""

    tag: ClassVar[bytes] = tags.ROW_DESCRIPTION_TAG
    fields: tuple[FieldDescription, ...]

    def __post_init__(self) -> None:
        _set(self, "fields", tuple(FieldDescription(*f) for f in self.fields))

    def encode(self) -> bytes:
        parts = [_count(len(self.fields), "fields")]
        for f in self.fields:
            parts.append(_cstr(f.name, "a field name"))
            parts.append(
                _pack(
                    "!IhIhih",
                    f.table_oid,
                    f.column_attnum,
                    f.type_oid,
                    f.type_size,
                    f.type_modifier,
                    f.format,
                )
            )
        return _frame(self.tag, b"".join(parts))


# -- parsing -------------------------------------------------------------------------

_EMPTY_BACKEND: dict[bytes, type[BackendMessage]] = {
    tags.PARSE_COMPLETE_TAG: ParseComplete,
    tags.BIND_COMPLETE_TAG: BindComplete,
    tags.CLOSE_COMPLETE_TAG: CloseComplete,
    tags.NO_DATA_TAG: NoData,
    tags.PORTAL_SUSPENDED_TAG: PortalSuspended,
    tags.EMPTY_QUERY_RESPONSE_TAG: EmptyQueryResponse,
    tags.COPY_DONE_TAG: CopyDone,
}

_AUTH_NO_DATA: dict[int, type[AuthenticationRequest]] = {
    tags.AUTHENTICATION_OK: AuthenticationOk,
    tags.AUTHENTICATION_KERBEROS_V5: AuthenticationKerberosV5,
    tags.AUTHENTICATION_CLEARTEXT_PASSWORD: AuthenticationCleartextPassword,
    tags.AUTHENTICATION_GSS: AuthenticationGSS,
    tags.AUTHENTICATION_SSPI: AuthenticationSSPI,
}

_AUTH_DATA: dict[int, Callable[[bytes], AuthenticationRequest]] = {
    tags.AUTHENTICATION_GSS_CONTINUE: AuthenticationGSSContinue,
    tags.AUTHENTICATION_SASL_CONTINUE: AuthenticationSASLContinue,
    tags.AUTHENTICATION_SASL_FINAL: AuthenticationSASLFinal,
}


def _parse_authentication(payload: bytes) -> AuthenticationRequest:
    code, detail = _reader.parse_authentication(payload)
    if code in _AUTH_NO_DATA:
        return _AUTH_NO_DATA[code]()
    if code == tags.AUTHENTICATION_MD5_PASSWORD:
        return AuthenticationMD5Password(detail)  # type: ignore[arg-type]
    if code == tags.AUTHENTICATION_SASL:
        return AuthenticationSASL(detail)  # type: ignore[arg-type]
    return _AUTH_DATA[code](detail)  # type: ignore[arg-type]


def parse_backend(
    tag: bytes, payload: bytes, *, protocol_version: int = tags.PROTOCOL_3_0
) -> BackendMessage:
    """Turn a backend ``(tag, payload)`` pair into its dataclass.

    :param tag: The one-byte message tag.
    :param payload: The bytes after the length field.
    :param protocol_version: The session's protocol version; it decides the
        allowed BackendKeyData key lengths (exactly 4 bytes under 3.0).
    :return: The message.
    :raises ProtocolError: For an unknown tag or a malformed payload.
    """
    payload = bytes(payload)
    if tag in _EMPTY_BACKEND:
        cls = _EMPTY_BACKEND[tag]
        _reader.parse_empty(payload, cls.__name__)
        return cls()
    if tag == tags.DATA_ROW_TAG:
        return DataRow(tuple(_reader.parse_data_row(payload)))
    if tag == tags.COMMAND_COMPLETE_TAG:
        return CommandComplete(_reader.parse_command_complete(payload))
    if tag == tags.READY_FOR_QUERY_TAG:
        return ReadyForQuery(_reader.parse_ready_for_query(payload))
    if tag == tags.ROW_DESCRIPTION_TAG:
        return RowDescription(
            tuple(FieldDescription(*f) for f in _reader.parse_row_description(payload))
        )
    if tag == tags.COPY_DATA_TAG:
        return CopyData(payload)
    if tag == tags.ERROR_RESPONSE_TAG:
        return ErrorResponse(_reader.parse_error_response(payload))
    if tag == tags.NOTICE_RESPONSE_TAG:
        return NoticeResponse(_reader.parse_error_response(payload))
    if tag == tags.AUTHENTICATION_TAG:
        return _parse_authentication(payload)
    if tag == tags.PARAMETER_STATUS_TAG:
        return ParameterStatus(*_reader.parse_parameter_status(payload))
    if tag == tags.BACKEND_KEY_DATA_TAG:
        return BackendKeyData(*_reader.parse_backend_key_data(payload, protocol_version))
    if tag == tags.PARAMETER_DESCRIPTION_TAG:
        return ParameterDescription(_reader.parse_parameter_description(payload))
    if tag == tags.NOTIFICATION_RESPONSE_TAG:
        return NotificationResponse(*_reader.parse_notification_response(payload))
    if tag == tags.FUNCTION_CALL_RESPONSE_TAG:
        return FunctionCallResponse(_reader.parse_function_call_response(payload))
    if tag == tags.NEGOTIATE_PROTOCOL_VERSION_TAG:
        return NegotiateProtocolVersion(*_reader.parse_negotiate_protocol_version(payload))
    if tag == tags.COPY_IN_RESPONSE_TAG:
        return CopyInResponse(*_reader.parse_copy_response(payload))
    if tag == tags.COPY_OUT_RESPONSE_TAG:
        return CopyOutResponse(*_reader.parse_copy_response(payload))
    if tag == tags.COPY_BOTH_RESPONSE_TAG:
        return CopyBothResponse(*_reader.parse_copy_response(payload))
    raise ProtocolError(f"unknown backend message type {tag!r}")


class _Cursor:
    """Bounds-checked reading of a frontend payload; errors are ProtocolError."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def fail(self, problem: str) -> ProtocolError:
        return ProtocolError(f"malformed {self.what} message: {problem}")

    def take(self, n: int) -> bytes:
        if n < 0 or len(self.data) - self.pos < n:
            raise self.fail(f"needs {n} more bytes, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def cbytes(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise self.fail("string without a NUL terminator")
        chunk = self.data[self.pos : end]
        self.pos = end + 1
        return chunk

    def text(self) -> str:
        raw = self.cbytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"text is not valid UTF-8 ({exc.reason})") from None

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk

    def formats(self, what: str) -> tuple[int, ...]:
        n = self.unpack("!H")
        codes = tuple(self.unpack("!h") for _ in range(min(n, len(self.data))))
        if len(codes) != n or any(c not in (0, 1) for c in codes):
            raise self.fail(f"bad {what} format codes")
        return codes

    def values(self, what: str) -> tuple[bytes | None, ...]:
        n = self.unpack("!H")
        if n * 4 > len(self.data) - self.pos:
            raise self.fail(f"{n} {what} declared in {len(self.data) - self.pos} bytes")
        out: list[bytes | None] = []
        for i in range(n):
            size = self.unpack("!i")
            if size == -1:
                out.append(None)
            elif size < 0:
                raise self.fail(f"{what} {i} has length {size}")
            else:
                out.append(self.take(size))
        return tuple(out)

    def kind(self) -> str:
        kind = self.take(1)
        if kind not in (b"S", b"P"):
            raise self.fail(f"target {kind!r} is neither 'S' nor 'P'")
        return kind.decode("ascii")

    def done(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} unexpected bytes at its end")


def parse_startup_packet(payload: bytes) -> FrontendMessage:
    """Parse an untagged startup packet (the payload after its length).

    :return: A StartupMessage, SSLRequest, GSSENCRequest or CancelRequest.
    :raises ProtocolError: For an unknown request code or protocol major
        version, or a malformed packet.
    """
    cur = _Cursor(bytes(payload), "startup packet")
    code = cur.unpack("!i")
    if code == tags.SSL_REQUEST_CODE:
        cur.done()
        return SSLRequest()
    if code == tags.GSSENC_REQUEST_CODE:
        cur.done()
        return GSSENCRequest()
    if code == tags.CANCEL_REQUEST_CODE:
        cur.what = "CancelRequest"
        pid = cur.unpack("!i")
        key = cur.rest()
        if not tags.MIN_CANCEL_KEY_LENGTH <= len(key) <= tags.MAX_CANCEL_KEY_LENGTH:
            raise cur.fail(f"a cancel key of {len(key)} bytes")
        return CancelRequest(pid, key)
    if code >> 16 != 3:
        raise ProtocolError(
            f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF} "
            f"(or unknown request code {code})"
        )
    cur.what = "StartupMessage"
    parameters: dict[str, str] = {}
    while True:
        name = cur.text()
        if not name:
            break
        parameters[name] = cur.text()
    cur.done()
    return StartupMessage(parameters, code)


_AUTH_KINDS = ("password", "sasl_initial", "sasl", "gss")


def parse_frontend(tag: bytes, payload: bytes, *, auth: str = "password") -> FrontendMessage:
    """Turn a frontend ``(tag, payload)`` pair into its dataclass.

    :param tag: The one-byte tag, or ``b""`` for a startup packet.
    :param payload: The bytes after the length field.
    :param auth: What a ``p`` message is, which only the server knows from
        what it asked for: ``"password"`` (PasswordMessage),
        ``"sasl_initial"`` (SASLInitialResponse), ``"sasl"`` (SASLResponse)
        or ``"gss"`` (GSSResponse).
    :return: The message.
    :raises ProtocolError: For an unknown tag or a malformed payload.
    """
    payload = bytes(payload)
    if tag == tags.STARTUP_PACKET_TAG:
        return parse_startup_packet(payload)
    parser = _FRONTEND_PARSERS.get(tag)
    if parser is None:
        raise ProtocolError(f"unknown frontend message type {tag!r}")
    if tag == tags.PASSWORD_MESSAGE_TAG:
        if auth not in _AUTH_KINDS:
            raise ValueError(f"auth must be one of {_AUTH_KINDS}, not {auth!r}")
        return _parse_auth_response(payload, auth)
    cur = _Cursor(payload, parser[0])
    message = parser[1](cur)
    cur.done()
    return message


def _parse_auth_response(payload: bytes, auth: str) -> FrontendMessage:
    if auth == "password":
        cur = _Cursor(payload, "PasswordMessage")
        password = cur.cbytes()
        cur.done()
        return PasswordMessage(password)
    if auth == "sasl_initial":
        cur = _Cursor(payload, "SASLInitialResponse")
        mechanism = cur.text()
        size = cur.unpack("!i")
        if size < -1:
            raise cur.fail(f"initial response length {size}")
        data = None if size == -1 else cur.take(size)
        cur.done()
        return SASLInitialResponse(mechanism, data)
    if auth == "sasl":
        return SASLResponse(payload)
    return GSSResponse(payload)


def _parse_bind(cur: _Cursor) -> Bind:
    portal = cur.text()
    statement = cur.text()
    param_formats = cur.formats("parameter")
    params = cur.values("parameters")
    result_formats = cur.formats("result")
    return Bind(portal, statement, param_formats, params, result_formats)


def _parse_parse(cur: _Cursor) -> Parse:
    name = cur.text()
    query = cur.text()
    n = cur.unpack("!H")
    if n * 4 != len(cur.data) - cur.pos:
        raise cur.fail(f"{n} parameter types declared in {len(cur.data) - cur.pos} bytes")
    return Parse(name, query, tuple(cur.unpack("!I") for _ in range(n)))


def _parse_function_call(cur: _Cursor) -> FunctionCall:
    oid = cur.unpack("!I")
    arg_formats = cur.formats("argument")
    args = cur.values("arguments")
    result_format = cur.unpack("!h")
    if result_format not in (0, 1):
        raise cur.fail(f"result format code {result_format}")
    return FunctionCall(oid, arg_formats, args, result_format)


def _parse_execute(cur: _Cursor) -> Execute:
    portal = cur.text()
    return Execute(portal, cur.unpack("!i"))


_FRONTEND_PARSERS: dict[bytes, tuple[str, Callable[[_Cursor], FrontendMessage]]] = {
    tags.BIND_TAG: ("Bind", _parse_bind),
    tags.CLOSE_TAG: ("Close", lambda cur: Close(cur.kind(), cur.text())),
    tags.COPY_DATA_TAG: ("CopyData", lambda cur: CopyData(cur.rest())),
    tags.COPY_DONE_TAG: ("CopyDone", lambda cur: CopyDone()),
    tags.COPY_FAIL_TAG: ("CopyFail", lambda cur: CopyFail(cur.text())),
    tags.DESCRIBE_TAG: ("Describe", lambda cur: Describe(cur.kind(), cur.text())),
    tags.EXECUTE_TAG: ("Execute", _parse_execute),
    tags.FLUSH_TAG: ("Flush", lambda cur: Flush()),
    tags.FUNCTION_CALL_TAG: ("FunctionCall", _parse_function_call),
    tags.PARSE_TAG: ("Parse", _parse_parse),
    tags.PASSWORD_MESSAGE_TAG: ("PasswordMessage", lambda cur: PasswordMessage(cur.rest())),
    tags.QUERY_TAG: ("Query", lambda cur: Query(cur.text())),
    tags.SYNC_TAG: ("Sync", lambda cur: Sync()),
    tags.TERMINATE_TAG: ("Terminate", lambda cur: Terminate()),
}


# -- protocol versions ---------------------------------------------------------------


def protocol_version(major: int, minor: int) -> int:
    """The version number for *major*.*minor* (``protocol_version(3, 2) == 196610``)."""
    if not (0 <= major <= 0xFFFF and 0 <= minor <= 0xFFFF):
        raise ValueError(f"invalid protocol version {major}.{minor}")
    return (major << 16) | minor


def split_protocol_version(version: int) -> tuple[int, int]:
    """The ``(major, minor)`` pair of a version number."""
    return version >> 16, version & 0xFFFF


def choose_protocol_version(
    offered: int | NegotiateProtocolVersion,
    *,
    requested: int,
    minimum: int = tags.PROTOCOL_3_0,
) -> int:
    """Decide the session's protocol version after NegotiateProtocolVersion.

    The client asks for its newest version (*requested*) in the
    StartupMessage; a server that only supports an older 3.x minor version
    answers with NegotiateProtocolVersion, and the session then uses that
    version. Without that message the session uses *requested*.

    :param offered: The server's version, or its NegotiateProtocolVersion.
    :param requested: The version the StartupMessage asked for.
    :param minimum: The oldest version the client accepts.
    :return: The version to use.
    :raises ProtocolVersionError: If the offer is newer than requested, not
        3.x, the never-used 3.1, or older than *minimum*.
    """
    if isinstance(offered, NegotiateProtocolVersion):
        offered = offered.version
    major, minor = split_protocol_version(offered)
    if major != 3 or offered < tags.PROTOCOL_3_0:
        raise ProtocolVersionError(f"server offered protocol version {major}.{minor}")
    if offered > requested:
        raise ProtocolVersionError(
            f"server offered protocol version {major}.{minor}, newer than the "
            f"{'.'.join(map(str, split_protocol_version(requested)))} requested"
        )
    if offered == tags.PROTOCOL_3_1_RESERVED:
        raise ProtocolVersionError("server offered protocol version 3.1, which does not exist")
    if offered < minimum:
        want = ".".join(map(str, split_protocol_version(minimum)))
        raise ProtocolVersionError(
            f"server supports protocol version {major}.{minor} at most; "
            f"the client requires {want} or newer"
        )
    return offered
