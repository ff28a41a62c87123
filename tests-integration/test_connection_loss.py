"""Lost connections, through the fault proxy and from the server side
(RELIABILITY.md R1-R5, R7-R9, R12).

The rule: every failure is a specific connection error, the connection ends
up visibly closed or still in step, and nothing hangs. All proxied
connections use ``ssl=False`` so the proxy can follow PostgreSQL's framing.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import ipaddress
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

import pg_client
import pgcluster

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import C2S, S2C, FaultProxy, deaf_listen

pytestmark = pytest.mark.timeout(240)

CONNECTION_ERRORS = (pg_client.PostgresConnectionError, pg_client.InterfaceError, OSError)


def _needs_managed(cluster: Any) -> None:
    if not cluster.managed:
        pytest.skip("PGTEST_DSN server: can't restart it or rely on the test roles")


@pytest.fixture
async def proxy(cluster: Any) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", cluster.port) as p:
        yield p


def _proxied_dsn(cluster: Any, proxy: FaultProxy, **kw: Any) -> str:
    return cluster.dsn(host=proxy.host, port=proxy.port, **kw)


async def _connect_via(cluster: Any, proxy: FaultProxy, **kw: Any) -> pg_client.Connection:
    return await pg_client.connect(_proxied_dsn(cluster, proxy), ssl=False, **kw)


# -- R1 / R2 --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["rst", "fin"])
@pytest.mark.parametrize("nth", [1, 500, 9999])
async def test_cut_mid_result(cluster: Any, proxy: FaultProxy, how: str, nth: int) -> None:
    con = await _connect_via(cluster, proxy)
    try:
        assert await con.fetchval("SELECT 1") == 1
        proxy.cut_at_message(b"D", S2C, nth=nth, how=how, where="middle")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(pg_client.ConnectionDoesNotExistError) as info:
            await asyncio.wait_for(
                con.fetch("SELECT g, 'row ' || g FROM generate_series(1, 10000) g"), 10)
        assert loop.time() - started < 5
        assert info.value.request_sent is True
        assert con.is_closed()
        # The next call fails at once, it does not wait for anything.
        with pytest.raises(CONNECTION_ERRORS):
            await asyncio.wait_for(con.fetchval("SELECT 1"), 5)
    finally:
        con.terminate()


@pytest.mark.parametrize("how", ["rst", "fin"])
async def test_cut_while_idle_then_query(cluster: Any, proxy: FaultProxy, how: str) -> None:
    con = await _connect_via(cluster, proxy)
    try:
        assert await con.fetchval("SELECT 1") == 1
        proxy.cut_all(how)
        # Give the client a moment to see the close; either way the next call
        # must raise a connection error, not hang.
        await asyncio.sleep(0.1)
        assert con.is_closed()
        with pytest.raises(CONNECTION_ERRORS):
            await asyncio.wait_for(con.fetchval("SELECT 1"), 5)
    finally:
        con.terminate()


async def test_cut_before_query_is_answered_marks_request_sent(
    cluster: Any, proxy: FaultProxy
) -> None:
    """Cut right after the server got the whole request: outcome unknown."""
    con = await _connect_via(cluster, proxy)
    try:
        await con.execute("CREATE TEMP TABLE IF NOT EXISTS t_lost (a int)")
        proxy.cut_at_message(b"Q", C2S, nth=1, how="rst", where="after")
        with pytest.raises(pg_client.ConnectionDoesNotExistError) as info:
            await asyncio.wait_for(con.execute("INSERT INTO t_lost VALUES (1)"), 10)
        assert info.value.request_sent is True
        assert con.is_closed()
    finally:
        con.terminate()


# -- R3: cut at every byte offset of a small exchange ------------------------------------

EXCHANGE_USER = pgcluster.SCRAM_USER


async def _exchange(dsn: str) -> int:
    con = await pg_client.connect(dsn, ssl=False, timeout=10)
    try:
        return await con.fetchval("SELECT $1::int * 2", 21)
    finally:
        await con.close(timeout=5)


def _offsets(length: int, messages: list[tuple[bytes, int, int]], step: int = 7) -> list[int]:
    points = set(range(0, length + 1, step))
    for _tag, start, end in messages:
        points.update((start, start + 1, end - 1, end))
    return sorted(p for p in points if 0 <= p <= length)


@pytest.mark.parametrize("direction", [C2S, S2C])
async def test_cut_at_every_offset(cluster: Any, direction: str) -> None:
    _needs_managed(cluster)
    password = pgcluster.PASSWORDS[EXCHANGE_USER]
    # Record one clean exchange: SCRAM login + one extended query + Terminate.
    async with FaultProxy("127.0.0.1", cluster.port, record=True) as rec:
        dsn = cluster.dsn(EXCHANGE_USER, password=password, host=rec.host, port=rec.port)
        assert await _exchange(dsn) == 42
        await rec.wait_closed_all(5)
        [conn] = rec.connections
        stream = conn.stream(direction)
        length = len(stream.data or b"")
        offsets = _offsets(length, stream.messages)
    assert length > 50
    outcomes: dict[str, int] = {}
    bad: list[str] = []
    for i, offset in enumerate(offsets):
        how = "rst" if i % 2 else "fin"
        async with FaultProxy("127.0.0.1", cluster.port) as proxy:
            proxy.cut_after_bytes(offset, direction, how=how)
            dsn = cluster.dsn(EXCHANGE_USER, password=password, host=proxy.host, port=proxy.port)
            try:
                result = await asyncio.wait_for(_exchange(dsn), 10)
            except asyncio.TimeoutError:
                bad.append(f"offset {offset} ({how}): hung for 10 s")
                continue
            except CONNECTION_ERRORS as e:
                if isinstance(e, pg_client.ProtocolError):
                    bad.append(f"offset {offset} ({how}): ProtocolError {e}")
                outcomes[type(e).__name__] = outcomes.get(type(e).__name__, 0) + 1
                continue
            except Exception as e:
                bad.append(f"offset {offset} ({how}): {type(e).__module__}.{type(e).__name__}: {e}")
                continue
            if result != 42:
                bad.append(f"offset {offset} ({how}): wrong result {result!r}")
            outcomes["success"] = outcomes.get("success", 0) + 1
    assert not bad, f"{len(bad)}/{len(offsets)} cuts went wrong:\n" + "\n".join(bad[:20])
    # Sanity: the sweep did cut something (only cuts at the very end succeed).
    assert sum(v for k, v in outcomes.items() if k != "success") > len(offsets) // 2, outcomes


# -- R4: 1-byte fragmentation ------------------------------------------------------------

VARIED_QUERY = """
SELECT g AS i, g::int8 * 1000000007 AS big, (g / 7.0)::numeric(20, 6) AS n,
       g / 3.0::float8 AS f, 'tëxt ' || repeat('€', g % 5) AS t, NULL::text AS nothing,
       decode(lpad(to_hex(g), 8, '0'), 'hex') AS b, g % 2 = 0 AS ok,
       '2020-02-29 12:00:00+00'::timestamptz + g * interval '1 day 1 second' AS ts,
       make_interval(days => g, secs => g / 10.0) AS iv,
       ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid AS u,
       ARRAY[g, NULL, -g] AS arr, ARRAY[['a', 'b'], ['c', NULL]] AS tarr,
       jsonb_build_object('g', g, 's', 'é') AS j, ('10.0.0.' || (g % 250))::inet AS ip,
       int4range(g, g + 10) AS r, (g, 'x')::record AS rec
FROM generate_series(1, 200) g
"""


async def test_fragmented_stream_same_results(cluster: Any, proxy: FaultProxy) -> None:
    direct = await pg_client.connect(cluster.dsn())
    try:
        expected = [tuple(r) for r in await direct.fetch(VARIED_QUERY)]
    finally:
        await direct.close()
    con = await _connect_via(cluster, proxy)
    try:
        assert [tuple(r) for r in await con.fetch(VARIED_QUERY)] == expected
        proxy.fragment(1)
        got = [tuple(r) for r in await asyncio.wait_for(con.fetch(VARIED_QUERY), 60)]
        assert got == expected
        # A prepared statement and parameters, both directions fragmented.
        args = (decimal.Decimal("-1.5"), "x\u00e9'\"", datetime.date(2000, 2, 29),
                ipaddress.ip_address("::1"), [1, None, 3])
        row = await con.fetchrow("SELECT $1::numeric, $2::text, $3::date, $4::inet, $5::int[]",
                                 *args)
        assert tuple(row) == args
    finally:
        await con.close()
    # And a connection made through the fragmenting proxy from the start.
    con = await _connect_via(cluster, proxy)
    try:
        assert await con.fetchval("SELECT $1::text", "fragmented") == "fragmented"
    finally:
        await con.close()


# -- R5: blackhole with command_timeout ----------------------------------------------------


async def test_blackhole_mid_query_with_command_timeout(cluster: Any, proxy: FaultProxy) -> None:
    con = await _connect_via(cluster, proxy, command_timeout=1)
    try:
        assert await con.fetchval("SELECT 1") == 1
        task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(5), 7"))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        await asyncio.sleep(0.2)
        proxy.blackhole()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(task, 10)
        assert loop.time() - started < 5
        # Heal the network; the held bytes (incl. the CancelRequest) flow on.
        proxy.passthrough()
        if con.is_closed():
            with pytest.raises(CONNECTION_ERRORS):
                await con.fetchval("SELECT 1")
        else:
            # In step: each answer is for its own question.
            for i in range(5):
                try:
                    value = await asyncio.wait_for(con.fetchval("SELECT $1::int", i), 20)
                except CONNECTION_ERRORS:
                    assert con.is_closed()
                    break
                assert value == i
    finally:
        con.terminate()


async def test_blackhole_then_connection_aborted(cluster: Any, proxy: FaultProxy) -> None:
    """The blackhole lasts: the call times out, later calls don't hang either."""
    con = await _connect_via(cluster, proxy, command_timeout=0.5)
    try:
        assert await con.fetchval("SELECT 1") == 1
        proxy.blackhole()
        for _ in range(3):
            with pytest.raises((asyncio.TimeoutError, *CONNECTION_ERRORS)):
                await asyncio.wait_for(con.fetchval("SELECT 2"), 15)
    finally:
        con.terminate()


# -- R7 / R8 / R9: the server ends the session ---------------------------------------------


async def test_terminate_backend_during_query(cluster: Any, ctl: asyncpg.Connection) -> None:
    con = await pg_client.connect(cluster.dsn())
    try:
        pid = con.get_server_pid()
        task = asyncio.ensure_future(con.fetch("SELECT pg_sleep(10)"))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        for _ in range(100):
            state = await ctl.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
            if state == "active":
                break
            await asyncio.sleep(0.02)
        assert await ctl.fetchval("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(pg_client.AdminShutdownError) as info:
            await asyncio.wait_for(task, 10)
        assert info.value.sqlstate == "57P01"
        assert con.is_closed()
        with pytest.raises(CONNECTION_ERRORS):
            await asyncio.wait_for(con.fetchval("SELECT 1"), 5)
    finally:
        con.terminate()


async def test_terminate_backend_while_idle(cluster: Any, ctl: asyncpg.Connection) -> None:
    con = await pg_client.connect(cluster.dsn())
    try:
        assert await con.fetchval("SELECT 1") == 1
        assert await ctl.fetchval("SELECT pg_terminate_backend($1)", con.get_server_pid())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not con.is_closed() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert con.is_closed(), "the server's FATAL and EOF while idle should close the connection"
        started = loop.time()
        with pytest.raises((pg_client.ConnectionDoesNotExistError,
                            pg_client.AdminShutdownError, pg_client.InterfaceError)) as info:
            await asyncio.wait_for(con.fetchval("SELECT 1"), 5)
        assert loop.time() - started < 1, "the error must be immediate"
        # R8: the server's reason is not lost.
        text = f"{info.value} {info.value.__cause__!r}"
        assert "terminat" in text.lower() or "57P01" in text or "admin" in text.lower(), text
    finally:
        con.terminate()


async def test_server_restart_immediate_while_idle(cluster: Any) -> None:
    _needs_managed(cluster)
    con = await pg_client.connect(cluster.dsn())
    try:
        assert await con.fetchval("SELECT 1") == 1
        await asyncio.to_thread(cluster.restart, "immediate")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(CONNECTION_ERRORS):
            await asyncio.wait_for(con.fetchval("SELECT 1"), 5)
        assert loop.time() - started < 5
        assert con.is_closed()
    finally:
        con.terminate()
    # The server is back; new connections work.
    con = await pg_client.connect(cluster.dsn())
    try:
        assert await con.fetchval("SELECT 2") == 2
    finally:
        await con.close()


# -- R12: unsolicited messages between queries ---------------------------------------------


async def test_notify_between_queries_does_not_shift_results(
    cluster: Any, ctl: asyncpg.Connection
) -> None:
    con = await pg_client.connect(cluster.dsn())
    channel = f"chan_{uuid.uuid4().hex[:8]}"
    received: list[str] = []
    try:
        await con.add_listener(channel, lambda c, pid, ch, payload: received.append(payload))
        sent = 0
        for i in range(300):
            if i % 3 == 0:
                await ctl.execute("SELECT pg_notify($1, $2)", channel, f"p{i}")
                sent += 1
            if i % 10 == 0:
                # Also while our session is inside a transaction block, and
                # a burst arriving while we are idle.
                async with con.transaction():
                    await ctl.execute("SELECT pg_notify($1, 'burst')", channel)
                    sent += 1
                    assert await con.fetchval("SELECT $1::int", i) == i
            assert await con.fetchval("SELECT $1::int", i) == i
            rows = await con.fetch("SELECT $1::int AS a, $1::int + 1 AS b", i)
            assert [tuple(r) for r in rows] == [(i, i + 1)]
            assert await con.execute("SELECT 1") == "SELECT 1"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(received) < sent and loop.time() < deadline:
            await con.fetchval("SELECT 1")
            await asyncio.sleep(0.01)
        assert len(received) == sent
        assert received[0] == "p0"
    finally:
        await con.close()


# -- the proxy's other modes, end to end ---------------------------------------------------


async def test_delay_and_chaos_never_give_wrong_results(cluster: Any) -> None:
    """A small soak: seeded random faults; every call is right or a clean error."""
    async with FaultProxy("127.0.0.1", cluster.port) as proxy:
        proxy.delay(0.002)
        con = await _connect_via(cluster, proxy, command_timeout=2)
        assert await con.fetchval("SELECT $1::int", 5) == 5
        proxy.chaos(1234, p_fin=0.01, p_rst=0.01, p_stall=0.01, stall_seconds=0.3,
                    p_delay=0.1, max_delay=0.005, p_fragment=0.1)
        outcomes = {"ok": 0, "error": 0}
        try:
            for i in range(150):
                if con.is_closed():
                    try:
                        con = await asyncio.wait_for(_connect_via(cluster, proxy,
                                                                  command_timeout=2), 10)
                    except (asyncio.TimeoutError, *CONNECTION_ERRORS):
                        outcomes["error"] += 1
                        continue
                try:
                    rows = await asyncio.wait_for(
                        con.fetch("SELECT $1::int + g AS v FROM generate_series(0, 20) g", i), 10)
                except (asyncio.TimeoutError, *CONNECTION_ERRORS):
                    outcomes["error"] += 1
                    continue
                assert [r["v"] for r in rows] == list(range(i, i + 21))
                outcomes["ok"] += 1
        finally:
            con.terminate()
    assert outcomes["ok"] > 0, outcomes
    assert outcomes["error"] > 0, f"the chaos mode injected no fault: {outcomes}"


async def test_proxy_in_its_own_thread(cluster: Any) -> None:
    proxy = FaultProxy("127.0.0.1", cluster.port).start_in_thread()
    try:
        con = await pg_client.connect(_proxied_dsn(cluster, proxy), ssl=False)
        try:
            assert await con.fetchval("SELECT $1::text", "threaded") == "threaded"
            proxy.cut_at_message(b"D", S2C, nth=10, how="rst")
            with pytest.raises(pg_client.ConnectionDoesNotExistError):
                await asyncio.wait_for(con.fetch("SELECT generate_series(1, 1000)"), 10)
        finally:
            con.terminate()
    finally:
        proxy.stop_thread()


async def test_connect_to_deaf_listener_times_out(cluster: Any) -> None:
    with deaf_listen() as (host, port):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                pg_client.connect(host=host, port=port, user="postgres", ssl=False, timeout=0.5),
                10,
            )
        assert loop.time() - started < 5
