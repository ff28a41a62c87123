"""The prepared-statement cache: size limits, eviction, invalidation."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import pg_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import (
    acon,
    close_quietly,
    con,
    connect,
    exc,
    ref_connect,
    unique,
)

__all__ = ["acon", "con"]

COUNT = "SELECT count(*) FROM pg_prepared_statements"


async def _server_statements(c: Any) -> set[str]:
    # Through the simple protocol, so that looking does not add a statement.
    t = unique("ps")
    await c.execute(f"CREATE TEMP TABLE {t} AS SELECT statement FROM pg_prepared_statements")
    rows = await c.fetch(f"SELECT statement FROM {t}")
    await c.execute(f"DROP TABLE {t}")
    return {r[0] for r in rows if not r[0].startswith("CREATE TEMP TABLE")} - {
        f"SELECT statement FROM {t}"
    }


async def test_cache_disabled(cluster: Any) -> None:
    c = await connect(cluster, statement_cache_size=0)
    try:
        for i in range(5):
            assert await c.fetchval("SELECT $1::int * 2", i) == i * 2
            assert [tuple(r) for r in await c.fetch("SELECT $1::text, $2::int", "a", i)] == [
                ("a", i)
            ]
        await c.executemany("SELECT $1::int", [(1,), (2,)])
        assert await c.fetchval(COUNT) == 0  # unnamed statements only
        # an explicit prepare() still works, also after other statements ran
        stmt = await c.prepare("SELECT $1::int + 1")
        assert await stmt.fetchval(1) == 2
        assert await c.fetchval("SELECT $1::text", "other") == "other"
        assert await stmt.fetchval(2) == 3
        assert [r[0] for r in await stmt.fetch(3)] == [4]
        async with c.transaction():
            assert [r[0] async for r in c.cursor("SELECT generate_series(1, 3)")] == [1, 2, 3]
    finally:
        await close_quietly(c)


async def test_cache_eviction(cluster: Any) -> None:
    c = await connect(cluster, statement_cache_size=2)
    try:
        for round_ in range(3):
            for i in range(5):
                q = f"SELECT $1::int + {i} AS v"
                assert await c.fetchval(q, round_) == round_ + i
                rows = await c.fetch(q, 10)
                assert [tuple(r) for r in rows] == [(10 + i,)]
        # bounded: the cache size, plus at most the statement doing the counting
        assert await c.fetchval(COUNT) <= 3
        for i in range(20):
            await c.fetchval(f"SELECT {i}")
        assert await c.fetchval(COUNT) <= 3
        # a simple-protocol query right after an eviction
        await c.fetchval("SELECT 'evict me'")
        await c.fetchval("SELECT 'and me'")
        assert await c.execute("SELECT 1") == "SELECT 1"
        assert await c.fetchval("SELECT 2") == 2
    finally:
        await close_quietly(c)


async def test_eviction_then_simple_query_after_prepare(cluster: Any) -> None:
    c = await connect(cluster, statement_cache_size=1)
    try:
        s1 = await c.prepare("SELECT 1")
        s2 = await c.prepare("SELECT 2")
        assert await c.execute("SELECT 3") == "SELECT 1"
        assert (await s1.fetchval(), await s2.fetchval()) == (1, 2)
        assert await c.execute("BEGIN; COMMIT") == "COMMIT"
    finally:
        await close_quietly(c)


async def test_cached_statement_reused(con: Any) -> None:
    q = "SELECT $1::int AS reuse_marker"
    for i in range(5):
        assert await con.fetchval(q, i) == i
    statements = await _server_statements(con)
    assert sum(1 for s in statements if s == q) == 1


async def test_max_cacheable_statement_size(cluster: Any) -> None:
    c = await connect(cluster, max_cacheable_statement_size=60)
    try:
        short = "SELECT $1::int AS short_one"
        long_ = "SELECT $1::int AS long_one /* " + "x" * 100 + " */"
        for _ in range(3):
            assert await c.fetchval(short, 1) == 1
            assert await c.fetchval(long_, 2) == 2
        statements = await _server_statements(c)
        assert short in statements
        assert long_ not in statements
    finally:
        await close_quietly(c)


async def test_invalid_cache_settings(cluster: Any) -> None:
    for kwargs in (
        {"statement_cache_size": -1},
        {"statement_cache_size": True},
        {"max_cacheable_statement_size": -1},
        {"max_cached_statement_lifetime": -1},
    ):
        with pytest.raises(ValueError):
            await connect(cluster, **kwargs)


@pytest.mark.parametrize(
    ("alter", "expected_keys", "expected_first"),
    [
        ("ADD COLUMN c int DEFAULT 7", ["a", "b", "c"], (1, "x", 7)),
        ("DROP COLUMN b", ["a"], (1,)),
        ("ALTER COLUMN a TYPE text", ["a", "b"], ("1", "x")),
    ],
)
async def test_schema_change_outside_transaction(
    con: Any, alter: str, expected_keys: list[str], expected_first: tuple[Any, ...]
) -> None:
    t = unique("sc")
    await con.execute(f"CREATE TABLE {t} (a int, b text); INSERT INTO {t} VALUES (1, 'x')")
    try:
        q = f"SELECT * FROM {t}"
        first = await con.fetch(q)
        assert [tuple(r) for r in first] == [(1, "x")]
        await con.execute(f"ALTER TABLE {t} {alter}")
        rows = await con.fetch(q)
        assert [list(r.keys()) for r in rows] == [expected_keys]
        assert [tuple(r) for r in rows] == [expected_first]
        assert tuple(await con.fetchrow(q)) == expected_first
        assert not con.is_in_transaction()
    finally:
        await con.execute(f"DROP TABLE {t}")


async def test_schema_change_inside_transaction(con: Any, acon: Any) -> None:
    """Inside a transaction asyncpg can't re-prepare: InvalidCachedStatementError."""
    messages = []
    for c in (acon, con):
        t = unique("sctx")
        await c.execute(f"CREATE TABLE {t} (a int, b text); INSERT INTO {t} VALUES (1, 'x')")
        try:
            q = f"SELECT * FROM {t}"
            await c.fetch(q)
            with pytest.raises(Exception) as info:
                async with c.transaction():
                    await c.execute(f"ALTER TABLE {t} ALTER COLUMN a TYPE text")
                    await c.fetch(q)
            messages.append((type(info.value).__name__, str(info.value)))
            assert not c.is_in_transaction()
            # after the transaction it works again
            assert [tuple(r) for r in await c.fetch(q)] == [(1, "x")]
        finally:
            await c.execute(f"DROP TABLE {t}")
    assert messages[0][0] == "InvalidCachedStatementError"
    assert messages[1] == messages[0]


async def test_set_type_codec_clears_cache(con: Any) -> None:
    q = """SELECT '{"a": [1, 2]}'::json"""
    assert await con.fetchval(q) == '{"a": [1, 2]}'
    await con.set_type_codec("json", schema="pg_catalog", encoder=json.dumps, decoder=json.loads)
    assert await con.fetchval(q) == {"a": [1, 2]}
    assert await con.fetchval("SELECT $1::json", {"b": None}) == {"b": None}
    await con.reset_type_codec("json", schema="pg_catalog")
    assert await con.fetchval(q) == '{"a": [1, 2]}'


async def test_composite_change_and_reload_schema_state(cluster: Any, acon: Any) -> None:
    """asyncpg: a changed composite type raises OutdatedSchemaCacheError once
    (and drops its type cache), so the next call decodes the new shape.
    reload_schema_state() gets there without the error."""
    typ, t = unique("ct"), unique("cttab")
    setup = await ref_connect(cluster)
    await setup.execute(
        f"CREATE TYPE {typ} AS (a int, b text); CREATE TABLE {t} (id int, c {typ});"
        f"INSERT INTO {t} VALUES (1, (1, 'x'))"
    )
    c = await connect(cluster)
    try:
        q = f"SELECT c FROM {t}"
        outcomes: list[list[str]] = []
        for client in (acon, c):
            assert tuple(await client.fetchval(q)) == (1, "x")
        await setup.execute(f"ALTER TYPE {typ} ADD ATTRIBUTE z int")
        for client in (acon, c):
            seen = []
            for _ in range(2):
                try:
                    seen.append(repr(tuple(await client.fetchval(q))))
                except Exception as e:
                    seen.append(type(e).__name__)
            outcomes.append(seen)
        assert outcomes[0] == ["OutdatedSchemaCacheError", "(1, 'x', None)"]
        assert outcomes[1] == outcomes[0]

        await setup.execute(f"ALTER TYPE {typ} DROP ATTRIBUTE z")
        await c.reload_schema_state()
        assert tuple(await c.fetchval(q)) == (1, "x")
        assert not c.is_in_transaction()
    finally:
        await close_quietly(c)
        await setup.execute(f"DROP TABLE {t}; DROP TYPE {typ}")
        await setup.close()


async def test_reload_schema_state_after_enum_recreated(cluster: Any) -> None:
    typ = unique("en")
    c = await connect(cluster)
    try:
        await c.execute(f"CREATE TYPE {typ} AS ENUM ('a', 'b')")
        assert await c.fetchval(f"SELECT 'a'::{typ}") == "a"
        assert await c.fetchval(f"SELECT $1::{typ}", "b") == "b"
        await c.execute(f"DROP TYPE {typ}; CREATE TYPE {typ} AS (x int, y int)")
        await c.reload_schema_state()
        assert tuple(await c.fetchval(f"SELECT ROW(1, 2)::{typ}")) == (1, 2)
        assert tuple(await c.fetchval(f"SELECT $1::{typ}", (3, 4))) == (3, 4)
    finally:
        await c.execute(f"DROP TYPE IF EXISTS {typ}")
        await close_quietly(c)


async def test_statement_lifetime_zero_means_forever(cluster: Any) -> None:
    c = await connect(cluster, max_cached_statement_lifetime=0)
    try:
        q = "SELECT $1::int AS forever"
        for i in range(3):
            assert await c.fetchval(q, i) == i
        statements = await _server_statements(c)
        assert q in statements
    finally:
        await close_quietly(c)


async def test_statement_lifetime_expires(cluster: Any) -> None:
    """After max_cached_statement_lifetime seconds a cached statement leaves
    the cache and is closed on the server; the next run prepares it again."""
    c = await connect(cluster, max_cached_statement_lifetime=1)
    try:
        q = "SELECT $1::int AS short_lived"
        assert await c.fetchval(q, 1) == 1
        assert q in await _server_statements(c)
        await asyncio.sleep(1.3)
        # The Close goes out with the next request.
        assert q not in await _server_statements(c)
        assert await c.fetchval(q, 2) == 2
        assert await c.fetchrow(q, 3) == (3,)
        assert q in await _server_statements(c)
    finally:
        await close_quietly(c)


async def test_statement_lifetime_keeps_prepared_statement(cluster: Any) -> None:
    """A statement a PreparedStatement still uses outlives its cache entry."""
    c = await connect(cluster, max_cached_statement_lifetime=1)
    try:
        q = "SELECT $1::int AS kept_by_prepare"
        assert await c.fetchval(q, 1) == 1
        ps = await c.prepare(q)
        await asyncio.sleep(1.3)
        assert await ps.fetchval(5) == 5
        assert await c.fetchval(q, 6) == 6
    finally:
        await close_quietly(c)


async def test_close_stops_statement_timers(cluster: Any) -> None:
    """Closing the connection cancels the statements' expiry timers (a pending
    timer would keep the closed connection alive for the whole lifetime)."""
    c = await connect(cluster, max_cached_statement_lifetime=300)
    q = "SELECT $1::int AS timed"
    assert await c.fetchval(q, 1) == 1
    stmts = list(c._stmt_cache.values())
    assert stmts and all(s.expiry is not None for s in stmts)
    handles = [s.expiry for s in stmts]
    await c.close()
    assert all(s.expiry is None for s in stmts)
    assert all(h.cancelled() for h in handles)


async def test_record_class_and_default_share_nothing_wrongly(cluster: Any) -> None:
    """The cache keys by query text for the connection's record class and by
    (query, class, ignore_custom_codec) otherwise: each run gets rows of the
    class it asked for, whatever ran before."""

    class Mine(pg_client.Record):  # type: ignore[misc]
        pass

    c = await connect(cluster)
    try:
        q = "SELECT 1 AS a"
        first = await c.fetchrow(q)
        assert type(first) is pg_client.Record
        mine = await c.fetchrow(q, record_class=Mine)
        assert type(mine) is Mine
        again = await c.fetchrow(q)
        assert type(again) is pg_client.Record
        same = await c.fetchrow(q, record_class=pg_client.Record)
        assert type(same) is pg_client.Record
        rows = await c.fetch(q, record_class=Mine)
        assert type(rows[0]) is Mine
    finally:
        await close_quietly(c)


async def test_failed_prepare_in_transaction_then_rollback(con: Any) -> None:
    """A statement that fails to prepare inside a failed transaction must not
    break the simple-protocol ROLLBACK that follows."""
    await con.execute("BEGIN")
    with pytest.raises(exc.DivisionByZeroError):
        await con.execute("SELECT 1 / 0")
    with pytest.raises(exc.InFailedSQLTransactionError):
        await con.fetchval("SELECT $1::int", 1)
    assert await con.execute("ROLLBACK") == "ROLLBACK"
    assert await con.fetchval("SELECT $1::int", 1) == 1
