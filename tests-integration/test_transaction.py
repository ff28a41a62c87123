"""Connection.transaction(): blocks, savepoints, options and state errors."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import (
    acon,
    backend_gone,
    con,
    con2,
    exc,
    pg_transaction,
    unique,
    wait_for_condition,
)

__all__ = ["acon", "con", "con2"]


async def _table(c: Any) -> str:
    t = unique("tx")
    await c.execute(f"CREATE TEMP TABLE {t} (a int)")
    return t


async def _values(c: Any, t: str) -> list[int]:
    return [r[0] for r in await c.fetch(f"SELECT a FROM {t} ORDER BY a")]


async def test_manual_commit_and_rollback(con: Any) -> None:
    t = await _table(con)
    tr = con.transaction()
    assert "state:new" in repr(tr)
    await tr.start()
    assert con.is_in_transaction()
    assert "state:started" in repr(tr)
    await con.execute(f"INSERT INTO {t} VALUES (1)")
    await tr.commit()
    assert "state:committed" in repr(tr)
    assert not con.is_in_transaction()

    tr = con.transaction()
    await tr.start()
    await con.execute(f"INSERT INTO {t} VALUES (2)")
    await tr.rollback()
    assert "state:rolledback" in repr(tr)
    assert not con.is_in_transaction()
    assert await _values(con, t) == [1]


async def test_async_with_commits_and_rolls_back(con: Any) -> None:
    t = await _table(con)
    async with con.transaction():
        await con.execute(f"INSERT INTO {t} VALUES (1)")
    assert await _values(con, t) == [1]

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with con.transaction():
            await con.execute(f"INSERT INTO {t} VALUES (2)")
            raise Boom
    assert await _values(con, t) == [1]
    assert not con.is_in_transaction()


async def test_transaction_state_enum() -> None:
    names = [s.name for s in pg_transaction.TransactionState]
    assert names == ["NEW", "STARTED", "COMMITTED", "ROLLEDBACK", "FAILED"]


async def test_nested_savepoints(con: Any) -> None:
    t = await _table(con)
    async with con.transaction():
        await con.execute(f"INSERT INTO {t} VALUES (1)")
        with pytest.raises(exc.UniqueViolationError):
            async with con.transaction():
                await con.execute(f"INSERT INTO {t} VALUES (2)")
                await con.execute("CREATE TEMP TABLE dup_check (a int UNIQUE)")
                await con.execute("INSERT INTO dup_check VALUES (1), (1)")
        # the outer transaction continues after the inner one rolled back
        assert con.is_in_transaction()
        await con.execute(f"INSERT INTO {t} VALUES (3)")
        async with con.transaction():
            await con.execute(f"INSERT INTO {t} VALUES (4)")
            async with con.transaction():
                await con.execute(f"INSERT INTO {t} VALUES (5)")
        assert await _values(con, t) == [1, 3, 4, 5]
    assert await _values(con, t) == [1, 3, 4, 5]
    assert not con.is_in_transaction()
    assert await con.fetchval("SELECT to_regclass('pg_temp.dup_check')") is None


async def test_nested_manual_savepoint(con: Any) -> None:
    t = await _table(con)
    outer = con.transaction()
    await outer.start()
    inner = con.transaction()
    await inner.start()
    await con.execute(f"INSERT INTO {t} VALUES (1)")
    await inner.rollback()
    inner2 = con.transaction()
    await inner2.start()
    await con.execute(f"INSERT INTO {t} VALUES (2)")
    await inner2.commit()
    assert con.is_in_transaction()
    await outer.commit()
    assert await _values(con, t) == [2]


async def test_outer_rollback_discards_released_savepoints(con: Any) -> None:
    t = await _table(con)
    outer = con.transaction()
    await outer.start()
    async with con.transaction():
        await con.execute(f"INSERT INTO {t} VALUES (1)")
    await outer.rollback()
    assert await _values(con, t) == []


@pytest.mark.parametrize(
    ("isolation", "shown"),
    [
        (None, "read committed"),
        ("read_committed", "read committed"),
        ("read_uncommitted", "read uncommitted"),
        ("repeatable_read", "repeatable read"),
        ("serializable", "serializable"),
    ],
)
async def test_isolation_levels(con: Any, isolation: str | None, shown: str) -> None:
    async with con.transaction(isolation=isolation):
        assert await con.fetchval("SHOW transaction_isolation") == shown
        assert await con.fetchval("SHOW transaction_read_only") == "off"


async def test_isolation_level_default_follows_session(con: Any) -> None:
    await con.execute("SET default_transaction_isolation = 'repeatable read'")
    async with con.transaction():
        assert await con.fetchval("SHOW transaction_isolation") == "repeatable read"
    # a nested block with the same level as the (implicit) outer one is fine
    async with con.transaction(), con.transaction(isolation="repeatable_read"):
        pass


async def test_readonly(con: Any) -> None:
    t = unique("tx_ro")  # not TEMP: read-only transactions may write temp tables
    await con.execute(f"CREATE TABLE {t} (a int)")
    try:
        await _readonly_checks(con, t)
    finally:
        await con.execute(f"DROP TABLE {t}")


async def _readonly_checks(con: Any, t: str) -> None:
    async with con.transaction(readonly=True):
        assert await con.fetchval("SHOW transaction_read_only") == "on"
        assert await con.fetchval(f"SELECT count(*) FROM {t}") == 0
        with pytest.raises(exc.ReadOnlySQLTransactionError):
            async with con.transaction():
                await con.execute(f"INSERT INTO {t} VALUES (1)")
    with pytest.raises(exc.ReadOnlySQLTransactionError):
        async with con.transaction(readonly=True):
            await con.execute(f"INSERT INTO {t} VALUES (1)")
    assert not con.is_in_transaction()
    assert await _values(con, t) == []


async def test_deferrable(con: Any) -> None:
    async with con.transaction(isolation="serializable", readonly=True, deferrable=True):
        assert await con.fetchval("SHOW transaction_deferrable") == "on"
        assert await con.fetchval("SHOW transaction_read_only") == "on"
        assert await con.fetchval("SHOW transaction_isolation") == "serializable"


async def test_invalid_isolation(con: Any) -> None:
    with pytest.raises(ValueError, match="isolation is expected to be either of"):
        con.transaction(isolation="chaos")


async def _outcome(fn: Callable[[Any], Awaitable[None]], c: Any) -> tuple[str, str]:
    try:
        await fn(c)
    except Exception as e:
        return type(e).__name__, str(e)
    return "no error", ""


async def _same_error(con: Any, acon: Any, fn: Callable[[Any], Awaitable[None]]) -> str:
    expected = await _outcome(fn, acon)
    got = await _outcome(fn, con)
    assert got == expected
    assert expected[0] == "InterfaceError"
    # the connection is left in a sane state
    if con.is_in_transaction():
        await con.execute("ROLLBACK")
    assert await con.fetchval("SELECT 1") == 1
    return got[1]


async def test_commit_before_start(con: Any, acon: Any) -> None:
    msg = await _same_error(con, acon, lambda c: c.transaction().commit())
    assert msg == "cannot commit; the transaction is not yet started"
    msg = await _same_error(con, acon, lambda c: c.transaction().rollback())
    assert msg == "cannot rollback; the transaction is not yet started"


async def test_start_twice(con: Any, acon: Any) -> None:
    async def scenario(c: Any) -> None:
        tr = c.transaction()
        await tr.start()
        try:
            await tr.start()
        finally:
            await tr.rollback()

    msg = await _same_error(con, acon, scenario)
    assert msg == "cannot start; the transaction is already started"


@pytest.mark.parametrize("first", ["commit", "rollback"])
@pytest.mark.parametrize("then", ["start", "commit", "rollback"])
async def test_finished_transaction(con: Any, acon: Any, first: str, then: str) -> None:
    async def scenario(c: Any) -> None:
        tr = c.transaction()
        await tr.start()
        await getattr(tr, first)()
        await getattr(tr, then)()

    msg = await _same_error(con, acon, scenario)
    state = "committed" if first == "commit" else "rolled back"
    assert msg == f"cannot {then}; the transaction is already {state}"


@pytest.mark.parametrize("method", ["commit", "rollback"])
async def test_manual_finish_inside_async_with(con: Any, acon: Any, method: str) -> None:
    async def scenario(c: Any) -> None:
        tr = c.transaction()
        async with tr:
            await getattr(tr, method)()

    msg = await _same_error(con, acon, scenario)
    assert msg == f"cannot manually {method} from within an `async with` block"
    assert not con.is_in_transaction()


async def test_enter_twice(con: Any, acon: Any) -> None:
    async def scenario(c: Any) -> None:
        tr = c.transaction()
        async with tr:
            async with tr:
                pass

    msg = await _same_error(con, acon, scenario)
    assert msg == "cannot enter context: already in an `async with` block"


async def test_transaction_inside_manual_begin(con: Any, acon: Any) -> None:
    async def scenario(c: Any) -> None:
        await c.execute("BEGIN")
        try:
            async with c.transaction():
                pass
        finally:
            await c.execute("ROLLBACK")

    msg = await _same_error(con, acon, scenario)
    assert msg == "cannot use Connection.transaction() in a manually started transaction"


async def test_nested_different_isolation(con: Any, acon: Any) -> None:
    async def scenario(c: Any) -> None:
        async with c.transaction(isolation="serializable"):
            async with c.transaction(isolation="read_committed"):
                pass

    msg = await _same_error(con, acon, scenario)
    assert msg == (
        "nested transaction has a different isolation level: "
        "current 'read_committed' != outer 'serializable'"
    )


async def test_error_inside_block_fails_until_rollback(con: Any) -> None:
    t = await _table(con)
    tr = con.transaction()
    await tr.start()
    await con.execute(f"INSERT INTO {t} VALUES (1)")
    with pytest.raises(exc.DivisionByZeroError):
        await con.fetchval("SELECT 1 / 0")
    for _ in range(2):
        with pytest.raises(exc.InFailedSQLTransactionError):
            await con.fetchval("SELECT 1")
        with pytest.raises(exc.InFailedSQLTransactionError):
            await con.execute(f"INSERT INTO {t} VALUES (2)")
    assert con.is_in_transaction()
    await tr.rollback()
    assert not con.is_in_transaction()
    assert await con.fetchval("SELECT 1") == 1
    assert await _values(con, t) == []


async def test_commit_of_failed_transaction_rolls_back(con: Any) -> None:
    t = await _table(con)
    tr = con.transaction()
    await tr.start()
    await con.execute(f"INSERT INTO {t} VALUES (1)")
    with pytest.raises(exc.DivisionByZeroError):
        await con.execute("SELECT 1 / 0")
    await tr.commit()  # the server answers COMMIT with ROLLBACK
    assert not con.is_in_transaction()
    assert await _values(con, t) == []


async def test_cancel_inside_transaction(con: Any, con2: Any) -> None:
    t = await _table(con)
    pid = con.get_server_pid()

    async def work() -> None:
        async with con.transaction():
            await con.execute(f"INSERT INTO {t} VALUES (1)")
            await con.execute("SELECT pg_sleep(30)")

    task = asyncio.ensure_future(work())

    async def sleeping() -> bool:
        return bool(
            await con2.fetchval(
                "SELECT state = 'active' AND query LIKE '%pg_sleep%' "
                "FROM pg_stat_activity WHERE pid = $1",
                pid,
            )
        )

    assert await wait_for_condition(sleeping)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await backend_gone(con2, pid)
    assert not con.is_in_transaction()
    assert await con.fetchval("SELECT 1") == 1
    assert await _values(con, t) == []
    # and a new transaction works
    async with con.transaction():
        await con.execute(f"INSERT INTO {t} VALUES (2)")
    assert await _values(con, t) == [2]


async def test_timeout_inside_async_with(con: Any) -> None:
    t = await _table(con)
    with pytest.raises(asyncio.TimeoutError):
        async with con.transaction():
            await con.execute(f"INSERT INTO {t} VALUES (1)")
            await con.execute("SELECT pg_sleep(30)", timeout=0.1)
    assert not con.is_in_transaction()
    assert await _values(con, t) == []


async def test_savepoint_rollback_after_error_keeps_outer(con: Any) -> None:
    t = await _table(con)
    async with con.transaction():
        await con.execute(f"INSERT INTO {t} VALUES (1)")
        sp = con.transaction()
        await sp.start()
        with pytest.raises(exc.DivisionByZeroError):
            await con.execute("SELECT 1 / 0")
        with pytest.raises(exc.InFailedSQLTransactionError):
            await con.fetchval("SELECT 1")
        await sp.rollback()
        assert await con.fetchval("SELECT 1") == 1
    assert await _values(con, t) == [1]
