"""Connection.cursor(): iteration with prefetch, awaited cursors, errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import acon, con, exc, pg

__all__ = ["acon", "con"]

SERIES = "SELECT g, g::text AS s FROM generate_series(1, $1) g"


async def test_cursor_outside_transaction(con: Any) -> None:
    with pytest.raises(exc.NoActiveSQLTransactionError):
        async for _ in con.cursor(SERIES, 3):
            pass
    with pytest.raises(exc.NoActiveSQLTransactionError):
        await con.cursor(SERIES, 3)
    assert isinstance(exc.NoActiveSQLTransactionError("x"), exc.PostgresError)
    assert await con.fetchval("SELECT 1") == 1
    assert not con.is_in_transaction()


async def test_cursor_in_manual_transaction(con: Any) -> None:
    # A transaction started with plain BEGIN counts too (the server's state decides).
    await con.execute("BEGIN")
    try:
        assert [r[0] async for r in con.cursor(SERIES, 3)] == [1, 2, 3]
    finally:
        await con.execute("ROLLBACK")


@pytest.mark.parametrize("prefetch", [None, 1, 2, 7, 50, 10_000])
@pytest.mark.parametrize("count", [0, 1, 49, 50, 51, 333])
async def test_iterate(con: Any, prefetch: int | None, count: int) -> None:
    async with con.transaction():
        rows = [r async for r in con.cursor(SERIES, count, prefetch=prefetch)]
    assert [tuple(r) for r in rows] == [(i, str(i)) for i in range(1, count + 1)]
    assert all(type(r) is pg.Record for r in rows)


async def test_iterate_early_break_then_reuse_connection(con: Any) -> None:
    async with con.transaction():
        async for r in con.cursor(SERIES, 1000, prefetch=10):
            if r[0] == 15:
                break
        # the connection is fine for other work inside the same transaction
        assert await con.fetchval("SELECT 2") == 2
        assert [r[0] async for r in con.cursor(SERIES, 3)] == [1, 2, 3]
    assert not con.is_in_transaction()


async def test_exhausted_portal_closed_with_the_next_request(con: Any) -> None:
    """Iterating to the end closes the portal without a round trip of its own:
    its Close goes out ahead of the next request, which sees it closed."""
    portals = "SELECT count(*) FROM pg_cursors WHERE name LIKE '\\_\\_pgc\\_portal\\_%'"
    async with con.transaction():
        assert [r[0] async for r in con.cursor(SERIES, 3)] == [1, 2, 3]  # prepares
        sent = con._query_count
        assert [r[0] async for r in con.cursor(SERIES, 5, prefetch=10)] == [1, 2, 3, 4, 5]
        assert con._query_count == sent + 1  # Bind + Execute only
        assert await con.fetchval(portals) == 0
        # A portal left open (the loop broke off) stays until the transaction ends.
        async for _row in con.cursor(SERIES, 5, prefetch=2):
            break
        assert await con.fetchval(portals) == 1
        # The next request fails: the Closes before it, under their own Sync, still count.
        assert [r[0] async for r in con.cursor(SERIES, 2)] == [1, 2]
        with pytest.raises(exc.DivisionByZeroError):
            await con.execute("SELECT 1/0")
    assert await con.fetchval(portals) == 0
    assert await con.fetchval("SELECT 3") == 3


async def test_awaited_cursor(con: Any) -> None:
    async with con.transaction():
        cur = await con.cursor(SERIES, 10)
        first = await cur.fetch(3)
        assert isinstance(first, list)
        assert [tuple(r) for r in first] == [(1, "1"), (2, "2"), (3, "3")]
        row = await cur.fetchrow()
        assert tuple(row) == (4, "4")
        assert await cur.forward(2) == 2
        assert (await cur.fetchrow())["g"] == 7
        rest = await cur.fetch(100)
        assert [r[0] for r in rest] == [8, 9, 10]
        # exhausted
        assert await cur.fetch(5) == []
        assert await cur.fetchrow() is None
        assert await cur.forward(3) == 0


async def test_forward_past_end(con: Any) -> None:
    async with con.transaction():
        cur = await con.cursor(SERIES, 5)
        assert await cur.forward(3) == 3
        assert await cur.forward(10) == 2
        assert await cur.fetchrow() is None
        cur2 = await con.cursor(SERIES, 5)
        assert await cur2.forward(5) == 5
        assert await cur2.fetch(1) == []


async def test_several_cursors_interleaved(con: Any) -> None:
    async with con.transaction():
        a = await con.cursor(SERIES, 10)
        b = await con.cursor("SELECT g * 100 FROM generate_series(1, $1) g", 10)
        assert [r[0] for r in await a.fetch(2)] == [1, 2]
        assert [r[0] for r in await b.fetch(2)] == [100, 200]
        assert (await a.fetchrow())[0] == 3
        assert (await b.fetchrow())[0] == 300


async def test_prefetch_on_awaited_cursor(con: Any, acon: Any) -> None:
    for c, errors in ((acon, None), (con, exc)):
        async with c.transaction():
            with pytest.raises(Exception) as info:
                await c.cursor(SERIES, 3, prefetch=10)
            if errors is None:
                expected = info.value
            else:
                assert isinstance(info.value, errors.InterfaceError)
                assert str(info.value) == str(expected)


@pytest.mark.parametrize("n", [0, -1])
async def test_non_positive_n(con: Any, acon: Any, n: int) -> None:
    for method in ("fetch", "forward"):
        messages = []
        for c in (acon, con):
            async with c.transaction():
                cur = await c.cursor(SERIES, 3)
                with pytest.raises(Exception) as info:
                    await getattr(cur, method)(n)
                messages.append((type(info.value).__name__, str(info.value)))
                # the cursor still works afterwards
                assert (await cur.fetchrow())[0] == 1
        assert messages[0] == messages[1]
        assert messages[1][0] == "InterfaceError"


@pytest.mark.parametrize("prefetch", [0, -5])
async def test_non_positive_prefetch(con: Any, prefetch: int) -> None:
    async with con.transaction():
        with pytest.raises(exc.InterfaceError):
            async for _ in con.cursor(SERIES, 3, prefetch=prefetch):
                pass


async def test_cursor_record_class(con: Any) -> None:
    class MyRecord(pg.Record):  # type: ignore[misc, name-defined]
        pass

    async with con.transaction():
        rows = [r async for r in con.cursor(SERIES, 3, record_class=MyRecord, prefetch=2)]
        assert [type(r) for r in rows] == [MyRecord] * 3
        cur = await con.cursor(SERIES, 3, record_class=MyRecord)
        assert type(await cur.fetchrow()) is MyRecord
        assert {type(r) for r in await cur.fetch(2)} == {MyRecord}


async def test_cursor_error_in_query(con: Any) -> None:
    with pytest.raises(exc.DivisionByZeroError):
        async with con.transaction():
            async for _ in con.cursor(
                "SELECT 1 / (g - 3) FROM generate_series(1, 5) g", prefetch=1
            ):
                pass
    assert not con.is_in_transaction()
    assert await con.fetchval("SELECT 1") == 1


async def test_cursor_used_after_transaction(con: Any, acon: Any) -> None:
    names = []
    for c in (acon, con):
        async with c.transaction():
            cur = await c.cursor(SERIES, 10)
            await cur.fetch(1)
        with pytest.raises(Exception) as info:
            await cur.fetch(1)
        names.append(type(info.value).__name__)
        assert await c.fetchval("SELECT 1") == 1
    assert names[0] == names[1]


async def test_cursor_repr_and_args(con: Any) -> None:
    async with con.transaction():
        cur = await con.cursor("SELECT $1::text || g FROM generate_series(1, $2) g", "x", 2)
        assert [r[0] for r in await cur.fetch(5)] == ["x1", "x2"]
        assert "Cursor" in repr(cur)
