"""numeric <-> decimal.Decimal (pg_codecs._numeric).

Golden bytes are written from the numeric_send format: int16 ndigits, int16
weight, uint16 sign, uint16 dscale, then ndigits base-10000 digits.
"""

from __future__ import annotations

import random
import struct
import tracemalloc
from decimal import Decimal

import pytest

from pg_codecs import _numeric
from pg_codecs.errors import DecodeError


def wire(ndigits: int, weight: int, sign: int, dscale: int, *digits: int) -> bytes:
    return struct.pack(">hhHH", ndigits, weight, sign, dscale) + struct.pack(
        f">{len(digits)}H", *digits
    )


def enc(value: object) -> bytes:
    return _numeric._encode("numeric", value)


def dec(data: bytes) -> Decimal:
    return _numeric._decode("numeric", data)


def prefixed(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


# value, canonical wire form (what the server itself sends)
GOLDEN = [
    ("12.340", wire(2, 0, 0, 3, 12, 3400)),
    ("0", wire(0, 0, 0, 0)),
    ("0.00", wire(0, 0, 0, 2)),
    ("-1.5", wire(2, 0, 0x4000, 1, 1, 5000)),
    ("1", wire(1, 0, 0, 0, 1)),
    ("9999", wire(1, 0, 0, 0, 9999)),
    ("12345", wire(2, 1, 0, 0, 1, 2345)),
    ("0.0001", wire(1, -1, 0, 4, 1)),
    ("0.00001", wire(1, -2, 0, 5, 1000)),
    ("123456789.000000001", wire(6, 2, 0, 9, 1, 2345, 6789, 0, 0, 1000)),
    ("-0.5", wire(1, -1, 0x4000, 1, 5000)),
    ("1E+20", wire(1, 5, 0, 0, 1)),
    ("12345678901234567890", wire(5, 4, 0, 0, 1234, 5678, 9012, 3456, 7890)),
]


@pytest.mark.parametrize(("text", "body"), GOLDEN)
def test_golden_encode(text: str, body: bytes) -> None:
    assert enc(Decimal(text)) == prefixed(body)


@pytest.mark.parametrize(("text", "body"), GOLDEN)
def test_golden_decode(text: str, body: bytes) -> None:
    got = dec(body)
    assert got == Decimal(text)


def test_special_values() -> None:
    assert enc(Decimal("NaN")) == prefixed(wire(0, 0, 0xC000, 0))
    assert enc(Decimal("-NaN")) == prefixed(wire(0, 0, 0xC000, 0))
    assert enc(Decimal("sNaN")) == prefixed(wire(0, 0, 0xC000, 0))
    assert enc(Decimal("Infinity")) == prefixed(wire(0, 0, 0xD000, 0))
    assert enc(Decimal("-Infinity")) == prefixed(wire(0, 0, 0xF000, 0))
    assert dec(wire(0, 0, 0xC000, 0)).is_nan()
    assert dec(wire(0, 0, 0xD000, 0)) == Decimal("Infinity")
    assert dec(wire(0, 0, 0xF000, 0)) == Decimal("-Infinity")


def test_display_scale_is_kept() -> None:
    # Trailing zeros survive: the exponent of the result is -dscale.
    assert str(dec(wire(2, 0, 0, 3, 12, 3400))) == "12.340"
    assert str(dec(wire(1, 1, 0, 2, 1))) == "10000.00"
    assert str(dec(wire(0, 0, 0, 2))) == "0.00"
    assert str(dec(wire(1, -1, 0, 2, 100))) == "0.01"


def test_dscale_zero_keeps_asyncpg_exponent() -> None:
    # With dscale 0 asyncpg's binary decoder keeps the exponent of the last
    # base-10000 digit: the server sends 10000 as one digit of weight 1.
    assert str(dec(wire(1, 1, 0, 0, 1))) == "1E+4"
    assert str(dec(wire(1, 5, 0, 0, 1))) == "1E+20"
    assert str(dec(wire(2, 1, 0, 0, 1, 2000))) == "12000"
    assert str(dec(wire(1, 0, 0, 0, 100))) == "100"


def test_zero_forms() -> None:
    # The server has no negative zero: -0 goes out as 0, and a negative sign
    # on zero digits coming in is ignored (as asyncpg does).
    assert enc(Decimal("-0")) == prefixed(wire(0, 0, 0, 0))
    assert enc(Decimal("-0.000")) == prefixed(wire(0, 0, 0, 3))
    assert enc(Decimal("0E+5")) == prefixed(wire(0, 0, 0, 0))
    assert str(dec(wire(0, 0, 0x4000, 2))) == "0.00"


def test_non_canonical_input_is_accepted() -> None:
    # Leading and trailing zero digits (as asyncpg itself sends); with dscale
    # 0 the result keeps the exponent of the last digit, like asyncpg.
    assert str(dec(wire(3, 1, 0, 0, 0, 1, 0))) == "1.0000"
    assert dec(wire(2, 0, 0, 0, 1, 5000)) == Decimal("1.5")


def test_accepted_python_types() -> None:
    assert enc(12345678901234567890) == prefixed(wire(5, 4, 0, 0, 1234, 5678, 9012, 3456, 7890))
    assert enc(-7) == prefixed(wire(1, 0, 0x4000, 0, 7))
    assert enc(0.5) == prefixed(wire(1, -1, 0, 1, 5000))
    assert enc("1.50") == prefixed(wire(2, 0, 0, 2, 1, 5000))
    assert enc(True) == prefixed(wire(1, 0, 0, 0, 1))

    class MyDecimal(Decimal):
        def __str__(self) -> str:
            return "garbage"

    assert enc(MyDecimal("2.5")) == prefixed(wire(2, 0, 0, 1, 2, 5000))


def test_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"numeric.*bytes"):
        enc(b"1")
    with pytest.raises(TypeError, match="numeric"):
        enc(object())


def test_invalid_string() -> None:
    with pytest.raises(ValueError, match="numeric"):
        enc("twelve")


def test_range_limits() -> None:
    # 16383 digits after the point is the server's maximum display scale.
    body = enc(Decimal("1E-16383"))[4:]
    assert struct.unpack(">hhHH", body[:8]) == (1, -4096, 0, 16383)
    assert dec(body) == Decimal("1E-16383")
    with pytest.raises(ValueError, match="after the decimal point"):
        enc(Decimal("1E-16384"))
    # weight is an int16: 10000**32767 is the largest leading digit.
    body = enc(Decimal("9E+131071"))[4:]
    assert struct.unpack(">hhHH", body[:8]) == (1, 32767, 0, 0)
    assert dec(body) == Decimal("9E+131071")
    with pytest.raises(ValueError, match="too large"):
        enc(Decimal("1E+131072"))
    with pytest.raises(ValueError, match="too large"):
        enc(Decimal("1E+999999999999999"))


def test_huge_values_round_trip() -> None:
    big = Decimal("9" * 1000 + "." + "1" * 1000)
    assert dec(enc(big)[4:]) == big
    assert str(dec(enc(big)[4:])) == str(big)


def test_round_trip_random() -> None:
    rnd = random.Random(1700)
    for _ in range(3000):
        digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 40)))
        value = Decimal(f"{rnd.choice('-+')}{digits}E{rnd.randint(-60, 60)}")
        got = dec(enc(value)[4:])
        assert got == value
        if value.as_tuple().exponent < 0:  # type: ignore[operator]
            # The display scale carries the exact digits (zero has no sign).
            assert str(got) == str(abs(value) if value.is_zero() else value)


# -- malformed input -------------------------------------------------------------

@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01\x00\x00\x00",                          # header cut short
        wire(2, 0, 0, 0, 1),                             # ndigits says 2, one digit present
        wire(1, 0, 0, 0, 1, 2),                          # ndigits says 1, two present
        wire(1, 0, 0, 0) + b"\x00",                      # half a digit
        wire(0x7FFF, 0, 0, 0, 1),                        # huge ndigits, few bytes
        wire(-1, 0, 0, 0),                               # 65535 as uint16, no bytes
        wire(1, 0, 0x1234, 0, 1),                        # unknown sign
        wire(1, 0, 0, 0, 10000),                         # digit out of base-10000 range
        wire(1, 0, 0, 0x4000, 1),                        # dscale beyond the server's maximum
        # Digits below the display scale are cut (asyncpg's rule); a scale
        # that would cut more than every digit means the header lies.
        wire(1, -5, 0, 1, 1),
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        dec(data)


def test_lying_digit_count_is_cheap() -> None:
    # K2: a count the bytes cannot back is refused before any work.
    data = wire(10000, 0, 0, 0, 1, 2, 3)
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            dec(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_fuzz_only_decode_error() -> None:
    rnd = random.Random(7)
    seeds = [body for _, body in GOLDEN]
    for _ in range(20000):
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 4)):
            op = rnd.random()
            if op < 0.5 and data:
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            elif op < 0.75 and data:
                del data[rnd.randrange(len(data)) :]
            else:
                data += bytes([rnd.randrange(256)])
        try:
            result = dec(bytes(data))
        except DecodeError:
            continue
        assert isinstance(result, Decimal)
