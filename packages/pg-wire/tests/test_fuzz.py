"""Property tests: random message sequences, random chunking, mutated bytes.

Properties (RELIABILITY W2, the pgx ``FuzzFrontend`` idea):

* any sequence of valid messages, encoded and fed in any chunking, reads
  back as the same messages;
* any bytes at all, fed to a reader and its messages to the parsers, give
  either valid progress or ProtocolError: never another exception, never a
  hang, and memory bounded by the input.

Example counts are modest so the module runs in a few seconds; set
``PG_WIRE_FUZZ_EXAMPLES`` (default 150 per test) for a longer run.
"""

from __future__ import annotations

import itertools
import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pg_wire import tags
from pg_wire._reader import (
    ExtendedReply,
    MessageReader,
    RawRowDecoder,
    parse_authentication,
    parse_backend_key_data,
    parse_command_complete,
    parse_copy_response,
    parse_data_row,
    parse_error_response,
    parse_function_call_response,
    parse_negotiate_protocol_version,
    parse_notification_response,
    parse_parameter_description,
    parse_parameter_status,
    parse_ready_for_query,
    parse_row_description,
)
from pg_wire.backend import BackendReader
from pg_wire.errors import FramingError, ProtocolError
from pg_wire.messages import (
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    BackendKeyData,
    BackendMessage,
    Bind,
    BindComplete,
    Close,
    CommandComplete,
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
    NegotiateProtocolVersion,
    NoData,
    NoticeResponse,
    NotificationResponse,
    ParameterDescription,
    ParameterStatus,
    Parse,
    ParseComplete,
    PortalSuspended,
    Query,
    ReadyForQuery,
    RowDescription,
    StartupMessage,
    Sync,
    Terminate,
    parse_backend,
    parse_frontend,
)

FUZZ = settings(
    max_examples=int(os.environ.get("PG_WIRE_FUZZ_EXAMPLES", "150")),
    deadline=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies ------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
name = text
blob = st.binary(max_size=40)
value = st.none() | blob
int32 = st.integers(-(2**31), 2**31 - 1)
uint32 = st.integers(0, 2**32 - 1)
int16 = st.integers(-(2**15), 2**15 - 1)
fmt = st.sampled_from([0, 1])

backend_messages: st.SearchStrategy[BackendMessage] = st.one_of(
    st.just(AuthenticationOk()),
    st.builds(AuthenticationMD5Password, st.binary(min_size=4, max_size=4)),
    st.builds(AuthenticationSASL, st.lists(name.filter(bool), max_size=3).map(tuple)),
    st.builds(AuthenticationSASLContinue, blob),
    st.builds(BackendKeyData, int32, st.binary(min_size=4, max_size=64)),
    st.sampled_from([ParseComplete(), BindComplete(), NoData(), PortalSuspended(),
                     EmptyQueryResponse(), CopyDone()]),
    st.builds(CommandComplete, text),
    st.builds(CopyInResponse, fmt, st.lists(fmt, max_size=5).map(tuple)),
    st.builds(CopyOutResponse, fmt, st.lists(fmt, max_size=5).map(tuple)),
    st.builds(CopyData, blob),
    st.builds(DataRow, st.lists(value, max_size=6).map(tuple)),
    st.builds(ErrorResponse, st.dictionaries(st.sampled_from("SVCMDHP"), text, max_size=4)),
    st.builds(NoticeResponse, st.dictionaries(st.sampled_from("SVCM"), text, max_size=3)),
    st.builds(FunctionCallResponse, value),
    st.builds(NegotiateProtocolVersion, st.sampled_from([tags.PROTOCOL_3_0, tags.PROTOCOL_3_2]),
              st.lists(text, max_size=3).map(tuple)),
    st.builds(NotificationResponse, int32, text, text),
    st.builds(ParameterDescription, st.lists(uint32, max_size=8).map(tuple)),
    st.builds(ParameterStatus, text, text),
    st.builds(ReadyForQuery, st.sampled_from("ITE")),
    st.builds(
        RowDescription,
        st.lists(st.builds(FieldDescription, text, uint32, int16, uint32, int16, int32, fmt),
                 max_size=4).map(tuple),
    ),
)  # fmt: skip

frontend_messages: st.SearchStrategy[FrontendMessage] = st.one_of(
    st.builds(Query, text),
    st.builds(Parse, name, text, st.lists(uint32, max_size=5).map(tuple)),
    st.builds(Bind, name, name, st.lists(fmt, max_size=3).map(tuple),
              st.lists(value, max_size=4).map(tuple), st.lists(fmt, max_size=3).map(tuple)),
    st.builds(Describe, st.sampled_from("SP"), name),
    st.builds(Close, st.sampled_from("SP"), name),
    st.builds(Execute, name, st.integers(0, 2**31 - 1)),
    st.sampled_from([Sync(), Flush(), Terminate(), CopyDone()]),
    st.builds(CopyData, blob),
    st.builds(CopyFail, text),
    st.builds(FunctionCall, uint32, st.lists(fmt, max_size=2).map(tuple),
              st.lists(value, max_size=3).map(tuple), fmt),
)  # fmt: skip

startup = st.builds(
    StartupMessage,
    st.dictionaries(name.filter(bool), text, max_size=4),
    st.sampled_from([tags.PROTOCOL_3_0, tags.PROTOCOL_3_2]),
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


# -- valid sequences round-trip --------------------------------------------------------


@FUZZ
@given(st.lists(backend_messages, max_size=12), st.lists(st.integers(0, 10_000), max_size=8))
def test_backend_sequences_round_trip(messages: list[BackendMessage], cuts: list[int]) -> None:
    data = b"".join(m.encode() for m in messages)
    reader = MessageReader()
    got: list[BackendMessage] = []
    for chunk in chunked(data, cuts):
        reader.feed(chunk)
        got.extend(parse_backend(t, p, protocol_version=tags.PROTOCOL_3_2) for t, p in reader)
    assert got == messages
    assert reader.buffered == 0


@FUZZ
@given(
    startup, st.lists(frontend_messages, max_size=12), st.lists(st.integers(0, 10_000), max_size=8)
)
def test_frontend_sequences_round_trip(
    first: StartupMessage, messages: list[FrontendMessage], cuts: list[int]
) -> None:
    data = first.encode() + b"".join(m.encode() for m in messages)
    reader = BackendReader()
    got: list[FrontendMessage] = []
    for chunk in chunked(data, cuts):
        reader.feed(chunk)
        got.extend(reader)
    assert got == [first, *messages]


@FUZZ
@given(
    st.lists(st.lists(value, max_size=5), max_size=30), st.lists(st.integers(0, 5000), max_size=6)
)
def test_read_rows_round_trip(rows: list[list[bytes | None]], cuts: list[int]) -> None:
    data = b"".join(DataRow(tuple(r)).encode() for r in rows) + ReadyForQuery().encode()
    reader = MessageReader()
    out: list[object] = []
    for chunk in chunked(data, cuts):
        reader.feed(chunk)
        reader.read_rows(RawRowDecoder(), out)
    assert out == [tuple(r) for r in rows]
    assert reader.read_message() == (b"Z", b"I")


# -- anything in, only ProtocolError out -----------------------------------------------


def consume_backend(data: bytes, cuts: list[int]) -> None:
    reader = MessageReader()
    reply = ExtendedReply(RawRowDecoder(), multi=True)
    try:
        for chunk in chunked(data, cuts):
            reader.feed(chunk)
            while True:
                try:
                    if reader.read_reply(reply):
                        reply = ExtendedReply(RawRowDecoder(), multi=True)
                        continue
                except FramingError:
                    raise
                except ProtocolError:
                    continue  # a malformed row or status, consumed: go on
                rows: list[object] = []
                try:
                    reader.read_rows(RawRowDecoder(), rows)
                except FramingError:
                    raise  # the stream is lost: stop
                except ProtocolError:
                    continue  # a malformed row, consumed: go on
                message = reader.read_message()
                if message is None:
                    break
                try:
                    parse_backend(*message)
                except ProtocolError:
                    pass
    except ProtocolError:
        pass


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


def mutate(data: bytes, mutations: list[tuple[str, int, object]]) -> bytes:
    buf = bytearray(data)
    for kind, pos, arg in mutations:
        pos = pos % (len(buf) + 1)
        if kind == "flip" and pos < len(buf):
            buf[pos] ^= arg  # type: ignore[operator]
        elif kind == "insert":
            buf[pos:pos] = arg  # type: ignore[call-overload]
        elif kind == "delete":
            del buf[pos : pos + arg]  # type: ignore[operator]
        elif kind == "truncate":
            del buf[pos:]
    return bytes(buf)


@FUZZ
@given(
    st.lists(backend_messages, min_size=1, max_size=8),
    st.lists(mutation, min_size=1, max_size=4),
    st.lists(st.integers(0, 10_000), max_size=4),
)
def test_mutated_backend_streams_only_raise_protocol_error(
    messages: list[BackendMessage], mutations: list[tuple[str, int, object]], cuts: list[int]
) -> None:
    data = mutate(b"".join(m.encode() for m in messages), mutations)
    consume_backend(data, cuts)


@FUZZ
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=4))
def test_random_bytes_into_the_backend_reader(data: bytes, cuts: list[int]) -> None:
    consume_backend(data, cuts)


@FUZZ
@given(
    st.lists(frontend_messages, min_size=1, max_size=6),
    st.lists(mutation, min_size=1, max_size=4),
    st.booleans(),
)
def test_mutated_frontend_streams_only_raise_protocol_error(
    messages: list[FrontendMessage], mutations: list[tuple[str, int, object]], with_startup: bool
) -> None:
    data = b"".join(m.encode() for m in messages)
    if with_startup:
        data = StartupMessage({"user": "u"}).encode() + data
    reader = BackendReader(startup=with_startup)
    reader.feed(mutate(data, mutations))
    try:
        while reader.read_message() is not None:
            pass
    except ProtocolError:
        pass


PARSERS = [
    parse_authentication, parse_backend_key_data, parse_command_complete, parse_copy_response,
    parse_data_row, parse_error_response, parse_function_call_response,
    parse_negotiate_protocol_version, parse_notification_response, parse_parameter_description,
    parse_parameter_status, parse_ready_for_query, parse_row_description,
]  # fmt: skip


@FUZZ
@given(st.sampled_from(PARSERS), st.binary(max_size=200))
def test_parsers_on_random_payloads(parser: object, payload: bytes) -> None:
    try:
        parser(payload)  # type: ignore[operator]
    except ProtocolError:
        pass


@FUZZ
@given(st.sampled_from(sorted(tags.FRONTEND_TAGS | {b""})), st.binary(max_size=200),
       st.sampled_from(["password", "sasl_initial", "sasl", "gss"]))  # fmt: skip
def test_frontend_parser_on_random_payloads(tag: bytes, payload: bytes, auth: str) -> None:
    try:
        parse_frontend(tag, payload, auth=auth)
    except ProtocolError:
        pass


@FUZZ
@given(st.sampled_from(sorted(tags.BACKEND_TAGS)), st.integers(-(2**31), 2**31 - 1))
def test_any_length_field_is_accepted_or_refused_at_once(tag: bytes, length: int) -> None:
    # A header alone: either a valid length (waiting for more bytes) or an
    # immediate refusal; never an allocation of `length` bytes.
    reader = MessageReader()
    reader.feed(tag + struct.pack("!i", length))
    try:
        message = reader.read_message()
    except ProtocolError:
        assert length < 4 or length > 30000
    else:
        assert (message is None) == (length > 4)
