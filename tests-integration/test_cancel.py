"""Cancellation and timeouts (RELIABILITY.md T1-T5, X2, R6).

The rule checked everywhere: after a cancelled or timed-out call the
connection is either usable (the next query gives the right answer, no
transaction left open) or visibly closed; never out of step. The server side
is watched with an independent asyncpg connection (``ctl``), so that a
pg_client bug cannot hide itself.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

import pg_client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(180)

ALLOWED_CLOSED_ERRORS = (pg_client.InterfaceError, pg_client.PostgresConnectionError, OSError)


@pytest.fixture
async def pgc(cluster: Any) -> AsyncIterator[pg_client.Connection]:
    con = await pg_client.connect(cluster.dsn())
    try:
        yield con
    finally:
        if not con.is_closed():
            con.terminate()


async def _backend_state(ctl: asyncpg.Connection, pid: int) -> tuple[str | None, str | None]:
    row = await ctl.fetchrow("SELECT state, query FROM pg_stat_activity WHERE pid = $1", pid)
    return (row["state"], row["query"]) if row else (None, None)


async def _wait_backend(ctl: asyncpg.Connection, pid: int, pred: Callable[[str | None], bool],
                        timeout: float = 5.0) -> str | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state, _ = await _backend_state(ctl, pid)
        if pred(state) or loop.time() > deadline:
            return state
        await asyncio.sleep(0.02)


async def _reap(*tasks: asyncio.Future[Any] | None) -> None:
    """Make sure no task of ours outlives the test with an unretrieved exception."""
    for task in tasks:
        if task is None:
            continue
        if not task.done():
            task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except BaseException:
            pass


async def _assert_usable(con: pg_client.Connection, value: int = 42) -> None:
    assert not con.is_closed()
    assert await asyncio.wait_for(con.fetchval("SELECT $1::int", value), 15) == value
    assert not con.is_in_transaction()


# -- T1 -------------------------------------------------------------------------------


async def test_task_cancel_during_pg_sleep(pgc: pg_client.Connection,
                                           ctl: asyncpg.Connection) -> None:
    pid = pgc.get_server_pid()
    task = asyncio.ensure_future(pgc.fetch("SELECT pg_sleep(20)"))
    try:
        assert await _wait_backend(ctl, pid, lambda s: s == "active") == "active"
    finally:
        loop = asyncio.get_running_loop()
        started = loop.time()
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert loop.time() - started < 5, "CancelledError should come at once, not after the query"
    # The server stops working on it (CancelRequest), it doesn't run for 20 s.
    assert await _wait_backend(ctl, pid, lambda s: s == "idle") == "idle"
    await _assert_usable(pgc, 7)
    rows = await pgc.fetch("SELECT generate_series(1, 3) AS g")
    assert [r["g"] for r in rows] == [1, 2, 3]


async def test_cancel_before_first_byte_answered(pgc: pg_client.Connection) -> None:
    """Cancel right after the call started (no await in between): still in step."""
    for i in range(20):
        task = asyncio.ensure_future(pgc.fetchval("SELECT pg_sleep(0.5), $1::int", i))
        if i % 2:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert await asyncio.wait_for(pgc.fetchval("SELECT $1::int", i), 15) == i


# -- T3 -------------------------------------------------------------------------------


async def test_timeout_race_loop(pgc: pg_client.Connection) -> None:
    rng = random.Random(20240611)
    timeouts = 0
    for i in range(200):
        try:
            await pgc.fetch("SELECT pg_sleep(1)", timeout=rng.uniform(0.0001, 0.005))
        except asyncio.TimeoutError:
            timeouts += 1
        # Never a spurious QueryCanceledError, never someone else's result.
        assert await pgc.fetchval("SELECT $1::int", i) == i
    assert timeouts == 200
    assert not pgc.is_in_transaction()


async def _timed_out(aw: Any, seconds: float) -> float:
    """Await *aw*, which must raise asyncio.TimeoutError; -> seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=seconds + 10)
    assert done, "the timeout never fired"
    with pytest.raises(asyncio.TimeoutError):
        task.result()
    return loop.time() - started


@pytest.mark.parametrize("how", ["timeout", "command_timeout"])
async def test_timeouts_of_cached_statements_and_simple_queries(
        cluster: Any, ctl: asyncpg.Connection, how: str) -> None:
    """The paths that send at once (a cached statement, execute() without
    arguments) keep the timeout: the query is cancelled on the server, the
    connection stays usable."""
    kwargs = {"command_timeout": 0.3} if how == "command_timeout" else {}
    con = await pg_client.connect(cluster.dsn(), **kwargs)
    per_call = {"timeout": 0.3} if how == "timeout" else {}
    try:
        pid = con.get_server_pid()
        sql = "SELECT pg_sleep($1::float8), $2::int"
        assert (await con.fetchrow(sql, 0.0, 1, **per_call))[1] == 1  # now cached
        for call in (lambda: con.fetchval(sql, 30.0, 2, **per_call),
                     lambda: con.fetch(sql, 30.0, 3, **per_call),
                     lambda: con.fetchrow(sql, 30.0, 4, **per_call),
                     lambda: con.execute(sql, 30.0, 5, **per_call),
                     lambda: con.execute("SELECT pg_sleep(30)", **per_call)):
            elapsed = await _timed_out(call(), 0.3)
            assert elapsed >= 0.25, f"timed out after {elapsed:.3f} s, before its 0.3 s"
            assert await _wait_backend(ctl, pid, lambda s: s == "idle") == "idle"
            await _assert_usable(con, 9)
        # Quick queries under the same timeout never time out.
        for i in range(300):
            assert await con.fetchval("SELECT $1::int", i, **per_call) == i
            assert await con.execute("SELECT 1", **per_call) == "SELECT 1"
    finally:
        con.terminate()


async def test_timeouts_of_different_lengths_back_to_back(pgc: pg_client.Connection) -> None:
    """One timer serves a connection's deadlines: a shorter one after a long
    one still fires on time, a longer one after a short one not early."""
    sql = "SELECT pg_sleep($1::float8)"
    await pgc.fetchval(sql, 0.0)
    assert await pgc.fetchval("SELECT 1", timeout=60) == 1  # a deadline a minute away
    elapsed = await _timed_out(pgc.fetchval(sql, 30.0, timeout=0.2), 0.2)
    assert elapsed < 10, "the shorter deadline waited for the longer one"
    assert await pgc.fetchval("SELECT 1", timeout=0.1) == 1  # the timer: in 0.1 s
    elapsed = await _timed_out(pgc.fetchval(sql, 30.0, timeout=0.6), 0.6)
    assert elapsed >= 0.55, f"timed out after {elapsed:.3f} s, before its 0.6 s"
    await _assert_usable(pgc, 11)


# -- T4 -------------------------------------------------------------------------------


async def test_asyncio_timeout_wrapper(pgc: pg_client.Connection,
                                       ctl: asyncpg.Connection) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await pgc.fetch("SELECT pg_sleep(10)")
    await _assert_usable(pgc, 1)
    assert await _wait_backend(ctl, pgc.get_server_pid(), lambda s: s == "idle") == "idle"
    # A timeout that does not fire changes nothing.
    async with asyncio.timeout(10):
        assert await pgc.fetchval("SELECT 5") == 5
    # Nested: the inner pg_client timeout wins when shorter.
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(10):
            await pgc.fetch("SELECT pg_sleep(10)", timeout=0.05)
    await _assert_usable(pgc, 2)


class SiblingFailed(Exception):
    pass


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is 3.11+")
async def test_taskgroup_sibling_failure(pgc: pg_client.Connection, cluster: Any) -> None:
    other = await pg_client.connect(cluster.dsn())
    try:
        async def fail_soon() -> None:
            await asyncio.sleep(0.1)
            raise SiblingFailed()

        tasks: list[asyncio.Task[Any]] = []
        with pytest.raises(BaseExceptionGroup) as info:  # noqa: F821 - builtin in 3.11
            async with asyncio.TaskGroup() as tg:
                tasks.append(tg.create_task(pgc.fetch("SELECT pg_sleep(10)")))
                tasks.append(tg.create_task(other.execute("SELECT pg_sleep(10)")))
                tg.create_task(fail_soon())
        group = info.value
        assert group.subgroup(SiblingFailed) is not None
        # Only the sibling's error: the cancelled queries did not turn their
        # CancelledError into something else.
        rest = group.split(SiblingFailed)[1]
        assert rest is None, f"unexpected errors in the group: {rest!r}"
        assert all(t.cancelled() for t in tasks)
        await _assert_usable(pgc, 3)
        await _assert_usable(other, 4)
    finally:
        other.terminate()


# -- T5 -------------------------------------------------------------------------------


async def test_server_statement_timeout(pgc: pg_client.Connection) -> None:
    await pgc.execute("SET statement_timeout = 100")
    with pytest.raises(pg_client.QueryCanceledError) as info:
        await pgc.fetch("SELECT pg_sleep(5)")
    assert info.value.sqlstate == "57014"
    assert isinstance(info.value, pg_client.exceptions.OperatorInterventionError)
    await _assert_usable(pgc, 5)
    with pytest.raises(pg_client.QueryCanceledError):
        await pgc.execute("SELECT pg_sleep(5)")
    await pgc.execute("RESET statement_timeout")
    await _assert_usable(pgc, 6)


# -- X2 -------------------------------------------------------------------------------


async def test_cancel_inside_transaction(pgc: pg_client.Connection) -> None:
    table = f"x2_{uuid.uuid4().hex[:8]}"
    await pgc.execute(f"CREATE TEMP TABLE {table} (a int)")
    with pytest.raises(pg_client.InFailedSQLTransactionError):
        async with pgc.transaction():
            await pgc.execute(f"INSERT INTO {table} VALUES (1)")
            task = asyncio.ensure_future(pgc.fetch("SELECT pg_sleep(10)"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
            # The transaction was aborted on the server by the cancel.
            await pgc.execute(f"INSERT INTO {table} VALUES (2)")
    assert not pgc.is_in_transaction()
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0
    await _assert_usable(pgc, 8)


async def test_cancel_inside_transaction_block_then_exit(pgc: pg_client.Connection) -> None:
    """A block whose body is cancelled rolls back and re-raises CancelledError."""
    table = f"x2b_{uuid.uuid4().hex[:8]}"
    await pgc.execute(f"CREATE TEMP TABLE {table} (a int)")

    async def body() -> None:
        async with pgc.transaction():
            await pgc.execute(f"INSERT INTO {table} VALUES (1)")
            await pgc.fetch("SELECT pg_sleep(10)")

    task = asyncio.ensure_future(body())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 15)
    await _assert_usable(pgc, 9)
    assert await pgc.fetchval(f"SELECT count(*) FROM {table}") == 0


# -- T2 (simplified): cancel after 0..N loop steps of each operation ---------------------

SweepOp = Callable[[pg_client.Connection, int], Awaitable[Any]]


async def _op_prepare(con: pg_client.Connection, k: int) -> Any:
    stmt = await con.prepare(f"SELECT $1::int + {k}")
    return await stmt.fetchval(1)


async def _op_fetch(con: pg_client.Connection, k: int) -> Any:
    return await con.fetch("SELECT generate_series(1, 2000) AS g, 'x' AS t")


async def _op_fetchrow(con: pg_client.Connection, k: int) -> Any:
    return await con.fetchrow("SELECT $1::int AS k, $2::text AS t", k, "v")


async def _op_execute(con: pg_client.Connection, k: int) -> Any:
    return await con.execute(
        "INSERT INTO sweep_t VALUES (1); UPDATE sweep_t SET a = a + 1; SELECT count(*) FROM sweep_t"
    )


async def _op_executemany(con: pg_client.Connection, k: int) -> Any:
    return await con.executemany("INSERT INTO sweep_t VALUES ($1)", [(i,) for i in range(200)])


async def _op_cursor(con: pg_client.Connection, k: int) -> Any:
    n = 0
    async with con.transaction():
        async for _ in con.cursor("SELECT generate_series(1, 500)", prefetch=50):
            n += 1
    return n


async def _op_transaction(con: pg_client.Connection, k: int) -> Any:
    async with con.transaction():
        await con.execute("INSERT INTO sweep_t VALUES ($1)", k)
    return k


async def _op_transaction_rollback(con: pg_client.Connection, k: int) -> Any:
    tr = con.transaction()
    await tr.start()
    try:
        await con.execute("SELECT 1")
    finally:
        await tr.rollback()


SWEEP_OPS: dict[str, SweepOp] = {
    "prepare": _op_prepare,
    "fetch": _op_fetch,
    "fetchrow": _op_fetchrow,
    "execute": _op_execute,
    "executemany": _op_executemany,
    "cursor": _op_cursor,
    "transaction_commit": _op_transaction,
    "transaction_rollback": _op_transaction_rollback,
}


async def _check_after_cancel(con: pg_client.Connection, where: str) -> str | None:
    """None if usable, "closed" if visibly closed, else a description of what is wrong."""
    if con.is_closed():
        try:
            await asyncio.wait_for(con.fetchval("SELECT 1"), 10)
        except ALLOWED_CLOSED_ERRORS:
            return "closed"
        return f"{where}: is_closed() but a query still worked"
    try:
        # Both protocols: an extended-protocol fetch and a simple Query.
        # (test_cancelled_prepare_then_simple_query checks the other order.)
        value = await asyncio.wait_for(con.fetchval("SELECT $1::int", 4242), 15)
        status = await asyncio.wait_for(con.execute("SELECT 1"), 15)
    except ALLOWED_CLOSED_ERRORS as e:
        if con.is_closed() and not isinstance(e, pg_client.ProtocolError):
            return "closed"
        return f"{where}: next query raised {e!r}"
    except Exception as e:
        return f"{where}: next query raised {e!r}"
    if status != "SELECT 1" or value != 4242:
        return f"{where}: wrong results {status!r}, {value!r}"
    if con.is_in_transaction():
        return f"{where}: a transaction was left open"
    return None


async def _sweep_connect(cluster: Any) -> pg_client.Connection:
    con = await pg_client.connect(cluster.dsn())
    await con.execute("CREATE TEMP TABLE sweep_t (a int)")
    return con


@pytest.mark.parametrize("op_name", list(SWEEP_OPS))
async def test_cancel_sweep(cluster: Any, op_name: str) -> None:
    op = SWEEP_OPS[op_name]
    con = await _sweep_connect(cluster)
    completed_in_a_row = 0
    cancelled = closed = 0
    violations: list[str] = []
    task: asyncio.Future[Any] | None = None
    try:
        # Every step count up to 400, then every 25th up to 5,000: a loop
        # step of uvloop is a few microseconds, so an executemany of 200
        # rows can take more than 400 of them to come back.
        for k in [*range(400), *range(400, 5000, 25)]:
            where = f"{op_name} cancelled after {k} steps"
            task = asyncio.ensure_future(op(con, k))
            for _ in range(k):
                await asyncio.sleep(0)
            if task.done():
                if task.exception() is not None:
                    violations.append(f"{op_name} at {k} steps (not cancelled) raised "
                                      f"{task.exception()!r}")
                completed_in_a_row += 1
                if completed_in_a_row >= 3:
                    break
            else:
                completed_in_a_row = 0
                task.cancel()
                try:
                    await asyncio.wait_for(task, 15)
                except asyncio.CancelledError:
                    cancelled += 1
                except Exception as e:
                    violations.append(f"{where}: the call raised {e!r} instead of CancelledError")
            problem = await _check_after_cancel(con, where)
            if problem is not None:
                if problem == "closed":
                    closed += 1
                else:
                    violations.append(problem)
                con.terminate()
                con = await _sweep_connect(cluster)
        assert not violations, f"{len(violations)} violations:\n" + "\n".join(violations[:15])
        assert completed_in_a_row >= 3, "the operation never completed within 5,000 loop steps"
        assert cancelled > 0
    finally:
        if not con.is_closed():
            con.terminate()
        await _reap(task)


async def test_cancelled_prepare_then_simple_query(pgc: pg_client.Connection) -> None:
    """A statement whose Parse was cancelled is closed later; the next simple
    Query must not trip over the CloseComplete that goes with it."""
    for k in range(1, 4):
        task = asyncio.ensure_future(pgc.fetchval(f"SELECT $1::int + {k}", 1))
        for _ in range(k):
            await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert await asyncio.wait_for(pgc.execute("SELECT 1"), 10) == "SELECT 1"
        async with pgc.transaction():  # BEGIN/COMMIT are simple queries too
            assert await pgc.fetchval("SELECT $1::int", k) == k
    await _assert_usable(pgc)


async def test_cancel_sweep_connect(cluster: Any, ctl: asyncpg.Connection,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    app = f"sweep_{uuid.uuid4().hex[:8]}"
    completed_in_a_row = 0
    cancelled = 0
    for k in [*range(60), *range(60, 3000, 5)]:
        task = asyncio.ensure_future(
            pg_client.connect(cluster.dsn(), server_settings={"application_name": app})
        )
        for _ in range(k):
            await asyncio.sleep(0)
        if task.done():
            con = task.result()
            completed_in_a_row += 1
        else:
            completed_in_a_row = 0
            task.cancel()
            try:
                con = await asyncio.wait_for(task, 15)
            except asyncio.CancelledError:
                cancelled += 1
                con = None
        if con is not None:
            assert await _check_after_cancel(con, f"connect cancelled after {k} steps") is None
            await con.close()
        if completed_in_a_row >= 3:
            break
    assert cancelled > 0
    # No backend left behind by a cancelled connect.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        left = await ctl.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app)
        if left == 0 or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert left == 0, f"{left} server sessions left by cancelled connects"
    # Nor futures or tasks whose exception nobody will ever look at.
    gc.collect()
    await asyncio.sleep(0.05)
    leftovers = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not leftovers, leftovers[:3]


# -- R6: blackhole without a timeout --------------------------------------------------


@pytest.mark.parametrize("in_flight", [False, True])
async def test_close_timeout_on_blackholed_connection(cluster: Any, in_flight: bool) -> None:
    async with FaultProxy("127.0.0.1", cluster.port) as proxy:
        con = await pg_client.connect(
            cluster.dsn(host=proxy.host, port=proxy.port), ssl=False)
        assert await con.fetchval("SELECT 1") == 1
        proxy.blackhole()
        task = None
        try:
            if in_flight:
                task = asyncio.ensure_future(con.fetchval("SELECT 2"))
                await asyncio.sleep(0.3)
                assert not task.done(), "no timeout configured: the query waits"
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(asyncio.TimeoutError):
                await con.close(timeout=0.5)
            assert loop.time() - started < 5
            con.terminate()
            assert con.is_closed()
            if task is not None:
                done, _ = await asyncio.wait({task}, timeout=5)
                assert task in done, "terminate() must release the call in flight"
                assert isinstance(task.exception(), ALLOWED_CLOSED_ERRORS), task.exception()
            with pytest.raises(ALLOWED_CLOSED_ERRORS):
                await con.fetchval("SELECT 3")
        finally:
            con.terminate()
            await _reap(task)


# -- the event loop shut down with requests in flight -----------------------------------

_SHUTDOWN_CHILD = r'''
import asyncio, atexit, gc, sys
import pg_client, pg_pool
from pg_client import _transport, connection

started = []
def counting(make):
    def upkeep_task(loop, coro):
        started.append(coro.__qualname__)
        return make(loop, coro)
    return upkeep_task
connection.upkeep_task = counting(connection.upkeep_task)
_transport.upkeep_task = counting(_transport.upkeep_task)
atexit.register(lambda: print(sorted(started), flush=True))

async def never_ending_records():
    yield (1,)
    await asyncio.sleep(3600)

async def main(dsn):
    cons = [await pg_client.connect(dsn) for _ in range(3)]
    await cons[1].execute("CREATE TEMP TABLE t (i int)")
    pool = await pg_pool.create_pool(dsn, min_size=1, max_size=1)
    for aw in (cons[0].fetch("SELECT pg_sleep(30)"),
               cons[1].copy_records_to_table("t", records=never_ending_records()),
               cons[2].execute("SELECT pg_sleep(30)", timeout=None),
               pool.fetchval("SELECT pg_sleep(30)")):
        asyncio.ensure_future(aw)
    await asyncio.sleep(0.5)
    raise SystemExit(3)  # the program stops; asyncio.run() cancels the rest

if sys.argv[2] == "uvloop":
    import uvloop
    uvloop.install()
try:
    asyncio.run(main(sys.argv[1]))
finally:
    # What the loop left behind is collected now, while a report of it can
    # still be printed (at the interpreter's exit it may not be).
    gc.collect()
'''


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_loop_shut_down_with_requests_in_flight_is_quiet(cluster: Any, loop_name: str) -> None:
    """asyncio.run() ending with queries, a COPY and a pool query in flight.

    Cancelling them abandons each request, which starts a drain (and a
    CancelRequest) the loop closes on before they end: no "Task was
    destroyed but it is pending!", no "Event loop is closed" traceback on
    stderr (asyncpg prints both), only the program's own exit.
    """
    child = subprocess.run(
        [sys.executable, "-c", _SHUTDOWN_CHILD, cluster.dsn(), loop_name],
        capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert child.returncode == 3, child.stderr
    assert child.stderr == "", child.stderr
    # The abandon path really ran: a drain per connection (the COPY's its
    # own), and CancelRequests for the queries.
    started = child.stdout.strip().splitlines()[-1]
    assert started.count("_cancel_and_drain") == 3, started
    assert "_abandon_copy.<locals>.drain" in started, started
    assert "send_cancel_request.<locals>.run" in started, started
