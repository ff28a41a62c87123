"""The basic scalar codecs (_basic.pyx): golden bytes, edge values, errors.

Golden bytes are what PostgreSQL 18's *send functions return (int4send,
textsend, ...); Python values are what asyncpg 0.32 returns.
"""

from __future__ import annotations

import decimal
import math
import struct

import pytest

from pg_codecs import (
    CodecRegistry,
    DecodeError,
    ParameterEncodeError,
    UnsupportedCodecError,
    WriteBuffer,
)
from pg_codecs import oids as o

reg = CodecRegistry()


def enc(oid, value, fmt=None):
    return reg.encode(oid, value, fmt)


def dec(oid, data, fmt=None):
    return reg.decode(oid, data, fmt)


def roundtrip(oid, value, fmt=None):
    return dec(oid, enc(oid, value, fmt), fmt)


GOLDEN = [
    (o.BOOLOID, True, "01"),
    (o.BOOLOID, False, "00"),
    (o.INT2OID, -1, "ffff"),
    (o.INT2OID, 32767, "7fff"),
    (o.INT2OID, -32768, "8000"),
    (o.INT4OID, 1, "00000001"),
    (o.INT4OID, -2147483648, "80000000"),
    (o.INT4OID, 2147483647, "7fffffff"),
    (o.INT8OID, -9223372036854775808, "8000000000000000"),
    (o.INT8OID, 9223372036854775807, "7fffffffffffffff"),
    (o.OIDOID, 4294967295, "ffffffff"),
    (o.XIDOID, 23, "00000017"),
    (o.CIDOID, 0, "00000000"),
    (o.FLOAT4OID, -math.inf, "ff800000"),
    (o.FLOAT8OID, -0.0, "8000000000000000"),
    (o.FLOAT8OID, 1.5, "3ff8000000000000"),
    (o.TEXTOID, "héllo", "68c3a96c6c6f"),
    (o.TEXTOID, "", ""),
    (o.VARCHAROID, "a", "61"),
    (o.BPCHAROID, "ab ", "616220"),
    (o.NAMEOID, "pg_class", "70675f636c617373"),
    (o.XMLOID, "<a/>", "3c612f3e"),
    (o.CSTRINGOID, "x", "78"),
    (o.BYTEAOID, b"\x00\xff", "00ff"),
    (o.CHAROID, b"a", "61"),
    (o.VOIDOID, None, ""),
]


@pytest.mark.parametrize(("oid", "value", "hexbytes"), GOLDEN)
def test_golden(oid, value, hexbytes):
    data = bytes.fromhex(hexbytes)
    if oid != o.VOIDOID:
        assert enc(oid, value) == data
    assert dec(oid, data) == value
    if isinstance(value, float):
        assert math.copysign(1, dec(oid, data)) == math.copysign(1, value)


def test_float4_values_are_widened_like_asyncpg():
    assert (
        dec(o.FLOAT4OID, bytes.fromhex("3dcccccd"))
        == struct.unpack("!f", bytes.fromhex("3dcccccd"))[0]
    )
    assert math.isnan(dec(o.FLOAT4OID, bytes.fromhex("7fc00000")))
    assert math.isnan(roundtrip(o.FLOAT8OID, math.nan))
    assert roundtrip(o.FLOAT4OID, math.inf) == math.inf


@pytest.mark.parametrize(
    ("oid", "value", "expected"),
    [
        (o.INT4OID, True, 1),  # asyncpg accepts bool for integers
        (o.INT4OID, 1.9, 1),  # ... and anything with __int__, truncating
        (o.INT8OID, decimal.Decimal("12.7"), 12),
        (o.INT2OID, False, 0),
        (o.FLOAT8OID, 3, 3.0),
        (o.FLOAT8OID, True, 1.0),
        (o.FLOAT4OID, decimal.Decimal("0.5"), 0.5),
        (o.OIDOID, 7, 7),
        (o.BYTEAOID, bytearray(b"ab"), b"ab"),
        (o.BYTEAOID, memoryview(b"abc")[1:], b"bc"),
    ],
)
def test_accepted_python_types(oid, value, expected):
    assert roundtrip(oid, value) == expected


def test_int_subclass_and_index():
    class MyInt(int):
        pass

    class Indexable:
        def __index__(self):
            return 42

    assert roundtrip(o.INT4OID, MyInt(5)) == 5
    assert roundtrip(o.INT8OID, Indexable()) == 42


@pytest.mark.parametrize(
    ("oid", "value", "exc", "match"),
    [
        (o.INT2OID, 32768, OverflowError, "value out of int16 range"),
        (o.INT2OID, -32769, OverflowError, "value out of int16 range"),
        (o.INT4OID, 2**31, OverflowError, "value out of int32 range"),
        (o.INT4OID, -(2**31) - 1, OverflowError, "value out of int32 range"),
        (o.INT8OID, 2**63, OverflowError, "value out of int64 range"),
        (o.INT8OID, 2**200, OverflowError, "value out of int64 range"),
        (o.INT4OID, math.inf, OverflowError, "value out of int32 range"),
        (o.INT4OID, math.nan, ValueError, "NaN"),
        (o.OIDOID, -1, OverflowError, "value out of uint32 range"),
        (o.OIDOID, 2**32, OverflowError, "value out of uint32 range"),
        (o.INT4OID, "1", TypeError, "expected an integer for int4, got str"),
        (o.INT8OID, b"1", TypeError, "expected an integer for int8, got bytes"),
        (o.INT2OID, None.__class__, TypeError, "expected an integer for int2, got type"),
        (o.BOOLOID, 1, TypeError, r"a boolean is required for bool \(got type int\)"),
        (o.FLOAT4OID, 1e300, ValueError, "value out of float32 range"),
        (o.FLOAT8OID, "1.5", TypeError, "expected a float for float8, got str"),
        (o.FLOAT4OID, object(), TypeError, "expected a float for float4, got object"),
        (o.TEXTOID, 1, TypeError, "expected str, got int"),
        (o.VARCHAROID, b"x", TypeError, "expected str, got bytes"),
        (o.BYTEAOID, "abc", TypeError, "expected a bytes-like object, got str"),
        (o.BYTEAOID, 5, TypeError, "expected a bytes-like object, got int"),
        (o.TEXTOID, "\ud800", UnicodeEncodeError, "surrogate"),
    ],
)
def test_encode_errors(oid, value, exc, match):
    with pytest.raises(exc, match=match):
        enc(oid, value)


@pytest.mark.parametrize(
    ("oid", "data"),
    [
        (o.BOOLOID, b""),
        (o.BOOLOID, b"\x02"),
        (o.BOOLOID, b"\x01\x00"),
        (o.INT2OID, b"\x00"),
        (o.INT4OID, b"\x00\x00\x01"),
        (o.INT4OID, b"\x00\x00\x00\x01\x00"),
        (o.INT8OID, b"\x00" * 7),
        (o.FLOAT4OID, b"\x00" * 5),
        (o.FLOAT8OID, b""),
        (o.OIDOID, b"\x00"),
        (o.TEXTOID, b"\xff"),
        (o.TEXTOID, b"a\xc3"),
        (o.NAMEOID, b"\xed\xa0\x80"),  # an encoded surrogate is not UTF-8
        (o.VOIDOID, b"\x00"),
    ],
)
def test_malformed_input(oid, data):
    with pytest.raises(DecodeError):
        dec(oid, data)


def test_text_format_codecs():
    for oid in (o.TEXTOID, o.VARCHAROID, o.BPCHAROID, o.NAMEOID, o.XMLOID):
        assert reg.get_codec(oid, "text") is not None
        assert roundtrip(oid, "x y", "text") == "x y"
    # reg* types travel as text so that names come back, as in asyncpg.
    for oid in (o.REGCLASSOID, o.REGTYPEOID, o.REGPROCOID, o.REGROLEOID, o.REGNAMESPACEOID):
        codec = reg.get_codec(oid)
        assert codec.format == 0 and codec.format_name == "text"
        assert dec(oid, b"pg_class") == "pg_class"
    assert reg.get_codec(o.UNKNOWNOID).format == 0
    assert dec(o.UNKNOWNOID, b"x") == "x"


def test_nul_in_text_is_sent_as_is():
    # The server rejects it with a clear error; the codec does not second-guess.
    assert enc(o.TEXTOID, "a\x00b") == b"a\x00b"


def test_output_only_types():
    codec = reg.get_codec(o.PG_NODE_TREEOID)
    assert codec.has_decoder() and not codec.has_encoder()
    assert dec(o.PG_NODE_TREEOID, b"{QUERY}") == "{QUERY}"
    with pytest.raises(UnsupportedCodecError, match="no encoder for type pg_node_tree"):
        reg.plan_param_encoder([o.PG_NODE_TREEOID])


def test_failed_encode_leaves_nothing_behind():
    buf = WriteBuffer()
    enc_plan = reg.plan_param_encoder([o.INT4OID, o.TEXTOID, o.INT2OID])
    enc_plan.write_params(buf, [1, "ok", 5])
    good = bytes(buf)
    for bad in ([1, "ok", 2**20], [1, 2, 3], ["x", "ok", 1]):
        with pytest.raises(ParameterEncodeError):
            enc_plan.write_params(buf, bad)
        assert bytes(buf) == good


def test_large_values():
    big = "x" * 1_000_000
    assert roundtrip(o.TEXTOID, big) == big
    blob = bytes(range(256)) * 4096
    assert roundtrip(o.BYTEAOID, blob) == blob
