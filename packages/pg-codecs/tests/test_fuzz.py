"""Hostile bytes into every registered decoder (RELIABILITY.md W5/K2).

Every decoder in the core table (found through the registry, so the codec
modules of other authors are covered too), every built-in array, range and
multirange type, and the container codecs built from type descriptions get
random bytes and mutated valid encodings. Only a value, a DecodeError or
another ValueError may come out, each call must return quickly, and a
claimed size may not make the decoder allocate more than the input can
justify.
"""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import random
import struct
import tracemalloc
import uuid

import pytest

import pg_codecs
from pg_codecs import CodecRegistry, DecodeError
from pg_codecs import oids as o
from pg_codecs._codecs import core_codec_oids

SEED = 20240611
MUTATIONS_PER_SEED = 400

# PostgreSQL's date/time types reach far beyond Python's datetime (years 1 to
# 9999): such values are valid data, not malformed bytes, and asyncpg raises
# OverflowError for them. Allowed for these types (and containers of them).
OVERFLOW_OK = {
    o.DATEOID,
    o.TIMESTAMPOID,
    o.TIMESTAMPTZOID,
    o.INTERVALOID,
    o.TIMEOID,
    o.TIMETZOID,
    o.DATEARRAYOID,
    o.TIMESTAMPARRAYOID,
    o.TIMESTAMPTZARRAYOID,
    o.INTERVALARRAYOID,
    o.TIMEARRAYOID,
    o.TIMETZARRAYOID,
    o.DATERANGEOID,
    o.TSRANGEOID,
    o.TSTZRANGEOID,
    o.DATEMULTIRANGEOID,
    o.TSMULTIRANGEOID,
    o.TSTZMULTIRANGEOID,
}

# Valid encodings the sample values cannot produce (decode-only types).
RAW_SEEDS = {
    o.RECORDOID: ["00000002000000170000000400000001000002c10000000161", "00000000"],
    o.TXID_SNAPSHOTOID: [
        "000000020000000000000010000000000000001400000000000000100000000000000012"
    ],
    o.PG_SNAPSHOTOID: ["000000020000000000000010000000000000001400000000000000100000000000000012"],
}

COMP = 16401
COMP_ARRAY = 16400
ENUM = 16403
TEXTONLY = 90001
TEXTONLY_ARRAY = 90002
MYRANGE = 90006
MYMULTI = 90007

TYPES = [
    {
        "oid": COMP,
        "ns": "public",
        "name": "comp",
        "kind": "c",
        "attrtypoids": [23, 25, 1007, 16],
        "attrnames": ["a", "b", "c", "d"],
    },
    {
        "oid": COMP_ARRAY,
        "ns": "public",
        "name": "_comp",
        "kind": "b",
        "elemtype": COMP,
        "elemdelim": ",",
    },
    {"oid": ENUM, "ns": "public", "name": "mood", "kind": "e"},
    {"oid": TEXTONLY, "ns": "public", "name": "citext", "kind": "b"},
    {
        "oid": TEXTONLY_ARRAY,
        "ns": "public",
        "name": "_citext",
        "kind": "b",
        "elemtype": TEXTONLY,
        "elemdelim": ",",
    },
    {"oid": MYRANGE, "ns": "public", "name": "myrange", "kind": "r", "range_subtype": 1700},
    {"oid": MYMULTI, "ns": "public", "name": "mymulti", "kind": "m", "range_subtype": 1184},
]


def _registry():
    reg = CodecRegistry()
    reg.add_types(TYPES)
    return reg


def _targets(reg):
    """(oid, format) of every decoder to fuzz."""
    oids = set(core_codec_oids())
    oids |= set(o.ARRAY_ELEMENT_TYPES) | set(o.RANGE_SUBTYPES) | set(o.MULTIRANGE_SUBTYPES)
    oids |= {t["oid"] for t in TYPES}
    out = []
    for oid in sorted(oids):
        for fmt in ("binary", "text"):
            codec = reg.get_codec(oid, fmt)
            if codec is not None and codec.has_decoder():
                out.append((oid, fmt))
    return out


def _sample_values():
    types = pytest.importorskip("pg_codecs.types")
    return [
        0,
        1,
        -1,
        2**40,
        True,
        1.5,
        -0.0,
        "abc",
        "",
        "é" * 3,
        b"abc",
        b"",
        [1, 2, None],
        [[1], [2]],
        ["a"],
        [],
        (1, "x", [3], True),
        {"a": 1},
        decimal.Decimal("-12.345"),
        decimal.Decimal("NaN"),
        datetime.date(2020, 1, 2),
        datetime.datetime(2020, 1, 2, 3, 4, 5),
        datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        datetime.time(1, 2, 3),
        datetime.time(1, 2, 3, tzinfo=datetime.timezone.utc),
        datetime.timedelta(days=1, seconds=5),
        uuid.UUID(int=12345),
        ipaddress.ip_address("10.0.0.1"),
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_interface("::1/64"),
        types.Range(1, 5),
        types.Range(empty=True),
        [types.Range(1, 2)],
        types.BitString("1010"),
        types.Point(1, 2),
        types.Box((1, 2), (0, 0)),
        types.Circle((1, 1), 2),
        types.Path((1, 2), (3, 4)),
        types.Polygon((1, 2), (3, 4), (5, 6)),
        types.Line(1, 2, 3),
        types.LineSegment((1, 2), (3, 4)),
        (1, 2),
        "{}",
        '{"a": [1, 2]}',
        "$.a",
        "a & b",
        "'a' 'b'",
        "0/16B3748",
        "08:00:2b:01:02:03",
    ]


def _seeds(reg, oid, fmt, values):
    seeds = []
    for value in values:
        try:
            data = reg.encode(oid, value, fmt)
        except Exception:
            continue
        if data is not None and data not in seeds:
            seeds.append(data)
    return seeds


def _mutations(rng, seed, count):
    yield seed
    for _ in range(count):
        data = bytearray(seed)
        op = rng.randrange(6)
        if op == 0 and data:  # flip bits
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # truncate
            del data[rng.randrange(len(data)) :]
        elif op == 2:  # append junk
            data += rng.randbytes(rng.randint(1, 8))
        elif op == 3 and len(data) >= 4:  # a hostile length or count
            pos = rng.randrange(len(data) - 3)
            data[pos : pos + 4] = struct.pack(
                "!I", rng.choice([0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0xFFFFFFFE, 0x10000, 7])
            )
        elif op == 4 and len(data) >= 2:  # a hostile int16
            pos = rng.randrange(len(data) - 1)
            data[pos : pos + 2] = struct.pack("!H", rng.choice([0x7FFF, 0xFFFF, 0x8000, 0]))
        else:  # splice random bytes in
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = rng.randbytes(rng.randint(1, 6))
        yield bytes(data)


def _check(reg, oid, fmt, data, failures):
    try:
        reg.decode(oid, data, fmt)
    except (DecodeError, ValueError):
        pass
    except OverflowError:
        if oid not in OVERFLOW_OK:
            failures.append(f"{oid}/{fmt} {data.hex()}: OverflowError")
    except Exception as e:
        failures.append(f"{oid}/{fmt} {data.hex()}: {type(e).__name__}: {e}")


def test_every_decoder_survives_hostile_bytes():
    reg = _registry()
    rng = random.Random(SEED)
    values = _sample_values()
    targets = _targets(reg)
    assert len(targets) > 150  # the core table and the built-in containers
    failures: list[str] = []
    # A decoder that hangs fails through pytest's per-test timeout.
    for oid, fmt in targets:
        inputs = [rng.randbytes(n) for n in (0, 1, 2, 3, 4, 5, 8, 12, 16, 17, 24, 33, 64)]
        inputs += [rng.randbytes(rng.randint(0, 200)) for _ in range(20)]
        seeds = _seeds(reg, oid, fmt, values) + [bytes.fromhex(h) for h in RAW_SEEDS.get(oid, ())]
        for seed in seeds:
            inputs += list(_mutations(rng, seed, MUTATIONS_PER_SEED))
        for data in inputs:
            _check(reg, oid, fmt, data, failures)
    assert not failures, "\n".join(failures[:40])


# Headers that claim enormous contents in a few bytes, per container kind.
HUGE_CLAIMS = [
    (o.INT4ARRAYOID, "0000000100000000000000177fffffff0000000100000004"),
    (o.INT4ARRAYOID, "000000060000000000000017" + "7fffffff00000001" * 6),
    (o.TEXTARRAYOID, "0000000200000001000000190000ffff000000010000ffff00000001"),
    (o.INT4MULTIRANGEOID, "7fffffff"),
    (o.RECORDOID, "7fffffff0000001700000004"),
    (COMP, "7fffffff"),
    (o.INT4RANGEOID, "027fffffff"),
]


@pytest.mark.parametrize(("oid", "hexbytes"), HUGE_CLAIMS)
def test_huge_claims_allocate_nothing(oid, hexbytes):
    reg = _registry()
    tracemalloc.start()
    try:
        with pytest.raises((DecodeError, ValueError)):
            reg.decode(oid, bytes.fromhex(hexbytes))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_row_decoder_survives_hostile_rows():
    reg = _registry()
    rng = random.Random(SEED + 1)
    oids = [o.INT4OID, o.TEXTOID, o.INT4ARRAYOID, COMP, o.BOOLOID, o.FLOAT8OID, TEXTONLY_ARRAY]
    plan = reg.plan_row_decoder(oids, [f"c{i}" for i in range(len(oids))])
    raw = reg.plan_row_decoder(oids, [f"c{i}" for i in range(len(oids))], None)
    good = struct.pack("!h", len(oids))
    for oid, value in zip(
        oids, [1, "x", [1, None], (1, "a", [2], True), False, 2.5, ["a b", None]], strict=True
    ):
        data = reg.encode(oid, value)
        good += struct.pack("!i", len(data)) + data
    assert plan.decode(good) == (1, "x", [1, None], (1, "a", [2], True), False, 2.5, ["a b", None])
    failures = []
    for data in list(_mutations(rng, good, 20000)) + [
        rng.randbytes(rng.randint(0, 100)) for _ in range(500)
    ]:
        for decoder in (plan, raw):
            try:
                decoder.decode(data)
            except (DecodeError, ValueError):
                pass
            except Exception as e:
                failures.append(f"{data.hex()}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures[:20])


def test_text_array_parser_survives_hostile_literals():
    reg = _registry()
    rng = random.Random(SEED + 2)
    alphabet = '{}{}",,\\ NULLnul[]:=-0129abé\t'
    failures = []
    for _ in range(30000):
        literal = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))).encode()
        try:
            value = reg.decode(TEXTONLY_ARRAY, literal)
        except (DecodeError, ValueError):
            continue
        except Exception as e:
            failures.append(f"{literal!r}: {type(e).__name__}: {e}")
            continue
        # Whatever parses must survive a round trip.
        if reg.decode(TEXTONLY_ARRAY, reg.encode(TEXTONLY_ARRAY, value)) != value:
            failures.append(f"{literal!r}: round trip changed {value!r}")
    assert not failures, "\n".join(failures[:20])


def test_package_registers_all_codec_modules():
    # Importing pg_codecs must have filled the core table for each module.
    oids = set(core_codec_oids())
    for oid in (
        o.INT4OID,
        o.TEXTOID,
        o.NUMERICOID,
        o.TIMESTAMPTZOID,
        o.UUIDOID,
        o.INETOID,
        o.POINTOID,
        o.JSONBOID,
    ):
        assert oid in oids, o.TYPE_NAMES[oid]
    assert pg_codecs.CodecRegistry is CodecRegistry
