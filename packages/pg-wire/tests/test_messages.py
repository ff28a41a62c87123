"""Every message, both directions, against wire bytes written out by hand.

Each golden entry was derived from "Message Formats" in the PostgreSQL docs:
tag byte, Int32 length counting itself but not the tag, then the fields.
The length is spelled out in the comment next to each one.
"""

from __future__ import annotations

import pytest

from pg_wire import tags
from pg_wire._reader import MessageReader
from pg_wire.errors import ProtocolError, ProtocolVersionError
from pg_wire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationGSS,
    AuthenticationGSSContinue,
    AuthenticationKerberosV5,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    AuthenticationSSPI,
    BackendKeyData,
    BackendMessage,
    Bind,
    BindComplete,
    CancelRequest,
    Close,
    CloseComplete,
    CommandComplete,
    CopyBothResponse,
    CopyData,
    CopyDone,
    CopyFail,
    CopyInResponse,
    CopyOutResponse,
    DataRow,
    Describe,
    EmptyQueryResponse,
    ErrorResponse,
    Execute,
    FieldDescription,
    Flush,
    FrontendMessage,
    FunctionCall,
    FunctionCallResponse,
    GSSENCRequest,
    GSSResponse,
    Message,
    NegotiateProtocolVersion,
    NoData,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PasswordMessage,
    PortalSuspended,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    StartupMessage,
    Sync,
    Terminate,
    choose_protocol_version,
    parse_backend,
    parse_frontend,
    parse_startup_packet,
    protocol_version,
    split_protocol_version,
)

# (message, wire bytes)
BACKEND_GOLDEN: list[tuple[BackendMessage, bytes]] = [
    # 4 + Int32 code
    (AuthenticationOk(), b"R\x00\x00\x00\x08\x00\x00\x00\x00"),
    (AuthenticationKerberosV5(), b"R\x00\x00\x00\x08\x00\x00\x00\x02"),
    (AuthenticationCleartextPassword(), b"R\x00\x00\x00\x08\x00\x00\x00\x03"),
    # 4 + 4 + 4 salt = 12
    (
        AuthenticationMD5Password(b"\x01\x02\x03\x04"),
        b"R\x00\x00\x00\x0c\x00\x00\x00\x05\x01\x02\x03\x04",
    ),
    (AuthenticationGSS(), b"R\x00\x00\x00\x08\x00\x00\x00\x07"),
    # 4 + 4 + 3 = 11
    (AuthenticationGSSContinue(b"tok"), b"R\x00\x00\x00\x0b\x00\x00\x00\x08tok"),
    (AuthenticationSSPI(), b"R\x00\x00\x00\x08\x00\x00\x00\x09"),
    # 4 + 4 + "SCRAM-SHA-256\0" 14 + final \0 = 23
    (
        AuthenticationSASL(("SCRAM-SHA-256",)),
        b"R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00",
    ),
    # 4 + 4 + 14 + "SCRAM-SHA-256-PLUS\0" 19 + 1 = 42
    (
        AuthenticationSASL(("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS")),
        b"R\x00\x00\x00\x2a\x00\x00\x00\x0aSCRAM-SHA-256\x00SCRAM-SHA-256-PLUS\x00\x00",
    ),
    # 4 + 4 + 11 = 19
    (AuthenticationSASLContinue(b"r=abc,s=xyz"), b"R\x00\x00\x00\x13\x00\x00\x00\x0br=abc,s=xyz"),
    # 4 + 4 + 6 = 14
    (AuthenticationSASLFinal(b"v=sig="), b"R\x00\x00\x00\x0e\x00\x00\x00\x0cv=sig="),
    # 4 + pid 4 + key 4 = 12
    (
        BackendKeyData(1234, b"\xde\xad\xbe\xef"),
        b"K\x00\x00\x00\x0c\x00\x00\x04\xd2\xde\xad\xbe\xef",
    ),
    (ParseComplete(), b"1\x00\x00\x00\x04"),
    (BindComplete(), b"2\x00\x00\x00\x04"),
    (CloseComplete(), b"3\x00\x00\x00\x04"),
    (NoData(), b"n\x00\x00\x00\x04"),
    (PortalSuspended(), b"s\x00\x00\x00\x04"),
    (EmptyQueryResponse(), b"I\x00\x00\x00\x04"),
    # 4 + "SELECT 1\0" 9 = 13
    (CommandComplete("SELECT 1"), b"C\x00\x00\x00\x0dSELECT 1\x00"),
    # 4 + "INSERT 0 5\0" 11 = 15
    (CommandComplete("INSERT 0 5"), b"C\x00\x00\x00\x0fINSERT 0 5\x00"),
    # 4 + format 1 + count 2 + 2 x 2 = 11
    (CopyInResponse(0, (0, 0)), b"G\x00\x00\x00\x0b\x00\x00\x02\x00\x00\x00\x00"),
    # 4 + 1 + 2 + 2 = 9
    (CopyOutResponse(1, (1,)), b"H\x00\x00\x00\x09\x01\x00\x01\x00\x01"),
    # 4 + 1 + 2 = 7
    (CopyBothResponse(0, ()), b"W\x00\x00\x00\x07\x00\x00\x00"),
    # 4 + 5 = 9
    (CopyData(b"1\tab\n"), b"d\x00\x00\x00\x091\tab\n"),
    (CopyDone(), b"c\x00\x00\x00\x04"),
    # 4 + count 2 + (4 + 3) + (4) + (4 + 0) = 21
    (
        DataRow((b"abc", None, b"")),
        b"D\x00\x00\x00\x15\x00\x03\x00\x00\x00\x03abc\xff\xff\xff\xff\x00\x00\x00\x00",
    ),
    # 4 + 2 = 6
    (DataRow(()), b"D\x00\x00\x00\x06\x00\x00"),
    # 4 + "SERROR\0" 7 + "C42P01\0" 7 + "Mno such table\0" 15 + 1 = 34
    (
        ErrorResponse({"S": "ERROR", "C": "42P01", "M": "no such table"}),
        b"E\x00\x00\x00\x22SERROR\x00C42P01\x00Mno such table\x00\x00",
    ),
    # 4 + "SNOTICE\0" 8 + "Mhi\0" 4 + 1 = 17
    (NoticeResponse({"S": "NOTICE", "M": "hi"}), b"N\x00\x00\x00\x11SNOTICE\x00Mhi\x00\x00"),
    # 4 + 4 + 2 = 10
    (FunctionCallResponse(b"ok"), b"V\x00\x00\x00\x0a\x00\x00\x00\x02ok"),
    (FunctionCallResponse(None), b"V\x00\x00\x00\x08\xff\xff\xff\xff"),
    # 4 + version 4 + count 4 = 12
    (
        NegotiateProtocolVersion(tags.PROTOCOL_3_0),
        b"v\x00\x00\x00\x0c\x00\x03\x00\x00\x00\x00\x00\x00",
    ),
    # 12 + "_pq_.x\0" 7 = 19
    (
        NegotiateProtocolVersion(tags.PROTOCOL_3_0, ("_pq_.x",)),
        b"v\x00\x00\x00\x13\x00\x03\x00\x00\x00\x00\x00\x01_pq_.x\x00",
    ),
    # 4 + pid 4 + "ch\0" 3 + "hello\0" 6 = 17
    (NotificationResponse(99, "ch", "hello"), b"A\x00\x00\x00\x11\x00\x00\x00\x63ch\x00hello\x00"),
    # 4 + 2 + 2 x 4 = 14
    (ParameterDescription((23, 25)), b"t\x00\x00\x00\x0e\x00\x02\x00\x00\x00\x17\x00\x00\x00\x19"),
    # 4 + "client_encoding\0" 16 + "UTF8\0" 5 = 25
    (ParameterStatus("client_encoding", "UTF8"), b"S\x00\x00\x00\x19client_encoding\x00UTF8\x00"),
    (ReadyForQuery("I"), b"Z\x00\x00\x00\x05I"),
    (ReadyForQuery("T"), b"Z\x00\x00\x00\x05T"),
    (ReadyForQuery("E"), b"Z\x00\x00\x00\x05E"),
    # 4 + count 2 + "id\0" 3 + 18 = 27
    (
        RowDescription((FieldDescription("id", 16384, 1, 23, 4, -1, 1),)),
        b"T\x00\x00\x00\x1b\x00\x01id\x00\x00\x00\x40\x00\x00\x01\x00\x00\x00\x17"
        b"\x00\x04\xff\xff\xff\xff\x00\x01",
    ),
]

FRONTEND_GOLDEN: list[tuple[FrontendMessage, bytes]] = [
    # length 4 + version 4 + "user\0u\0" 7 + final \0 = 16
    (StartupMessage({"user": "u"}), b"\x00\x00\x00\x10\x00\x03\x00\x00user\x00u\x00\x00"),
    # 4 + 4 + "user\0bob\0" 9 + "database\0db\0" 12 + 1 = 30
    (
        StartupMessage({"user": "bob", "database": "db"}, tags.PROTOCOL_3_2),
        b"\x00\x00\x00\x1e\x00\x03\x00\x02user\x00bob\x00database\x00db\x00\x00",
    ),
    (SSLRequest(), b"\x00\x00\x00\x08\x04\xd2\x16\x2f"),
    (GSSENCRequest(), b"\x00\x00\x00\x08\x04\xd2\x16\x30"),
    # 4 + code 4 + pid 4 + key 4 = 16
    (CancelRequest(7, b"abcd"), b"\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x07abcd"),
    # 16 + 28 more key bytes = 44
    (CancelRequest(7, b"k" * 32), b"\x00\x00\x00\x2c\x04\xd2\x16\x2e\x00\x00\x00\x07" + b"k" * 32),
    # 4 + "pw\0" 3 = 7
    (PasswordMessage(b"pw"), b"p\x00\x00\x00\x07pw\x00"),
    # 4 + "SCRAM-SHA-256\0" 14 + 4 + 11 = 33
    (
        SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=abc"),
        b"p\x00\x00\x00\x21SCRAM-SHA-256\x00\x00\x00\x00\x0bn,,n=,r=abc",
    ),
    # 4 + 14 + 4 = 22, length -1
    (
        SASLInitialResponse("SCRAM-SHA-256", None),
        b"p\x00\x00\x00\x16SCRAM-SHA-256\x00\xff\xff\xff\xff",
    ),
    (SASLResponse(b"c=biws"), b"p\x00\x00\x00\x0ac=biws"),
    (GSSResponse(b"\x01\x02"), b"p\x00\x00\x00\x06\x01\x02"),
    # 4 + "SELECT 1\0" 9 = 13
    (Query("SELECT 1"), b"Q\x00\x00\x00\x0dSELECT 1\x00"),
    # 4 + "\0" 1 + "SELECT $1\0" 10 + 2 + 4 = 21
    (Parse("", "SELECT $1", (23,)), b"P\x00\x00\x00\x15\x00SELECT $1\x00\x00\x01\x00\x00\x00\x17"),
    # 4 + "s1\0" 3 + "SELECT 1\0" 9 + 2 = 18
    (Parse("s1", "SELECT 1"), b"P\x00\x00\x00\x12s1\x00SELECT 1\x00\x00\x00"),
    # 4 + "\0" + "st\0" + 2 + 2 + 2 + (4 + 4) + 4 + 2 + 2 = 30
    (
        Bind("", "st", (1,), (b"\x00\x00\x00\x2a", None), (1,)),
        b"B\x00\x00\x00\x1e\x00st\x00\x00\x01\x00\x01\x00\x02\x00\x00\x00\x04\x00\x00\x00\x2a"
        b"\xff\xff\xff\xff\x00\x01\x00\x01",
    ),
    # 4 + 1 + 1 + 2 + 2 + 2 = 12
    (Bind("", ""), b"B\x00\x00\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00"),
    # 4 + "S" + "st\0" = 8
    (Describe("S", "st"), b"D\x00\x00\x00\x08Sst\x00"),
    (Describe("P", ""), b"D\x00\x00\x00\x06P\x00"),
    # 4 + "\0" + 4 = 9
    (Execute("", 0), b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00"),
    (Execute("c1", 100), b"E\x00\x00\x00\x0bc1\x00\x00\x00\x00\x64"),
    (Close("P", "p"), b"C\x00\x00\x00\x07Pp\x00"),
    (Close("S", "st"), b"C\x00\x00\x00\x08Sst\x00"),
    (Sync(), b"S\x00\x00\x00\x04"),
    (Flush(), b"H\x00\x00\x00\x04"),
    (Terminate(), b"X\x00\x00\x00\x04"),
    (CopyData(b"a\tb\n"), b"d\x00\x00\x00\x08a\tb\n"),
    (CopyDone(), b"c\x00\x00\x00\x04"),
    (CopyFail("bad"), b"f\x00\x00\x00\x08bad\x00"),
    # 4 + oid 4 + 2 + 2 + 2 + (4 + 4) + 2 = 24
    (
        FunctionCall(1234, (1,), (b"\x00\x00\x00\x01",), 1),
        b"F\x00\x00\x00\x18\x00\x00\x04\xd2\x00\x01\x00\x01\x00\x01\x00\x00\x00\x04"
        b"\x00\x00\x00\x01\x00\x01",
    ),
    # 4 + 4 + 2 + 2 + 4 + 2 = 18
    (
        FunctionCall(99, (), (None,), 0),
        b"F\x00\x00\x00\x12\x00\x00\x00\x63\x00\x00\x00\x01\xff\xff\xff\xff\x00\x00",
    ),
]  # fmt: skip


def _auth_kind(message: FrontendMessage) -> str:
    return {
        SASLInitialResponse: "sasl_initial",
        SASLResponse: "sasl",
        GSSResponse: "gss",
    }.get(type(message), "password")


@pytest.mark.parametrize(("message", "wire"), BACKEND_GOLDEN, ids=repr)
def test_backend_encode(message: BackendMessage, wire: bytes) -> None:
    assert message.encode() == wire


@pytest.mark.parametrize(("message", "wire"), BACKEND_GOLDEN, ids=repr)
def test_backend_decode(message: BackendMessage, wire: bytes) -> None:
    reader = MessageReader()
    reader.feed(wire)
    raw = reader.read_message()
    assert raw is not None
    tag, payload = raw
    assert tag == message.tag
    assert parse_backend(tag, payload, protocol_version=tags.PROTOCOL_3_2) == message
    assert reader.read_message() is None
    assert reader.buffered == 0


@pytest.mark.parametrize(("message", "wire"), FRONTEND_GOLDEN, ids=repr)
def test_frontend_encode(message: FrontendMessage, wire: bytes) -> None:
    assert message.encode() == wire


@pytest.mark.parametrize(("message", "wire"), FRONTEND_GOLDEN, ids=repr)
def test_frontend_decode(message: FrontendMessage, wire: bytes) -> None:
    startup = message.tag == tags.STARTUP_PACKET_TAG
    reader = MessageReader(frontend=True, startup=startup)
    reader.feed(wire)
    raw = reader.read_message()
    assert raw is not None
    tag, payload = raw
    assert tag == message.tag
    assert parse_frontend(tag, payload, auth=_auth_kind(message)) == message
    assert reader.read_message() is None


def test_every_message_class_has_a_golden_entry() -> None:
    # By name: dataclass(slots=True) leaves the pre-slots class objects behind
    # in __subclasses__().
    def leaves(cls: type) -> set[str]:
        out: set[str] = set()
        sub: type
        for sub in cls.__subclasses__():
            if not sub.__name__.startswith("_") and hasattr(sub, "__dataclass_fields__"):
                out.add(sub.__name__)
            out |= leaves(sub)
        return out

    covered = {type(m).__name__ for m, _ in BACKEND_GOLDEN + FRONTEND_GOLDEN}
    assert leaves(Message) == covered
    assert len(covered) == 52  # 21 frontend + 33 backend, CopyData and CopyDone shared


def test_backend_stream_split_at_every_offset() -> None:
    stream = b"".join(wire for _, wire in BACKEND_GOLDEN)
    expected = [m for m, _ in BACKEND_GOLDEN]
    for cut in range(len(stream) + 1):
        reader = MessageReader()
        got: list[BackendMessage] = []
        for part in (stream[:cut], stream[cut:]):
            reader.feed(part)
            got.extend(parse_backend(t, p, protocol_version=tags.PROTOCOL_3_2) for t, p in reader)
        assert got == expected, cut


def test_dataclasses_are_frozen_and_normalized() -> None:
    parse = Parse("s", "SELECT $1", [23])  # type: ignore[arg-type]
    assert parse.param_types == (23,)
    with pytest.raises(AttributeError):
        parse.name = "x"  # type: ignore[misc]
    assert Bind("", "", [1], [b"x"], [1]) == Bind("", "", (1,), (b"x",), (1,))  # type: ignore[arg-type]
    fields = [("a", 0, 0, 25, -1, -1, 0)]
    assert RowDescription(fields).fields[0].name == "a"  # type: ignore[arg-type]


def test_password_message_repr_hides_the_password() -> None:
    assert "s3cret" not in repr(PasswordMessage(b"s3cret"))


def test_error_response_accessors() -> None:
    error = ErrorResponse({"S": "FEHLER", "V": "ERROR", "C": "42P01", "M": "m"})
    assert (error.severity, error.sqlstate, error.message) == ("ERROR", "42P01", "m")


@pytest.mark.parametrize(
    "message",
    [
        ReadyForQuery("X"),
        BackendKeyData(1, b"abc"),
        AuthenticationMD5Password(b"abc"),
        AuthenticationSASL(("",)),
        CommandComplete("a\0b"),
        ParameterStatus("a\0", "b"),
        ErrorResponse({"MM": "x"}),
        DataRow((b"x",) * 65536),
        NotificationResponse(2**31, "c", "p"),
    ],
    ids=repr,
)
def test_backend_encode_refuses_invalid_fields(message: BackendMessage) -> None:
    with pytest.raises(ValueError):
        message.encode()


def test_parse_backend_rejects_unknown_and_malformed() -> None:
    with pytest.raises(ProtocolError, match="unknown backend message type"):
        parse_backend(b"Q", b"")
    with pytest.raises(ProtocolError):
        parse_backend(b"1", b"x")  # ParseComplete has no payload
    with pytest.raises(ProtocolError):
        parse_backend(b"K", b"\x00\x00\x00\x01" + b"k" * 32)  # 3.0 keys are 4 bytes
    assert parse_backend(b"K", b"\x00\x00\x00\x01" + b"k" * 32, protocol_version=tags.PROTOCOL_3_2)


@pytest.mark.parametrize(
    ("tag", "payload"),
    [
        (b"Q", b"SELECT 1"),  # no NUL
        (b"Q", b"\xff\xfe\x00"),  # not UTF-8
        (b"Q", b"a\x00b\x00"),  # trailing bytes
        (b"S", b"x"),
        (b"D", b"X\x00"),
        (b"C", b""),
        (b"E", b"\x00\x00\x00"),
        (b"P", b"s\x00q\x00\x00\x02\x00\x00\x00\x17"),  # 2 types declared, 1 present
        (b"B", b"\x00\x00\x00\x00\x00\x01\xff\xff\xff\xfe\x00\x00"),  # length -2
        (b"B", b"\x00\x00\x00\x01\x00\x07\x00\x00\x00\x00"),  # format code 7
        (b"B", b"\x00\x00\x00\x00\x00\x02\x00\x00\x00\x05ab\x00\x00"),  # value overruns
        (b"F", b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x05"),  # result format 5
        (b"Z", b""),
        (b"\x00", b""),
    ],
)
def test_parse_frontend_rejects_malformed(tag: bytes, payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_frontend(tag, payload)


def test_parse_frontend_auth_kinds() -> None:
    assert parse_frontend(b"p", b"pw\x00") == PasswordMessage(b"pw")
    assert parse_frontend(b"p", b"xy", auth="sasl") == SASLResponse(b"xy")
    assert parse_frontend(b"p", b"xy", auth="gss") == GSSResponse(b"xy")
    with pytest.raises(ProtocolError):
        parse_frontend(b"p", b"M\x00\xff\xff\xff\xfe", auth="sasl_initial")
    with pytest.raises(ProtocolError):
        parse_frontend(b"p", b"M\x00\x00\x00\x00\x05ab", auth="sasl_initial")
    with pytest.raises(ValueError):
        parse_frontend(b"p", b"", auth="kerberos")


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # no code
        b"\x04\xd2\x16\x2f\x00",  # SSLRequest with extra byte
        b"\x04\xd2\x16\x2e\x00\x00\x00\x01abc",  # cancel key of 3 bytes
        b"\x04\xd2\x16\x2e\x00\x00\x00\x01" + b"k" * 257,  # cancel key of 257 bytes
        b"\x00\x02\x00\x00user\x00u\x00\x00",  # protocol 2.0
        b"\x04\xd2\x16\x31",  # unknown request code
        b"\x00\x03\x00\x00user\x00u\x00",  # no terminator
        b"\x00\x03\x00\x00user\x00",  # name without value
        b"\x00\x03\x00\x00user\x00u\x00\x00x",  # bytes after the terminator
        b"\x00\x03\x00\x00us\xffer\x00u\x00\x00",  # not UTF-8
    ],
)
def test_parse_startup_packet_rejects_malformed(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_startup_packet(payload)


def test_protocol_version_helpers() -> None:
    assert protocol_version(3, 2) == tags.PROTOCOL_3_2 == 196610
    assert protocol_version(3, 0) == tags.PROTOCOL_3_0 == 196608
    assert split_protocol_version(196610) == (3, 2)
    with pytest.raises(ValueError):
        protocol_version(3, 70000)


def test_choose_protocol_version() -> None:
    v30, v32 = tags.PROTOCOL_3_0, tags.PROTOCOL_3_2
    assert choose_protocol_version(v30, requested=v32) == v30
    assert choose_protocol_version(v32, requested=v32) == v32
    assert choose_protocol_version(NegotiateProtocolVersion(v30, ("_pq_.a",)), requested=v32) == v30
    with pytest.raises(ProtocolVersionError, match=r"requires 3\.2"):
        choose_protocol_version(v30, requested=v32, minimum=v32)
    with pytest.raises(ProtocolVersionError, match="newer"):
        choose_protocol_version(protocol_version(3, 3), requested=v32)
    with pytest.raises(ProtocolVersionError, match=r"3\.1"):
        choose_protocol_version(tags.PROTOCOL_3_1_RESERVED, requested=v32)
    with pytest.raises(ProtocolVersionError):
        choose_protocol_version(protocol_version(2, 0), requested=v32)
    assert issubclass(ProtocolVersionError, ProtocolError)


def test_negotiate_protocol_version_accepts_a_bare_minor_version() -> None:
    # The docs describe the field as the newest minor version; servers send
    # the whole version number. Both parse to the whole number.
    message = parse_backend(b"v", b"\x00\x00\x00\x00\x00\x00\x00\x00")
    assert message == NegotiateProtocolVersion(tags.PROTOCOL_3_0)
