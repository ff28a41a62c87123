"""A primary and a hot standby: target_session_attrs, promotion, demotion (RELIABILITY.md F4-F6).

Each test works on its own throwaway pair from ``standby.py`` (a primary
``pgcluster.Cluster`` and a ``pg_basebackup -R`` standby on a second port),
never on the session's server, which stays untouched.

* F4: ``connect(host=[A, B], port=[pA, pB], target_session_attrs=mode)`` for
  the six modes x {both up, primary down, standby down}: the server libpq's
  rules choose (checked with ``pg_is_in_recovery()`` and
  ``inet_server_port()``, and against asyncpg where it picks one), or
  ``TargetServerAttributeNotMatched`` when no reachable server fits, as
  docs/usage.rst and RELIABILITY.md F4 say (asyncpg raises the last host's
  ``OSError`` there instead).
* F5: a pool with ``target_session_attrs='primary'``; stop A, ``pg_ctl
  promote`` B; the pool finds B and the first write succeeds. Figure: seconds
  from the promote command to the first successful write.
* F6: demotion without restarting the pool. (a) asyncpg's scenario: A is
  stopped and started again as a standby (``standby.signal``); no write may
  land on it, the pool's error is ``TargetServerAttributeNotMatched`` while
  nothing fits, and once B is promoted the pool's new connections go to B.
  (b) the same promise where pooled connections survive the demotion
  (asyncpg PR #253's report): A turns read-only under open connections
  (``default_transaction_read_only`` reloaded, a GUC reported to clients
  since PostgreSQL 14); with ``target_session_attrs='read-write'`` at most
  pool-size writes may fail with ``ReadOnlySQLTransactionError`` before the
  pool re-validates and writes go to the other read-write host.

Figures are printed as ``FIGURE <test>: name = value`` (run with ``-s``)
and attached to the report's ``user_properties``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest

import pg_client
import pg_pool
import pgcluster
from pg_client import exceptions as exc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from standby import StandbyCluster, follow, replication_pair

pytestmark = pytest.mark.timeout(180)

MODES = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")
STATES = ("both up", "primary down", "standby down")

# libpq's choice for host=[A (primary), B (standby)]; None: nothing fits.
EXPECTED: dict[str, dict[str, str | None]] = {
    "both up": {"any": "A", "read-write": "A", "read-only": "B", "primary": "A",
                "standby": "B", "prefer-standby": "B"},
    "primary down": {"any": "B", "read-write": None, "read-only": "B", "primary": None,
                     "standby": "B", "prefer-standby": "B"},
    "standby down": {"any": "A", "read-write": "A", "read-only": None, "primary": "A",
                     "standby": None, "prefer-standby": "A"},
}

POOL_SIZE = 2
# What a write may raise while the topology changes under the pool.
TRANSIENT = (exc.TargetServerAttributeNotMatched, pg_client.PostgresConnectionError,
             pg_client.InterfaceError, OSError, asyncio.TimeoutError,
             exc.CannotConnectNowError)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PGHOST", "PGPORT", "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS",
                "PGCONNECT_TIMEOUT", "PGSSLMODE", "PGUSER", "PGDATABASE", "PGPASSWORD"):
        monkeypatch.delenv(var, raising=False)


def _bin_dir() -> Any:
    """The binaries for our own clusters (the env rules of pgcluster)."""
    try:
        return pgcluster.resolve_bindir()
    except pgcluster.NoServerError:
        if os.environ.get("PGTEST_DSN"):
            pytest.skip("PGTEST_DSN server and no local PostgreSQL binaries to build a "
                        "primary/standby pair")
        raise


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[pgcluster.Cluster, StandbyCluster]]:
    """One pair for the F4 matrix (its servers are stopped and started, never promoted)."""
    with replication_pair(_bin_dir()) as servers:
        yield servers


@pytest.fixture
def fresh_pair() -> Iterator[tuple[pgcluster.Cluster, StandbyCluster]]:
    with replication_pair(_bin_dir()) as servers:
        yield servers


def hosts(*servers: pgcluster.Cluster, **extra: Any) -> dict[str, Any]:
    return {"host": [s.host for s in servers], "port": [s.port for s in servers],
            "user": pgcluster.SUPERUSER, "database": "postgres", **extra}


async def where(con: Any) -> tuple[bool, int]:
    """``(pg_is_in_recovery(), inet_server_port())`` of the server behind *con*."""
    row = await con.fetchrow("SELECT pg_is_in_recovery(), inet_server_port()")
    return bool(row[0]), int(row[1])


def set_state(pair: tuple[pgcluster.Cluster, StandbyCluster], state: str) -> None:
    primary, standby = pair
    for server, up in ((primary, state != "primary down"), (standby, state != "standby down")):
        if up and not server.running:
            server.start_server()
        elif not up and server.running:
            server.stop_server("fast")


async def close_pool(pool: Any) -> None:
    try:
        await asyncio.wait_for(pool.close(), 15)
    except BaseException:
        pool.terminate()
        raise


def write_sql(table: str) -> str:
    return f"INSERT INTO {table} (id, port) VALUES ($1, inet_server_port()) RETURNING port"


# -- F4: the target_session_attrs matrix ----------------------------------------------------


@pytest.mark.parametrize(("state", "mode"), [(s, m) for s in STATES for m in MODES],
                         ids=[f"{s.replace(' ', '_')}-{m}" for s in STATES for m in MODES])
async def test_f4_target_session_attrs(pair: tuple[pgcluster.Cluster, StandbyCluster],
                                       state: str, mode: str) -> None:
    primary, standby = pair
    await asyncio.to_thread(set_state, pair, state)
    want = EXPECTED[state][mode]
    kwargs = hosts(primary, standby, target_session_attrs=mode, timeout=15)
    if want is None:
        try:
            con = await pg_client.connect(**kwargs)
        except exc.TargetServerAttributeNotMatched:
            return
        except Exception as e:
            pytest.fail(f"{state}, {mode}: expected TargetServerAttributeNotMatched (no "
                        f"reachable server fits), got {type(e).__name__}: {e}")
        try:
            got = await where(con)
        finally:
            await con.close()
        pytest.fail(f"{state}, {mode}: nothing fits, yet connected to {got}")

    server = primary if want == "A" else standby
    con = await pg_client.connect(**kwargs)
    try:
        recovery, port = await where(con)
    finally:
        await con.close()
    assert (port, recovery) == (server.port, want == "B"), (
        f"{state}, {mode}: expected {want} (port {server.port}), got port {port}")
    # The reference driver picks the same server.
    ref = await asyncpg.connect(**kwargs)
    try:
        assert await where(ref) == (want == "B", server.port)
    finally:
        await ref.close()


# -- F5: promotion ---------------------------------------------------------------------------


async def test_f5_promotion(fresh_pair: tuple[pgcluster.Cluster, StandbyCluster],
                            figure: Callable[[str, object], None]) -> None:
    primary, standby = fresh_pair
    loop = asyncio.get_running_loop()
    primary.psql("CREATE TABLE ledger (id int PRIMARY KEY, port int)")
    pool = await pg_pool.create_pool(**hosts(primary, standby, target_session_attrs="primary"),
                                     min_size=POOL_SIZE, max_size=POOL_SIZE)
    promote: asyncio.Future[float] | None = None
    try:
        for i in range(4):
            assert await pool.fetchval(write_sql("ledger"), i) == primary.port
        await asyncio.to_thread(standby.wait_caught_up)
        await asyncio.to_thread(primary.stop_server, "fast")

        started = loop.time()
        promote = asyncio.ensure_future(asyncio.to_thread(standby.promote))
        failures: Counter[str] = Counter()
        port = None
        while port is None:
            assert loop.time() - started < 30, f"no successful write 30 s after promote: {failures}"
            try:
                async with pool.acquire(timeout=5) as con:
                    port = await con.fetchval(write_sql("ledger"), 100)
            except exc.ReadOnlySQLTransactionError as e:
                pytest.fail(f"a write reached the standby despite target_session_attrs: {e}")
            except TRANSIENT as e:
                failures[type(e).__name__] += 1
                await asyncio.sleep(0.01)
        first_write = loop.time() - started
        promote_took = await promote
        assert port == standby.port

        figure("promote_to_first_write_s", round(first_write, 3))
        figure("pg_ctl_promote_s", round(promote_took, 3))
        figure("failed_attempts", dict(failures))
        # Every later write goes to B too, and the pool refills from B.
        for i in range(101, 105):
            assert await pool.fetchval(write_sql("ledger"), i) == standby.port
        async with pool.acquire(timeout=10) as c1, pool.acquire(timeout=10) as c2:
            assert {await where(c1), await where(c2)} == {(False, standby.port)}
        # Nothing acknowledged before the switchover was lost.
        ids = standby.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM ledger").strip()
        assert ids == "0,1,2,3,100,101,102,103,104"
    finally:
        if promote is not None:
            await asyncio.gather(promote, return_exceptions=True)
        await close_pool(pool)


# -- F6: demotion without restarting the pool -----------------------------------------------


async def test_f6_demoted_primary_restarted_as_standby(
        fresh_pair: tuple[pgcluster.Cluster, StandbyCluster],
        figure: Callable[[str, object], None]) -> None:
    primary, standby = fresh_pair
    loop = asyncio.get_running_loop()
    primary.psql("CREATE TABLE ledger (id int PRIMARY KEY, port int)")
    pool = await pg_pool.create_pool(**hosts(primary, standby, target_session_attrs="primary"),
                                     min_size=POOL_SIZE, max_size=POOL_SIZE)
    try:
        async with pool.acquire() as c1, pool.acquire() as c2:
            assert {await where(c1), await where(c2)} == {(False, primary.port)}
        assert await pool.fetchval(write_sql("ledger"), 0) == primary.port
        await asyncio.to_thread(standby.wait_caught_up)

        # asyncpg's trick: stop A, standby.signal, start A. It follows B, itself
        # still a standby (cascading), so no server accepts writes for now.
        await asyncio.to_thread(follow, primary, standby)
        outcomes: list[str] = []
        for i in range(1, 6):
            if i > 1:
                await asyncio.sleep(0.25)  # past the pool's reconnect backoff (<= 0.5 s)
            try:
                port = await asyncio.wait_for(pool.fetchval(write_sql("ledger"), i), 15)
            except asyncio.TimeoutError:
                pytest.fail("pool.fetchval() hung with no server fitting target_session_attrs")
            except exc.ReadOnlySQLTransactionError:
                outcomes.append("ReadOnlySQLTransactionError")
            except TRANSIENT as e:
                outcomes.append(type(e).__name__)
            else:
                pytest.fail(f"a write succeeded on port {port} while no primary exists")
        read_only_failures = outcomes.count("ReadOnlySQLTransactionError")
        figure("outcomes_without_primary", outcomes)
        assert read_only_failures <= POOL_SIZE, outcomes
        assert outcomes[-1] == "TargetServerAttributeNotMatched", (
            f"the pool did not re-validate against target_session_attrs: {outcomes}")

        # B becomes the primary: new connections go there, A is never used again.
        started = loop.time()
        await asyncio.to_thread(standby.promote)
        failures: list[str] = []
        port = None
        while port is None:
            assert loop.time() - started < 30, f"no write reached B after promotion: {failures}"
            try:
                async with pool.acquire(timeout=5) as con:
                    port = await con.fetchval(write_sql("ledger"), 100)
            except (*TRANSIENT, exc.ReadOnlySQLTransactionError) as e:
                failures.append(type(e).__name__)
                await asyncio.sleep(0.01)
        figure("promote_to_first_write_s", round(loop.time() - started, 3))
        figure("writes_failed_after_promotion", len(failures))
        assert port == standby.port
        assert len(failures) <= POOL_SIZE, failures
        async with pool.acquire(timeout=10) as c1, pool.acquire(timeout=10) as c2:
            assert {await where(c1), await where(c2)} == {(False, standby.port)}
        assert await asyncio.to_thread(lambda: primary.psql("SELECT pg_is_in_recovery()")) == "t"
    finally:
        await close_pool(pool)


async def test_f6_read_only_under_open_connections(
        figure: Callable[[str, object], None]) -> None:
    bin_dir = _bin_dir()
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(pgcluster.Cluster(bin_dir))
        second = stack.enter_context(pgcluster.Cluster(bin_dir))
        for server in (first, second):
            server.psql("CREATE TABLE ledger (id int PRIMARY KEY, port int)")
        pool = await pg_pool.create_pool(
            **hosts(first, second, target_session_attrs="read-write"),
            min_size=POOL_SIZE, max_size=POOL_SIZE)
        try:
            async with pool.acquire() as c1, pool.acquire() as c2:
                assert {await where(c1), await where(c2)} == {(False, first.port)}
            # Demote A under the pool's open connections (PostgreSQL reports
            # the new default_transaction_read_only to them with their next query).
            first.psql("ALTER SYSTEM SET default_transaction_read_only = on")
            first.psql("SELECT pg_reload_conf()")
            for _ in range(100):
                if first.psql("SHOW default_transaction_read_only") == "on":
                    break
                await asyncio.sleep(0.05)
            outcomes: list[str] = []
            port = None
            for i in range(2 * POOL_SIZE + 2):
                try:
                    async with pool.acquire(timeout=5) as con:
                        port = await con.fetchval(write_sql("ledger"), i)
                except exc.ReadOnlySQLTransactionError:
                    outcomes.append("ReadOnlySQLTransactionError")
                except TRANSIENT as e:
                    outcomes.append(type(e).__name__)
                else:
                    outcomes.append(f"ok on port {port}")
                    break
            figure("outcomes_after_demotion", outcomes)
            figure("writes_failed_read_only", outcomes.count("ReadOnlySQLTransactionError"))
            assert outcomes.count("ReadOnlySQLTransactionError") <= POOL_SIZE, (
                f"the pool keeps lending connections to a server that turned read-only "
                f"(target_session_attrs='read-write'): {outcomes}")
            assert port == second.port, outcomes
        finally:
            await close_pool(pool)
