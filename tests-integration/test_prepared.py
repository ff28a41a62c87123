"""Connection.prepare() and the PreparedStatement API against a real server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import acon, close_quietly, con, connect, exc, pg, unique

__all__ = ["acon", "con"]


async def _table(c: Any, rows: int = 5) -> str:
    t = unique("prep")
    await c.execute(f"CREATE TEMP TABLE {t} (id int PRIMARY KEY, name text)")
    await c.execute(f"INSERT INTO {t} SELECT g, 'n' || g FROM generate_series(1, {rows}) g")
    return t


async def test_fetch_methods(con: Any) -> None:
    t = await _table(con)
    stmt = await con.prepare(f"SELECT id, name FROM {t} WHERE id <= $1 ORDER BY id")
    rows = await stmt.fetch(3)
    assert [tuple(r) for r in rows] == [(1, "n1"), (2, "n2"), (3, "n3")]
    assert tuple(await stmt.fetchrow(2)) == (1, "n1")
    assert await stmt.fetchrow(0) is None
    assert await stmt.fetchval(5) == 1
    assert await stmt.fetchval(5, column=1) == "n1"
    assert await stmt.fetchval(0) is None
    # reusable many times with different arguments
    for n in range(6):
        assert len(await stmt.fetch(n)) == n
    assert await stmt.fetch(2, timeout=5) == await stmt.fetch(2)


async def test_fetchmany_and_executemany(con: Any) -> None:
    t = await _table(con, rows=0)
    ins = await con.prepare(f"INSERT INTO {t} VALUES ($1, $2)")
    assert await ins.executemany([(1, "a"), (2, "b"), (3, "c")]) is None
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 3
    with pytest.raises(exc.UniqueViolationError):
        await ins.executemany([(4, "d"), (1, "dup")])
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 3  # atomic

    ret = await con.prepare(f"UPDATE {t} SET name = $2 WHERE id = $1 RETURNING id, name")
    rows = await ret.fetchmany([(1, "x"), (3, "z"), (99, "none")])
    assert [tuple(r) for r in rows] == [(1, "x"), (3, "z")]
    assert await ret.fetchmany([]) == []


async def test_get_query_statusmsg_name(con: Any, acon: Any) -> None:
    query = "SELECT generate_series(1, $1::int) AS g"
    stmt = await con.prepare(query)
    assert stmt.get_query() == query
    await stmt.fetch(3)
    assert stmt.get_statusmsg() == "SELECT 3"
    # fetchval/fetchrow stop after one row (portal suspended): asyncpg then
    # reports no status. Same calls through asyncpg for reference:
    ref_stmt = await acon.prepare(query)
    for s in (stmt, ref_stmt):
        await s.fetchval(7)
    assert stmt.get_statusmsg() == ref_stmt.get_statusmsg()
    name = stmt.get_name()
    assert name.startswith("__asyncpg_stmt_")
    assert (
        await con.fetchval("SELECT statement FROM pg_prepared_statements WHERE name = $1", name)
        == query
    )

    t = await _table(con, rows=0)
    ins = await con.prepare(f"INSERT INTO {t} VALUES ($1, 'x')")
    await ins.fetch(1)
    assert ins.get_statusmsg() == "INSERT 0 1"


async def test_explicit_name(con: Any) -> None:
    name = unique("my_stmt")
    stmt = await con.prepare("SELECT $1::int + 1", name=name)
    assert stmt.get_name() == name
    assert await stmt.fetchval(1) == 2
    assert (
        await con.fetchval("SELECT count(*) FROM pg_prepared_statements WHERE name = $1", name) == 1
    )
    # the same name again is a server-side duplicate
    with pytest.raises(exc.DuplicatePreparedStatementError):
        await con.prepare("SELECT 2", name=name)
    assert await con.fetchval("SELECT 1") == 1


async def test_get_parameters_and_attributes(con: Any, acon: Any) -> None:
    query = (
        "SELECT $1::int AS a, $2::text[] AS b, $3::int4range AS c, $4::numeric AS d, "
        "$5::regclass AS e, ROW(1, 'x') AS f, 1.5::float8 AS \"quoted name\""
    )
    ours = await con.prepare(query)
    theirs = await acon.prepare(query)
    params = ours.get_parameters()
    assert isinstance(params, tuple)
    assert all(isinstance(p, pg.Type) for p in params)
    assert [tuple(p) for p in params] == [tuple(p) for p in theirs.get_parameters()]
    assert params[0].name == "int4" and params[0].kind == "scalar"
    assert params[0].schema == "pg_catalog"
    assert params[1].kind == "array" and params[1].name == "text[]"  # asyncpg spells it so
    assert params[2].kind == "range"

    attrs = ours.get_attributes()
    assert isinstance(attrs, tuple)
    assert all(isinstance(a, pg.Attribute) for a in attrs)
    expected = theirs.get_attributes()
    assert [a.name for a in attrs] == [a.name for a in expected]
    assert [tuple(a.type) for a in attrs] == [tuple(a.type) for a in expected]
    assert attrs[5].type.name == "record"
    assert attrs[6].name == "quoted name"

    none = await con.prepare("SELECT")
    assert none.get_parameters() == ()
    assert none.get_attributes() == ()
    ddl = await con.prepare("SET search_path = public")
    assert ddl.get_attributes() == ()


async def test_explain(con: Any, acon: Any) -> None:
    t = await _table(con)
    stmt = await con.prepare(f"SELECT * FROM {t} WHERE id = $1")
    plan = await stmt.explain(2)
    assert isinstance(plan, list) and len(plan) == 1
    assert "Plan" in plan[0]
    assert "Output" in plan[0]["Plan"]  # VERBOSE
    assert "Actual Rows" not in plan[0]["Plan"]

    analyzed = await stmt.explain(2, analyze=True)
    assert analyzed[0]["Plan"]["Actual Rows"] == 1
    assert "Execution Time" in analyzed[0]

    # the same shape as asyncpg's explain
    at = unique("prep_ref")
    await acon.execute(f"CREATE TEMP TABLE {at} (id int PRIMARY KEY, name text)")
    ref_plan = await (await acon.prepare(f"SELECT * FROM {at} WHERE id = $1")).explain(2)
    assert sorted(plan[0]) == sorted(ref_plan[0])


async def test_explain_analyze_is_rolled_back(con: Any) -> None:
    t = await _table(con, rows=0)
    stmt = await con.prepare(f"INSERT INTO {t} VALUES ($1, 'x') RETURNING id")
    plan = await stmt.explain(10, analyze=True)
    assert plan[0]["Plan"]["Node Type"] == "ModifyTable"
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 0
    assert not con.is_in_transaction()

    # inside an outer transaction it is rolled back to a savepoint
    async with con.transaction():
        await con.execute(f"INSERT INTO {t} VALUES (1, 'kept')")
        await stmt.explain(11, analyze=True)
        assert await con.fetchval(f"SELECT count(*) FROM {t}") == 1
    assert await con.fetchval(f"SELECT array_agg(id) FROM {t}") == [1]


async def test_cursor(con: Any) -> None:
    stmt = await con.prepare("SELECT g FROM generate_series(1, $1) g")
    async with con.transaction():
        got = [r[0] async for r in stmt.cursor(10, prefetch=3)]
        assert got == list(range(1, 11))
        cur = await stmt.cursor(5)
        assert [r[0] for r in await cur.fetch(2)] == [1, 2]
        assert (await cur.fetchrow())[0] == 3
    with pytest.raises(exc.NoActiveSQLTransactionError):
        async for _ in stmt.cursor(3):
            pass


async def test_record_class(con: Any) -> None:
    class MyRecord(pg.Record):  # type: ignore[misc, name-defined]
        def total(self) -> int:
            return sum(self.values())

    stmt = await con.prepare("SELECT $1::int AS a, $2::int AS b", record_class=MyRecord)
    row = await stmt.fetchrow(1, 2)
    assert type(row) is MyRecord
    assert row.total() == 3
    assert all(type(r) is MyRecord for r in await stmt.fetch(3, 4))
    # the plain statement is unaffected
    assert type(await con.fetchrow("SELECT $1::int AS a, $2::int AS b", 1, 2)) is pg.Record

    class BadRecord(pg.Record):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            pass

    with pytest.raises(exc.InterfaceError):
        await con.prepare("SELECT 1", record_class=BadRecord)


async def test_arguments_checked(con: Any) -> None:
    stmt = await con.prepare("SELECT $1::int")
    with pytest.raises(exc.InterfaceError, match="expects 1 argument"):
        await stmt.fetch()
    with pytest.raises(exc.DataError, match=r"\$1"):
        await stmt.fetch("nope")
    assert await stmt.fetchval(3) == 3


async def test_prepare_errors(con: Any) -> None:
    with pytest.raises(exc.PostgresSyntaxError):
        await con.prepare("SELEC 1")
    with pytest.raises(exc.UndefinedTableError):
        await con.prepare(f"SELECT * FROM {unique('missing')}")
    assert await con.fetchval("SELECT 1") == 1


async def test_timeout(con: Any) -> None:
    stmt = await con.prepare("SELECT pg_sleep($1)")
    with pytest.raises(asyncio.TimeoutError):
        await stmt.fetch(10, timeout=0.1)
    assert await stmt.fetchval(0) is None
    assert not con.is_in_transaction()


async def test_statement_after_close(cluster: Any) -> None:
    c = await connect(cluster)
    try:
        stmt = await c.prepare("SELECT 1")
        assert await stmt.fetchval() == 1
    finally:
        await close_quietly(c)
    with pytest.raises(exc.InterfaceError):
        await stmt.fetchval()


async def test_statement_survives_other_queries(con: Any) -> None:
    stmt = await con.prepare("SELECT $1::text || '!'")
    for i in range(20):
        await con.fetchval(f"SELECT {i}")  # distinct queries churn the cache
    assert await stmt.fetchval("hi") == "hi!"
