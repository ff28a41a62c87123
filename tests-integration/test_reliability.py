"""RELIABILITY.md rows not covered elsewhere: the fast tier (issue #9).

Where each row of the matrix is tested:

=====  =====================================================================
Row    Test
=====  =====================================================================
R1-5   test_connection_loss.py (R3 cut at every offset, R4 fragmentation)
R6     test_cancel.py::test_close_timeout_on_blackholed_connection
R7-9   test_connection_loss.py, R12 too
R10    here: test_r10_backend_crash
R11    here: test_r11_hung_backend (usable branch; the aborted branch is slow)
T1-5   test_cancel.py; T2 also here (data-event sweep with cancelsweep.py)
T6     here: test_t6_timeout_covers_prepare / _introspection
T8     here: test_t8_cancel_path_dead
T9     test_copy.py::test_cancel_during_copy_*
T10    here: test_t10_gc_without_close
X1     here (``async with`` form); test_transaction.py (manual form)
X2     test_cancel.py, test_transaction.py
X3-X6  here
X7     test_errors.py::test_serialization_failure / test_deadlock_detected
C1,C2  test_copy.py; C4 test_copy.py::test_copy_server_error_*
C7     test_copy.py::test_copy_large_values (1 MB); test_100mb_values_in_and_out (slow)
C3     here (server-side work stops) + test_copy.py::test_copy_from_query_sink_*
C5,C6  here
M1-M5  here; M6 test_bad_input.py
P1-3   test_pool.py; P6, P7, P10 test_pool.py
P4,P5  here; P8, P9 here
F4-F6  test_failover.py (a primary and a pg_basebackup standby, standby.py)
Q2     test_query_safety.py::test_q2_* (Hypothesis; Q1, Q3, Q4 test_bad_input.py)
Q5     test_query_safety.py::test_q5_* (scripted server, fakeserver.py)
W3-W5  here (through a scripted fake server); W7 here
K2     packages/pg-codecs/tests/test_fuzz.py, packages/pg-wire/tests/test_fuzz.py
Z1     here (1,000 operations); 10,000 in test_soak.py (``python tools/soak.py``)
Z2     test_soak.py
Z3     here (small storm)
=====  =====================================================================

Connect/TLS/auth/multi-host rows (S*, F1-F3, F7, T7, W6) live with their
own tests. Every connection here carries a unique ``application_name`` so
the server side is inspected (and killed) only for this test's sessions,
through an independent asyncpg control connection (a pg_client bug cannot
hide itself). Figures are printed as ``FIGURE <test>: name = value`` (run
with ``-s``) and attached to the report's ``user_properties``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import signal
import struct
import sys
import uuid
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest

import pg_client
import pg_pool
from pg_wire import backend as pgb
from pg_wire import messages as pgm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cancelsweep
from faultproxy import C2S, S2C, FaultProxy
from probes import LeakProbe, MemoryPeak, RssSampler, backends

pytestmark = pytest.mark.timeout(120)

CONNECTION_ERRORS = (pg_client.PostgresConnectionError, pg_client.InterfaceError, OSError)
CANCEL_BUDGET: float = getattr(pg_client.connection, "_CANCEL_BUDGET", 5.0)


# -- shared fixtures and helpers ---------------------------------------------------------


@pytest.fixture(autouse=True)
def no_unretrieved_exceptions(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail a test that leaves a future or task whose exception nobody retrieved.

    Collected here, inside the test, rather than at some later garbage
    collection (where, on Python 3.11 under pytest, the log call can land in
    the middle of an AST rewrite and crash the session with "AST constructor
    recursion depth mismatch").
    """
    caplog.set_level(logging.ERROR, logger="asyncio")
    yield
    gc.collect()
    records = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    left = [r.getMessage() for r in records if "never retrieved" in r.getMessage()]
    assert not left, "exceptions nobody retrieved:\n" + "\n".join(left[:5])


def app_name(prefix: str = "rel") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def app() -> str:
    return app_name()


@pytest.fixture
async def proxy(cluster: Any) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", cluster.port) as p:
        yield p


async def connect(cluster: Any, app: str, *, via: FaultProxy | None = None,
                  **kw: Any) -> pg_client.Connection:
    settings = dict(kw.pop("server_settings", {}))
    settings["application_name"] = app
    if via is not None:
        return await pg_client.connect(cluster.dsn(host=via.host, port=via.port), ssl=False,
                                       server_settings=settings, **kw)
    return await pg_client.connect(cluster.dsn(), server_settings=settings, **kw)


async def reap(*tasks: asyncio.Future[Any] | None) -> None:
    """Collect every task we made, so no exception is left unretrieved."""
    for task in tasks:
        if task is None:
            continue
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def wait_until(predicate: Callable[[], Any], timeout: float = 5.0,
                     step: float = 0.01) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return True
        if loop.time() >= end:
            return False
        await asyncio.sleep(step)


async def backend_state(ctl: asyncpg.Connection, pid: int) -> str | None:
    return await ctl.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)


async def wait_active(ctl: asyncpg.Connection, pid: int, timeout: float = 5.0) -> None:
    async def active() -> bool:
        return await backend_state(ctl, pid) == "active"

    assert await wait_until(active, timeout), f"backend {pid} never became active"


async def terminate_app(ctl: Any, app: str) -> None:
    with contextlib.suppress(Exception):
        await ctl.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = $1 AND pid <> pg_backend_pid()", app)


async def assert_in_step(con: pg_client.Connection, n: int = 10) -> str:
    """Run *n* queries: each right, or the connection visibly closed. Never a wrong answer."""
    for i in range(n):
        try:
            value = await asyncio.wait_for(con.fetchval("SELECT $1::int", i), 15)
        except CONNECTION_ERRORS as e:
            assert not isinstance(e, pg_client.ProtocolError), e
            assert con.is_closed(), f"query {i} raised {e!r} on an open connection"
            return "closed"
        assert value == i, f"query {i} got {value!r}: out of step"
    assert not con.is_in_transaction()
    return "usable"


def need_signals(cluster: Any) -> None:
    """kill -9 / -STOP need a local server whose processes we may signal."""
    if not getattr(cluster, "managed", False):
        pytest.skip("PGTEST_DSN server: can't signal its processes")
    pid = cluster.postmaster_pid
    if pid is None:
        pytest.skip("server process unknown")
    try:
        os.kill(pid, 0)
    except PermissionError:
        pytest.skip("not allowed to signal the server's processes (run as root or as "
                    "the server's user)")


def error_text(exc: BaseException | None) -> str:
    """Everything an exception says, its causes and attributes included."""
    parts: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}")
        for value in getattr(exc, "__dict__", {}).values():
            if isinstance(value, (str, BaseException)) or hasattr(value, "sqlstate"):
                parts.append(repr(value))
            elif isinstance(value, (list, tuple)):
                parts.extend(repr(v) for v in value[:10])
        exc = exc.__cause__ or exc.__context__
    return " | ".join(parts)


def mentions_crash(exc: BaseException) -> bool:
    text = error_text(exc)
    return (isinstance(exc, pg_client.CrashShutdownError) or "57P02" in text
            or "crash of another server process" in text)


# -- R10: a backend crashes ---------------------------------------------------------------


async def test_r10_backend_crash(cluster: Any, app: str, figure: Any) -> None:
    need_signals(cluster)
    idle = await connect(cluster, app)
    busy = await connect(cluster, app)
    victim = await connect(cluster, app_name("victim"))
    task: asyncio.Future[Any] | None = None
    try:
        assert await idle.fetchval("SELECT 1") == 1
        task = asyncio.ensure_future(busy.fetchval("SELECT pg_sleep(10), 1"))
        task.add_done_callback(retrieve)
        ctl = await asyncpg.connect(cluster.dsn())
        try:
            await wait_active(ctl, busy.get_server_pid())
        finally:
            await ctl.close()
        loop = asyncio.get_running_loop()
        log_start = cluster.log_path.stat().st_size
        os.kill(victim.get_server_pid(), signal.SIGKILL)
        killed = loop.time()

        # The query in flight fails with the server's reason (a 57P02 notice
        # precedes the EOF since PostgreSQL 14; no ErrorResponse comes).
        with pytest.raises(CONNECTION_ERRORS) as info:
            await asyncio.wait_for(task, 10)
        assert not isinstance(info.value, pg_client.ProtocolError)
        in_flight_error = info.value
        # The idle one notices by itself, and says why on the next call.
        assert await wait_until(idle.is_closed, 5), "idle connection not closed by the crash"
        with pytest.raises(CONNECTION_ERRORS) as info:
            await asyncio.wait_for(idle.fetchval("SELECT 1"), 5)
        idle_error = info.value

        # Reconnecting during crash recovery: CannotConnectNowError until ready.
        # Not before the postmaster has reaped every backend: a connection it
        # accepts while still sending SIGQUIT to its children can be dropped
        # unanswered (its backend killed with the rest), a reset libpq and
        # asyncpg see too. After "reinitializing" every attempt is answered.
        def reinitializing() -> bool:
            with open(cluster.log_path, "rb") as f:
                f.seek(log_start)
                return b"all server processes terminated; reinitializing" in f.read()

        assert await wait_until(reinitializing, 20), "the server did not reinitialize"
        refusals: dict[str, int] = {}
        while True:
            try:
                con = await connect(cluster, app, timeout=5)
            except pg_client.CannotConnectNowError:
                refusals["CannotConnectNowError"] = refusals.get("CannotConnectNowError", 0) + 1
                await asyncio.sleep(0.02)
            except Exception as e:  # anything else is the wrong class
                refusals[type(e).__name__] = refusals.get(type(e).__name__, 0) + 1
                await asyncio.sleep(0.02)
            else:
                break
            assert loop.time() - killed < 30, f"server not back after 30 s: {refusals}"
        reconnect = loop.time() - killed
        try:
            assert await con.fetchval("SELECT $1::int", 5) == 5
        finally:
            await con.close()
        figure("r10_seconds_to_first_reconnect", round(reconnect, 3))
        figure("r10_refusals", refusals)
        assert set(refusals) <= {"CannotConnectNowError"}, (
            f"reconnect during recovery must raise CannotConnectNowError only: {refusals}")
        assert busy.is_closed() and victim.is_closed()
        problems = [f"{where}: {error_text(e)}" for where, e in
                    (("in flight", in_flight_error), ("idle", idle_error))
                    if not mentions_crash(e)]
        assert not problems, ("the 57P02 notice (crash of another server process) "
                              "is not attached to the error:\n" + "\n".join(problems))
    finally:
        await reap(task)
        for c in (idle, busy, victim):
            c.terminate()


# -- R11: a hung backend ---------------------------------------------------------------


async def test_r11_hung_backend(cluster: Any, app: str, ctl: asyncpg.Connection,
                                figure: Any) -> None:
    need_signals(cluster)
    con = await connect(cluster, app, command_timeout=1)
    pid = con.get_server_pid()
    stopped = False
    task: asyncio.Future[Any] | None = None
    try:
        assert await con.fetchval("SELECT 1") == 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(30), 1"))
        task.add_done_callback(retrieve)
        await wait_active(ctl, pid)
        os.kill(pid, signal.SIGSTOP)
        stopped = True
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(task, 10)
        elapsed = loop.time() - started
        figure("r11_timeout_after_s", round(elapsed, 3))
        assert 0.9 <= elapsed <= 1.5, elapsed
        await asyncio.sleep(0.5)
        os.kill(pid, signal.SIGCONT)
        stopped = False
        # The CancelRequest sent at the timeout is acted on once the backend
        # runs again: pg_sleep(30) ends at once.
        assert await wait_until(lambda: _not_active(ctl, pid), 3), (
            "no CancelRequest reached the server: the query still runs after SIGCONT")
        state = await assert_in_step(con, 10)
        figure("r11_connection_after_cont", state)
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        await reap(task)
        con.terminate()


async def test_r11_start_reset_timeout(cluster: Any, app: str, ctl: asyncpg.Connection) -> None:
    """Connection.start_reset() on a stopped backend: TimeoutError, then cancelled and usable."""
    need_signals(cluster)
    con = await connect(cluster, app)
    pid = con.get_server_pid()
    stopped = False
    try:
        await con.execute("SET work_mem = '7777kB'")
        os.kill(pid, signal.SIGSTOP)
        stopped = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(con.start_reset(timeout=0.3), 10)
        assert loop.time() - started < 5
        os.kill(pid, signal.SIGCONT)
        stopped = False
        # The next query waits for the abandoned reset's reply (cancelled
        # or run to its end); never a reply out of step.
        assert await assert_in_step(con, 5) == "usable"
        assert not await ctl.fetchval(
            "SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1", pid)
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        con.terminate()


@pytest.mark.slow
async def test_r11_hung_backend_aborted(cluster: Any, app: str, ctl: asyncpg.Connection,
                                        figure: Any) -> None:
    """The backend stays stopped past the cancel budget: the connection is aborted."""
    need_signals(cluster)
    con = await connect(cluster, app, command_timeout=1)
    pid = con.get_server_pid()
    stopped = False
    try:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(30), 1"))
        task.add_done_callback(retrieve)
        await wait_active(ctl, pid)
        os.kill(pid, signal.SIGSTOP)
        stopped = True
        started = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(task, 10)
        assert await wait_until(con.is_closed, 2 * CANCEL_BUDGET + 5, 0.05), (
            "the connection was neither answered nor aborted")
        figure("r11_aborted_after_s", round(loop.time() - started, 2))
        with pytest.raises(CONNECTION_ERRORS):
            await con.fetchval("SELECT 1")
        os.kill(pid, signal.SIGCONT)
        stopped = False

        async def gone() -> bool:
            return await backend_state(ctl, pid) is None

        assert await wait_until(gone, 10), "the backend outlived its aborted connection"
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        con.terminate()


async def _not_active(ctl: asyncpg.Connection, pid: int) -> bool:
    return await backend_state(ctl, pid) != "active"


# -- T6: the timeout covers prepare and introspection -------------------------------------


async def _server_statements(con: pg_client.Connection) -> set[str]:
    return {r[0] for r in await con.fetch("SELECT name FROM pg_prepared_statements")}


def _cached_names(con: pg_client.Connection) -> set[str]:
    return {s.name for s in con._stmt_cache.values() if s.name}


async def test_t6_timeout_covers_prepare(cluster: Any, app: str, proxy: FaultProxy) -> None:
    con = await connect(cluster, app, via=proxy, command_timeout=0.2)
    try:
        assert await con.fetchval("SELECT 1") == 1
        query = "SELECT $1::int + 100"
        proxy.delay_message(b"D", 0.3, C2S)  # the client's Describe (of Parse/Describe/Sync)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await con.fetchval(query, 1)
        assert loop.time() - started < 0.29, "the timeout did not cover the prepare step"
        assert all(s.query != query for s in con._stmt_cache.values()), (
            "half-prepared statement cached")
        proxy.passthrough()
        await asyncio.sleep(0.2)
        assert await con.fetchval(query, 1) == 101
        assert await con.fetchval(query, 2) == 102
        # Every statement the client believes prepared exists on the server.
        server = await _server_statements(con)
        missing = _cached_names(con) - server
        assert not missing, f"cached statements the server does not have: {missing}"
        await assert_in_step(con, 5)
    finally:
        con.terminate()


async def test_t6_timeout_covers_introspection(cluster: Any, app: str, proxy: FaultProxy,
                                               ctl: asyncpg.Connection) -> None:
    type_name = f"mood_{uuid.uuid4().hex[:8]}"
    await ctl.execute(f"CREATE TYPE {type_name} AS ENUM ('sad', 'ok', 'happy')")
    con = await connect(cluster, app, via=proxy, command_timeout=0.5)
    try:
        assert await con.fetchval("SELECT 1") == 1
        # Each server reply takes 0.3 s: the prepare ends at ~0.3 s, the type
        # lookup that follows would end at >= 0.6 s: past the 0.5 s timeout.
        proxy.delay(0.3, S2C)
        query = f"SELECT 'happy'::{type_name}, $1::int"
        with pytest.raises(asyncio.TimeoutError):
            await con.fetchrow(query, 1)
        proxy.passthrough()
        await asyncio.sleep(0.7)
        assert tuple(await con.fetchrow(query, 2)) == ("happy", 2)
        assert tuple(await con.fetchrow(query, 3)) == ("happy", 3)
        missing = _cached_names(con) - await _server_statements(con)
        assert not missing, f"cached statements the server does not have: {missing}"
        await assert_in_step(con, 5)
    finally:
        con.terminate()
        await ctl.execute(f"DROP TYPE IF EXISTS {type_name}")


# -- T8: the cancel path is dead --------------------------------------------------------------


@pytest.mark.parametrize("how", [pytest.param("task_cancel", marks=pytest.mark.slow), "timeout"])
async def test_t8_cancel_path_dead(cluster: Any, app: str, proxy: FaultProxy,
                                   ctl: asyncpg.Connection, how: str, figure: Any) -> None:
    con = await connect(cluster, app, via=proxy)
    task: asyncio.Future[Any] | None = None
    try:
        pid = con.get_server_pid()
        loop = asyncio.get_running_loop()
        proxy.blackhole("new")  # the CancelRequest's side connection goes nowhere
        if how == "task_cancel":
            task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(60), 1"))
            task.add_done_callback(retrieve)
            await wait_active(ctl, pid)
            started = loop.time()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
        else:
            started = loop.time()
            with pytest.raises(asyncio.TimeoutError):
                await con.fetchval("SELECT pg_sleep(60), 1", timeout=0.3)
        assert loop.time() - started < 1.0, "the caller must not wait for the cancel"
        # The cancel cannot get through: the connection is aborted once the
        # cancel budget is spent, and the next call says so (no hang).
        bound = CANCEL_BUDGET * 1.1 + (0.3 if how == "timeout" else 0)
        assert await wait_until(con.is_closed, bound + 10, 0.05)
        aborted_after = loop.time() - started
        figure(f"t8_{how}_aborted_after_s", round(aborted_after, 2))
        with pytest.raises(CONNECTION_ERRORS):
            await asyncio.wait_for(con.fetchval("SELECT 1"), 5)
        assert aborted_after <= bound, (
            f"connection aborted {aborted_after:.2f} s after the cancel; the cancel budget "
            f"is {CANCEL_BUDGET} s (+10 %)")
    finally:
        await reap(task)
        con.terminate()
        await terminate_app(ctl, app)


# -- T10: a connection dropped without close() ------------------------------------------------


async def _drop_unclosed(cluster: Any, app: str) -> tuple[weakref.ref[Any], Any, Any]:
    con = await connect(cluster, app)
    assert await con.fetchval("SELECT 123") == 123
    proto_ref = weakref.ref(con._protocol)
    transport = con._transport
    con_ref = weakref.ref(con)
    del con
    return con_ref, proto_ref, transport


@pytest.mark.parametrize("debug", [False, True])
async def test_t10_gc_without_close(cluster: Any, app: str, ctl: asyncpg.Connection,
                                    debug: bool) -> None:
    loop = asyncio.get_running_loop()
    old_debug = loop.get_debug()
    handler_calls: list[dict[str, Any]] = []
    old_handler = loop.get_exception_handler()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        loop.set_debug(debug)
        loop.set_exception_handler(lambda _loop, ctx: handler_calls.append(ctx))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            con_ref, proto_ref, transport = await _drop_unclosed(cluster, app)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        # (A recorded warning keeps its source, the Connection, alive: keep the text only.)
        messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        del caught
        assert messages, "no ResourceWarning for an unclosed connection"
        message = " ".join(messages)
        assert "unclosed connection" in message
        # Freed by reference counting alone (gc is off): no cycles.
        assert con_ref() is None, "the Connection is kept alive by a reference cycle"
        assert transport.is_closing(), "the transport was not closed"
        del transport
        await asyncio.sleep(0)
        assert proto_ref() is None, "the protocol object was not freed"
        if debug:
            # Debug mode shows where the connection was made: in the warning
            # or through the loop's exception handler (asyncio's habit).
            where = message + " ".join(
                str(ctx.get("source_traceback", "")) for ctx in handler_calls)
            assert "_drop_unclosed" in where, (
                "debug mode: the creation traceback is not reported (neither in the "
                f"ResourceWarning nor via the exception handler): {message!r}, "
                f"handler calls: {handler_calls!r}")
    finally:
        loop.set_debug(old_debug)
        loop.set_exception_handler(old_handler)
        if gc_was_enabled:
            gc.enable()
    assert await wait_until(lambda: _no_backends(ctl, app), 5), "the server session stayed"


async def _no_backends(ctl: Any, app: str) -> bool:
    return not await backends(ctl, app)


# -- X1: an error inside a transaction block ---------------------------------------------


@pytest.fixture
async def pgc(cluster: Any, app: str) -> AsyncIterator[pg_client.Connection]:
    con = await connect(cluster, app)
    try:
        yield con
    finally:
        if not con.is_closed():
            con.terminate()


async def _temp_table(con: pg_client.Connection) -> str:
    name = f"rt_{uuid.uuid4().hex[:10]}"
    await con.execute(f"CREATE TEMP TABLE {name} (a int)")
    return name


async def _values(con: pg_client.Connection, table: str) -> list[int]:
    return [r[0] for r in await con.fetch(f"SELECT a FROM {table} ORDER BY a")]


async def test_x1_error_inside_transaction_block(pgc: pg_client.Connection) -> None:
    t = await _temp_table(pgc)
    # The block re-raises the original error, and rolls back.
    with pytest.raises(pg_client.DivisionByZeroError):
        async with pgc.transaction():
            await pgc.execute(f"INSERT INTO {t} VALUES (1)")
            await pgc.execute("SELECT 1 / 0")
    assert not pgc.is_in_transaction()
    assert await _values(pgc, t) == []
    # Caught inside: every later statement fails with InFailedSQLTransactionError
    # until the block ends; the block re-raises the error that ended it.
    with pytest.raises(pg_client.InFailedSQLTransactionError):
        async with pgc.transaction():
            await pgc.execute(f"INSERT INTO {t} VALUES (2)")
            with pytest.raises(pg_client.DivisionByZeroError):
                await pgc.fetchval("SELECT 1 / $1::int", 0)
            for query in ("SELECT 1", f"INSERT INTO {t} VALUES (3)"):
                with pytest.raises(pg_client.InFailedSQLTransactionError):
                    await pgc.execute(query)
                with pytest.raises(pg_client.InFailedSQLTransactionError):
                    await pgc.fetch(query)
            await pgc.fetchval("SELECT 2")
    assert not pgc.is_in_transaction()
    assert await pgc.fetchval("SELECT txid_current_if_assigned()") is None
    assert await _values(pgc, t) == []
    await assert_in_step(pgc, 3)


# -- X3: the connection is cut during COMMIT -------------------------------------------------

X3_VARIANTS = [
    # (direction, tag, where, how): where the cut falls
    (C2S, b"Q", "after", "rst"),   # COMMIT reached the server, then RST: outcome unknown
    (C2S, b"Q", "after", "fin"),   # COMMIT reached the server, then EOF: committed
    (C2S, b"Q", "middle", "rst"),  # half a COMMIT: never committed
    (S2C, b"C", "before", "rst"),  # committed; the reply is lost
    (S2C, b"C", "before", "fin"),
]


async def test_x3_cut_during_commit(cluster: Any, app: str, ctl: asyncpg.Connection,
                                    figure: Any) -> None:
    trials = 200
    table = f"x3_{uuid.uuid4().hex[:10]}"
    await ctl.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    results = {"committed": 0, "aborted": 0}
    acked = acked_missing = flagged = 0
    bad: list[str] = []
    try:
        async with FaultProxy("127.0.0.1", cluster.port) as proxy:
            for i in range(trials):
                direction, tag, where, how = X3_VARIANTS[i % len(X3_VARIANTS)]
                con = await connect(cluster, app, via=proxy)
                try:
                    tr = con.transaction()
                    await tr.start()
                    xid = await con.fetchval("SELECT pg_current_xact_id()::text")
                    await con.execute(f"INSERT INTO {table} VALUES ($1)", i)
                    proxy.cut_at_message(tag, direction, nth=1, how=how, where=where)
                    try:
                        await asyncio.wait_for(tr.commit(), 10)
                    except pg_client.ConnectionDoesNotExistError as e:
                        if e.request_sent is True:
                            flagged += 1
                        else:
                            bad.append(f"trial {i} {where}/{how}: request_sent={e.request_sent!r}")
                    except Exception as e:
                        bad.append(f"trial {i} {where}/{how}: {type(e).__name__}: {e}")
                    else:
                        acked += 1
                        bad.append(f"trial {i} {where}/{how}: COMMIT reported success "
                                   "although its reply was cut")
                finally:
                    con.terminate()
                    proxy.passthrough()
                status = await _resolve_xact(ctl, xid)
                exists = bool(await ctl.fetchval(
                    f"SELECT count(*) FROM {table} WHERE id = $1", i))
                if status not in ("committed", "aborted") or (status == "committed") != exists:
                    bad.append(f"trial {i}: pg_xact_status={status} but row exists={exists}")
                results["committed" if exists else "aborted"] += 1
                if acked and not exists:
                    acked_missing += 1
    finally:
        await ctl.execute(f"DROP TABLE IF EXISTS {table}")
    figure("x3_trials", trials)
    figure("x3_outcomes", results)
    figure("x3_acked_but_missing", acked_missing)
    figure("x3_unknown_flagged_pct", round(100 * flagged / trials, 1))
    assert not bad, f"{len(bad)} bad trials:\n" + "\n".join(bad[:15])
    assert acked_missing == 0
    assert flagged == trials
    assert results["committed"] and results["aborted"], results


async def _resolve_xact(ctl: asyncpg.Connection, xid: str, timeout: float = 5.0) -> str | None:
    """pg_xact_status() once the server has finished with the transaction."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        status = await ctl.fetchval("SELECT pg_xact_status($1::text::xid8)", xid)
        if status != "in progress" or loop.time() > end:
            return status
        await asyncio.sleep(0.01)


# -- X4: savepoints ---------------------------------------------------------------------


async def test_x4_savepoint_failures_at_each_level(pgc: pg_client.Connection) -> None:
    t = await _temp_table(pgc)
    async with pgc.transaction():
        await pgc.execute(f"INSERT INTO {t} VALUES (0)")
        async with pgc.transaction():
            await pgc.execute(f"INSERT INTO {t} VALUES (1)")
            with pytest.raises(pg_client.DivisionByZeroError):
                async with pgc.transaction():
                    await pgc.execute(f"INSERT INTO {t} VALUES (2)")
                    await pgc.execute("SELECT 1 / 0")
            # Level 2 rolled back to its savepoint; level 1 goes on.
            await pgc.execute(f"INSERT INTO {t} VALUES (11)")
        with pytest.raises(pg_client.UniqueViolationError):
            async with pgc.transaction():
                await pgc.execute(f"INSERT INTO {t} VALUES (3)")
                async with pgc.transaction():
                    await pgc.execute(f"INSERT INTO {t} VALUES (4)")  # released into level 1
                await pgc.execute(f"CREATE UNIQUE INDEX ON {t} (a)")
                await pgc.execute(f"INSERT INTO {t} VALUES (3)")  # duplicate
        # The failed level 1 took its released level 2 (and the index) with it.
        await pgc.execute(f"INSERT INTO {t} VALUES (3)")
        assert await _values(pgc, t) == [0, 1, 3, 11]
        with pytest.raises(pg_client.DivisionByZeroError):
            async with pgc.transaction():
                async with pgc.transaction():
                    async with pgc.transaction():
                        await pgc.execute(f"INSERT INTO {t} VALUES (5)")
                    await pgc.execute("SELECT 1 / 0")
        await pgc.execute(f"INSERT INTO {t} VALUES (6)")
    assert not pgc.is_in_transaction()
    assert await _values(pgc, t) == [0, 1, 3, 6, 11]
    await assert_in_step(pgc, 3)


# -- X5: concurrent misuse ---------------------------------------------------------------


async def test_x5_two_tasks_one_connection(pgc: pg_client.Connection) -> None:
    wrong: list[str] = []
    busy_errors = 0
    for i in range(200):
        if i % 3 == 0:
            other = pgc.fetchval("SELECT $1::int", -i - 1)
        elif i % 3 == 1:
            other = pgc.execute("SELECT 1")
        else:
            other = pgc.fetch("SELECT $1::int AS v", -i - 1)
        results = await asyncio.gather(pgc.fetchval("SELECT $1::int", i), other,
                                       return_exceptions=True)
        first, second = results
        if first != i:
            wrong.append(f"{i}: first got {first!r}")
        if isinstance(second, pg_client.InterfaceError):
            if "another operation is in progress" not in str(second):
                wrong.append(f"{i}: unexpected message {second}")
            busy_errors += 1
        elif isinstance(second, BaseException):
            wrong.append(f"{i}: second raised {second!r}")
        elif second not in (-i - 1, "SELECT 1") and not (
                isinstance(second, list) and [r[0] for r in second] == [-i - 1]):
            wrong.append(f"{i}: second got {second!r}")
    assert not wrong, wrong[:10]
    assert busy_errors == 200, "the second call ran while the first was in flight"
    # A long query in one task, calls from another: refused at once.
    task = asyncio.ensure_future(pgc.fetchval("SELECT pg_sleep(0.3)::text || $1::text", "x"))
    await asyncio.sleep(0.05)
    for call in (pgc.execute("SELECT 1"), pgc.fetch("SELECT 1"),
                 pgc.copy_from_query("SELECT 1", output=lambda b: None)):
        with pytest.raises(pg_client.InterfaceError, match="another operation is in progress"):
            await asyncio.wait_for(call, 1)
    assert await task == "x"
    await assert_in_step(pgc, 5)


async def test_x5_transactions_exited_out_of_order(pgc: pg_client.Connection,
                                                  figure: Any) -> None:
    """Two tasks interleave transaction blocks on one connection (psycopg's
    test_transaction_concurrency): the out-of-order exit raises; afterwards
    the connection is in step and outside any transaction."""
    t = await _temp_table(pgc)
    entered_a, entered_b, a_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def task_a() -> None:
        async with pgc.transaction():
            await pgc.execute(f"INSERT INTO {t} VALUES (1)")
            entered_a.set()
            await entered_b.wait()
        a_done.set()  # exits first, while B's block is still open

    async def task_b() -> None:
        await entered_a.wait()
        try:
            async with pgc.transaction():
                await pgc.execute(f"INSERT INTO {t} VALUES (2)")
                entered_b.set()
                await a_done.wait()
        finally:
            a_done.set()

    results = await asyncio.gather(asyncio.wait_for(task_a(), 10),
                                   asyncio.wait_for(task_b(), 10), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    figure("x5_out_of_order_errors", [f"{type(e).__name__}: {e}" for e in errors])
    assert errors, "blocks exited out of order, and nothing said so"
    for e in errors:
        assert isinstance(e, (pg_client.InterfaceError, pg_client.PostgresError)), repr(e)
        assert not isinstance(e, pg_client.ProtocolError), repr(e)
    # Whatever happened, the session is in step and not left in a transaction.
    if pgc.is_in_transaction():
        pytest.fail(f"connection left in a transaction after {errors!r}")
    await assert_in_step(pgc, 5)
    async with pgc.transaction():
        await pgc.execute(f"INSERT INTO {t} VALUES (3)")
    assert 3 in await _values(pgc, t)


# -- X6: the server's idle timeouts ---------------------------------------------------------


async def test_x6_idle_in_transaction_session_timeout(cluster: Any, app: str) -> None:
    con = await connect(cluster, app,
                        server_settings={"idle_in_transaction_session_timeout": "100ms"})
    try:
        await con.execute("BEGIN")
        await asyncio.sleep(0.5)
        with pytest.raises(pg_client.IdleInTransactionSessionTimeoutError) as info:
            await asyncio.wait_for(con.fetchval("SELECT 1"), 5)
        assert info.value.sqlstate == "25P03"
        assert con.is_closed()
    finally:
        con.terminate()


@pytest.mark.pg(">= 14")
async def test_x6_idle_session_timeout(cluster: Any, app: str) -> None:
    con = await connect(cluster, app, server_settings={"idle_session_timeout": "100ms"})
    try:
        assert await con.fetchval("SELECT 1") == 1
        await asyncio.sleep(0.5)
        with pytest.raises(pg_client.IdleSessionTimeoutError) as info:
            await asyncio.wait_for(con.fetchval("SELECT 1"), 5)
        assert info.value.sqlstate == "57P05"
        assert con.is_closed()
    finally:
        con.terminate()


@pytest.mark.pg(">= 14")
async def test_x6_pool_discards_timed_out_sessions(cluster: Any, app: str) -> None:
    pool = await pg_pool.create_pool(
        cluster.dsn(), min_size=2, max_size=2,
        server_settings={"application_name": app, "idle_session_timeout": "300ms"})
    try:
        errors = 0
        for _round in range(3):
            await asyncio.sleep(0.6)  # every idle session has been ended by the server
            for i in range(10):
                try:
                    assert await pool.fetchval("SELECT $1::int", i) == i
                except pg_client.PostgresError:
                    errors += 1
        assert errors == 0, f"{errors} app-visible errors: the pool lent dead connections"
        assert pool.get_stats().connections_lost >= 2
        pool._check_invariants()
    finally:
        await asyncio.wait_for(pool.close(), 10)


# -- C3: the COPY OUT sink fails or is too slow: the server stops too -------------------------

BIG_COPY = "SELECT generate_series(1, 50000000), repeat('y', 100)"  # streams (ProjectSet)


class SinkBoom(Exception):
    pass


@pytest.mark.parametrize("kind", ["sink_raises", "sink_too_slow"])
async def test_c3_sink_fails_server_stops(pgc: pg_client.Connection, ctl: asyncpg.Connection,
                                          kind: str, figure: Any) -> None:
    pid = pgc.get_server_pid()

    async def failing(chunk: bytes) -> None:
        raise SinkBoom()

    async def slow(chunk: bytes) -> None:
        await asyncio.sleep(60)

    loop = asyncio.get_running_loop()
    started = loop.time()
    if kind == "sink_raises":
        with pytest.raises(SinkBoom):
            await asyncio.wait_for(pgc.copy_from_query(BIG_COPY, output=failing), 10)
    else:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pgc.copy_from_query(BIG_COPY, output=slow, timeout=0.5), 10)
    raised = loop.time() - started
    assert raised < 1, "the error came after the whole COPY"
    # A CancelRequest stops the server's work (50 M rows would take a while).
    assert await wait_until(lambda: _not_active(ctl, pid), 2), "the server kept copying"
    figure(f"c3_{kind}_server_idle_after_s", round(loop.time() - started, 3))
    await assert_in_step(pgc, 5)


# -- C5: the connection is lost during COPY IN ----------------------------------------------


def _copy_rows(start: int, n: int, pad: str) -> bytes:
    return "".join(f"{i}\t{pad}\n" for i in range(start, start + n)).encode()


class _CountingRecords(list):  # type: ignore[type-arg]
    """A list of records (sent right behind the Query) that counts the bytes read."""

    def __init__(self, row: tuple[Any, ...], n: int, row_size: int,
                 on_mb: Callable[[int], None]) -> None:
        super().__init__([row] * n)
        self.row_size = row_size
        self.on_mb = on_mb

    def __iter__(self) -> Iterator[Any]:
        sent = 0
        for item in super().__iter__():
            sent += self.row_size
            if sent % (1024 * 1024) < self.row_size:
                self.on_mb(sent)
            yield item


@pytest.mark.parametrize("source", ["async_iterable", "records_list"])
@pytest.mark.parametrize("how", ["proxy_cut_10MB", "pg_terminate_backend"])
async def test_c5_connection_lost_mid_copy_in(cluster: Any, app: str, ctl: asyncpg.Connection,
                                              proxy: FaultProxy, how: str, source: str) -> None:
    table = f"c5_{uuid.uuid4().hex[:10]}"
    await ctl.execute(f"CREATE TABLE {table} (a int, b text)")
    con = await connect(cluster, app, via=proxy)
    sent = 0
    pad = "z" * 200
    half = asyncio.Event()

    def read(total: int) -> None:
        nonlocal sent
        sent = total
        if sent > 1024 * 1024:
            half.set()

    # 2 M records of 214 bytes: binary COPY sent right behind the Query.
    records = _CountingRecords((1, pad), 2_000_000, 2 + 8 + 4 + len(pad), read)

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        i = 0
        while sent < 200 * 1024 * 1024:
            chunk = _copy_rows(i, 300, pad)
            i += 300
            sent += len(chunk)
            if sent > 1024 * 1024:
                half.set()
            if how == "pg_terminate_backend":
                await asyncio.sleep(0.001)
            yield chunk

    task: asyncio.Future[Any] | None = None
    try:
        pid = con.get_server_pid()
        if how == "proxy_cut_10MB":
            conn = proxy.connections[-1]
            proxy.cut_after_bytes(conn.c2s.forwarded + 10 * 1024 * 1024, C2S, how="rst")
        if source == "records_list":
            await con.copy_records_to_table(table, records=[])  # look the columns up
            task = asyncio.ensure_future(con.copy_records_to_table(table, records=records))
        else:
            task = asyncio.ensure_future(con.copy_to_table(table, source=chunks()))
        task.add_done_callback(retrieve)
        if how == "pg_terminate_backend":
            await asyncio.wait_for(half.wait(), 10)
            assert await ctl.fetchval("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(CONNECTION_ERRORS) as info:
            await asyncio.wait_for(task, 30)
        assert not isinstance(info.value, pg_client.ProtocolError)
        if how == "pg_terminate_backend":
            assert isinstance(info.value, (pg_client.AdminShutdownError,
                                           pg_client.ConnectionDoesNotExistError)), info.value
        else:
            assert isinstance(info.value, pg_client.ConnectionDoesNotExistError), info.value
        assert con.is_closed()
        assert sent < 100 * 1024 * 1024, "the source kept being read after the connection died"

        async def gone() -> bool:
            return await backend_state(ctl, pid) is None

        assert await wait_until(gone, 5)
        assert await ctl.fetchval(f"SELECT count(*) FROM {table}") == 0
    finally:
        await reap(task)
        con.terminate()
        await ctl.execute(f"DROP TABLE IF EXISTS {table}")


# -- C6: cancel in the middle of a COPY OUT of 10 M rows -------------------------------------


async def test_c6_cancel_mid_copy_out(pgc: pg_client.Connection, ctl: asyncpg.Connection,
                                      figure: Any) -> None:
    pid = pgc.get_server_pid()
    received = 0

    async def sink(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)

    async with RssSampler() as rss:
        task = asyncio.ensure_future(pgc.copy_from_query(
            "SELECT g, repeat('x', 50) FROM generate_series(1, 10000000) g", output=sink))
        task.add_done_callback(retrieve)
        await asyncio.sleep(1.0)
        assert not task.done(), "10 M rows copied in under a second?"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    figure("c6_bytes_before_cancel", received)
    figure("c6_rss_growth_mib", round(rss.growth / 2**20, 1))
    assert received > 0
    assert rss.growth < 64 * 2**20, f"RSS grew by {rss.growth / 2**20:.0f} MiB"
    assert await wait_until(lambda: _not_active(ctl, pid), 3), "the server kept copying"
    await assert_in_step(pgc, 5)


# -- M1/M2: memory of streaming vs materializing -------------------------------------------


async def _stream_rows(con: pg_client.Connection, n: int) -> int:
    count = 0
    async with con.transaction():
        async for _ in con.cursor("SELECT g FROM generate_series(1, $1::int) g", n,
                                  prefetch=1000):
            count += 1
    return count


async def test_m1_cursor_memory_independent_of_rows(pgc: pg_client.Connection,
                                                    figure: Any) -> None:
    await _stream_rows(pgc, 10_000)  # warm up: statement and codec caches
    peaks = {}
    for n in (1_000_000, 2_000_000):
        with MemoryPeak() as m:
            assert await _stream_rows(pgc, n) == n
        peaks[n] = m.peak
    ratio = peaks[2_000_000] / max(peaks[1_000_000], 1)
    figure("m1_peak_kib", {n: p // 1024 for n, p in peaks.items()})
    figure("m1_ratio_2e6_vs_1e6", round(ratio, 2))
    assert ratio < 1.2, f"cursor memory grows with the row count: {peaks}"


async def test_m2_fetch_memory_linear(pgc: pg_client.Connection, figure: Any) -> None:
    query = "SELECT g FROM generate_series(1, $1::int) g"
    await pgc.fetch(query, 10)
    per_row = {}
    for n in (100_000, 1_000_000):
        with MemoryPeak() as m:
            rows = await pgc.fetch(query, n)
            assert len(rows) == n
            del rows
        per_row[n] = m.peak / n
    figure("m2_bytes_per_row_int4", {n: round(b, 1) for n, b in per_row.items()})
    ratio = per_row[1_000_000] / per_row[100_000]
    assert 0.7 < ratio < 1.3, f"fetch() memory is not linear in the rows: {per_row}"
    assert per_row[1_000_000] < 400, f"{per_row[1_000_000]:.0f} bytes per one-int row"


# -- M3: a slow consumer of COPY OUT; a cursor not iterated ----------------------------------


async def test_m3_slow_copy_consumer_bounded(pgc: pg_client.Connection, figure: Any) -> None:
    paused = 0
    chunks = 0
    proto = pgc._protocol

    async def sink(chunk: bytes) -> None:
        nonlocal paused, chunks
        chunks += 1
        paused += bool(getattr(proto, "_read_paused", False))
        # Slow enough that the 1 GB copy cannot finish in 2 s even though
        # each call receives a batch of many rows.
        await asyncio.sleep(0.05)

    async with RssSampler() as rss:
        task = asyncio.ensure_future(pgc.copy_from_query(
            "SELECT repeat('x', 1000) FROM generate_series(1, 1000000)", output=sink))
        task.add_done_callback(retrieve)
        await asyncio.sleep(2.0)  # ~1 GB offered, a few MB consumed
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    figure("m3_rss_growth_mib", round(rss.growth / 2**20, 1))
    figure("m3_chunks_consumed", chunks)
    assert paused, "reading was never paused for the slow consumer"
    assert rss.growth < 32 * 2**20, f"RSS grew by {rss.growth / 2**20:.0f} MiB"
    await assert_in_step(pgc, 3)


async def test_m3_cursor_not_iterated(pgc: pg_client.Connection, figure: Any) -> None:
    async with RssSampler() as rss:
        async with pgc.transaction():
            cur = await pgc.cursor("SELECT repeat('x', 1000) FROM generate_series(1, 5000000)")
            assert len(await cur.fetch(10)) == 10
            await asyncio.sleep(0.5)
            assert len(await cur.fetch(10)) == 10
    figure("m3_cursor_rss_growth_mib", round(rss.growth / 2**20, 1))
    assert rss.growth < 16 * 2**20


# -- M5: a large response while the client is still writing ----------------------------------


async def test_m5_large_response_while_writing(pgc: pg_client.Connection,
                                               figure: Any) -> None:
    """pgx's TestConnLargeResponseWhileWritingDoesNotDeadlock: debug5 makes the
    server send a notice stream while the client writes a large Bind (32,767
    parameters: asyncpg's limit, so pgx's 65,535 are refused client-side)."""
    n = 32_767
    notices: list[Any] = []
    pgc.add_log_listener(lambda con, msg: notices.append(msg))
    await pgc.execute("SET client_min_messages = debug5")
    query = "SELECT cardinality(ARRAY[" + ", ".join(f"${i}::int4" for i in range(1, n + 1)) + "])"
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        assert await asyncio.wait_for(pgc.fetchval(query, *range(n)), 60) == n
    finally:
        await pgc.execute("RESET client_min_messages")
    figure("m5_elapsed_s", round(loop.time() - started, 2))
    figure("m5_notices", len(notices))
    await assert_in_step(pgc, 3)


# -- A minimal scripted server (H3) for the wire-hardening rows -----------------------------
#
# tests-integration/fakeserver.py is the full H3 (TLS, auth scripts, byte
# recording) for the connect rows; these rows only need "accept the startup,
# then answer queries with chosen bytes", built on pg_wire.backend.



class _Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.messages = pgb.BackendReader(strict=False)
        self.sent_at: float | None = None

    async def recv(self) -> Any:
        """The next frontend message, or None at EOF."""
        while True:
            msg = self.messages.read_message()
            if msg is not None:
                return msg
            data = await self.reader.read(65536)
            if not data:
                return None
            self.messages.feed(data)

    async def recv_until(self, kind: type) -> list[Any]:
        got = []
        while True:
            msg = await self.recv()
            if msg is None:
                raise ConnectionError("client went away")
            got.append(msg)
            if isinstance(msg, kind):
                return got

    async def send(self, *parts: Any) -> None:
        self.writer.write(pgb.encode_messages(*parts))
        self.sent_at = asyncio.get_running_loop().time()
        await self.writer.drain()

    async def describe(self, fields: list[Any], param_oids: tuple[int, ...] = ()) -> None:
        """Answer Parse/Describe(statement)/Sync."""
        await self.recv_until(pgm.Sync)
        await self.send(pgm.ParseComplete(), pgm.ParameterDescription(param_oids),
                        pgm.RowDescription(tuple(fields)) if fields else pgm.NoData(),
                        pgm.ReadyForQuery("I"))

    async def bind(self) -> Any:
        """Read Bind/Execute/Sync; return the Bind (its result formats)."""
        got = await self.recv_until(pgm.Sync)
        return next(m for m in got if isinstance(m, pgm.Bind))


Script = Callable[[_Peer], Awaitable[None]]


class MiniServer:
    """``async with MiniServer(script) as srv:`` connect to ``srv.port``."""

    def __init__(self, script: Script, *, startup: bytes | None = None) -> None:
        self.script = script
        self.startup = startup
        self.errors: list[BaseException] = []
        self.peers: list[_Peer] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    async def __aenter__(self) -> MiniServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for peer in self.peers:
            peer.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = _Peer(reader, writer)
        self.peers.append(peer)
        try:
            msg = await peer.recv()
            if isinstance(msg, pgm.SSLRequest):
                await peer.send(b"N")
                msg = await peer.recv()
            if not isinstance(msg, pgm.StartupMessage):
                return
            await peer.send(self.startup if self.startup is not None
                            else pgb.startup_response())
            await self.script(peer)
            await peer.recv()  # until the client hangs up
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception as e:
            self.errors.append(e)
        finally:
            writer.close()
            self._tasks.discard(task)

    async def connect(self, **kw: Any) -> pg_client.Connection:
        return await pg_client.connect(host="127.0.0.1", port=self.port, user="u",
                                       database="d", ssl=False, timeout=5, **kw)


def raw(tag: bytes, length: int, body: bytes = b"") -> bytes:
    """A message header with any length field (signed or not), then *body*."""
    fmt = "!I" if length > 0x7FFFFFFF else "!i"
    return tag + struct.pack(fmt, length) + body


WIRE_ERRORS = (pg_client.ProtocolError,)
DECODE_ERRORS = (pg_client.ProtocolError, pg_client.exceptions._base.DataError, ValueError)


async def _expect_protocol_error(srv: MiniServer, call: Callable[[], Awaitable[Any]],
                                 *, during_connect: bool = False) -> tuple[BaseException, float]:
    """Run *call*; it must fail with ProtocolError. Return it and its latency (s)."""
    loop = asyncio.get_running_loop()
    with MemoryPeak() as mem:
        try:
            result = await asyncio.wait_for(call(), 5)
        except asyncio.TimeoutError:
            pytest.fail("hung: no error within 5 s of the hostile bytes")
        except BaseException as e:
            err: BaseException = e
        else:
            pytest.fail(f"hostile bytes were accepted: returned {result!r}")
        failed_at = loop.time()
    peer = srv.peers[-1]
    assert peer.sent_at is not None
    latency = failed_at - peer.sent_at
    assert isinstance(err, WIRE_ERRORS) or isinstance(err.__cause__, WIRE_ERRORS), (
        f"expected ProtocolError, got {type(err).__name__}: {err}")
    assert mem.peak < 2**20, f"allocated {mem.peak} bytes for a hostile header"
    return err, latency


# -- M4: hostile length headers --------------------------------------------------------------

M4_CASES = [(tag, length) for tag in (b"D", b"Z") for length in
            (0, 3, -1, 0x7FFFFFFF, 0xFFFFFFFF)] + [(b"Z", 30_001)]


@pytest.mark.parametrize("tag,length", M4_CASES, ids=lambda v: repr(v))
async def test_m4_hostile_length_after_startup(tag: bytes, length: int, figure: Any) -> None:
    async def script(peer: _Peer) -> None:
        await peer.recv_until(pgm.Query)
        await peer.send(raw(tag, length, b"\x00" * 64))

    async with MiniServer(script) as srv:
        con = await srv.connect()
        try:
            _, latency = await _expect_protocol_error(srv, lambda: con.execute("SELECT 1"))
            assert con.is_closed(), "connection left open after a protocol error"
        finally:
            con.terminate()
    figure("m4_latency_ms", round(latency * 1000, 2))
    assert latency < 0.1, f"{latency * 1000:.0f} ms to refuse a hostile header"


@pytest.mark.parametrize("length", [0, 3, -1, 0x7FFFFFFF, 0xFFFFFFFF])
async def test_m4_hostile_length_during_startup(length: int) -> None:
    async def script(peer: _Peer) -> None:
        pass

    async with MiniServer(script, startup=raw(b"R", length, b"\x00" * 64)) as srv:
        _err, latency = await _expect_protocol_error(srv, srv.connect, during_connect=True)
    assert latency < 0.1


# -- W3/W4: negative lengths, count mismatches -----------------------------------------------

TEXT_FIELD = pgm.FieldDescription("a", type_oid=25)


def _datarow(count: int, *values: bytes) -> bytes:
    body = struct.pack("!h", count) + b"".join(values)
    return raw(b"D", 4 + len(body), body)


def _value(data: bytes | None = None, length: int | None = None) -> bytes:
    if data is None:
        return struct.pack("!i", -1 if length is None else length)
    return struct.pack("!i", len(data) if length is None else length) + data


W_CASES: dict[str, tuple[list[Any], bytes]] = {
    # W3: negative field lengths other than -1 (NULL)
    "field_length_-2": ([TEXT_FIELD], _datarow(1, _value(length=-2))),
    "field_length_-2**31": ([TEXT_FIELD], _datarow(1, _value(length=-(2**31)))),
    "field_length_past_end": ([TEXT_FIELD], _datarow(1, _value(b"abc", length=1000))),
    # W4: DataRow field count != RowDescription
    "datarow_more_fields": ([TEXT_FIELD], _datarow(2, _value(b"x"), _value(b"y"))),
    "datarow_fewer_fields": ([TEXT_FIELD, TEXT_FIELD], _datarow(1, _value(b"x"))),
    "datarow_negative_count": ([TEXT_FIELD], _datarow(-1)),
    "datarow_count_past_body": ([TEXT_FIELD], _datarow(3000, _value(b"x"))),
}


@pytest.mark.parametrize("case", list(W_CASES))
async def test_w3_w4_hostile_datarow(case: str) -> None:
    fields, row = W_CASES[case]

    async def script(peer: _Peer) -> None:
        await peer.describe(fields)
        await peer.bind()
        await peer.send(pgm.BindComplete(), row, pgm.CommandComplete("SELECT 1"),
                        pgm.ReadyForQuery("I"))

    async with MiniServer(script) as srv:
        con = await srv.connect()
        try:
            await _expect_protocol_error(srv, lambda: con.fetch("SELECT x"))
            assert con.is_closed()
        finally:
            con.terminate()


def _rowdesc_count_past_body() -> bytes:
    one = pgm.RowDescription((TEXT_FIELD,)).encode()
    body = struct.pack("!h", 5) + one[7:]  # claims 5 fields, carries 1
    return raw(b"T", 4 + len(body), body)


@pytest.mark.parametrize("case", ["rowdescription_count_past_body",
                                  "function_call_response_size_-5"])
async def test_w3_w4_hostile_descriptions(case: str) -> None:
    async def script(peer: _Peer) -> None:
        if case == "rowdescription_count_past_body":
            await peer.recv_until(pgm.Sync)
            await peer.send(pgm.ParseComplete(), pgm.ParameterDescription(()),
                            _rowdesc_count_past_body(), pgm.ReadyForQuery("I"))
        else:
            await peer.recv_until(pgm.Query)
            await peer.send(raw(b"V", 8, struct.pack("!i", -5)), pgm.ReadyForQuery("I"))

    async with MiniServer(script) as srv:
        con = await srv.connect()
        try:
            call = ((lambda: con.fetch("SELECT x")) if case.startswith("rowdesc")
                    else (lambda: con.execute("SELECT x")))
            await _expect_protocol_error(srv, call)
            assert con.is_closed()
        finally:
            con.terminate()


# -- W5: hostile binary values (through the client; K2 fuzzes the decoders offline) ----------

INT4_ARRAY = 1007
NUMERIC = 1700


def _array(ndims: int, dims: list[tuple[int, int]], elems: bytes = b"") -> bytes:
    return (struct.pack("!iiI", ndims, 0, 23)
            + b"".join(struct.pack("!ii", n, lb) for n, lb in dims) + elems)


W5_CASES: dict[str, tuple[int, bytes]] = {
    "array_ndims_-1": (INT4_ARRAY, _array(-1, [])),
    "array_ndims_7": (INT4_ARRAY, _array(7, [(1, 1)] * 7, struct.pack("!ii", 4, 1))),
    "array_dim_-1": (INT4_ARRAY, _array(1, [(-1, 1)])),
    "array_dims_overflow_int32": (INT4_ARRAY, _array(2, [(65536, 1), (65536, 1)])),
    "array_dim_huge_no_elements": (INT4_ARRAY, _array(1, [(0x7FFFFFFF, 1)])),
    "array_element_length_-7": (INT4_ARRAY, _array(1, [(1, 1)], struct.pack("!i", -7))),
    "numeric_ndigits_10000": (NUMERIC, struct.pack("!hhHh", 10_000, 0, 0, 0)),
    "numeric_bad_sign": (NUMERIC, struct.pack("!hhHhh", 1, 0, 0x1234, 0, 1)),
}


@pytest.mark.parametrize("case", list(W5_CASES))
async def test_w5_hostile_binary_values(case: str) -> None:
    oid, value = W5_CASES[case]
    formats: list[Any] = []

    async def script(peer: _Peer) -> None:
        await peer.describe([pgm.FieldDescription("v", type_oid=oid)])
        bind = await peer.bind()
        formats.append(bind.result_formats)
        await peer.send(pgm.BindComplete(), _datarow(1, _value(value)),
                        pgm.CommandComplete("SELECT 1"), pgm.ReadyForQuery("I"))
        # A second query, to see the connection is still in step.
        await peer.describe([pgm.FieldDescription("n", type_oid=23)])
        await peer.bind()
        await peer.send(pgm.BindComplete(), _datarow(1, _value(struct.pack("!i", 77))),
                        pgm.CommandComplete("SELECT 1"), pgm.ReadyForQuery("I"))

    async with MiniServer(script) as srv:
        con = await srv.connect()
        try:
            with MemoryPeak() as mem:
                with pytest.raises(Exception) as info:
                    await asyncio.wait_for(con.fetchval("SELECT v"), 5)
            assert formats and set(formats[0]) <= {1}, (
                f"the client asked for text results {formats}: this case needs binary")
            err = info.value
            assert isinstance(err, DECODE_ERRORS) and not isinstance(err, asyncio.TimeoutError), (
                f"{type(err).__name__}: {err}")
            assert mem.peak < 2**20, f"allocated {mem.peak} bytes decoding {case}"
            if not con.is_closed():
                assert await asyncio.wait_for(con.fetchval("SELECT n"), 5) == 77
        finally:
            con.terminate()


# -- W7: the server switches client_encoding ---------------------------------------------------

# Valid UTF-8 ("café"), but other characters in the encoding switched to:
# decoding them as UTF-8 after the switch would be a silent mis-decode.
AFTER_SWITCH = b"caf\xc3\xa9"


@pytest.mark.parametrize("encoding", ["BIG5", "SQL_ASCII"])
@pytest.mark.parametrize("where", ["inside_result", "while_idle"])
async def test_w7_client_encoding_switch_refused(encoding: str, where: str) -> None:
    async def script(peer: _Peer) -> None:
        await peer.describe([TEXT_FIELD])
        await peer.bind()
        if where == "inside_result":
            await peer.send(pgm.BindComplete(), _datarow(1, _value(b"before")),
                            pgm.ParameterStatus("client_encoding", encoding),
                            _datarow(1, _value(AFTER_SWITCH)),
                            pgm.CommandComplete("SELECT 2"), pgm.ReadyForQuery("I"))
        else:
            await peer.send(pgm.BindComplete(), _datarow(1, _value(b"ok")),
                            pgm.CommandComplete("SELECT 1"), pgm.ReadyForQuery("I"))
            await asyncio.sleep(0.05)
            await peer.send(pgm.ParameterStatus("client_encoding", encoding))
            await peer.bind()
            await peer.send(pgm.BindComplete(), _datarow(1, _value(AFTER_SWITCH)),
                            pgm.CommandComplete("SELECT 1"), pgm.ReadyForQuery("I"))

    async with MiniServer(script) as srv:
        con = await srv.connect()
        try:
            if where == "inside_result":
                with pytest.raises(Exception) as info:
                    rows = await asyncio.wait_for(con.fetch("SELECT a"), 5)
                    pytest.fail(f"rows after the encoding switch were returned: {rows!r}")
            else:
                assert [r[0] for r in await con.fetch("SELECT a")] == ["ok"]
                await asyncio.sleep(0.2)
                with pytest.raises(Exception) as info:
                    value = await asyncio.wait_for(con.fetch("SELECT a"), 5)
                    pytest.fail(f"query ran after the encoding switch: {value!r}")
            assert isinstance(info.value, (pg_client.ProtocolError,
                                           pg_client.PostgresConnectionError,
                                           pg_client.InterfaceError)), repr(info.value)
            assert "client_encoding" in error_text(info.value), error_text(info.value)
            assert con.is_closed()
        finally:
            con.terminate()


async def test_w7_real_server_set_client_encoding(pgc: pg_client.Connection) -> None:
    try:
        await pgc.execute("SET client_encoding = 'LATIN1'")
    except (pg_client.ProtocolError, pg_client.InterfaceError,
            pg_client.PostgresConnectionError):
        pass
    # Refused: never a LATIN1 byte decoded as UTF-8, never a wrong string.
    with pytest.raises((pg_client.ProtocolError, pg_client.InterfaceError,
                        pg_client.PostgresConnectionError)):
        value = await asyncio.wait_for(pgc.fetchval("SELECT 'é'::text"), 5)
        pytest.fail(f"the connection went on after the switch and returned {value!r}")
    assert pgc.is_closed()


# -- P4: blackhole while the pool is in use ----------------------------------------------------


async def test_p4_blackhole_during_use(cluster: Any, app: str, figure: Any) -> None:
    """asyncpg's test_pool_handles_abrupt_connection_loss shape: 3 connections,
    9 workers, command_timeout 1 s, the network goes silent at 1 s."""
    pool_size, workers, query_time = 3, 9, 0.5
    acquire_timeout = command_timeout = 1.0
    rounds = (workers - 1) // pool_size + 1
    bound = (acquire_timeout + command_timeout) * rounds * 1.2
    async with FaultProxy("127.0.0.1", cluster.port) as proxy:
        pool = await pg_pool.create_pool(
            cluster.dsn(host=proxy.host, port=proxy.port), ssl=False, min_size=pool_size,
            max_size=pool_size, timeout=command_timeout, command_timeout=command_timeout,
            server_settings={"application_name": app})
        try:
            async def worker() -> None:
                async with pool.acquire(timeout=acquire_timeout) as con:
                    await con.fetch("SELECT pg_sleep($1)", query_time)

            loop = asyncio.get_running_loop()
            handle = loop.call_later(1.0, proxy.blackhole)
            started = loop.time()
            tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
            _done, pending = await asyncio.wait(tasks, timeout=bound + 30)
            elapsed = loop.time() - started
            handle.cancel()
            await reap(*tasks)
            results = [t.exception() if not t.cancelled() else "cancelled" for t in tasks]
            figure("p4_elapsed_s", round(elapsed, 2))
            figure("p4_bound_s", round(bound, 2))
            figure("p4_outcomes", sorted({type(r).__name__ for r in results}))
            assert not pending, f"{len(pending)} workers still running after {bound + 30} s"
            assert elapsed <= bound, f"workers took {elapsed:.1f} s, bound {bound:.1f} s"
            for r in results:
                assert r is None or isinstance(r, (asyncio.TimeoutError, *CONNECTION_ERRORS)), r
            pool._check_invariants()
            # Once the network is back, the pool serves again.
            proxy.passthrough()

            async def serves() -> bool:
                try:
                    return await pool.fetchval("SELECT 1", timeout=2) == 1
                except (asyncio.TimeoutError, *CONNECTION_ERRORS):
                    return False

            assert await wait_until(serves, 30, 0.1)
        finally:
            proxy.passthrough()
            pool.terminate()


# -- P5: a silently dead idle connection ------------------------------------------------------


@pytest.mark.parametrize("mode", ["ping", pytest.param("no_ping", marks=pytest.mark.slow)])
async def test_p5_silently_dead_idle_connection(cluster: Any, app: str, mode: str,
                                                figure: Any) -> None:
    async with FaultProxy("127.0.0.1", cluster.port) as proxy:
        pool = await pg_pool.create_pool(
            cluster.dsn(host=proxy.host, port=proxy.port), ssl=False, min_size=2, max_size=4,
            command_timeout=0.5, ping_after_idle=0.2 if mode == "ping" else None,
            ping_timeout=0.5, server_settings={"application_name": app})
        try:
            assert await pool.fetchval("SELECT 1") == 1
            proxy.blackhole("existing")  # both pooled connections now go nowhere
            await asyncio.sleep(0.3)
            loop = asyncio.get_running_loop()
            errors = 0
            first = None
            for i in range(10):
                started = loop.time()
                try:
                    assert await pool.fetchval("SELECT $1::int", i, timeout=5) == i
                except (asyncio.TimeoutError, *CONNECTION_ERRORS):
                    errors += 1
                if first is None:
                    first = loop.time() - started
            figure(f"p5_{mode}_app_visible_errors", errors)
            figure(f"p5_{mode}_first_acquire_s", round(first or 0, 3))
            assert first is not None
            if mode == "ping":
                assert errors == 0, "ping-on-acquire should have replaced the dead connections"
                # Each dead idle connection costs at most one ping_timeout.
                assert first < 2 * 0.5 + 0.5, first
            else:
                assert errors <= 2, "more errors than dead connections"
                # The query times out; its release waits for the cancel (which
                # cannot complete) at most the cancel budget.
                assert first < 0.5 + CANCEL_BUDGET + 0.5, first
            pool._check_invariants()
        finally:
            proxy.passthrough()
            pool.terminate()


# -- P8: too many connections --------------------------------------------------------------------


async def test_p8_too_many_connections(cluster: Any, app: str, ctl: asyncpg.Connection,
                                       figure: Any) -> None:
    if not getattr(cluster, "managed", False):
        pytest.skip("needs a cluster we manage (creates a role)")
    role = f"p8_{uuid.uuid4().hex[:8]}"
    await ctl.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'p8pw' CONNECTION LIMIT 2")
    pool = None
    try:
        pool = await pg_pool.create_pool(
            cluster.dsn(role, password="p8pw"), min_size=0, max_size=5,
            server_settings={"application_name": app}, reconnect_delay_max=0.5)
        seen: dict[str, int] = {}
        ok = 0
        loop = asyncio.get_running_loop()
        stop = loop.time() + 2.0

        async def worker(i: int) -> None:
            nonlocal ok
            while loop.time() < stop:
                try:
                    async with pool.acquire(timeout=1) as con:
                        assert await con.fetchval("SELECT $1::int", i) == i
                        ok += 1
                        await asyncio.sleep(0.05)
                except (pg_client.TooManyConnectionsError, asyncio.TimeoutError) as e:
                    seen[type(e).__name__] = seen.get(type(e).__name__, 0) + 1

        before = pool.get_stats().connect_errors
        await asyncio.gather(*[worker(i) for i in range(10)])
        rate = (pool.get_stats().connect_errors - before) / 2.0
        figure("p8_connect_errors_per_s", rate)
        figure("p8_errors_seen", seen)
        figure("p8_ok_ops", ok)
        assert ok > 0, "the pool did not run at the 2 connections it could get"
        assert rate <= 10, f"{rate} connect attempts/s: a busy loop"
        assert pool.get_size() <= 5
        # Lift the limit: the pool grows to 5 without a restart.
        await ctl.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
        lifted = loop.time()

        async def hold() -> None:
            async with pool.acquire(timeout=5) as con:
                await con.fetchval("SELECT pg_sleep(0.3)")

        async def full() -> bool:
            await asyncio.gather(*[hold() for _ in range(5)], return_exceptions=True)
            return pool.get_size() == 5

        assert await wait_until(full, 10, 0.05), f"pool stuck at {pool.get_size()}"
        figure("p8_recovery_s", round(loop.time() - lifted, 2))
        pool._check_invariants()
    finally:
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 10)
            pool.terminate()
        await terminate_app(ctl, app)
        await asyncio.sleep(0.1)
        await ctl.execute(f"DROP ROLE IF EXISTS {role}")


# -- P9: lifetimes, idle limits and max_queries churning under load --------------------------


async def test_p9_lifetime_churn(cluster: Any, app: str, figure: Any) -> None:
    pool = await pg_pool.create_pool(
        cluster.dsn(), min_size=2, max_size=10, max_inactive_connection_lifetime=0.1,
        max_queries=7, max_lifetime=0.5, server_settings={"application_name": app})
    try:
        rng = random.Random(9)
        loop = asyncio.get_running_loop()
        stop = loop.time() + 2.0
        ops = 0
        errors: list[str] = []

        async def worker(w: int) -> None:
            nonlocal ops
            r = random.Random(rng.random())
            i = 0
            while loop.time() < stop:
                i += 1
                try:
                    async with pool.acquire(timeout=5) as con:
                        value = await con.fetchval("SELECT $1::int", w * 100_000 + i)
                        if value != w * 100_000 + i:
                            errors.append(f"worker {w}: got {value}")
                        if r.random() < 0.3:
                            await asyncio.sleep(r.random() * 0.05)
                    ops += 1
                except Exception as e:
                    errors.append(f"worker {w}: {type(e).__name__}: {e}")
                await asyncio.sleep(r.random() * 0.15)

        await asyncio.gather(*[worker(w) for w in range(50)])
        stats = pool.get_stats()
        figure("p9_ops_per_s", round(ops / 2.0))
        figure("p9_connections_created", stats.connections_created)
        assert not errors, errors[:10]
        assert stats.connections_created > 10, "no churn happened"
        pool._check_invariants()
    finally:
        await asyncio.wait_for(pool.close(), 10)


# -- Z3: a small cancel storm ------------------------------------------------------------------


async def test_z3_cancel_storm(cluster: Any, app: str, ctl: asyncpg.Connection,
                               figure: Any) -> None:
    pool = await pg_pool.create_pool(cluster.dsn(), min_size=10, max_size=10,
                                     server_settings={"application_name": app})
    rng = random.Random(33)
    wrong: list[str] = []
    counts = {"ok": 0, "cancelled": 0, "error": 0}
    try:
        loop = asyncio.get_running_loop()
        stop = loop.time() + 3.0

        async def op(i: int, sleep: float) -> int:
            async with pool.acquire(timeout=10) as con:
                if i % 4 == 0:
                    async with con.transaction():
                        await con.execute("SELECT pg_sleep($1)", sleep)
                        return await con.fetchval("SELECT $1::int", i)
                return await con.fetchval("SELECT $1::int FROM pg_sleep($2)", i, sleep)

        async def driver(d: int) -> None:
            i = d * 1_000_000
            while loop.time() < stop:
                i += 1
                task = asyncio.ensure_future(op(i, rng.random() * 0.02))
                if rng.random() < 0.2:
                    loop.call_later(rng.random() * 0.02, task.cancel)
                try:
                    value = await task
                except asyncio.CancelledError:
                    if not task.cancelled():
                        raise
                    counts["cancelled"] += 1
                    continue
                except Exception as e:
                    counts["error"] += 1
                    wrong.append(f"{i}: {type(e).__name__}: {e}")
                    continue
                counts["ok"] += 1
                if value != i:
                    wrong.append(f"{i}: got {value}")
                pool._check_invariants()

        await asyncio.gather(*[driver(d) for d in range(20)])
        figure("z3_counts", counts)
        assert not wrong, wrong[:10]
        assert counts["cancelled"] > 20
        await wait_until(lambda: not pool._in_use, 10)
        pool._check_invariants()
        assert pool.get_size() == 10
        await asyncio.sleep(1.0)
        orphans = await backends(ctl, app, active_only=True)
        assert not orphans, f"server queries still running 1 s after the storm: {orphans}"
    finally:
        await asyncio.wait_for(pool.close(), 15)


# -- Z1 (fast tier): 1,000 pooled operations under random connection faults ------------------


async def test_z1_chaos_1000_ops(cluster: Any, figure: Any) -> None:
    import chaosload

    seed = int(os.environ.get("PG_CHAOS_SEED", "0")) or random.randrange(1 << 30)
    report = await chaosload.run_chaos(cluster, ops=1000, seed=seed)
    figure("z1_headline", report.headline())
    figure("z1_details", report.details())
    assert report.wrong == 0, f"seed {seed}: wrong results: {report.examples}"
    assert report.hangs == 0, f"seed {seed}: hangs: {report.examples}"
    assert report.lost == 0 and report.phantom == 0, f"seed {seed}: {report.examples}"
    assert report.recovery is not None and report.recovery < 1.0, (
        f"seed {seed}: pool whole again after {report.recovery} s")
    assert report.leaks == 0, f"seed {seed}: leaks {report.leak_details}"
    assert sum(report.faults.values()) > 0, "no fault was injected"


# -- T2: the deterministic cancel sweep (H4) over every operation ------------------------------

SWEEP_TABLE = "sweep_rel"


async def _sweep_con(cluster: Any, app: str) -> pg_client.Connection:
    con = await connect(cluster, app)
    await con.execute(f"CREATE TEMP TABLE {SWEEP_TABLE} (a int)")
    return con


def _sweep_ops() -> dict[str, Callable[[Any], Awaitable[Any]]]:
    async def prepare(con: Any) -> Any:
        return await (await con.prepare("SELECT $1::int + 1")).fetchval(1)

    async def cursor(con: Any) -> Any:
        async with con.transaction():
            return [r[0] async for r in con.cursor("SELECT generate_series(1, 300)",
                                                   prefetch=50)]

    async def commit(con: Any) -> Any:
        async with con.transaction():
            await con.execute(f"INSERT INTO {SWEEP_TABLE} VALUES (1)")

    async def rollback(con: Any) -> Any:
        tr = con.transaction()
        await tr.start()
        try:
            await con.execute(f"INSERT INTO {SWEEP_TABLE} VALUES (2)")
        finally:
            await tr.rollback()

    async def copy_out(con: Any) -> Any:
        chunks: list[bytes] = []

        async def sink(b: bytes) -> None:
            chunks.append(b)

        return await con.copy_from_query("SELECT generate_series(1, 50000)", output=sink)

    return {
        "prepare": prepare,
        "fetch": lambda con: con.fetch("SELECT generate_series(1, 3000) AS g, 'x' AS t"),
        "fetchrow": lambda con: con.fetchrow("SELECT $1::int, $2::text", 1, "v"),
        "execute": lambda con: con.execute(
            f"INSERT INTO {SWEEP_TABLE} VALUES (1); SELECT count(*) FROM {SWEEP_TABLE}"),
        "executemany": lambda con: con.executemany(
            f"INSERT INTO {SWEEP_TABLE} VALUES ($1)", [(i,) for i in range(300)]),
        "cursor": cursor,
        "transaction_commit": commit,
        "transaction_rollback": rollback,
        "copy_in": lambda con: con.copy_records_to_table(
            SWEEP_TABLE, records=[(i,) for i in range(20000)]),
        "copy_out": copy_out,
    }


@pytest.mark.parametrize("op_name", list(_sweep_ops()))
async def test_t2_cancel_sweep_data_points(cluster: Any, app: str, ctl: asyncpg.Connection,
                                           op_name: str, figure: Any) -> None:
    operation = _sweep_ops()[op_name]
    shared: dict[str, Any] = {}

    async def setup() -> Any:
        con = shared.get("con")
        if con is None or con.is_closed():
            shared["con"] = con = await _sweep_con(cluster, app)
        return con

    async def teardown(con: Any) -> None:
        if con.is_closed():
            shared.pop("con", None)

    async with LeakProbe(control=ctl, app=app):
        try:
            result = await cancelsweep.sweep(op_name, setup=setup, operation=operation,
                                             teardown=teardown)
        finally:
            con = shared.pop("con", None)
            if con is not None:
                await con.close()
    figure("t2_sweep", str(result))
    assert not result.violations, "\n".join(result.violations[:15])
    assert result.points >= 1 and result.completed_at is not None


@pytest.mark.parametrize("auth", ["trust", "scram"])
async def test_t2_cancel_sweep_connect(cluster: Any, app: str, ctl: asyncpg.Connection,
                                       auth: str, figure: Any) -> None:
    import pgcluster

    if auth == "scram" and not getattr(cluster, "managed", False):
        pytest.skip("needs the test roles of a cluster we manage")
    dsn = (cluster.dsn() if auth == "trust" else
           cluster.dsn(pgcluster.SCRAM_USER, password=pgcluster.PASSWORDS[pgcluster.SCRAM_USER]))

    async def setup() -> None:
        return None

    async def connect_once(_: Any) -> pg_client.Connection:
        return await pg_client.connect(dsn, server_settings={"application_name": app})

    async with LeakProbe(control=ctl, app=app):
        result = await cancelsweep.sweep("connect", setup=setup, operation=connect_once)
    figure("t2_sweep", str(result))
    assert not result.violations, "\n".join(result.violations[:15])
    assert result.points >= 1


async def test_t2_cancel_sweep_pool(cluster: Any, app: str, ctl: asyncpg.Connection,
                                    figure: Any) -> None:
    async with LeakProbe(control=ctl, app=app):
        pool = await pg_pool.create_pool(cluster.dsn(), min_size=1, max_size=2,
                                         server_settings={"application_name": app})
        try:
            async def setup() -> Any:
                return pool

            async def acquire_release(p: Any) -> Any:
                async with p.acquire(timeout=10) as con:
                    return await con.fetchval("SELECT $1::int", 7)

            async def check(p: Any) -> str:
                p._check_invariants()
                async with p.acquire(timeout=10) as con:
                    if await con.fetchval("SELECT $1::int", 8) != 8:
                        return "violation: wrong result after the cancel"
                    if con.is_in_transaction():
                        return "violation: lent in a transaction"
                if not await wait_until(lambda: not p._in_use, 10):
                    return "violation: a connection never came back"
                p._check_invariants()
                return "usable"

            results = []
            for mode in ("data", "steps"):
                result = await cancelsweep.sweep("pool", setup=setup, operation=acquire_release,
                                                 check=check, mode=mode)
                results.append(result)
                figure(f"t2_sweep_{mode}", str(result))
        finally:
            await asyncio.wait_for(pool.close(), 10)
    for result in results:
        assert not result.violations, "\n".join(result.violations[:15])
