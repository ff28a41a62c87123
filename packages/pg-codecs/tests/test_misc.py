"""uuid, json/jsonb/jsonpath, bit/varbit, pg_lsn, xid8, tid, snapshots, hstore
and the text-format types (pg_codecs._misc)."""

from __future__ import annotations

import gc
import pickle
import random
import struct
import tracemalloc
import uuid
import weakref

import pytest

import pg_codecs
from pg_codecs import _misc
from pg_codecs import oids as o
from pg_codecs.errors import DecodeError
from pg_codecs.types import BitString


def enc(typename: str, value: object) -> bytes:
    return _misc._encode(typename, value)


def dec(typename: str, data: bytes) -> object:
    return _misc._decode(typename, data)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def prefixed(body: bytes) -> bytes:
    return i32(len(body)) + body


# -- uuid ----------------------------------------------------------------------

U = uuid.UUID("12345678-9abc-def0-1234-56789abcdef0")
U_BYTES = bytes.fromhex("123456789abcdef0123456789abcdef0")


def test_uuid_golden() -> None:
    assert enc("uuid", U) == prefixed(U_BYTES)
    got = dec("uuid", U_BYTES)
    assert type(got) is uuid.UUID
    assert got == U
    assert hash(got) == hash(U)
    assert str(got) == str(U)
    assert got.is_safe is uuid.SafeUUID.unknown  # type: ignore[attr-defined]
    assert got.version == U.version  # type: ignore[attr-defined]


def test_uuid_decoded_object_behaves() -> None:
    got = dec("uuid", U_BYTES)
    assert pickle.loads(pickle.dumps(got)) == U
    assert weakref.ref(got)() is got
    with pytest.raises(TypeError):
        got.int = 5  # type: ignore[attr-defined]
    assert dec("uuid", bytes(16)) == uuid.UUID(int=0)
    assert dec("uuid", b"\xff" * 16) == uuid.UUID(int=2**128 - 1)


def test_decoded_uuids_stay_out_of_the_collector() -> None:
    # A decoded UUID holds an int and an enum member and refuses assignment:
    # untracked, like a tuple of atomic values, and so are rows of them.
    got = dec("uuid", U_BYTES)
    assert not gc.is_tracked(got) and gc.is_tracked(U)
    reg = pg_codecs.CodecRegistry()
    dec_row = reg.plan_row_decoder([o.UUIDOID, o.INT4OID], ["id", "n"], pg_codecs.Record)
    row = dec_row.decode(struct.pack("!hi", 2, 16) + U_BYTES + struct.pack("!ii", 4, 7))
    assert row == (U, 7) and not gc.is_tracked(row)
    # A weak reference to one, and a cycle through the weakref's callback,
    # still work and are collected.
    ref = weakref.ref(got, lambda r: None)
    holder = [got, ref]
    holder.append(holder)
    del holder, ref
    gc.collect()
    assert got == U


@pytest.mark.parametrize(
    "text",
    [
        "12345678-9abc-def0-1234-56789abcdef0",
        "123456789ABCDEF0123456789ABCDEF0",
        "1234-5678-9abc-def0123456789abcdef0",        # hyphens anywhere (asyncpg's rule)
    ],
)
def test_uuid_from_str(text: str) -> None:
    assert enc("uuid", text) == prefixed(U_BYTES)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1234",
        "1234-5678-9abc-def0-1234-5678-9abc-def0",    # too long with the hyphens
        "12345678-9abc-def0-1234-56789abcdef",
        "12345678-9abc-def0-1234-56789abcdefg",
        "123456789abcdef0123456789abcdef012",
        "{12345678-9abc-def0-1234-56789abcdef0}",
        "12345678-9abc-def0-1234-56789abcdé0",
    ],
)
def test_uuid_bad_str(text: str) -> None:
    with pytest.raises(ValueError, match="UUID"):
        enc("uuid", text)


def test_uuid_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"uuid.*bytes"):
        enc("uuid", U_BYTES)
    with pytest.raises(TypeError, match=r"uuid.*int"):
        enc("uuid", 5)


def test_uuid_subclass() -> None:
    class MyUUID(uuid.UUID):
        pass

    assert enc("uuid", MyUUID(str(U))) == prefixed(U_BYTES)


@pytest.mark.parametrize("n", [0, 15, 17])
def test_uuid_malformed(n: int) -> None:
    with pytest.raises(DecodeError, match="16 bytes"):
        dec("uuid", bytes(n))


def test_uuid_random_round_trip() -> None:
    rnd = random.Random(2950)
    for _ in range(1000):
        u = uuid.UUID(int=rnd.getrandbits(128))
        assert dec("uuid", enc("uuid", u)[4:]) == u
        assert enc("uuid", str(u)) == prefixed(u.bytes)


# -- json, jsonb, jsonpath -------------------------------------------------------

DOC = '{"a": [1, 2.5, null], "ü": "\U0001f600"}'


def test_json() -> None:
    assert enc("json", DOC) == prefixed(DOC.encode())
    assert dec("json", DOC.encode()) == DOC
    assert dec("json", b"") == ""


def test_jsonb_version_byte() -> None:
    assert enc("jsonb", DOC) == prefixed(b"\x01" + DOC.encode())
    assert dec("jsonb", b"\x01" + DOC.encode()) == DOC
    with pytest.raises(DecodeError, match="version 2"):
        dec("jsonb", b"\x02{}")
    with pytest.raises(DecodeError, match="version"):
        dec("jsonb", b"")


def test_jsonpath_version_byte() -> None:
    assert enc("jsonpath", "$.a[*]") == prefixed(b"\x01$.a[*]")
    assert dec("jsonpath", b"\x01$.a[*]") == "$.a[*]"
    with pytest.raises(DecodeError):
        dec("jsonpath", b"\x00$")


@pytest.mark.parametrize("typename", ["json", "jsonb", "jsonpath"])
def test_json_wrong_type(typename: str) -> None:
    # Like asyncpg: objects need set_type_codec(encoder=json.dumps).
    with pytest.raises(TypeError, match=f"{typename}.*dict"):
        enc(typename, {"a": 1})


@pytest.mark.parametrize("typename", ["json", "jsonb", "jsonpath"])
def test_json_invalid_utf8(typename: str) -> None:
    prefix = b"" if typename == "json" else b"\x01"
    with pytest.raises(DecodeError, match="UTF-8"):
        dec(typename, prefix + b'"\xff"')


# -- bit, varbit -----------------------------------------------------------------

def test_bits_golden() -> None:
    bits = BitString("1010 1")
    assert enc("bit", bits) == prefixed(i32(5) + b"\xa8")
    assert enc("varbit", bits) == prefixed(i32(5) + b"\xa8")
    got = dec("varbit", i32(5) + b"\xa8")
    assert type(got) is BitString
    assert got == bits
    assert got.as_string() == "1010 1"  # type: ignore[attr-defined]
    assert dec("bit", i32(0)) == BitString()


def test_bits_from_bytes() -> None:
    assert enc("bit", b"\x0f\xf0") == prefixed(i32(16) + b"\x0f\xf0")
    assert enc("bit", bytearray(b"\x01")) == prefixed(i32(8) + b"\x01")
    assert enc("bit", memoryview(b"\x01")) == prefixed(i32(8) + b"\x01")


def test_bits_wrong_type() -> None:
    with pytest.raises(TypeError, match=r"bit.*str"):
        enc("bit", "1010")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x00\x00", i32(9) + b"\x01", i32(8) + b"\x01\x02", i32(-1), i32(1)],
)
def test_bits_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        dec("bit", data)


# -- pg_lsn, xid8 ----------------------------------------------------------------

@pytest.mark.parametrize("typename", ["pg_lsn", "xid8"])
def test_uint8(typename: str) -> None:
    assert enc(typename, 0x16B3748) == prefixed(bytes.fromhex("00000000016b3748"))
    assert enc(typename, 2**64 - 1) == prefixed(b"\xff" * 8)
    assert dec(typename, b"\xff" * 8) == 2**64 - 1
    assert dec(typename, bytes.fromhex("00000001000000a0")) == 0x1000000A0
    with pytest.raises(OverflowError):
        enc(typename, -1)
    with pytest.raises(OverflowError):
        enc(typename, 2**64)
    with pytest.raises(TypeError, match=typename):
        enc(typename, 1.0)
    with pytest.raises(DecodeError):
        dec(typename, bytes(7))


# -- tid -----------------------------------------------------------------------

def test_tid() -> None:
    assert enc("tid", (1, 2)) == prefixed(bytes.fromhex("000000010002"))
    assert enc("tid", [2**32 - 1, 65535]) == prefixed(b"\xff" * 6)
    assert dec("tid", bytes.fromhex("000000010002")) == (1, 2)
    assert dec("tid", b"\xff" * 6) == (2**32 - 1, 65535)
    with pytest.raises(TypeError, match="tid"):
        enc("tid", 5)
    with pytest.raises(ValueError, match="tid"):
        enc("tid", (1, 2, 3))
    with pytest.raises(OverflowError, match="block"):
        enc("tid", (2**32, 0))
    with pytest.raises(OverflowError, match="offset"):
        enc("tid", (0, 65536))
    with pytest.raises(OverflowError):
        enc("tid", (-1, 0))
    with pytest.raises(DecodeError):
        dec("tid", bytes(5))


# -- txid_snapshot, pg_snapshot ----------------------------------------------------

@pytest.mark.parametrize("typename", ["txid_snapshot", "pg_snapshot"])
def test_snapshot(typename: str) -> None:
    body = i32(2) + struct.pack(">QQQQ", 10, 20, 12, 15)
    assert enc(typename, (10, 20, [12, 15])) == prefixed(body)
    assert enc(typename, [10, 20, (12, 15)]) == prefixed(body)
    assert dec(typename, body) == (10, 20, (12, 15))
    assert dec(typename, i32(0) + struct.pack(">QQ", 2**64 - 1, 1)) == (2**64 - 1, 1, ())
    with pytest.raises(TypeError, match="snapshot"):
        enc(typename, "1:2:")
    with pytest.raises(ValueError):
        enc(typename, (1, 2))
    with pytest.raises(OverflowError):
        enc(typename, (1, 2, [-1]))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        i32(0) + bytes(15),
        i32(1) + bytes(16),                     # one xip announced, none present
        i32(0) + bytes(17),                     # trailing bytes
        i32(-1) + bytes(16),
        i32(2**31 - 1) + bytes(24),
    ],
)
def test_snapshot_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        dec("pg_snapshot", data)


# -- hstore --------------------------------------------------------------------

def hstore_wire(*pairs: tuple[bytes, bytes | None]) -> bytes:
    out = i32(len(pairs))
    for k, v in pairs:
        out += i32(len(k)) + k
        out += i32(-1) if v is None else i32(len(v)) + v
    return out


def test_hstore_golden() -> None:
    body = hstore_wire((b"a", b"1"), (b"b", None), ("ü".encode(), b""))
    assert enc("hstore", {"a": "1", "b": None, "ü": ""}) == prefixed(body)
    assert enc("hstore", [("a", "1"), ("b", None), ("ü", "")]) == prefixed(body)
    assert dec("hstore", body) == {"a": "1", "b": None, "ü": ""}
    assert dec("hstore", i32(0)) == {}
    assert enc("hstore", {}) == prefixed(i32(0))


def test_hstore_bad_values() -> None:
    with pytest.raises(ValueError, match="None"):
        enc("hstore", {None: "x"})
    with pytest.raises(TypeError, match=r"hstore key.*int"):
        enc("hstore", {1: "x"})
    with pytest.raises(TypeError, match=r"hstore value.*int"):
        enc("hstore", {"a": "x", "b": 2})
    with pytest.raises(TypeError, match="hstore"):
        enc("hstore", "a=>b")
    with pytest.raises(TypeError, match="hstore"):
        enc("hstore", 5)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        i32(1),                                         # a pair announced, nothing there
        i32(-1),
        i32(1_000_000) + hstore_wire((b"a", b"b"))[4:],  # count larger than the bytes allow
        i32(1) + i32(-1) + i32(-1),                     # NULL key
        i32(1) + i32(5) + b"ab" + i32(-1),              # key longer than the data
        i32(1) + i32(1) + b"a" + i32(9) + b"xy",        # value longer than the data
        i32(1) + i32(1) + b"a" + i32(-2),               # negative value length
        i32(1) + i32(1) + b"a",                         # value length missing
        hstore_wire((b"a", b"b")) + b"\x00",            # trailing byte
        hstore_wire((b"\xff", b"b")),                   # invalid UTF-8
    ],
)
def test_hstore_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        dec("hstore", data)


def test_hstore_lying_count_is_cheap() -> None:
    data = i32(2**31 - 1) + hstore_wire((b"a", b"b"))[4:]
    # Refused before anything of the claimed size is allocated.
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError):
            dec("hstore", data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


# -- text-format types -------------------------------------------------------------

@pytest.mark.parametrize(
    ("typename", "text"),
    [("money", "$1,234.50"), ("macaddr", "08:00:2b:01:02:03"),
     ("macaddr8", "08:00:2b:01:02:03:04:05"), ("tsvector", "'a':1 'fat':2"),
     ("tsquery", "'fat' & 'rat'")],
)
def test_text_format_types(typename: str, text: str) -> None:
    # asyncpg exchanges these as text; the value is the server's text form.
    assert enc(typename, text) == prefixed(text.encode())
    assert dec(typename, text.encode()) == text


def test_gtsvector_is_output_only() -> None:
    assert dec("gtsvector", b"512 true bits") == "512 true bits"
    with pytest.raises(NotImplementedError):
        enc("gtsvector", "x")


def test_fuzz_decoders_only_raise_decode_error() -> None:
    rnd = random.Random(3802)
    seeds = {
        "hstore": hstore_wire((b"a", b"1"), (b"b", None)),
        "pg_snapshot": i32(1) + struct.pack(">QQQ", 1, 2, 3),
        "bit": i32(5) + b"\xa8",
        "jsonb": b'\x01{"a": 1}',
        "uuid": U_BYTES,
        "tid": bytes(6),
    }
    for _ in range(20000):
        name, seed = rnd.choice(list(seeds.items()))
        data = bytearray(seed)
        for _ in range(rnd.randint(1, 3)):
            op = rnd.random()
            if op < 0.5 and data:
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            elif op < 0.75 and data:
                del data[rnd.randrange(len(data)) :]
            else:
                data += bytes([rnd.randrange(256)])
        try:
            dec(name, bytes(data))
        except DecodeError:
            pass
