"""MessageReader framing and the backend payload parsers (pg_wire._reader)."""

from __future__ import annotations

import random
import struct
import sys
import tracemalloc

import pytest

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
    parse_empty,
    parse_error_response,
    parse_function_call_response,
    parse_negotiate_protocol_version,
    parse_notification_response,
    parse_parameter_description,
    parse_parameter_status,
    parse_ready_for_query,
    parse_row_description,
)
from pg_wire.errors import FramingError, ProtocolError


def msg(tag: bytes, payload: bytes = b"") -> bytes:
    return tag + struct.pack("!i", len(payload) + 4) + payload


def header(tag: bytes, length: int) -> bytes:
    return tag + struct.pack("!I", length & 0xFFFFFFFF)


def data_row(*values: bytes | None) -> bytes:
    body = struct.pack("!H", len(values))
    for v in values:
        body += b"\xff\xff\xff\xff" if v is None else struct.pack("!i", len(v)) + v
    return msg(b"D", body)


ROW_DESCRIPTION = msg(
    b"T", b"\x00\x01id\x00\x00\x00\x40\x00\x00\x01\x00\x00\x00\x17\x00\x04\xff\xff\xff\xff\x00\x01"
)
READY = b"Z\x00\x00\x00\x05I"
# A query result as a server sends it: description, rows, completion, ready.
RESULT = (
    ROW_DESCRIPTION
    + b"".join(data_row(str(i).encode(), None if i % 3 else b"x" * i) for i in range(20))
    + msg(b"C", b"SELECT 20\x00")
    + READY
)


def read_all(reader: MessageReader) -> list[tuple[bytes, bytes]]:
    return list(reader)


def take(reader: MessageReader) -> tuple[bytes, bytes]:
    """The next message, which the test expects to be complete."""
    message = reader.read_message()
    assert message is not None
    return message


# -- framing -----------------------------------------------------------------------


def test_one_message() -> None:
    reader = MessageReader()
    reader.feed(READY)
    assert reader.read_message() == (b"Z", b"I")
    assert reader.read_message() is None
    assert reader.buffered == 0


def test_many_messages_in_one_chunk() -> None:
    reader = MessageReader()
    reader.feed(READY * 3 + msg(b"1") + msg(b"C", b"BEGIN\x00"))
    assert read_all(reader) == [(b"Z", b"I")] * 3 + [(b"1", b""), (b"C", b"BEGIN\x00")]


def test_stream_split_at_every_offset_gives_the_same_messages() -> None:
    reader = MessageReader()
    reader.feed(RESULT)
    expected = read_all(reader)
    assert len(expected) == 23
    for cut in range(len(RESULT) + 1):
        reader = MessageReader()
        got = []
        reader.feed(RESULT[:cut])
        got += read_all(reader)
        reader.feed(RESULT[cut:])
        got += read_all(reader)
        assert got == expected, cut
        assert reader.buffered == 0


def test_stream_fed_one_byte_at_a_time() -> None:
    reader = MessageReader()
    reader.feed(RESULT)
    expected = read_all(reader)
    for kind in (bytes, bytearray, memoryview):
        reader = MessageReader()
        got = []
        for i in range(len(RESULT)):
            reader.feed(kind(RESULT[i : i + 1]))
            got += read_all(reader)
        assert got == expected


def test_stream_fed_one_byte_at_a_time_without_reading() -> None:
    # Everything accumulates; nothing is lost or reordered.
    reader = MessageReader()
    for i in range(len(RESULT)):
        reader.feed(RESULT[i : i + 1])
    assert reader.buffered == len(RESULT)
    assert len(read_all(reader)) == 23
    assert reader.buffered == 0


@pytest.mark.parametrize("seed", range(20))
def test_random_chunking(seed: int) -> None:
    rng = random.Random(seed)
    stream = RESULT * 5 + msg(b"d", b"y" * 5000) + data_row(b"z" * 70000) + READY
    reference = MessageReader()
    reference.feed(stream)
    expected = read_all(reference)
    reader = MessageReader()
    got = []
    pos = 0
    while pos < len(stream):
        n = rng.choice([1, 2, 3, 7, 100, 1023, 1024, 4096, 65536])
        chunk = stream[pos : pos + n]
        pos += n
        reader.feed(rng.choice([bytes, bytearray, memoryview])(chunk))
        if rng.random() < 0.7:
            got += read_all(reader)
    got += read_all(reader)
    assert got == expected


def test_buffered_counts_unread_bytes() -> None:
    reader = MessageReader()
    reader.feed(READY + READY[:3])
    assert reader.buffered == 9
    assert reader.read_message() == (b"Z", b"I")
    assert reader.buffered == 3
    assert reader.read_message() is None
    reader.feed(READY[3:])
    assert reader.read_message() == (b"Z", b"I")
    assert reader.buffered == 0


def test_empty_and_mutable_input() -> None:
    reader = MessageReader()
    reader.feed(b"")
    reader.feed(bytearray())
    data = bytearray(READY)
    reader.feed(data)
    data[5:6] = b"E"  # the reader copied it: changing the caller's buffer is harmless
    assert reader.read_message() == (b"Z", b"I")
    with pytest.raises(TypeError):
        reader.feed("text")  # type: ignore[arg-type]


def test_bytes_chunks_are_kept_not_copied() -> None:
    # The buffering strategy: a bytes chunk is referenced as it is (messages
    # inside it are parsed in place); a mutable buffer is copied once.
    data = READY * 3
    base = sys.getrefcount(data)
    reader = MessageReader()
    reader.feed(data)
    assert sys.getrefcount(data) == base + 1
    assert len(read_all(reader)) == 3
    assert sys.getrefcount(data) == base  # let go once used up
    mutable = bytearray(READY)
    base = sys.getrefcount(mutable)
    reader.feed(mutable)
    assert sys.getrefcount(mutable) == base
    assert read_all(reader) == [(b"Z", b"I")]


def test_large_message_across_many_chunks() -> None:
    payload = bytes(range(256)) * 4000
    wire = msg(b"d", payload)
    reader = MessageReader()
    for i in range(0, len(wire), 8192):
        reader.feed(wire[i : i + 8192])
    assert reader.read_message() == (b"d", payload)


def test_iteration() -> None:
    reader = MessageReader()
    reader.feed(READY * 2)
    assert [m for m in reader] == [(b"Z", b"I")] * 2
    assert next(iter(reader), None) is None


# -- hostile and invalid headers ---------------------------------------------------


@pytest.mark.parametrize("tag", [b"D", b"Z", b"R", b"d", b"T"])
@pytest.mark.parametrize("length", [0, 3, -1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x40000000])
def test_hostile_lengths_fail_fast_without_allocating(tag: bytes, length: int) -> None:
    reader = MessageReader()
    tracemalloc.start()
    try:
        reader.feed(header(tag, length))
        with pytest.raises(FramingError):
            reader.read_message()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Refused from the header alone: nothing of the claimed size allocated.
    assert peak < 1 << 20


def test_small_message_types_are_capped_at_30000() -> None:
    reader = MessageReader()
    reader.feed(header(b"Z", 30001))
    with pytest.raises(FramingError, match="at most 30000"):
        reader.read_message()
    reader = MessageReader()
    reader.feed(msg(b"S", b"a\x00" + b"b" * 29990 + b"\x00"))  # 29,997 bytes: fine
    assert take(reader)[0] == b"S"


@pytest.mark.parametrize("tag", [b"T", b"D", b"d", b"V", b"E", b"N", b"A", b"t"])
def test_long_message_types_may_exceed_30000(tag: bytes) -> None:
    reader = MessageReader()
    reader.feed(msg(tag, b"x" * 40000))
    assert reader.read_message() == (tag, b"x" * 40000)


def test_overall_cap_is_configurable() -> None:
    reader = MessageReader(max_message_size=1000)
    reader.feed(msg(b"D", b"x" * 996))  # length field 1000
    assert reader.read_message() is not None
    reader.feed(msg(b"D", b"x" * 997))
    with pytest.raises(FramingError, match="limit of 1000"):
        reader.read_message()
    reader = MessageReader()
    reader.max_message_size = 100
    assert reader.max_message_size == 100
    reader.feed(header(b"Z", 5) + b"I" + header(b"S", 101))
    assert reader.read_message() == (b"Z", b"I")
    with pytest.raises(FramingError):
        reader.read_message()
    for bad in (4, 0x40000000):
        with pytest.raises(ValueError):
            MessageReader(max_message_size=bad)


def test_unknown_tag_strict_and_lenient() -> None:
    reader = MessageReader()
    reader.feed(msg(b"Q", b"x\x00"))
    with pytest.raises(FramingError, match="unknown backend message type 'Q'"):
        reader.read_message()
    lenient = MessageReader(strict=False)
    assert not lenient.strict
    lenient.feed(msg(b"Q", b"x\x00") + header(b"Q", 30001))
    assert lenient.read_message() == (b"Q", b"x\x00")
    with pytest.raises(FramingError):
        lenient.read_message()
    lenient = MessageReader(strict=False)
    lenient.feed(msg(b"\x00"))
    with pytest.raises(FramingError, match="0x00"):
        lenient.read_message()  # tag byte 0 is never valid


def test_failure_is_sticky() -> None:
    reader = MessageReader()
    reader.feed(READY + header(b"D", 2))
    assert reader.read_message() == (b"Z", b"I")
    with pytest.raises(FramingError):
        reader.read_message()
    with pytest.raises(FramingError):
        reader.read_message()
    with pytest.raises(FramingError, match="failed earlier"):
        reader.feed(READY)
    with pytest.raises(FramingError):
        reader.read_rows(RawRowDecoder(), [])
    assert issubclass(FramingError, ProtocolError)


def test_header_split_across_chunks_is_validated() -> None:
    reader = MessageReader()
    reader.feed(b"Z\x00")
    assert reader.read_message() is None
    reader.feed(b"\x00\x75\x31")  # 30001
    with pytest.raises(FramingError):
        reader.read_message()


def test_bad_header_is_rejected_before_the_message_arrives() -> None:
    reader = MessageReader()
    reader.feed(header(b"D", 0x3FFFFFFF + 1))
    with pytest.raises(FramingError):
        reader.read_message()


# -- frontend direction --------------------------------------------------------------


def test_frontend_startup_sequence() -> None:
    reader = MessageReader(frontend=True)
    assert reader.frontend and reader.startup
    ssl = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
    startup = b"\x00\x00\x00\x10\x00\x03\x00\x00user\x00u\x00\x00"
    reader.feed(ssl)
    assert reader.read_message() == (b"", b"\x04\xd2\x16\x2f")
    assert reader.startup  # another startup packet follows an SSLRequest
    reader.feed(startup + msg(b"Q", b"SELECT 1\x00"))
    assert reader.read_message() == (b"", startup[4:])
    assert not reader.startup
    assert reader.read_message() == (b"Q", b"SELECT 1\x00")


def test_frontend_startup_split_at_every_offset() -> None:
    stream = (
        b"\x00\x00\x00\x08\x04\xd2\x16\x30"
        + b"\x00\x00\x00\x10\x00\x03\x00\x00user\x00u\x00\x00"
        + msg(b"P", b"\x00SELECT 1\x00\x00\x00")
        + msg(b"S")
    )
    reader = MessageReader(frontend=True)
    reader.feed(stream)
    expected = read_all(reader)
    assert len(expected) == 4
    for cut in range(len(stream) + 1):
        reader = MessageReader(frontend=True)
        reader.feed(stream[:cut])
        got = read_all(reader)
        reader.feed(stream[cut:])
        assert got + read_all(reader) == expected


@pytest.mark.parametrize("length", [0, 4, 7, 10001, -1, 0x7FFFFFFF])
def test_frontend_startup_packet_lengths(length: int) -> None:
    reader = MessageReader(frontend=True)
    reader.feed(struct.pack("!I", length & 0xFFFFFFFF) + b"\x00\x03\x00\x00")
    with pytest.raises(FramingError, match="startup packet length"):
        reader.read_message()


def test_frontend_limits() -> None:
    reader = MessageReader(frontend=True, startup=False)
    reader.feed(msg(b"Q", b"x" * 100000 + b"\x00") + header(b"S", 10001))
    assert take(reader)[0] == b"Q"
    with pytest.raises(FramingError, match="at most 10000"):
        reader.read_message()
    reader = MessageReader(frontend=True, startup=False)
    reader.feed(msg(b"Z", b"I"))  # a backend message type
    with pytest.raises(FramingError, match="unknown frontend message type"):
        reader.read_message()


def test_startup_mode_needs_frontend_direction() -> None:
    with pytest.raises(ValueError):
        MessageReader(startup=True)
    reader = MessageReader()
    with pytest.raises(ValueError):
        reader.startup = True
    frontend = MessageReader(frontend=True)
    frontend.startup = False
    frontend.feed(msg(b"X"))
    assert frontend.read_message() == (b"X", b"")
    with pytest.raises(RuntimeError):
        frontend.read_rows(RawRowDecoder(), [])


# -- read_rows and read_copy_data -------------------------------------------------


def test_read_rows_stops_at_the_first_other_message() -> None:
    reader = MessageReader()
    reader.feed(RESULT)
    assert take(reader)[0] == b"T"
    rows: list[object] = []
    assert reader.read_rows(RawRowDecoder(), rows) == 20
    assert rows[1] == (b"1", None)
    assert rows[3] == (b"3", b"xxx")
    assert reader.read_rows(RawRowDecoder(), rows) == 0
    assert reader.read_message() == (b"C", b"SELECT 20\x00")
    assert reader.read_message() == (b"Z", b"I")
    assert reader.read_rows(RawRowDecoder(), rows) == 0
    assert len(rows) == 20


def test_read_rows_with_every_split() -> None:
    rows_wire = b"".join(data_row(b"v" * i, None) for i in range(30)) + READY
    expected = [(b"v" * i, None) for i in range(30)]
    decoder = RawRowDecoder()
    for cut in range(len(rows_wire) + 1):
        reader = MessageReader()
        rows: list[object] = []
        reader.feed(rows_wire[:cut])
        reader.read_rows(decoder, rows)
        reader.feed(rows_wire[cut:])
        reader.read_rows(decoder, rows)
        assert rows == expected
        assert reader.read_message() == (b"Z", b"I")


def test_read_rows_one_byte_at_a_time() -> None:
    rows_wire = b"".join(data_row(b"abc", b"", None) for _ in range(5))
    reader = MessageReader()
    rows: list[object] = []
    for i in range(len(rows_wire)):
        reader.feed(rows_wire[i : i + 1])
        reader.read_rows(RawRowDecoder(), rows)
    assert rows == [(b"abc", b"", None)] * 5


def test_read_rows_decoder_error_consumes_that_row_only() -> None:
    bad = msg(b"D", b"\x00\x01\xff\xff\xff\xfe")  # field length -2
    reader = MessageReader()
    reader.feed(data_row(b"1") + bad + data_row(b"2") + READY)
    rows: list[object] = []
    with pytest.raises(ProtocolError, match="length -2"):
        reader.read_rows(RawRowDecoder(), rows)
    assert rows == [(b"1",)]
    assert reader.read_rows(RawRowDecoder(), rows) == 1
    assert rows == [(b"1",), (b"2",)]
    assert reader.read_message() == (b"Z", b"I")


def test_read_rows_validates_data_row_headers() -> None:
    reader = MessageReader(max_message_size=100)
    reader.feed(header(b"D", 101))
    with pytest.raises(FramingError):
        reader.read_rows(RawRowDecoder(), [])


def test_read_rows_argument_checks() -> None:
    reader = MessageReader()
    with pytest.raises(TypeError):
        reader.read_rows(None, [])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        reader.read_rows(RawRowDecoder(), None)  # type: ignore[arg-type]


def test_skip_rows() -> None:
    stream = RESULT[len(ROW_DESCRIPTION) :]
    for cut in range(0, len(stream) + 1, 5):
        reader = MessageReader()
        reader.feed(stream[:cut])
        skipped = reader.skip_rows()
        reader.feed(stream[cut:])
        skipped += reader.skip_rows()
        assert skipped == 20
        assert take(reader) == (b"C", b"SELECT 20\x00")
    reader = MessageReader()
    reader.feed(header(b"D", 3))
    with pytest.raises(FramingError):
        reader.skip_rows()
    with pytest.raises(RuntimeError):
        MessageReader(frontend=True).skip_rows()


def test_read_copy_data() -> None:
    stream = msg(b"d", b"a\n") + msg(b"d", b"b" * 5000) + msg(b"c") + msg(b"C", b"COPY 2\x00")
    for cut in range(0, len(stream) + 1, 7):
        reader = MessageReader()
        out: list[bytes] = []
        reader.feed(stream[:cut])
        reader.read_copy_data(out)
        reader.feed(stream[cut:])
        reader.read_copy_data(out)
        assert out == [b"a\n", b"b" * 5000]
        assert reader.read_message() == (b"c", b"")



def test_read_copy_data_into() -> None:
    stream = msg(b"d", b"a\n") + msg(b"d", b"b" * 5000) + msg(b"c") + msg(b"C", b"COPY 2\x00")
    for cut in range(0, len(stream) + 1, 7):
        reader = MessageReader()
        out = bytearray(b">")
        reader.feed(stream[:cut])
        taken = reader.read_copy_data_into(out)
        reader.feed(stream[cut:])
        taken += reader.read_copy_data_into(out)
        assert (taken, out) == (2, bytearray(b">a\n" + b"b" * 5000))
        assert reader.read_message() == (b"c", b"")
    with pytest.raises(TypeError):
        MessageReader().read_copy_data_into(None)  # type: ignore[arg-type]


def test_read_copy_data_into_stops_at_max_size() -> None:
    rows = [bytes([65 + i]) * 10 for i in range(10)]
    stream = b"".join(msg(b"d", row) for row in rows) + msg(b"c")
    for cut in (0, 7, 33, 60, len(stream)):
        reader = MessageReader()
        reader.feed(stream[:cut])
        reader.feed(stream[cut:])
        batches = []
        while True:
            out = bytearray()
            if not reader.read_copy_data_into(out, 25):
                break
            batches.append(bytes(out))
        # The message that crosses 25 bytes is taken whole.
        assert batches == [b"".join(rows[i:i + 3]) for i in range(0, 9, 3)] + [rows[9]]
        assert reader.read_message() == (b"c", b"")
    reader = MessageReader()
    reader.feed(stream)
    full = bytearray(b"x" * 25)
    assert reader.read_copy_data_into(full, 25) == 0   # already at the mark
    assert reader.read_copy_data_into(full, 0) == 10   # 0: no limit
    assert full == b"x" * 25 + b"".join(rows)
    reader = MessageReader()
    reader.feed(msg(b"d", b"z" * 100))
    big = bytearray()
    assert reader.read_copy_data_into(big, 10) == 1     # bigger than the mark
    assert big == b"z" * 100

# -- RawRowDecoder -----------------------------------------------------------------


def test_raw_row_decoder_matches_parse_data_row() -> None:
    reader = MessageReader()
    reader.feed(data_row(b"a", None, b""))
    rows: list[object] = []
    reader.read_rows(RawRowDecoder(), rows)
    assert rows == [(b"a", None, b"")]
    assert parse_data_row(data_row(b"a", None, b"")[5:]) == [b"a", None, b""]


# -- payload parsers -----------------------------------------------------------------


def test_parse_authentication() -> None:
    assert parse_authentication(b"\x00\x00\x00\x00") == (0, None)
    assert parse_authentication(b"\x00\x00\x00\x03") == (3, None)
    assert parse_authentication(b"\x00\x00\x00\x05salt") == (5, b"salt")
    assert parse_authentication(b"\x00\x00\x00\x0aA\x00B\x00\x00") == (10, ("A", "B"))
    assert parse_authentication(b"\x00\x00\x00\x0a\x00") == (10, ())
    assert parse_authentication(b"\x00\x00\x00\x0bdata") == (11, b"data")
    assert parse_authentication(b"\x00\x00\x00\x0c") == (12, b"")
    assert parse_authentication(memoryview(b"\x00\x00\x00\x08tok")) == (8, b"tok")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00\x00\x00",
        b"\x00\x00\x00\x00x",  # Ok with trailing bytes
        b"\x00\x00\x00\x05abc",  # 3-byte salt
        b"\x00\x00\x00\x05abcde",
        b"\x00\x00\x00\x0aSCRAM-SHA-256\x00",  # no list terminator
        b"\x00\x00\x00\x0aSCRAM\x00\x00x",  # trailing bytes
        b"\x00\x00\x00\x0a\xff\x00\x00",  # not UTF-8
        b"\x00\x00\x00\x06",  # SCM credentials: not in the protocol any more
        b"\x00\x00\x00\x63",
        b"\xff\xff\xff\xff",
    ],
)
def test_parse_authentication_rejects(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_authentication(payload)


@pytest.mark.parametrize(
    ("key_length", "ok_30", "ok_32"),
    [(0, False, False), (3, False, False), (4, True, True), (5, False, True),
     (32, False, True), (256, False, True), (257, False, False)],
)  # fmt: skip
def test_backend_key_data_lengths(key_length: int, ok_30: bool, ok_32: bool) -> None:
    payload = b"\x00\x00\x00\x2a" + b"k" * key_length
    for version, ok in ((tags.PROTOCOL_3_0, ok_30), (tags.PROTOCOL_3_2, ok_32)):
        if ok:
            assert parse_backend_key_data(payload, version) == (42, b"k" * key_length)
        else:
            with pytest.raises(ProtocolError, match="secret key"):
                parse_backend_key_data(payload, version)
    with pytest.raises(ProtocolError):
        parse_backend_key_data(b"\x00\x00")


def test_parse_command_complete() -> None:
    assert parse_command_complete(b"UPDATE 3\x00") == "UPDATE 3"
    for bad in (b"UPDATE 3", b"", b"a\x00b", b"\xff\x00"):
        with pytest.raises(ProtocolError):
            parse_command_complete(bad)


def test_parse_copy_response() -> None:
    assert parse_copy_response(b"\x01\x00\x02\x00\x01\x00\x01") == (1, (1, 1))
    assert parse_copy_response(b"\x00\x00\x00") == (0, ())
    for bad in (b"", b"\x02\x00\x00", b"\x00\x00\x02\x00\x00", b"\x00\x00\x01\x00\x02",
                b"\x00\x00\x00x"):  # fmt: skip
        with pytest.raises(ProtocolError):
            parse_copy_response(bad)


def test_parse_data_row() -> None:
    assert parse_data_row(b"\x00\x00") == []
    assert parse_data_row(b"\x00\x02\x00\x00\x00\x01a\xff\xff\xff\xff") == [b"a", None]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00",
        b"\x00\x01\xff\xff\xff\xfe",  # length -2
        b"\x00\x01\x80\x00\x00\x00",  # length -2**31
        b"\x00\x01\x00\x00\x00\x05abc",  # length past the end
        b"\x00\x03\x00\x00\x00\x00",  # 3 fields declared, bytes for 1
        b"\xff\xff" + b"\x00" * 16,  # 65,535 fields declared
        b"\x00\x01\x00\x00\x00\x00x",  # trailing byte
    ],
)
def test_parse_data_row_rejects(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_data_row(payload)
    reader = MessageReader()
    reader.feed(msg(b"D", payload))
    with pytest.raises(ProtocolError):
        reader.read_rows(RawRowDecoder(), [])


def test_parse_error_response_keeps_server_text() -> None:
    payload = b"SERROR\x00C22P02\x00M100% {0} %s \x1b[31m\xff\x00\x00"
    fields = parse_error_response(payload)
    assert fields == {"S": "ERROR", "C": "22P02", "M": "100% {0} %s \x1b[31m\ufffd"}
    assert parse_error_response(b"\x00") == {}
    for bad in (b"", b"SERROR\x00", b"SERROR", b"\x00x"):
        with pytest.raises(ProtocolError):
            parse_error_response(bad)


def test_parse_function_call_response() -> None:
    assert parse_function_call_response(b"\xff\xff\xff\xff") is None
    assert parse_function_call_response(b"\x00\x00\x00\x01z") == b"z"
    assert parse_function_call_response(b"\x00\x00\x00\x00") == b""
    for bad in (b"", b"\xff\xff\xff\xfb", b"\x00\x00\x00\x02z", b"\x00\x00\x00\x00z",
                b"\xff\xff\xff\xffz", b"\x80\x00\x00\x00"):  # fmt: skip
        with pytest.raises(ProtocolError):
            parse_function_call_response(bad)


def test_parse_negotiate_protocol_version() -> None:
    assert parse_negotiate_protocol_version(b"\x00\x03\x00\x00\x00\x00\x00\x00") == (196608, ())
    assert parse_negotiate_protocol_version(
        b"\x00\x03\x00\x00\x00\x00\x00\x02_pq_.a\x00_pq_.b\x00"
    ) == (196608, ("_pq_.a", "_pq_.b"))
    for bad in (b"", b"\x00\x03\x00\x00\x00\x00\x00\x01", b"\x00\x03\x00\x00\xff\xff\xff\xff",
                b"\x00\x03\x00\x00\x7f\xff\xff\xff", b"\x80\x00\x00\x00\x00\x00\x00\x00",
                b"\x00\x03\x00\x00\x00\x00\x00\x00x"):  # fmt: skip
        with pytest.raises(ProtocolError):
            parse_negotiate_protocol_version(bad)


def test_parse_notification_response() -> None:
    assert parse_notification_response(b"\x00\x00\x00\x07ch\x00\x00") == (7, "ch", "")
    for bad in (b"\x00\x00\x00\x07ch\x00", b"\x00\x00", b"\x00\x00\x00\x07c\xffh\x00\x00"):
        with pytest.raises(ProtocolError):
            parse_notification_response(bad)


def test_parse_parameter_description() -> None:
    assert parse_parameter_description(b"\x00\x00") == ()
    assert parse_parameter_description(b"\x00\x01\xff\xff\xff\xff") == (0xFFFFFFFF,)
    many = struct.pack("!H", 65535) + b"\x00\x00\x00\x17" * 65535
    assert len(parse_parameter_description(many)) == 65535
    for bad in (b"", b"\x00\x02\x00\x00\x00\x17", b"\x00\x01\x00\x00\x00\x17\x00"):
        with pytest.raises(ProtocolError):
            parse_parameter_description(bad)


def test_parse_parameter_status() -> None:
    assert parse_parameter_status(b"TimeZone\x00UTC\x00") == ("TimeZone", "UTC")
    for bad in (b"TimeZone\x00", b"a\x00b\x00c", b""):
        with pytest.raises(ProtocolError):
            parse_parameter_status(bad)


@pytest.mark.parametrize(("payload", "status"), [(b"I", "I"), (b"T", "T"), (b"E", "E")])
def test_parse_ready_for_query(payload: bytes, status: str) -> None:
    assert parse_ready_for_query(payload) == status


@pytest.mark.parametrize("payload", [b"", b"X", b"i", b"\x00", b"II"])
def test_parse_ready_for_query_rejects(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_ready_for_query(payload)


def test_parse_row_description() -> None:
    fields = parse_row_description(ROW_DESCRIPTION[5:])
    assert fields == [("id", 16384, 1, 23, 4, -1, 1)]
    assert parse_row_description(b"\x00\x00") == []


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00\x02" + ROW_DESCRIPTION[7:],  # 2 fields declared, 1 present
        b"\x27\x10" + b"\x00" * 100,  # 10,000 fields declared in 100 bytes
        b"\x00\x01id",  # name without NUL
        b"\x00\x01id\x00" + b"\x00" * 17,  # fixed part cut short
        b"\x00\x01i\xffd\x00" + b"\x00" * 18,  # name not UTF-8
        b"\x00\x01id\x00" + b"\x00" * 16 + b"\x00\x02",  # format code 2
        ROW_DESCRIPTION[5:] + b"x",
    ],
)
def test_parse_row_description_rejects(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_row_description(payload)


def test_parse_row_description_many_columns() -> None:
    body = struct.pack("!H", 10000) + (b"c\x00" + b"\x00" * 16 + b"\x00\x00") * 10000
    assert len(parse_row_description(body)) == 10000


def test_parse_empty() -> None:
    parse_empty(b"")
    with pytest.raises(ProtocolError, match="BindComplete"):
        parse_empty(b"x", "BindComplete")


# -- read_reply: the routine part of an extended-query reply ---------------------------

BIND_REPLY = (
    msg(b"1") + msg(b"2")
    + b"".join(data_row(str(i).encode()) for i in range(5))
    + msg(b"C", b"SELECT 5\x00")
    + READY
)


def test_read_reply_takes_a_whole_reply() -> None:
    reader = MessageReader()
    reader.feed(BIND_REPLY)
    reply = ExtendedReply(RawRowDecoder())
    assert reader.read_reply(reply) is True
    assert reply.rows == [(str(i).encode(),) for i in range(5)]
    assert reply.status == "SELECT 5"
    assert reply.transaction_status == "I"
    assert reply.decoder is None
    assert not reply.suspended
    assert reader.buffered == 0
    assert "rows=5" in repr(reply)


def test_read_reply_with_every_split() -> None:
    for cut in range(len(BIND_REPLY) + 1):
        reader = MessageReader()
        reply = ExtendedReply(RawRowDecoder())
        reader.feed(BIND_REPLY[:cut])
        done = reader.read_reply(reply)
        assert done is (cut == len(BIND_REPLY))
        reader.feed(BIND_REPLY[cut:])
        if not done:
            assert reader.read_reply(reply) is True
        assert reply.transaction_status == "I"
        assert len(reply.rows) == 5
        assert reply.status == "SELECT 5"


def test_read_reply_one_byte_at_a_time() -> None:
    reader = MessageReader()
    reply = ExtendedReply(RawRowDecoder())
    results = []
    for i in range(len(BIND_REPLY)):
        reader.feed(BIND_REPLY[i : i + 1])
        results.append(reader.read_reply(reply))
    assert results == [False] * (len(BIND_REPLY) - 1) + [True]
    assert len(reply.rows) == 5


def test_read_reply_stops_at_messages_for_the_caller() -> None:
    error = msg(b"E", b"SERROR\x00C22012\x00Mdivision by zero\x00\x00")
    notice = msg(b"N", b"SNOTICE\x00Mhi\x00\x00")
    stream = msg(b"2") + data_row(b"1") + notice + data_row(b"2") + error + READY
    reader = MessageReader()
    reader.feed(stream)
    reply = ExtendedReply(RawRowDecoder())
    assert reader.read_reply(reply) is False
    assert reply.rows == [(b"1",)]
    assert take(reader)[0] == b"N"
    assert reader.read_reply(reply) is False
    assert reply.rows == [(b"1",), (b"2",)]
    assert take(reader)[0] == b"E"
    assert reader.read_reply(reply) is True
    assert reply.status is None
    assert reply.transaction_status == "I"


def test_read_reply_leaves_rows_without_a_decoder_to_the_caller() -> None:
    reader = MessageReader()
    reader.feed(msg(b"2") + data_row(b"1") + READY)
    reply = ExtendedReply()
    assert reader.read_reply(reply) is False
    assert take(reader)[0] == b"D"
    assert reader.read_reply(reply) is True
    assert reply.rows == []


def test_read_reply_no_rows_after_command_complete_unless_multi() -> None:
    two = data_row(b"1") + msg(b"C", b"SELECT 1\x00")
    reader = MessageReader()
    reader.feed(two + two + READY)
    single = ExtendedReply(RawRowDecoder())
    assert reader.read_reply(single) is False  # the second DataRow is not expected
    assert single.rows == [(b"1",)]
    assert single.decoder is None

    reader = MessageReader()
    reader.feed(two + two + READY)
    multi = ExtendedReply(RawRowDecoder(), multi=True)
    assert reader.read_reply(multi) is True
    assert multi.rows == [(b"1",), (b"1",)]
    assert multi.status == "SELECT 1"


@pytest.mark.parametrize("tag", [b"s", b"n", b"I"])
def test_read_reply_end_of_rows_markers(tag: bytes) -> None:
    reader = MessageReader()
    reader.feed(msg(b"2") + msg(tag) + msg(b"Z", b"T"))
    reply = ExtendedReply(RawRowDecoder())
    assert reader.read_reply(reply) is True
    assert reply.suspended is (tag == b"s")
    assert reply.transaction_status == "T"


def test_read_reply_decoder_error_consumes_that_row_only() -> None:
    bad = msg(b"D", b"\x00\x01\xff\xff\xff\xfe")  # field length -2
    reader = MessageReader()
    reader.feed(data_row(b"1") + bad + data_row(b"2") + READY)
    reply = ExtendedReply(RawRowDecoder())
    with pytest.raises(ProtocolError, match="length -2"):
        reader.read_reply(reply)
    assert reply.rows == [(b"1",)]
    assert reader.read_reply(reply) is True
    assert reply.rows == [(b"1",), (b"2",)]


@pytest.mark.parametrize(
    ("stream", "error", "match"),
    [
        (msg(b"Z", b"X"), ProtocolError, "transaction status"),
        (msg(b"Z", b"II"), ProtocolError, "ReadyForQuery"),
        (msg(b"C", b"SELECT 1"), ProtocolError, "CommandComplete"),
        (header(b"2", 1 << 20), FramingError, None),
    ],
)
def test_read_reply_malformed_messages(
    stream: bytes, error: type[Exception], match: str | None
) -> None:
    reader = MessageReader()
    reader.feed(stream)
    with pytest.raises(error, match=match):
        reader.read_reply(ExtendedReply(RawRowDecoder()))


def test_read_reply_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError):
        MessageReader().read_reply(None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="frontend"):
        MessageReader(frontend=True).read_reply(ExtendedReply())
