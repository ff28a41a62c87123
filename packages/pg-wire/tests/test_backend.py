"""Server-side helpers (pg_wire.backend): BackendReader and reply builders."""

from __future__ import annotations

import pytest

from pg_codecs import WriteBuffer
from pg_wire import _writer, tags
from pg_wire._reader import MessageReader, RawRowDecoder, parse_backend_key_data
from pg_wire.backend import (
    DEFAULT_SERVER_PARAMETERS,
    BackendReader,
    encode_messages,
    error_response,
    notice_response,
    query_result,
    startup_response,
)
from pg_wire.errors import FramingError, ProtocolError
from pg_wire.messages import (
    AuthenticationOk,
    AuthenticationSASL,
    BackendKeyData,
    Bind,
    CancelRequest,
    CommandComplete,
    DataRow,
    Describe,
    ErrorResponse,
    Execute,
    FieldDescription,
    GSSENCRequest,
    GSSResponse,
    NoticeResponse,
    ParameterStatus,
    Parse,
    PasswordMessage,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    StartupMessage,
    Sync,
    Terminate,
    parse_backend,
)


def client_bytes() -> bytes:
    """What a client sends for connect + one extended query, via the writers."""
    buf = WriteBuffer()
    _writer.write_startup_message(buf, {"user": "alice", "database": "db"}, tags.PROTOCOL_3_2)
    _writer.write_parse(buf, "", "SELECT $1::int4", [23])
    _writer.write_bind(
        buf, "", "", b"\x00\x01\x00\x01\x00\x01\x00\x00\x00\x04\x00\x00\x00\x07", [1]
    )
    _writer.write_describe(buf, "P", "")
    _writer.write_execute(buf, "", 0)
    _writer.write_sync(buf)
    _writer.write_terminate(buf)
    return bytes(buf)


EXPECTED_CLIENT = [
    StartupMessage({"user": "alice", "database": "db"}, tags.PROTOCOL_3_2),
    Parse("", "SELECT $1::int4", (23,)),
    Bind("", "", (1,), (b"\x00\x00\x00\x07",), (1,)),
    Describe("P", ""),
    Execute("", 0),
    Sync(),
    Terminate(),
]


def test_reads_a_client_session() -> None:
    reader = BackendReader()
    assert reader.startup
    reader.feed(client_bytes())
    assert list(reader) == EXPECTED_CLIENT
    assert not reader.startup
    assert reader.buffered == 0


def test_reads_a_client_session_fed_in_every_split() -> None:
    data = client_bytes()
    for cut in range(len(data) + 1):
        reader = BackendReader()
        reader.feed(data[:cut])
        got = list(reader)
        reader.feed(data[cut:])
        assert got + list(reader) == EXPECTED_CLIENT


def test_ssl_request_then_startup() -> None:
    reader = BackendReader()
    reader.feed(SSLRequest().encode())
    assert reader.read_message() == SSLRequest()
    assert reader.startup
    reader.feed(StartupMessage({"user": "u"}).encode())
    assert reader.read_message() == StartupMessage({"user": "u"})


def test_bytes_injected_after_ssl_request_are_refused() -> None:
    for request in (SSLRequest(), GSSENCRequest()):
        reader = BackendReader()
        reader.feed(request.encode() + Query("SELECT 'injected'").encode())
        with pytest.raises(ProtocolError, match="after"):
            reader.read_message()
    reader = BackendReader(check_ssl_request=False)
    reader.feed(SSLRequest().encode() + StartupMessage({"user": "u"}).encode())
    assert len(list(reader)) == 2


def test_cancel_request() -> None:
    reader = BackendReader()
    reader.feed(CancelRequest(77, b"k" * 32).encode())
    assert reader.read_message() == CancelRequest(77, b"k" * 32)


def test_auth_kind_selects_the_p_message() -> None:
    reader = BackendReader(startup=False)
    reader.feed(PasswordMessage(b"secret").encode())
    assert reader.read_message() == PasswordMessage(b"secret")
    reader.auth = "sasl_initial"
    reader.feed(SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=x").encode())
    assert reader.read_message() == SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=x")
    reader.auth = "sasl"
    reader.feed(SASLResponse(b"c=biws").encode())
    assert reader.read_message() == SASLResponse(b"c=biws")
    reader.auth = "gss"
    reader.feed(GSSResponse(b"\x01").encode())
    assert reader.read_message() == GSSResponse(b"\x01")
    assert reader.auth == "gss"
    with pytest.raises(ValueError):
        reader.auth = "ldap"


def test_read_raw_for_proxies() -> None:
    reader = BackendReader()
    reader.feed(client_bytes())
    raw = reader.read_raw()
    assert raw is not None and raw[0] == b""
    assert reader.read_raw() == (b"P", Parse("", "SELECT $1::int4", (23,)).encode()[5:])


def test_framing_errors_from_the_client() -> None:
    reader = BackendReader()
    reader.feed(b"\x00\x00\x27\x11" + b"\x00" * 8)  # startup packet of 10,001 bytes
    with pytest.raises(FramingError):
        reader.read_message()
    reader = BackendReader(startup=False)
    reader.feed(b"S\x00\x00\x27\x11")  # Sync of 10,001 bytes
    with pytest.raises(FramingError):
        reader.read_message()
    reader = BackendReader(startup=False, max_message_size=1000)
    reader.feed(b"Q\x00\x00\x03\xe9")
    with pytest.raises(FramingError):
        reader.read_message()
    reader = BackendReader(startup=False)
    reader.startup = True
    reader.feed(b"Q\x00\x00\x00\x05x")  # a tagged message where a startup packet is due
    with pytest.raises(FramingError):
        reader.read_message()


def test_malformed_client_message() -> None:
    reader = BackendReader(startup=False)
    reader.feed(b"Q\x00\x00\x00\x05x")  # no NUL terminator
    with pytest.raises(ProtocolError, match="Query"):
        reader.read_message()


# -- replies -----------------------------------------------------------------------


def read_backend(data: bytes, version: int = tags.PROTOCOL_3_0) -> list[object]:
    reader = MessageReader()
    reader.feed(data)
    return [parse_backend(t, p, protocol_version=version) for t, p in reader]


def test_startup_response() -> None:
    messages = read_backend(startup_response())
    assert messages[0] == AuthenticationOk()
    statuses = [m for m in messages if isinstance(m, ParameterStatus)]
    assert {s.name: s.value for s in statuses} == dict(DEFAULT_SERVER_PARAMETERS)
    assert messages[-2] == BackendKeyData(4242, b"\x00\x00\x10\x92")
    assert messages[-1] == ReadyForQuery("I")


def test_startup_response_options() -> None:
    data = startup_response(
        auth=[AuthenticationSASL(("SCRAM-SHA-256",))],
        parameters={"server_version": "15.4"},
        process_id=9,
        secret_key=b"s" * 32,
        status="T",
    )
    assert read_backend(data, tags.PROTOCOL_3_2) == [
        AuthenticationSASL(("SCRAM-SHA-256",)),
        AuthenticationOk(),
        ParameterStatus("server_version", "15.4"),
        BackendKeyData(9, b"s" * 32),
        ReadyForQuery("T"),
    ]
    # A 3.0 client refuses the 32-byte key.
    reader = MessageReader()
    reader.feed(data)
    key_data = next(p for t, p in reader if t == b"K")
    with pytest.raises(ProtocolError):
        parse_backend_key_data(key_data, tags.PROTOCOL_3_0)


def test_query_result() -> None:
    data = query_result(
        [("n", 23), "t", FieldDescription("b", type_oid=17, format=1)],
        [[b"1", b"one", None], [b"2", None, b"\x00"]],
    )
    assert read_backend(data) == [
        RowDescription(
            (
                FieldDescription("n", type_oid=23),
                FieldDescription("t"),
                FieldDescription("b", type_oid=17, format=1),
            )
        ),
        DataRow((b"1", b"one", None)),
        DataRow((b"2", None, b"\x00")),
        CommandComplete("SELECT 2"),
        ReadyForQuery("I"),
    ]
    extended = query_result(["x"], [], command_tag="FETCH 0", status=None)
    assert read_backend(extended)[-1] == CommandComplete("FETCH 0")


def test_query_result_through_read_rows() -> None:
    reader = MessageReader()
    reader.feed(query_result(["a", "b"], [[b"1", None]] * 1000))
    message = reader.read_message()
    assert message is not None and message[0] == b"T"
    rows: list[object] = []
    assert reader.read_rows(RawRowDecoder(), rows) == 1000
    assert rows[-1] == (b"1", None)


def test_error_and_notice_responses() -> None:
    error = error_response("42P01", 'relation "x" does not exist', position="15", hint="h")
    assert error == ErrorResponse(
        {"S": "ERROR", "V": "ERROR", "C": "42P01", "M": 'relation "x" does not exist',
         "P": "15", "H": "h"}
    )  # fmt: skip
    assert read_backend(error.encode()) == [error]
    notice = notice_response("hello", detail="d")
    assert isinstance(notice, NoticeResponse) and notice.fields["D"] == "d"
    assert notice.sqlstate == "00000" and notice.severity == "NOTICE"
    with pytest.raises(TypeError):
        error_response("XX000", "m", colour="red")


def test_encode_messages_accepts_raw_bytes() -> None:
    assert encode_messages(ReadyForQuery(), b"garbage", Sync()) == (
        b"Z\x00\x00\x00\x05Igarbage" + b"S\x00\x00\x00\x04"
    )
