"""Frontend message writers (pg_wire._writer): golden bytes, refusals, atomicity.

Golden bytes for every writer are in test_messages.py (the dataclasses
encode through these writers); here: the writers called directly, and
everything they must refuse with the buffer left exactly as it was.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from pg_codecs import ParameterCountError, ParameterEncodeError, WriteBuffer
from pg_wire import tags
from pg_wire._writer import (
    abort_message,
    end_bind,
    start_bind,
    write_bind,
    write_bind_execute,
    write_bind_params,
    write_cancel_request,
    write_close,
    write_copy_data,
    write_copy_done,
    write_copy_fail,
    write_copy_records,
    write_describe,
    write_execute,
    write_flush,
    write_function_call,
    write_gss_response,
    write_gssenc_request,
    write_parse,
    write_password_message,
    write_query,
    write_sasl_initial_response,
    write_sasl_response,
    write_ssl_request,
    write_startup_message,
    write_sync,
    write_terminate,
)

PREFIX = b"S\x00\x00\x00\x04"  # a Sync already in the buffer: it must survive errors


def fresh() -> WriteBuffer:
    buf = WriteBuffer()
    write_sync(buf)
    assert bytes(buf) == PREFIX
    return buf


def written(write: Callable[..., None], *args: Any) -> bytes:
    buf = fresh()
    write(buf, *args)
    return bytes(buf)[len(PREFIX) :]


def test_simple_messages() -> None:
    assert written(write_sync) == b"S\x00\x00\x00\x04"
    assert written(write_flush) == b"H\x00\x00\x00\x04"
    assert written(write_terminate) == b"X\x00\x00\x00\x04"
    assert written(write_copy_done) == b"c\x00\x00\x00\x04"
    assert written(write_ssl_request) == b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
    assert written(write_gssenc_request) == b"\x00\x00\x00\x08\x04\xd2\x16\x30"
    assert written(write_query, "SELECT 1") == b"Q\x00\x00\x00\x0dSELECT 1\x00"
    assert written(write_query, "é") == b"Q\x00\x00\x00\x07\xc3\xa9\x00"
    assert written(write_execute, "", 0) == b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00"
    assert written(write_describe, b"S", "s") == b"D\x00\x00\x00\x07Ss\x00"
    assert written(write_close, "P", "") == b"C\x00\x00\x00\x06P\x00"
    assert written(write_copy_data, memoryview(b"xy")) == b"d\x00\x00\x00\x06xy"
    assert written(write_copy_fail, "no") == b"f\x00\x00\x00\x07no\x00"
    assert written(write_password_message, b"md5abc") == b"p\x00\x00\x00\x0bmd5abc\x00"
    assert written(write_sasl_response, bytearray(b"c=x")) == b"p\x00\x00\x00\x07c=x"
    assert written(write_gss_response, b"") == b"p\x00\x00\x00\x04"


def test_startup_message() -> None:
    # 4 + 4 + "user\0u\0" 7 + "application_name\0a\0" 19 + 1 = 35
    assert written(write_startup_message, [("user", "u"), ("application_name", "a")]) == (
        b"\x00\x00\x00\x23\x00\x03\x00\x00user\x00u\x00application_name\x00a\x00\x00"
    )
    assert (
        written(write_startup_message, {"user": "u"}, tags.PROTOCOL_3_2)[4:8] == b"\x00\x03\x00\x02"
    )
    assert written(write_startup_message, {"user": "u", "options": ""}).endswith(
        b"options\x00\x00\x00"
    )


def test_cancel_request() -> None:
    assert written(write_cancel_request, -5, b"abcd") == (
        b"\x00\x00\x00\x10\x04\xd2\x16\x2e\xff\xff\xff\xfbabcd"
    )
    key = bytes(range(256))
    wire = written(write_cancel_request, 1, key)
    assert wire[:4] == (12 + 256).to_bytes(4, "big") and wire[12:] == key


def test_parse() -> None:
    wire = written(write_parse, "st", "SELECT $1, $2", [0, 0xFFFFFFFF])
    assert wire == (
        b"P\x00\x00\x00\x1fst\x00SELECT $1, $2\x00\x00\x02\x00\x00\x00\x00\xff\xff\xff\xff"
    )
    assert written(write_parse, "", "x", None) == written(write_parse, "", "x")
    many = written(write_parse, "", "x", [23] * 65535)
    assert many[8:10] == b"\xff\xff" and len(many) == 1 + 4 + 1 + 2 + 2 + 4 * 65535


def test_bind_four_ways_give_the_same_bytes() -> None:
    params = b"\x00\x01\x00\x01\x00\x02\x00\x00\x00\x04\x00\x00\x00\x2a\xff\xff\xff\xff"
    # 4 + "\0" 1 + "st\0" 3 + params 18 + result formats 4 = 30
    expected = b"B\x00\x00\x00\x1e\x00st\x00" + params + b"\x00\x01\x00\x01"
    assert written(write_bind, "", "st", params, [1]) == expected
    assert written(write_bind, "", "st", bytearray(params), (1,)) == expected

    # The parameter section encoded beforehand into a WriteBuffer of its own.
    section = WriteBuffer()
    write_bind_params(section, [1], [b"\x00\x00\x00\x2a", None])
    assert bytes(section) == params
    assert written(write_bind, "", "st", section, [1]) == expected

    # Encoded in place, between start_bind() and end_bind().
    buf = fresh()
    start_bind(buf, "", "st")
    write_bind_params(buf, [1], [b"\x00\x00\x00\x2a", None])
    end_bind(buf, [1])
    assert bytes(buf)[len(PREFIX) :] == expected


def test_bind_data_cannot_be_the_target_buffer() -> None:
    buf = fresh()
    write_bind_params(buf, [], [b"x" * 2000])
    before = bytes(buf)
    with pytest.raises(ValueError, match="bind_data"):
        write_bind(buf, "", "", buf)
    assert bytes(buf) == before


def test_bind_without_parameters() -> None:
    assert (
        written(write_bind, "p", "s", None, None)
        == b"B\x00\x00\x00\x0ep\x00s\x00\x00\x00\x00\x00\x00\x00"
    )


def test_function_call() -> None:
    assert written(write_function_call, 1234, [1], [b"\x00\x00\x00\x01"], 1) == (
        b"F\x00\x00\x00\x18\x00\x00\x04\xd2\x00\x01\x00\x01\x00\x01\x00\x00\x00\x04"
        b"\x00\x00\x00\x01\x00\x01"
    )


def test_sasl_initial_response() -> None:
    assert (
        written(write_sasl_initial_response, "M", None) == b"p\x00\x00\x00\x0aM\x00\xff\xff\xff\xff"
    )
    assert (
        written(write_sasl_initial_response, "M", b"") == b"p\x00\x00\x00\x0aM\x00\x00\x00\x00\x00"
    )


# -- refusals: nothing written ---------------------------------------------------------

NUL_CASES: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
    (write_query, ("SELECT 1\x00; DROP TABLE x",)),
    (write_parse, ("st\x00x", "SELECT 1")),
    (write_parse, ("st", "SELECT\x00 1")),
    (write_bind, ("p\x00", "", None)),
    (write_bind, ("", "s\x00", None)),
    (start_bind, ("\x00", "")),
    (write_describe, ("S", "a\x00b")),
    (write_close, ("P", "\x00")),
    (write_execute, ("p\x00", 0)),
    (write_copy_fail, ("reason\x00",)),
    (write_sasl_initial_response, ("SCRAM\x00", b"x")),
    (write_password_message, ("pass\x00word",)),
    (write_password_message, (b"pass\x00word",)),
    (write_startup_message, ({"user": "alice\x00user\x00admin"},)),
    (write_startup_message, ({"application_name": "x\x00user\x00admin", "user": "alice"},)),
    (write_startup_message, ({"user\x00": "alice"},)),
    (write_startup_message, ({"user": "alice", "options": "-c\x00x"},)),
]


@pytest.mark.parametrize(("write", "args"), NUL_CASES)
def test_nul_bytes_are_refused_with_nothing_written(
    write: Callable[..., None], args: tuple[Any, ...]
) -> None:
    buf = fresh()
    with pytest.raises(ValueError, match="NUL"):
        write(buf, *args)
    assert bytes(buf) == PREFIX
    write_sync(buf)  # and the buffer is still usable: no message left open
    assert bytes(buf) == PREFIX * 2


def test_password_is_never_echoed() -> None:
    for password in ("S3cr3t-Sentinel\x00", b"S3cr3t-Sentinel\x00"):
        with pytest.raises(ValueError) as info:
            write_password_message(fresh(), password)
        assert "S3cr3t" not in str(info.value)
    with pytest.raises(ValueError) as info:
        write_startup_message(fresh(), {"user": "u", "password": "S3cr3t\x00"})
    assert "S3cr3t" not in str(info.value)


BAD_CASES: list[tuple[Callable[..., None], tuple[Any, ...], type[Exception]]] = [
    (write_parse, ("", "x", [23] * 65536), ValueError),
    (write_parse, ("", "x", [-1]), OverflowError),
    (write_parse, ("", "x", [2**32]), OverflowError),
    (write_parse, ("", "x", ["23"]), TypeError),
    (write_bind, ("", "", b"\x00\x00"), ValueError),  # shorter than its two counts
    (write_bind, ("", "", None, [0] * 65536), ValueError),
    (write_bind, ("", "", None, [2]), ValueError),
    (write_bind, ("", "", None, [-1]), ValueError),
    (write_describe, ("X", "s"), ValueError),
    (write_describe, ("SP", "s"), ValueError),
    (write_close, (None, "s"), ValueError),
    (write_execute, ("", -1), ValueError),
    (write_cancel_request, (1, b"abc"), ValueError),
    (write_cancel_request, (1, b"k" * 257), ValueError),
    (write_cancel_request, (2**31, b"abcd"), OverflowError),
    (write_startup_message, ({"": "x"},), ValueError),
    (write_startup_message, ({"user": 1},), TypeError),
    (write_startup_message, ({"user": "u"}, 0x00020000), ValueError),
    (write_startup_message, ({"user": "u"}, 80877103), ValueError),
    (write_startup_message, ({"options": "x" * 10000},), ValueError),
    (write_query, (None,), TypeError),
    (write_query, (b"SELECT 1",), TypeError),
    (write_copy_data, (None,), TypeError),
    (write_copy_data, ("text",), TypeError),
    (write_copy_fail, ("x" * 10000,), ValueError),
    (write_password_message, ("x" * 70000,), ValueError),
    (write_sasl_response, (b"x" * 70000,), ValueError),
    (write_function_call, (1, [], [b"x"] * 65536), ValueError),
    (write_function_call, (1, [3], []), ValueError),
    (write_function_call, (1, [], [], 2), ValueError),
    (write_function_call, (-1, [], []), OverflowError),
]


@pytest.mark.parametrize(("write", "args", "error"), BAD_CASES)
def test_invalid_input_is_refused_with_nothing_written(
    write: Callable[..., None], args: tuple[Any, ...], error: type[Exception]
) -> None:
    buf = fresh()
    with pytest.raises(error):
        write(buf, *args)
    assert bytes(buf) == PREFIX
    write_sync(buf)
    assert bytes(buf) == PREFIX * 2


def test_none_buffer_is_a_type_error() -> None:
    cases: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
                        (write_sync, ()), (write_query, ("x",)), (start_bind, ("", "")),
                        (end_bind, ()), (abort_message, ()), (write_bind_params, ([], [])),
                        (write_copy_data, (b"x",))]  # fmt: skip
    for write, args in cases:
        with pytest.raises(TypeError):
            write(None, *args)


# -- size limits (RELIABILITY M6 / W8) ---------------------------------------------------


def test_messages_over_the_size_limit_are_refused_before_copying() -> None:
    buf = fresh()
    buf.max_message_size = 100
    cases: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (write_query, ("x" * 96,)),  # 4 + 96 + 1 = 101
        (write_parse, ("", "x" * 93)),  # 4 + 1 + 94 + 2 = 101
        (write_copy_data, (b"x" * 97,)),
        (write_bind, ("", "", b"\x00\x00\x00\x01" + b"x" * 100)),
        (write_sasl_initial_response, ("M", b"x" * 100)),
        (write_function_call, (1, [], [b"x" * 100])),
    ]
    write_query(buf, "x" * 95)  # 4 + 95 + 1 = 100: exactly at the limit
    mark = bytes(buf)
    for write, args in cases:
        with pytest.raises(ValueError, match=r"limit|exceeds"):
            write(buf, *args)
        assert bytes(buf) == mark


def test_default_limit_is_the_server_limit() -> None:
    assert WriteBuffer().max_message_size == tags.MAX_MESSAGE_SIZE


# -- Bind in three steps -----------------------------------------------------------------


def test_start_bind_leaves_the_message_open() -> None:
    buf = fresh()
    start_bind(buf, "p", "s")
    with pytest.raises(RuntimeError, match="still open"):
        write_sync(buf)
    with pytest.raises(RuntimeError):
        start_bind(buf, "p", "s")
    write_bind_params(buf, None, None)
    end_bind(buf, None)
    assert bytes(buf)[len(PREFIX) :] == b"B\x00\x00\x00\x0ep\x00s\x00\x00\x00\x00\x00\x00\x00"


def test_abort_message_drops_the_open_bind() -> None:
    buf = fresh()
    start_bind(buf, "p", "s")
    write_bind_params(buf, [1], [b"abc"])
    abort_message(buf)
    assert bytes(buf) == PREFIX
    abort_message(buf)  # nothing open: no-op
    write_sync(buf)
    assert bytes(buf) == PREFIX * 2


def test_end_bind_without_start_bind() -> None:
    buf = fresh()
    with pytest.raises(RuntimeError):
        end_bind(buf, [])
    assert bytes(buf) == PREFIX


def test_end_bind_failure_drops_the_whole_bind() -> None:
    buf = fresh()
    buf.max_message_size = 50
    start_bind(buf, "", "")
    write_bind_params(buf, [], [b"x" * 60])
    with pytest.raises(ValueError):
        end_bind(buf, [])
    assert bytes(buf) == PREFIX
    start_bind(buf, "", "")
    with pytest.raises(ValueError):
        end_bind(buf, [7])
    assert bytes(buf) == PREFIX
    write_sync(buf)


def test_write_bind_params_failure_rolls_back_only_itself() -> None:
    buf = fresh()
    start_bind(buf, "", "")
    opened = bytes(buf)
    with pytest.raises(TypeError):
        write_bind_params(buf, [], [b"ok", 123])  # type: ignore[list-item]
    assert bytes(buf) == opened
    with pytest.raises(ValueError):
        write_bind_params(buf, [], [b"x"] * 65536)
    assert bytes(buf) == opened
    write_bind_params(buf, [], [])
    end_bind(buf, [])
    assert bytes(buf)[len(PREFIX) :] == b"B\x00\x00\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00"


class _SectionWriter:
    """A duck-typed encoder: writes a fixed parameter section, or fails."""

    def __init__(self, values: list[bytes | None], fail_after: bool = False) -> None:
        self.values = values
        self.fail_after = fail_after
        self.calls: list[object] = []

    def write_params(self, buf: WriteBuffer, args: object) -> None:
        self.calls.append(args)
        write_bind_params(buf, [1], self.values)
        if self.fail_after:
            raise OverflowError("value out of range")


def test_bind_execute_is_bind_execute_and_sync() -> None:
    params = b"\x00\x01\x00\x01\x00\x01\x00\x00\x00\x04\x00\x00\x00\x2a"
    expected = (written(write_bind, "p", "st", params, [1])
                + written(write_execute, "p", 7) + written(write_sync))
    encoder = _SectionWriter([b"\x00\x00\x00\x2a"])
    assert written(write_bind_execute, "p", "st", encoder, (42,), [1], 7) == expected
    assert encoder.calls == [(42,)]
    without_sync = written(write_bind_execute, "p", "st", encoder, (42,), [1], 7, False)
    assert without_sync == expected[: -len(PREFIX)]


def test_bind_execute_with_a_pg_codecs_encoder() -> None:
    from pg_codecs import CodecRegistry, oids

    encoder = CodecRegistry().plan_param_encoder([oids.INT4OID, oids.TEXTOID])
    section = encoder.encode((42, None))
    expected = (written(write_bind, "", "s1", section, [1])
                + written(write_execute, "", 0) + written(write_sync))
    assert written(write_bind_execute, "", "s1", encoder, (42, None), [1]) == expected


@pytest.mark.parametrize(
    ("portal", "statement", "encoder", "max_rows", "error"),
    [
        ("", "", _SectionWriter([b"x"], fail_after=True), 0, OverflowError),
        ("p\x00", "", _SectionWriter([]), 0, ValueError),
        ("", "s\x00", _SectionWriter([]), 0, ValueError),
        ("", "", _SectionWriter([]), -1, ValueError),
        ("", "", object(), 0, AttributeError),
    ],
)
def test_bind_execute_failure_leaves_the_buffer_as_it_was(
    portal: str, statement: str, encoder: object, max_rows: int, error: type[Exception]
) -> None:
    buf = fresh()
    with pytest.raises(error):
        write_bind_execute(buf, portal, statement, encoder, (), None, max_rows)
    assert bytes(buf) == PREFIX
    write_sync(buf)  # no message left open
    assert bytes(buf) == PREFIX * 2


# -- write_copy_records: binary COPY tuples encoded inside a CopyData ---------------------


def _int_text_encoder() -> Any:
    from pg_codecs import CodecRegistry, oids

    return CodecRegistry().plan_param_encoder([oids.INT4OID, oids.TEXTOID])


def _tuple(i: int, t: str | None) -> bytes:
    # Binary COPY tuple: int16 field count, then int32 length + bytes per field.
    text = b"\xff\xff\xff\xff" if t is None else len(t).to_bytes(4, "big") + t.encode()
    return b"\x00\x02" + b"\x00\x00\x00\x04" + i.to_bytes(4, "big") + text


def test_copy_records_is_one_copy_data_of_tuples() -> None:
    rows = [(1, "a"), (2, None), (3, "ccc")]
    payload = b"".join(_tuple(i, t) for i, t in rows)
    it = iter(rows)
    buf = fresh()
    assert write_copy_records(buf, _int_text_encoder(), it, 1 << 20) is True
    assert bytes(buf)[len(PREFIX):] == written(write_copy_data, payload)
    assert next(it, None) is None


def test_copy_records_stops_at_max_bytes_and_goes_on_later() -> None:
    # The limit is on the payload, not on what the buffer held before.
    rows = [(i, "x" * 10) for i in range(10)]
    one = len(_tuple(0, "x" * 10))
    it = iter(rows)
    encoder = _int_text_encoder()
    buf = fresh()
    assert write_copy_records(buf, encoder, it, 2 * one) is False
    first = bytes(buf)[len(PREFIX):]
    assert first == written(write_copy_data, _tuple(0, "x" * 10) + _tuple(1, "x" * 10))
    assert write_copy_records(buf, encoder, it, 1 << 20) is True
    rest = bytes(buf)[len(PREFIX) + len(first):]
    assert rest == written(write_copy_data, b"".join(_tuple(i, t) for i, t in rows[2:]))
    # At least one tuple per message, however small the limit; any large
    # limit means all of them.
    assert written(write_copy_records, encoder, iter(rows), -1) == written(
        write_copy_data, _tuple(0, "x" * 10))
    assert written(write_copy_records, encoder, iter(rows), sys.maxsize) == written(
        write_copy_data, b"".join(_tuple(i, t) for i, t in rows))


def test_copy_records_writes_nothing_for_no_records() -> None:
    assert written(write_copy_records, _int_text_encoder(), iter(()), 100) == b""


class _FailingRows:
    """A duck-typed encoder: writes tuples with a real encoder, then fails."""

    def write_copy_records(self, buf: WriteBuffer, records: Any, max_bytes: int) -> bool:
        _int_text_encoder().write_copy_records(buf, records, max_bytes)
        raise OverflowError("value out of range")


@pytest.mark.parametrize(
    ("encoder", "records", "error"),
    [
        (_int_text_encoder(), iter([(1, "a"), ("x", "b")]), ParameterEncodeError),
        (_int_text_encoder(), iter([(1, "a"), (2,)]), ParameterCountError),
        (_FailingRows(), iter([(1, "a")]), OverflowError),
        (object(), iter([(1, "a")]), AttributeError),
    ],
    ids=["bad-value", "wrong-count", "duck-typed", "no-method"],
)
def test_copy_records_failure_leaves_the_buffer_as_it_was(
    encoder: object, records: Any, error: type[Exception]
) -> None:
    buf = fresh()
    with pytest.raises(error):
        write_copy_records(buf, encoder, records, 1 << 20)
    assert bytes(buf) == PREFIX
    write_sync(buf)  # no message left open
    assert bytes(buf) == PREFIX * 2


def test_copy_records_over_the_message_limit_is_refused() -> None:
    buf = fresh()
    buf.max_message_size = 64
    with pytest.raises(ValueError, match="exceeds the limit"):
        write_copy_records(buf, _int_text_encoder(), iter([(1, "y" * 100)]), 1 << 20)
    assert bytes(buf) == PREFIX
