"""COPY through pg_client: copy_to_table, copy_records_to_table, copy_from_table,
copy_from_query, and how COPY fails (RELIABILITY.md C1, C2, C3, C4, C7, T9).

Every test makes its own connection (``pgc``). Results are checked with a
SELECT on the same server, and where the output is the server's own text,
against asyncpg's output for the same call (differential check).
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import io
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import pg_client
from pg_client import exceptions as exc
from pg_wire.messages import (
    CommandComplete,
    CopyBothResponse,
    CopyData,
    CopyDone,
    CopyInResponse,
    CopyOutResponse,
    Query,
    ReadyForQuery,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeserver import FakeConn, FakeServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def pgc(cluster: Any) -> AsyncIterator[pg_client.Connection]:
    con = await pg_client.connect(cluster.dsn())
    try:
        yield con
    finally:
        if not con.is_closed():
            await con.close()


def _name(prefix: str = "cp") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def _table(con: pg_client.Connection, ddl: str) -> str:
    """A fresh temp table with columns *ddl*; returns its name."""
    name = _name()
    await con.execute(f"CREATE TEMP TABLE {name} ({ddl})")
    return name


async def _assert_usable(con: pg_client.Connection) -> None:
    assert not con.is_closed()
    assert await con.fetchval("SELECT $1::int + 1", 41) == 42
    assert not con.is_in_transaction()


async def _chunks(data: bytes, sizes: tuple[int, ...] = (1, 3, 7, 64)) -> AsyncIterator[bytes]:
    """Yield *data* in awkward pieces (split inside rows and inside characters)."""
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        yield data[pos : pos + n]
        pos += n
        i += 1
        if i % 16 == 0:
            await asyncio.sleep(0)


TEXT_DATA = "1\tone\t\\N\n2\ttwo, \"2\"\tx\n3\tdrei é\t\\\\back\n".encode()
TEXT_ROWS = [(1, "one", None), (2, 'two, "2"', "x"), (3, "drei é", "\\back")]


# -- copy_to_table: sources -----------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["bytes", "bytearray", "memoryview", "path", "pathlike", "file", "async_iter"]
)
async def test_copy_to_table_sources(
    pgc: pg_client.Connection, tmp_path: Path, kind: str
) -> None:
    table = await _table(pgc, "a int, b text, c text")
    source: Any
    f = None
    if kind == "bytes":
        source = TEXT_DATA
    elif kind == "bytearray":
        source = bytearray(TEXT_DATA)
    elif kind == "memoryview":
        source = memoryview(TEXT_DATA)
    elif kind in ("path", "pathlike"):
        p = tmp_path / "data.txt"
        p.write_bytes(TEXT_DATA)
        source = str(p) if kind == "path" else p
    elif kind == "file":
        p = tmp_path / "data.txt"
        p.write_bytes(TEXT_DATA)
        f = open(p, "rb")
        source = f
    else:
        source = _chunks(TEXT_DATA)
    try:
        status = await pgc.copy_to_table(table, source=source)
    finally:
        if f is not None:
            assert not f.closed, "a caller's file object must not be closed by copy_to_table"
            f.close()
    assert status == "COPY 3"
    rows = await pgc.fetch(f"SELECT a, b, c FROM {table} ORDER BY a")
    assert [tuple(r) for r in rows] == TEXT_ROWS


async def test_copy_to_table_empty_source(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int")
    assert await pgc.copy_to_table(table, source=b"") == "COPY 0"

    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover

    assert await pgc.copy_to_table(table, source=nothing()) == "COPY 0"
    await _assert_usable(pgc)


async def test_copy_to_table_csv_options(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int, b text, c text")
    # quote ', escape \, delimiter ;, null NULL, header, LATIN1 bytes.
    lines = [
        "a;b;c",
        "1;'semi;colon';'it\\'s'",
        "2;NULL;NULL",  # b: force_not_null keeps the string, c: NULL
        "3;'NULL';'NULL'",  # b: quoted -> string, c: force_null -> NULL
        "4;café;''",
    ]
    data = ("\n".join(lines) + "\n").encode("latin-1")
    status = await pgc.copy_to_table(
        table,
        source=data,
        format="csv",
        delimiter=";",
        null="NULL",
        header=True,
        quote="'",
        escape="\\",
        force_not_null=["b"],
        force_null=["c"],
        encoding="latin1",
    )
    assert status == "COPY 4"
    rows = await pgc.fetch(f"SELECT a, b, c FROM {table} ORDER BY a")
    assert [tuple(r) for r in rows] == [
        (1, "semi;colon", "it's"),
        (2, "NULL", None),
        (3, "NULL", None),
        (4, "café", ""),
    ]


async def test_copy_to_table_text_options(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int, b text")
    data = b"1|x\n2|<null>\n3|a\\|b\n"
    status = await pgc.copy_to_table(
        table, source=data, format="text", delimiter="|", null="<null>"
    )
    assert status == "COPY 3"
    rows = await pgc.fetch(f"SELECT a, b FROM {table} ORDER BY a")
    assert [tuple(r) for r in rows] == [(1, "x"), (2, None), (3, "a|b")]


async def test_copy_binary_round_trip(pgc: pg_client.Connection) -> None:
    src = await _table(pgc, "a int, b text, c numeric, d timestamptz, e bytea, f int[]")
    await pgc.execute(
        f"INSERT INTO {src} SELECT i, 't' || i, i / 7.0, "
        f"'2020-01-01 00:00+00'::timestamptz + i * interval '1 hour', "
        f"decode(md5(i::text), 'hex'), ARRAY[i, NULL, -i] FROM generate_series(1, 500) i"
    )
    await pgc.execute(f"INSERT INTO {src} VALUES (NULL, NULL, NULL, NULL, NULL, NULL)")
    buf = io.BytesIO()
    status = await pgc.copy_from_table(src, output=buf, format="binary")
    assert status == "COPY 501"
    assert buf.getvalue().startswith(b"PGCOPY\n\xff\r\n\x00")
    dst = await _table(pgc, "a int, b text, c numeric, d timestamptz, e bytea, f int[]")
    status = await pgc.copy_to_table(dst, source=buf.getvalue(), format="binary")
    assert status == "COPY 501"
    diff = await pgc.fetchval(
        f"SELECT count(*) FROM ((TABLE {src} EXCEPT ALL TABLE {dst}) "
        f"UNION ALL (TABLE {dst} EXCEPT ALL TABLE {src})) d"
    )
    assert diff == 0


async def test_copy_to_table_columns_and_schema(pgc: pg_client.Connection) -> None:
    schema = _name("sch")
    await pgc.execute(f'CREATE SCHEMA "{schema}"')
    try:
        await pgc.execute(
            f'CREATE TABLE "{schema}"."Mixed Case" (id serial, "Val ue" text, n int DEFAULT 7)'
        )
        status = await pgc.copy_to_table(
            "Mixed Case", schema_name=schema, source=b"x\ny\n", columns=["Val ue"]
        )
        assert status == "COPY 2"
        rows = await pgc.fetch(f'SELECT id, "Val ue", n FROM "{schema}"."Mixed Case" ORDER BY id')
        assert [tuple(r) for r in rows] == [(1, "x", 7), (2, "y", 7)]
    finally:
        await pgc.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.pg(">= 12")
async def test_copy_to_table_where(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int, b text")
    data = "".join(f"{i}\tv{i}\n" for i in range(10)).encode()
    status = await pgc.copy_to_table(table, source=data, where="a % 3 = 0")
    assert status == "COPY 4"
    assert await pgc.fetchval(f"SELECT array_agg(a ORDER BY a) FROM {table}") == [0, 3, 6, 9]


# -- copy_records_to_table -------------------------------------------------------------

RECORD_DDL = (
    "i int, big bigint, s smallint, n numeric, f float8, t text, b bytea, "
    "ts timestamptz, d date, ok bool, arr int[], tarr text[], u uuid, j jsonb"
)
UTC = datetime.timezone.utc


def _record(i: int) -> tuple[Any, ...]:
    if i % 97 == 0:
        return (i,) + (None,) * 13
    return (
        i,
        i * 10_000_000_000 * (-1 if i % 2 else 1),
        i % 32767 - 16000,
        decimal.Decimal(i) / 7 if i % 5 else decimal.Decimal("-123456789012345678901234.5678"),
        i / 3.0,
        f"text {i} 'q' \"dq\" \\ é €" if i % 11 else "",
        bytes([i % 256, 0, 255]) * (i % 4),
        datetime.datetime(2001, 2, 3, 4, 5, 6, i % 1_000_000, tzinfo=UTC)
        + datetime.timedelta(hours=i),
        datetime.date(2000, 1, 1) + datetime.timedelta(days=i),
        bool(i % 2),
        [i, None, -i] if i % 3 else [],
        ["a", None, "c,d", '"q"'],
        uuid.UUID(int=i),
        f'{{"k": {i}, "s": "é"}}',
    )


def _normalise(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # Compare numerics by value, jsonb by parsed value.
    import json

    out = list(row)
    if out[3] is not None:
        out[3] = decimal.Decimal(out[3])
    if out[13] is not None:
        out[13] = json.loads(out[13])
    return tuple(out)


async def test_copy_records_many_types_100k(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, RECORD_DDL)
    n = 100_000
    records = [_record(i) for i in range(n)]
    status = await pgc.copy_records_to_table(table, records=records)
    assert status == f"COPY {n}"
    rows = await pgc.fetch(f"SELECT * FROM {table} ORDER BY i")
    assert len(rows) == n
    # numeric division: the server keeps what we sent; compare exactly
    for rec, row in zip(records, rows, strict=True):
        assert _normalise(tuple(row)) == _normalise(rec), rec[0]


async def test_copy_records_async_iterable(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, RECORD_DDL)

    async def gen() -> AsyncIterator[tuple[Any, ...]]:
        for i in range(2000):
            if i % 100 == 0:
                await asyncio.sleep(0)
            yield _record(i)

    status = await pgc.copy_records_to_table(table, records=gen())
    assert status == "COPY 2000"
    rows = await pgc.fetch(f"SELECT * FROM {table} ORDER BY i")
    assert [_normalise(tuple(r)) for r in rows] == [_normalise(_record(i)) for i in range(2000)]


async def test_copy_records_sync_generator_and_empty(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int, b text")

    def gen() -> Iterator[tuple[int, str]]:
        yield from ((i, str(i)) for i in range(5))

    assert await pgc.copy_records_to_table(table, records=gen()) == "COPY 5"
    assert await pgc.copy_records_to_table(table, records=[]) == "COPY 0"
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 5


async def test_copy_records_columns_subset_and_schema(pgc: pg_client.Connection) -> None:
    schema = _name("sch")
    await pgc.execute(f'CREATE SCHEMA "{schema}"')
    try:
        await pgc.execute(
            f'CREATE TABLE "{schema}".t (id serial, "Weird ""col""" text, x int DEFAULT -1, '
            f"ts timestamptz)"
        )
        when = datetime.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
        status = await pgc.copy_records_to_table(
            "t",
            schema_name=schema,
            columns=["ts", 'Weird "col"'],
            records=[(when, "a"), (None, None), (when, "c")],
        )
        assert status == "COPY 3"
        rows = await pgc.fetch(f'SELECT id, "Weird ""col""", x, ts FROM "{schema}".t ORDER BY id')
        assert [tuple(r) for r in rows] == [
            (1, "a", -1, when),
            (2, None, -1, None),
            (3, "c", -1, when),
        ]
    finally:
        await pgc.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.pg(">= 12")
async def test_copy_records_where(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int, b text")
    status = await pgc.copy_records_to_table(
        table, records=[(i, f"v{i}") for i in range(20)], where="a >= 15 AND b <> 'v17'"
    )
    assert status == "COPY 4"
    assert await pgc.fetchval(f"SELECT array_agg(a ORDER BY a) FROM {table}") == [15, 16, 18, 19]


async def test_copy_records_columns_any_sequence_and_many_targets(
    pgc: pg_client.Connection,
) -> None:
    """The COPY statements are kept per target (table, schema, columns, where):
    every combination gets its own, more targets than are kept still work,
    and columns may be any iterable of names."""
    tables = [await _table(pgc, "a int, b text, c int DEFAULT 7") for _ in range(3)]
    for round_ in range(2):
        for i, table in enumerate(tables):
            await pgc.copy_records_to_table(table, records=[(i, "x", round_)])
            await pgc.copy_records_to_table(table, records=[("y", i)], columns=("b", "a"))
            await pgc.copy_records_to_table(table, records=[(i,)], columns=iter(["a"]))
    for i, table in enumerate(tables):
        rows = await pgc.fetch(f"SELECT a, b, c FROM {table} ORDER BY b NULLS FIRST, c")
        assert [tuple(r) for r in rows] == [
            (i, None, 7), (i, None, 7), (i, "x", 0), (i, "x", 1), (i, "y", 7), (i, "y", 7)]
    # More targets than the connection keeps statements for.
    table = tables[0]
    for n in range(40):
        cols = ["a", "b", "c"][: 1 + n % 3]
        cols = cols if n % 2 else cols[::-1]
        await pgc.copy_records_to_table(
            table, records=[tuple(str(n) if c == "b" else n for c in cols)], columns=cols)
    assert await pgc.fetchval(f"SELECT count(*) FROM {table} WHERE a >= 0") == 46
    with pytest.raises(TypeError, match="sequence of column names"):
        await pgc.copy_records_to_table(table, records=[(1,)], columns="a")
    with pytest.raises(TypeError, match="identifier must be a str"):
        await pgc.copy_records_to_table(table, records=[(1,)], columns=[["a"]])
    with pytest.raises(TypeError, match="identifier must be a str"):
        await pgc.copy_records_to_table(table, records=[(1,)], columns=[1])
    await _assert_usable(pgc)


class _WriteLog:
    """A transport that records what the connection writes, then passes it on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("count", [1, 200, 50_000])
async def test_copy_records_query_goes_out_with_the_data(
    pgc: pg_client.Connection, count: int
) -> None:
    """copy_records_to_table of a list: the Query leaves in the same write as
    the first records, and a COPY that fits one chunk is a single write
    (Query, CopyData, CopyDone): no separate packet for either end."""
    table = await _table(pgc, "a int, b text")
    records = [(i, "v") for i in range(count)]
    await pgc.copy_records_to_table(table, records=records[:1])  # the columns' statement
    proto = pgc._protocol
    log = _WriteLog(proto.transport)
    proto.transport = log
    try:
        status = await pgc.copy_records_to_table(table, records=records)
    finally:
        proto.transport = log.inner
    assert status == f"COPY {count}"
    first = log.writes[0]
    assert first[:1] == b"Q" and b"d" in first[5:] and b"PGCOPY\n" in first
    copy_done = b"c\x00\x00\x00\x04"
    if count <= 200:
        assert len(log.writes) == 1 and first.endswith(copy_done)
    else:
        assert len(log.writes) > 1 and log.writes[-1].endswith(copy_done)
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == count + 1
    await _assert_usable(pgc)


async def test_copy_records_bad_value_is_refused_and_usable(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int, b text")
    with pytest.raises((exc.DataError, TypeError, ValueError)):
        await pgc.copy_records_to_table(table, records=[(1, "a"), ("not an int", "b")])
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc)


# -- copy_from_table / copy_from_query --------------------------------------------------


@pytest.fixture
async def filled(pgc: pg_client.Connection) -> AsyncIterator[str]:
    """A regular (not temp) table, so that asyncpg's connection can read it too."""
    name = _name("cpo")
    await pgc.execute(f"CREATE TABLE {name} (a int, b text, c numeric, d bytea)")
    await pgc.execute(
        f"INSERT INTO {name} SELECT i, CASE WHEN i % 4 = 0 THEN NULL ELSE "
        f"'v,' || i || ' \"q\" é' END, i / 3.0, '\\x00ff'::bytea FROM generate_series(1, 300) i"
    )
    yield name
    await pgc.execute(f"DROP TABLE IF EXISTS {name}")


COLS = ["a", "b", "c", "d"]


@pytest.mark.parametrize("target", ["path", "file", "async_callable", "async_write"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"format": "csv", "header": True, "delimiter": "|", "null": "<N>", "quote": "'"},
        {"format": "csv", "force_quote": True, "escape": "\\"},
        {"format": "csv", "force_quote": ["b"], "encoding": "latin1"},
        {"format": "text", "null": "NULL", "delimiter": ","},
        {"format": "binary"},
    ],
    ids=["default", "csv-header", "csv-force-all", "csv-force-cols-latin1", "text", "binary"],
)
async def test_copy_from_table_matches_asyncpg(
    pgc: pg_client.Connection,
    cluster: Any,
    filled: str,
    tmp_path: Path,
    target: str,
    options: dict[str, Any],
) -> None:
    ref = await asyncpg.connect(cluster.dsn())
    try:
        ref_buf = io.BytesIO()
        ref_status = await ref.copy_from_table(filled, output=ref_buf, columns=COLS, **options)
    finally:
        await ref.close()

    got: bytes
    if target == "path":
        p = tmp_path / "out.bin"
        status = await pgc.copy_from_table(filled, output=str(p), columns=COLS, **options)
        got = p.read_bytes()
    elif target == "file":
        buf = io.BytesIO()
        status = await pgc.copy_from_table(filled, output=buf, columns=COLS, **options)
        assert not buf.closed
        got = buf.getvalue()
    elif target == "async_callable":
        parts: list[bytes] = []

        async def sink(chunk: Any) -> None:
            parts.append(bytes(chunk))
            await asyncio.sleep(0)

        status = await pgc.copy_from_table(filled, output=sink, columns=COLS, **options)
        got = b"".join(parts)
    else:
        class AsyncWriter:
            def __init__(self) -> None:
                self.parts: list[bytes] = []

            async def write(self, chunk: Any) -> None:
                self.parts.append(bytes(chunk))

        w = AsyncWriter()
        status = await pgc.copy_from_table(filled, output=w, columns=COLS, **options)
        got = b"".join(w.parts)
    assert status == ref_status == "COPY 300"
    assert got == ref_buf.getvalue()
    await _assert_usable(pgc)


async def test_copy_from_query_to_targets(pgc: pg_client.Connection, tmp_path: Path) -> None:
    q = "SELECT i, repeat('x', i) FROM generate_series(1, 50) i"
    expected = "".join(f"{i}\t{'x' * i}\n" for i in range(1, 51)).encode()
    p = tmp_path / "q.txt"
    assert await pgc.copy_from_query(q, output=p) == "COPY 50"
    assert p.read_bytes() == expected
    buf = io.BytesIO()
    assert await pgc.copy_from_query(q, output=buf) == "COPY 50"
    assert buf.getvalue() == expected
    parts: list[bytes] = []

    async def sink(chunk: Any) -> None:
        parts.append(bytes(chunk))

    assert await pgc.copy_from_query(q, output=sink) == "COPY 50"
    assert b"".join(parts) == expected



async def test_copy_out_of_megabytes_comes_whole_in_bounded_chunks(
        pgc: pg_client.Connection) -> None:
    # Reads of up to 256 KiB (uvloop) are handed over in pieces of about
    # 64 KiB; every byte arrives, in order.
    q = "SELECT i, repeat(chr(65 + i % 26), i % 300) FROM generate_series(1, 20000) i"
    expected = "".join(f"{i}\t{chr(65 + i % 26) * (i % 300)}\n" for i in range(1, 20001)).encode()
    parts: list[bytes] = []

    async def slow_sink(chunk: Any) -> None:
        parts.append(bytes(chunk))
        if len(parts) % 4 == 1:
            # A busy loop: the socket fills up, the next read is a big one.
            time.sleep(0.01)

    assert await pgc.copy_from_query(q, output=slow_sink) == "COPY 20000"
    assert len(expected) > 2_000_000
    assert b"".join(parts) == expected
    assert max(len(p) for p in parts) < 64 * 1024 + 400
    await _assert_usable(pgc)

async def test_copy_from_query_args(pgc: pg_client.Connection) -> None:
    buf = io.BytesIO()
    query = (
        "SELECT $1::text AS a, '$1' AS lit, $$ $1 'x' $$ AS dq, $tag$$2$tag$ AS tagged, "
        "E'\\'$1' AS esc, \"$1\".v AS ident, 1-$2 AS neg, $3::int[] AS arr, $4::text AS nul "
        "/* $1 */ FROM (SELECT 5 AS v) AS \"$1\" -- $2\n"
    )
    status = await pgc.copy_from_query(
        query, "it's a \"test\" \\ with; -- $2 $$ quotes", -5, [1, -2], None, output=buf,
        format="csv",
    )
    assert status == "COPY 1"
    import csv

    row = next(csv.reader(io.StringIO(buf.getvalue().decode())))
    assert row == [
        "it's a \"test\" \\ with; -- $2 $$ quotes",
        "$1",
        " $1 'x' ",
        "$2",
        "'$1",
        "5",
        "6",
        "{1,-2}",
        "",
    ]
    # A negative number right after a minus must not become a comment.
    buf = io.BytesIO()
    assert await pgc.copy_from_query("SELECT 1-$1, 2 - $1", -3, output=buf) == "COPY 1"
    assert buf.getvalue() == b"4\t5\n"
    await _assert_usable(pgc)


async def test_copy_from_query_wrong_arg_count(pgc: pg_client.Connection) -> None:
    with pytest.raises(exc.InterfaceError):
        await pgc.copy_from_query("SELECT $1::int, $2::int", 1, output=io.BytesIO())
    await _assert_usable(pgc)


# -- failures: C1 source fails, C2 slow source, C3 sink fails, C4 server error -------


class SourceBoom(Exception):
    pass


@pytest.mark.parametrize("fail_at", [0, 1, 5000])
async def test_copy_to_table_source_fails(pgc: pg_client.Connection, fail_at: int) -> None:
    table = await _table(pgc, "a int")
    boom = SourceBoom(f"source broke at {fail_at}")

    async def source() -> AsyncIterator[bytes]:
        for i in range(10_000):
            if i == fail_at:
                raise boom
            yield f"{i}\n".encode()

    with pytest.raises(SourceBoom) as info:
        await pgc.copy_to_table(table, source=source())
    assert info.value is boom
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc)


class FailingFile:
    def __init__(self, fail_after: int) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def read(self, n: int = -1) -> bytes:
        self.calls += 1
        if self.calls > self.fail_after:
            raise SourceBoom("read failed")
        return b"1\n2\n"


@pytest.mark.parametrize("fail_after", [0, 3])
async def test_copy_to_table_file_read_fails(pgc: pg_client.Connection, fail_after: int) -> None:
    table = await _table(pgc, "a int")
    with pytest.raises(SourceBoom):
        await pgc.copy_to_table(table, source=FailingFile(fail_after))
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc)


@pytest.mark.parametrize("fail_at", [0, 1, 20_000])
@pytest.mark.parametrize("is_async", [False, True])
async def test_copy_records_source_fails(
    pgc: pg_client.Connection, fail_at: int, is_async: bool
) -> None:
    table = await _table(pgc, "a int, b text")
    boom = SourceBoom("records broke")

    def gen() -> Iterator[tuple[int, str]]:
        for i in range(50_000):
            if i == fail_at:
                raise boom
            yield (i, "x" * 20)

    async def agen() -> AsyncIterator[tuple[int, str]]:
        for rec in gen():
            yield rec

    with pytest.raises(SourceBoom) as info:
        await pgc.copy_records_to_table(table, records=agen() if is_async else gen())
    assert info.value is boom
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc)


async def test_copy_source_fails_inside_transaction(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int")

    async def source() -> AsyncIterator[bytes]:
        yield b"1\n"
        raise SourceBoom()

    with pytest.raises(SourceBoom):
        async with pgc.transaction():
            await pgc.execute(f"INSERT INTO {table} VALUES (-1)")
            await pgc.copy_to_table(table, source=source())
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc)


async def test_copy_to_table_timeout_slow_source(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int")

    async def slow() -> AsyncIterator[bytes]:
        yield b"1\n"
        await asyncio.sleep(60)
        yield b"2\n"

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(asyncio.TimeoutError):
        await pgc.copy_to_table(table, source=slow(), timeout=0.2)
    assert loop.time() - started < 10
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc)


async def test_copy_records_timeout_slow_source(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int")

    async def slow() -> AsyncIterator[tuple[int]]:
        yield (1,)
        await asyncio.sleep(60)
        yield (2,)

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pgc.copy_records_to_table(table, records=slow(), timeout=0.2), 10)
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc)


async def test_copy_from_query_sink_fails(pgc: pg_client.Connection) -> None:
    calls = 0

    async def sink(chunk: Any) -> None:
        nonlocal calls
        calls += 1
        raise SourceBoom("sink broke")

    with pytest.raises(SourceBoom):
        await asyncio.wait_for(
            pgc.copy_from_query("SELECT i, repeat('y', 100) FROM generate_series(1, 200000) i",
                                output=sink),
            20,
        )
    assert calls == 1
    await _assert_usable(pgc)


async def test_copy_from_query_slow_sink_times_out(pgc: pg_client.Connection) -> None:
    async def sink(chunk: Any) -> None:
        await asyncio.sleep(60)

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(
            pgc.copy_from_query("SELECT generate_series(1, 100000)", output=sink, timeout=0.3),
            20,
        )
    await _assert_usable(pgc)


def _rows_with_bad(n: int, bad_at: int, pad: str = "") -> Iterator[bytes]:
    for i in range(1, n + 1):
        yield (f"abc\t{pad}\n" if i == bad_at else f"{i}\t{pad}\n").encode()


async def test_copy_server_error_mid_copy_in(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "a int, b text")

    async def source() -> AsyncIterator[bytes]:
        batch: list[bytes] = []
        for line in _rows_with_bad(100_000, 50_000):
            batch.append(line)
            if len(batch) == 1000:
                yield b"".join(batch)
                batch.clear()
        if batch:
            yield b"".join(batch)

    with pytest.raises(exc.InvalidTextRepresentationError) as info:
        await pgc.copy_to_table(table, source=source())
    assert isinstance(info.value, exc.DataError)
    assert info.value.sqlstate == "22P02"
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc)


async def test_copy_server_error_stops_streaming(pgc: pg_client.Connection) -> None:
    """C4: the client notices the server's error while sending, not after the source."""
    table = await _table(pgc, "a int, b text")
    total = 1_000_000
    produced = 0
    pad = "p" * 40

    async def source() -> AsyncIterator[bytes]:
        nonlocal produced
        batch: list[bytes] = []
        for line in _rows_with_bad(total, 50_000, pad):
            batch.append(line)
            produced += 1
            if len(batch) == 1000:
                yield b"".join(batch)
                batch.clear()
                await asyncio.sleep(0)
        yield b"".join(batch)

    with pytest.raises(exc.InvalidTextRepresentationError):
        await asyncio.wait_for(pgc.copy_to_table(table, source=source()), 60)
    # 46 MB in all; the error comes after ~2.3 MB. Streaming the whole source
    # regardless would mean the error is only seen at the end.
    assert produced < total, "the whole source was sent after the server had failed the COPY"
    await _assert_usable(pgc)


async def test_copy_to_table_refused_statement(pgc: pg_client.Connection) -> None:
    with pytest.raises(exc.UndefinedTableError):
        await pgc.copy_to_table(_name("missing"), source=b"1\n")
    table = await _table(pgc, "a int")
    with pytest.raises(exc.UndefinedColumnError):
        await pgc.copy_to_table(table, source=b"1\n", columns=["nope"])
    with pytest.raises(exc.UndefinedColumnError):
        await pgc.copy_records_to_table(table, records=[(1,)], columns=["nope"])
    await _assert_usable(pgc)


# -- data right behind the Query (no round trip for CopyInResponse) -------------------
#
# For sources that can be read ahead unseen (a list or tuple of records, a
# bytes-like object, a path), the data follows the Query at once. When the
# COPY fails before copy-in mode, the server drops that data; the caller gets
# the server's error and a connection in step.


class CountingList(list):  # type: ignore[type-arg]
    """A list (so it goes out right behind the Query) that counts the records read."""

    def __init__(self, items: Any, mark: int = 0) -> None:
        super().__init__(items)
        self.read = 0
        self.mark = mark
        self.reached = asyncio.Event()

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            self.read += 1
            if self.read == self.mark:
                self.reached.set()
            yield item


@pytest.fixture
async def role(pgc: pg_client.Connection) -> AsyncIterator[str]:
    """A role without privileges (for SET ROLE), dropped afterwards."""
    name = _name("role")
    await pgc.execute(f"CREATE ROLE {name} NOLOGIN")
    yield name
    await pgc.execute("RESET ROLE")
    await pgc.execute(f"DROP OWNED BY {name}; DROP ROLE {name}")


REFUSALS = ["missing_table", "missing_column", "bad_where", "no_privilege",
            "failed_transaction", "read_only_transaction"]


# copy_records_to_table looks the table and its columns up before the COPY,
# so a missing table or column never reaches the COPY there.
REFUSAL_CASES = [
    (api, refusal) for refusal in REFUSALS for api in ("records_list", "bytes", "path")
    if not (api == "records_list" and refusal in ("missing_table", "missing_column"))
]


@pytest.mark.parametrize(("api", "refusal"), REFUSAL_CASES)
async def test_copy_sent_early_refused_before_copy_in(
    pgc: pg_client.Connection, role: str, tmp_path: Path, api: str, refusal: str
) -> None:
    if refusal == "bad_where" and pgc.get_server_version() < (12, 0):
        pytest.skip("COPY ... WHERE needs PostgreSQL 12")
    # Not a temp table: a read-only transaction may write those.
    table = _name()
    await pgc.execute(f"CREATE TABLE {table} (a int, b text)")
    try:
        await _refused_before_copy_in(pgc, role, tmp_path, api, refusal, table)
    finally:
        await pgc.execute("RESET ROLE")
        await pgc.execute(f"DROP TABLE {table}")


async def _refused_before_copy_in(pgc: pg_client.Connection, role: str, tmp_path: Path,
                                  api: str, refusal: str, table: str) -> None:
    n = 1_000_000 if api == "records_list" else 100_000
    records = CountingList([(1, "x" * 20)] * n)
    data = b"1\tx\n" * n
    path = tmp_path / "data.txt"
    path.write_bytes(data)
    if api == "records_list":
        # The statement that looks the columns up is cached from here on:
        # in a failed transaction, or as another role, only the COPY is sent.
        await pgc.copy_records_to_table(table, records=[])
    target, kwargs = table, {}
    expected: type[Exception]
    if refusal == "missing_table":
        target, expected = _name("missing"), exc.UndefinedTableError
    elif refusal == "missing_column":
        kwargs, expected = {"columns": ["a", "nope"]}, exc.UndefinedColumnError
    elif refusal == "bad_where":
        kwargs, expected = {"where": "nope > 0"}, exc.UndefinedColumnError
    elif refusal == "no_privilege":
        await pgc.execute(f"GRANT SELECT ON {table} TO {role}")
        await pgc.execute(f"SET ROLE {role}")
        expected = exc.InsufficientPrivilegeError
    elif refusal == "failed_transaction":
        expected = exc.InFailedSQLTransactionError
    else:
        expected = exc.ReadOnlySQLTransactionError

    async def copy() -> str:
        if api == "records_list":
            return await pgc.copy_records_to_table(target, records=records, **kwargs)
        source: Any = data if api == "bytes" else path
        return await pgc.copy_to_table(target, source=source, **kwargs)

    with pytest.raises(expected):
        if refusal == "failed_transaction":
            async with pgc.transaction():
                with pytest.raises(exc.DivisionByZeroError):
                    await pgc.execute("SELECT 1 / 0")
                await copy()
        elif refusal == "read_only_transaction":
            async with pgc.transaction(readonly=True):
                await copy()
        else:
            await copy()
    await _assert_usable(pgc)
    await pgc.execute("RESET ROLE")
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    if api == "records_list":
        # Streaming stopped once the server's error was read: a few MB at most.
        assert records.read < n


# Records are encoded in binary by the client: no bad text from them.
MID_STREAM_CASES = [
    (api, failure) for failure in ("not_null", "check", "where_division", "bad_text")
    for api in ("records_list", "bytes") if not (api == "records_list" and failure == "bad_text")
]


@pytest.mark.parametrize(("api", "failure"), MID_STREAM_CASES)
async def test_copy_sent_early_fails_mid_stream(
    pgc: pg_client.Connection, api: str, failure: str
) -> None:
    if failure == "where_division" and pgc.get_server_version() < (12, 0):
        pytest.skip("COPY ... WHERE needs PostgreSQL 12")
    table = await _table(pgc, "a int NOT NULL, b text CHECK (b <> 'bad')")
    n, bad_at = 200_000, 150_000
    good = (1, "x" * 20)
    bad = {"not_null": (None, "x"), "check": (1, "bad"), "where_division": (0, "x"),
           "bad_text": (1, "x")}[failure]
    rows = [good] * bad_at + [bad] + [good] * (n - bad_at)
    kwargs = {"where": "1 / a = 1"} if failure == "where_division" else {}
    expected = {"not_null": exc.NotNullViolationError, "check": exc.CheckViolationError,
                "where_division": exc.DivisionByZeroError,
                "bad_text": exc.InvalidTextRepresentationError}[failure]
    with pytest.raises(expected):
        if api == "records_list":
            await pgc.copy_records_to_table(table, records=rows, **kwargs)
        else:
            lines = [f"{'' if a is None else a}\t{b}\n" for a, b in rows]
            if failure == "not_null":
                lines[bad_at] = "\\N\tx\n"
            elif failure == "bad_text":
                lines[bad_at] = "one\tx\n"
            await pgc.copy_to_table(table, source="".join(lines).encode(), **kwargs)
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc)


@pytest.mark.parametrize("how", ["timeout", "cancel"])
@pytest.mark.parametrize("api", ["records_list", "records_iterator", "bytes", "async_iterable"])
async def test_copy_abandoned_before_copy_in_response(
    pgc: pg_client.Connection, cluster: Any, api: str, how: str
) -> None:
    """Blocked on a lock short of copy-in mode, the server reads no CopyFail: a
    timeout or a cancelled task sends a CancelRequest, so the connection is
    usable at once, while the lock is still held, and nothing is inserted."""
    table = _name("cpl")
    await pgc.execute(f"CREATE TABLE {table} (a int)")
    # Look the columns up now: the lookup would wait for the lock too.
    await pgc.copy_records_to_table(table, records=[])
    locker = await pg_client.connect(cluster.dsn())
    tr = locker.transaction()
    await tr.start()
    await locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    loop = asyncio.get_running_loop()
    try:
        n = 1_000_000  # more than the socket buffers hold: the early path waits to drain
        rows = [(i,) for i in range(n)]
        data = b"1\n" * n

        def copy(timeout: float | None) -> Any:
            if api == "records_list":
                return pgc.copy_records_to_table(table, records=rows, timeout=timeout)
            if api == "records_iterator":
                return pgc.copy_records_to_table(table, records=iter(rows), timeout=timeout)
            source = data if api == "bytes" else _chunks(data, (65536,))
            return pgc.copy_to_table(table, source=source, timeout=timeout)

        started = loop.time()
        if how == "timeout":
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(copy(0.3), 10)
        else:
            task = asyncio.ensure_future(copy(None))
            task.add_done_callback(_retrieve)
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        assert loop.time() - started < 3
        await asyncio.wait_for(_assert_usable(pgc), 4)
        assert not locker.is_closed()
    finally:
        await tr.rollback()
        await locker.close()
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await pgc.execute(f"DROP TABLE {table}")


async def _fake_connect(server: FakeServer) -> pg_client.Connection:
    return await pg_client.connect(host=server.host, port=server.port, user="u",
                                   database="d", ssl=False)


@pytest.mark.parametrize("private", [True, False], ids=["bytes", "async_iterable"])
async def test_copy_data_follows_the_query_only_for_private_sources(private: bool) -> None:
    """On the wire: a bytes source goes out before CopyInResponse; an async
    iterable (the caller's) is read only once the server asked for data."""
    seen_before_response: list[Any] = []

    async def script(conn: FakeConn) -> None:
        await conn.accept_startup()
        query = await conn.expect(Query)
        if private:
            seen_before_response.append(await conn.expect(CopyData))
            seen_before_response.append(await conn.expect(CopyDone))
            conn.send(CopyInResponse(0, (0,)))
        else:
            await conn.sleep(0.2)
            # Not a byte after the Query.
            assert bytes(conn.received).endswith(query.encode())
            conn.send(CopyInResponse(0, (0,)))
            await conn.expect(CopyData)
            await conn.expect(CopyDone)
        conn.send(CommandComplete("COPY 1"), ReadyForQuery("I"))
        await conn.serve()

    read = []

    async def source() -> AsyncIterator[bytes]:
        read.append(True)
        yield b"1\n"

    async with FakeServer(script) as server:
        con = await _fake_connect(server)
        try:
            status = await con.copy_to_table("t", source=b"1\n" if private else source())
            assert status == "COPY 1"
            assert await con.fetchval("SELECT 1") == 1
        finally:
            await con.close()
    if private:
        assert seen_before_response == [CopyData(b"1\n"), CopyDone()]
    else:
        assert seen_before_response == [] and read == [True]


@pytest.mark.parametrize("response", [CopyOutResponse(0, (0,)), CopyBothResponse(0, (0,))],
                         ids=["CopyOutResponse", "CopyBothResponse"])
async def test_copy_sent_early_but_the_server_answers_another_copy(response: Any) -> None:
    """What CopyInOp does with the answer of a statement that is not COPY FROM
    STDIN (our SQL never is one): an InterfaceError, the connection in step."""

    async def script(conn: FakeConn) -> None:
        await conn.accept_startup()
        await conn.expect(Query)
        await conn.expect(CopyData)
        await conn.expect(CopyDone)
        conn.send(response, CopyData(b"x\n"), CopyDone(), CommandComplete("COPY 1"),
                  ReadyForQuery("I"))
        await conn.serve()

    async with FakeServer(script) as server:
        con = await _fake_connect(server)
        try:
            with pytest.raises(exc.InterfaceError, match="did not start a COPY FROM STDIN"):
                await con.copy_to_table("t", source=b"1\n")
            assert await con.fetchval("SELECT 1") == 1
        finally:
            await con.close()


# -- C7: large values ------------------------------------------------------------------


async def test_copy_large_values(pgc: pg_client.Connection) -> None:
    table = await _table(pgc, "id int, t text, b bytea")
    big_text = ("0123456789abcdéf" * 65536)[: 1024 * 1024]
    big_bytes = os.urandom(1024 * 1024)
    # text format in: the text value as is, bytea as \\x hex
    line = f"1\t{big_text}\t\\\\x{big_bytes.hex()}\n".encode()
    assert await pgc.copy_to_table(table, source=_chunks(line, (65536, 1, 300_000))) == "COPY 1"
    # binary records in
    assert await pgc.copy_records_to_table(table, records=[(2, big_text, big_bytes)]) == "COPY 1"
    rows = await pgc.fetch(f"SELECT id, t, b FROM {table} ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, big_text, big_bytes), (2, big_text, big_bytes)]
    # out, binary and text
    buf = io.BytesIO()
    assert await pgc.copy_from_query(
        f"SELECT t, b FROM {table} WHERE id = 1", output=buf, format="csv"
    ) == "COPY 1"
    assert buf.getvalue() == f"{big_text},\\x{big_bytes.hex()}\n".encode()
    dst = await _table(pgc, "id int, t text, b bytea")
    out = io.BytesIO()
    assert await pgc.copy_from_table(table, output=out, format="binary") == "COPY 2"
    assert await pgc.copy_to_table(dst, source=out.getvalue(), format="binary") == "COPY 2"
    assert await pgc.fetchval(
        f"SELECT count(*) FROM {dst} WHERE t = $1 AND b = $2", big_text, big_bytes
    ) == 2


@pytest.mark.slow
async def test_100mb_values_in_and_out(pgc: pg_client.Connection) -> None:
    """C7's large case: 100 MB fields through Bind, DataRow and binary COPY."""
    size = 100 * 1024 * 1024
    big = os.urandom(size)
    assert await pgc.fetchval("SELECT length($1::bytea)", big) == size
    assert await pgc.fetchval("SELECT $1::bytea", big) == big
    assert await pgc.fetchval("SELECT length(repeat('x', $1))", size) == size
    text = await pgc.fetchval("SELECT repeat('ab', $1)", size // 2)
    assert len(text) == size and text[:4] == "abab"
    table = await _table(pgc, "id int, b bytea")
    assert await pgc.copy_records_to_table(table, records=[(1, big)]) == "COPY 1"
    out = io.BytesIO()
    assert await pgc.copy_from_table(table, output=out, format="binary") == "COPY 1"
    assert big in out.getvalue()
    assert await pgc.fetchval(f"SELECT b = $1 FROM {table}", big) is True
    await _assert_usable(pgc)


# -- T9: cancel during COPY ------------------------------------------------------------


def _retrieve(task: asyncio.Future[Any]) -> None:
    # A test that fails early must not leave "exception was never retrieved" behind.
    if not task.cancelled():
        task.exception()


async def _started(task: asyncio.Future[Any], event: asyncio.Event) -> None:
    """Wait until *event* is set (the COPY is under way); fail early if *task* ended."""
    waiter = asyncio.ensure_future(event.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task in done:
        task.result()  # raises what the COPY raised
        pytest.fail("the COPY finished before it could be cancelled")
    if waiter not in done:
        task.cancel()
        pytest.fail("the COPY did not start within 10 s")
    await asyncio.sleep(0.05)


@pytest.mark.parametrize("api", ["copy_to_table", "copy_records_to_table"])
async def test_cancel_during_copy_in(pgc: pg_client.Connection, api: str) -> None:
    table = await _table(pgc, "a int")
    sent = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        for i in range(1_000_000):
            if i == 100:
                sent.set()
            await asyncio.sleep(0.001 if i >= 100 else 0)
            yield f"{i}\n".encode()

    async def records() -> AsyncIterator[tuple[int]]:
        for i in range(1_000_000):
            if i == 100:
                sent.set()
            await asyncio.sleep(0.001 if i >= 100 else 0)
            yield (i,)

    if api == "copy_to_table":
        task = asyncio.ensure_future(pgc.copy_to_table(table, source=source()))
    else:
        task = asyncio.ensure_future(pgc.copy_records_to_table(table, records=records()))
    task.add_done_callback(_retrieve)
    await _started(task, sent)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert await asyncio.wait_for(pgc.fetchval(f"SELECT count(*) FROM {table}"), 15) == 0
    await _assert_usable(pgc)


async def test_cancel_during_copy_from_query(pgc: pg_client.Connection) -> None:
    got = asyncio.Event()
    chunks = 0

    async def sink(chunk: Any) -> None:
        nonlocal chunks
        chunks += 1
        got.set()
        await asyncio.sleep(0.01)

    task = asyncio.ensure_future(
        pgc.copy_from_query("SELECT i, repeat('z', 200) FROM generate_series(1, 5000000) i",
                            output=sink)
    )
    task.add_done_callback(_retrieve)
    await _started(task, got)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    # usable or closed; here the cancel is clean so we expect usable
    await asyncio.wait_for(_assert_usable(pgc), 15)
