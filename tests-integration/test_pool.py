"""pg_pool against a real server: asyncpg's Pool API and RELIABILITY's P rows.

Every pool here tags its connections with a unique ``application_name``, so
the tests can find (and kill) exactly its backends in ``pg_stat_activity``
through a separate control connection. Tests that stop or restart the
server need a cluster we manage (``cluster.managed``) and are marked
``slow``; they always start the server again.

Figures the RELIABILITY rows ask for (time to a full pool, connection
attempts per second while the server is down) are attached to the test
report (``user_properties``, and printed: run with ``-s`` to see them) and
checked against generous bounds.
"""

from __future__ import annotations

import asyncio
import io
import random
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import pg_client
import pg_pool
from pg_client import exceptions

PoolFactory = Callable[..., Awaitable[pg_pool.Pool]]


def app_name(prefix: str = 'pgpool') -> str:
    return f'{prefix}_{uuid.uuid4().hex[:12]}'


async def wait_for_condition(predicate: Callable[[], Awaitable[bool] | bool],
                             timeout: float = 10.0,
                             interval: float = 0.01) -> float:
    """Poll *predicate* until true; return the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return loop.time() - start
        if loop.time() - start > timeout:
            raise AssertionError(f'condition not met within {timeout} s')
        await asyncio.sleep(interval)


@pytest.fixture
async def control(cluster: Any) -> AsyncIterator[Any]:
    """A plain connection for looking at (and killing) pool backends."""
    con = await pg_client.connect(cluster.dsn(user='postgres', database='postgres'))
    try:
        yield con
    finally:
        await con.close()


async def backend_pids(control: Any, app: str) -> set[int]:
    rows = await control.fetch(
        'SELECT pid FROM pg_stat_activity WHERE application_name = $1', app)
    return {r['pid'] for r in rows}


async def kill_backends(control: Any, app: str) -> set[int]:
    """pg_terminate_backend() every backend of *app*; wait until they're gone."""
    pids = await backend_pids(control, app)
    await control.execute(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
        'WHERE application_name = $1', app)

    async def gone() -> bool:
        return not (pids & await backend_pids(control, app))

    await wait_for_condition(gone)
    return pids


@pytest.fixture
async def make_pool(cluster: Any) -> AsyncIterator[PoolFactory]:
    """``await make_pool(**kwargs)``: a started pool; ``pool.app`` is its
    application_name. Terminated at teardown if the test didn't close it."""
    pools: list[pg_pool.Pool] = []

    async def factory(**kwargs: Any) -> pg_pool.Pool:
        app = kwargs.pop('app', None) or app_name()
        kwargs.setdefault('min_size', 1)
        kwargs.setdefault('max_size', 2)
        settings = dict(kwargs.pop('server_settings', {}))
        settings['application_name'] = app
        pool = pg_pool.create_pool(
            cluster.dsn(user='postgres', database='postgres'),
            server_settings=settings, **kwargs)
        pool.app = app  # type: ignore[attr-defined]
        pools.append(pool)
        await pool
        return pool

    yield factory

    for pool in pools:
        if not pool.is_closing():
            pool._check_invariants()
            try:
                await asyncio.wait_for(pool.close(), 10)
            except BaseException:
                pool.terminate()
                raise


# -- asyncpg's Pool API --------------------------------------------------------


async def test_sizes_and_capacity(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=2, max_size=3)
    assert (pool.get_min_size(), pool.get_max_size()) == (2, 3)
    assert (pool.get_size(), pool.get_idle_size()) == (2, 2)
    async with pool.acquire():
        assert pool.get_idle_size() == 1
        async with pool.acquire():
            assert pool.get_idle_size() == 0
            async with pool.acquire():
                assert pool.get_size() == 3
                assert pool.get_idle_size() == 0
    assert pool.get_idle_size() == 3
    assert not pool.is_closing()


@pytest.mark.parametrize('workers', [1, 5, 20, 100])
async def test_many_workers(make_pool: PoolFactory, workers: int) -> None:
    pool = await make_pool(min_size=5, max_size=10)

    async def worker(i: int) -> None:
        con = await pool.acquire(timeout=10)
        try:
            assert await con.fetchval('SELECT $1::int', i) == i
        finally:
            await pool.release(con)

    await asyncio.gather(*[worker(i) for i in range(workers)])
    pool._check_invariants()
    assert pool.get_size() <= 10


async def test_pool_awaitable_and_context_manager(cluster: Any) -> None:
    dsn = cluster.dsn(user='postgres', database='postgres')
    pool = await pg_pool.create_pool(dsn, min_size=1, max_size=1)
    assert await pool.fetchval('SELECT 1') == 1
    await pool.close()
    assert pool.is_closing()
    async with pg_pool.Pool(dsn, min_size=0, max_size=1) as pool2:
        assert pool2.get_size() == 0
        assert await pool2.fetchval('SELECT 2') == 2
    assert pool2.is_closing()


async def test_shortcuts(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=2)
    table = f'pool_sc_{uuid.uuid4().hex[:8]}'
    await pool.execute(f'CREATE TABLE {table} (a int, b text)')
    try:
        assert await pool.execute(
            f'INSERT INTO {table} VALUES ($1, $2)', 1, 'x') == 'INSERT 0 1'
        await pool.executemany(f'INSERT INTO {table} VALUES ($1, $2)',
                               [(2, 'y'), (3, 'z')])
        rows = await pool.fetch(f'SELECT a, b FROM {table} ORDER BY a')
        assert [tuple(r) for r in rows] == [(1, 'x'), (2, 'y'), (3, 'z')]
        row = await pool.fetchrow(f'SELECT b FROM {table} WHERE a = $1', 2)
        assert row['b'] == 'y'
        assert await pool.fetchval(
            f'SELECT a, b FROM {table} WHERE a = 3', column=1) == 'z'
        many = await pool.fetchmany(
            f'SELECT b FROM {table} WHERE a = $1', [(1,), (3,)])
        assert [r['b'] for r in many] == ['x', 'z']

        out = io.BytesIO()
        assert await pool.copy_from_table(table, output=out, columns=['a'],
                                          format='csv') == 'COPY 3'
        assert out.getvalue().split() == [b'1', b'2', b'3']
        out = io.BytesIO()
        assert await pool.copy_from_query(
            f'SELECT b FROM {table} WHERE a > $1', 1, output=out) == 'COPY 2'
        assert out.getvalue() == b'y\nz\n'
        assert await pool.copy_to_table(
            table, source=io.BytesIO(b'4\tw\n5\tv\n')) == 'COPY 2'
        assert await pool.copy_records_to_table(
            table, records=[(6, 'u'), (7, 't')], columns=['a', 'b']) == 'COPY 2'
        assert await pool.copy_records_to_table(
            table, records=[(8, 's'), (9, 'r')], where='a > 8') == 'COPY 1'
        assert await pool.fetchval(f'SELECT count(*) FROM {table}') == 8
    finally:
        await pool.execute(f'DROP TABLE {table}')
    assert pool.get_idle_size() == pool.get_size()


async def test_proxy(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as con:
        assert isinstance(con, pg_pool.PoolConnectionProxy)
        assert isinstance(con, pg_client.Connection)
        assert not isinstance(con, list)
        assert repr(con._con) in repr(con)
        assert con.execute.__name__ == 'execute'
        assert con.execute.__doc__ == pg_client.Connection.execute.__doc__
        ps = await con.prepare('SELECT 1')
        assert await ps.fetchval() == 1
        tr = con.transaction()
        async with con.transaction():
            cur = await con.cursor('SELECT generate_series(1, 10)')
            assert await cur.fetchrow() is not None
    assert '[released]' in repr(con)
    with pytest.raises(exceptions.InterfaceError,
                       match=r'cannot call Connection\.execute\(\).*released '
                             r'back to the pool'):
        con.execute('SELECT 1')
    # Objects made through the proxy died with the release.
    with pytest.raises(exceptions.InterfaceError, match='released back to the pool'):
        await ps.fetchval()
    with pytest.raises(exceptions.InterfaceError, match='released back to the pool'):
        await cur.fetchrow()
    with pytest.raises(exceptions.InterfaceError, match='released back to the pool'):
        await tr.start()


async def test_release_rules(make_pool: PoolFactory) -> None:
    pool1 = await make_pool(min_size=1, max_size=1)
    pool2 = await make_pool(min_size=1, max_size=1)
    con = await pool1.acquire(timeout=1)
    with pytest.raises(exceptions.InterfaceError, match='is not a member'):
        await pool2.release(con)
    with pytest.raises(exceptions.InterfaceError, match='is not a member'):
        await pool1.release(con._con)
    await pool1.release(con)
    await pool1.release(con)  # twice: no-op


async def test_acquire_timeout(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire(timeout=1)
    with pytest.raises(asyncio.TimeoutError):
        await pool.acquire(timeout=0.03)
    await pool.release(con)
    assert pool.get_stats().timeouts == 1


async def test_max_waiting(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, max_waiting=1)
    con = await pool.acquire()

    async def take() -> pg_pool.PoolConnectionProxy:
        return await pool.acquire(timeout=5)

    waiter = asyncio.create_task(take())
    await asyncio.sleep(0.01)
    with pytest.raises(pg_pool.TooManyWaitersError):
        await pool.acquire()
    await pool.release(con)
    await pool.release(await waiter)


async def test_cancel_in_acquire_with_timeout(make_pool: PoolFactory) -> None:
    # asyncpg #547
    pool = await make_pool(min_size=1, max_size=1)

    async def worker() -> None:
        async with pool.acquire(timeout=100):
            pass

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for_condition(lambda: pool.get_idle_size() == 1, timeout=2)
    pool._check_invariants()


async def test_cancel_in_release(make_pool: PoolFactory) -> None:
    gate = asyncio.Event()

    async def slow_reset(con: Any) -> None:
        await con.execute(con.get_reset_query())
        await asyncio.sleep(0.2)
        gate.set()

    pool = await make_pool(min_size=1, max_size=1, reset=slow_reset)

    async def worker() -> None:
        async with pool.acquire():
            pass

    task = asyncio.create_task(worker())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(gate.wait(), 2)
    await wait_for_condition(lambda: pool.get_idle_size() == 1, timeout=2)
    async with pool.acquire(timeout=1) as con:
        assert await con.fetchval('SELECT 1') == 1


async def test_cancel_in_default_reset(make_pool: PoolFactory,
                                      control: Any) -> None:
    """Cancelled while the default reset is on its way: the reset goes on
    and the same connection comes back to the pool, clean."""
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    pid = await con.fetchval('SELECT pg_backend_pid()')
    await con.execute('SELECT pg_advisory_lock(4243)')
    await con.execute("SET work_mem = '7777kB'")
    task = asyncio.create_task(pool.release(con))
    # One pass of the loop: the task sends the reset and waits for it;
    # its reply cannot have been read yet.
    await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for_condition(lambda: pool.get_idle_size() == 1, timeout=2)
    assert pool.get_stats().resets_failed == 0
    con = await _same_session(pool, pid)
    try:
        assert await con.fetchval('SHOW work_mem') != '7777kB'
        assert await control.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            'AND pid = $1', pid) == 0
    finally:
        await pool.release(con)


async def test_cancel_query_then_release(make_pool: PoolFactory,
                                         control: Any) -> None:
    pool = await make_pool(min_size=1, max_size=1)

    async def worker() -> None:
        async with pool.acquire() as con:
            await con.execute('SELECT pg_sleep(10)')

    task = asyncio.create_task(worker())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for_condition(lambda: pool.get_idle_size() == 1, timeout=5)
    async with pool.acquire(timeout=5) as con:
        assert await con.fetchval('SELECT 1') == 1
    # The server is not still sleeping for us.
    busy = await control.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
        "AND state = 'active'", pool.app)  # type: ignore[attr-defined]
    assert busy == 0


async def test_setup_and_init(make_pool: PoolFactory) -> None:
    inits: list[Any] = []
    setups: list[Any] = []

    async def init(con: Any) -> None:
        assert con not in inits
        await con.execute("SET application_name = application_name")
        inits.append(con)

    async def setup(proxy: Any) -> None:
        assert proxy._con in inits
        setups.append(proxy)

    pool = await make_pool(min_size=2, max_size=5, init=init, setup=setup)

    async def user() -> None:
        async with pool.acquire() as con:
            await con.fetchval('SELECT pg_sleep(0.01)')

    await asyncio.gather(*[user() for _ in range(10)])
    assert len(inits) == 5
    assert len(setups) == 10


@pytest.mark.parametrize('hook', ['setup', 'init'])
async def test_hook_exception_closes_connection(make_pool: PoolFactory,
                                                hook: str) -> None:
    calls: list[Any] = []

    class Boom(Exception):
        pass

    async def callback(con: Any) -> None:
        calls.append(con._con if hook == 'setup' else con)
        if len(calls) == 1:
            raise Boom

    pool = await make_pool(min_size=1 if hook == 'setup' else 0, max_size=1,
                           **{hook: callback})
    with pytest.raises(Boom):
        await pool.acquire()
    await wait_for_condition(lambda: calls[0].is_closed(), timeout=5)
    async with pool.acquire(timeout=5) as con:
        assert await con.fetchval('SELECT 1') == 1
        assert con._con is not calls[0]


async def test_max_queries(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, max_queries=3)
    pids = []
    for _ in range(6):
        async with pool.acquire() as con:
            pids.append(await con.fetchval('SELECT pg_backend_pid()'))
    # Each use is one query plus the reset; the connection is replaced
    # once it has run max_queries.
    assert len(set(pids)) >= 2
    assert pool.get_stats().connections_expired >= 1


async def test_expire_connections_and_set_connect_args(
        make_pool: PoolFactory, cluster: Any) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    old_pid = await con.fetchval('SELECT pg_backend_pid()')
    new_app = app_name('expired')
    pool.set_connect_args(
        cluster.dsn(user='postgres', database='postgres'),
        server_settings={'application_name': new_app})
    await pool.expire_connections()
    await pool.release(con)  # expired: closed on release
    async with pool.acquire(timeout=5) as con:
        assert await con.fetchval('SELECT pg_backend_pid()') != old_pid
        assert await con.fetchval('SHOW application_name') == new_app


async def test_max_inactive_connection_lifetime(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=3,
                           max_inactive_connection_lifetime=0.2)
    cons = [await pool.acquire() for _ in range(3)]
    for con in cons:
        await con.execute('SELECT pg_sleep(0.3)')  # longer than the lifetime
    for con in cons:
        await pool.release(con)
    assert pool.get_size() == 3
    await wait_for_condition(lambda: pool.get_size() == 1, timeout=3)
    await asyncio.sleep(0.4)
    assert pool.get_size() == 1  # min_size stays (asyncpg 0.32)


async def test_max_lifetime(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, max_lifetime=0.3)
    pid1 = await pool.fetchval('SELECT pg_backend_pid()')

    async def replaced() -> bool:
        return await pool.fetchval('SELECT pg_backend_pid()') != pid1

    await wait_for_condition(replaced, timeout=3, interval=0.05)
    assert pool.get_stats().connections_expired >= 1


async def test_resize(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=2)
    pool.resize(min_size=4, max_size=6)
    await wait_for_condition(lambda: pool.get_idle_size() == 4, timeout=5)
    pool.resize(min_size=1, max_size=2)
    assert pool.get_size() == 2
    held = [await pool.acquire(timeout=5) for _ in range(2)]
    with pytest.raises(asyncio.TimeoutError):
        await pool.acquire(timeout=0.05)
    for con in held:
        await pool.release(con)


async def test_remote_close_while_in_use(make_pool: PoolFactory,
                                         control: Any) -> None:
    # asyncpg test_pool_remote_close: the holder is freed when the
    # connection is lost, and the release afterwards is quiet.
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as con:
        pid = await con.fetchval('SELECT pg_backend_pid()')
        await control.execute('SELECT pg_terminate_backend($1)', pid)
        await wait_for_condition(lambda: con._con is None or con.is_closed(),
                                 timeout=5)
    async with pool.acquire(timeout=1) as con:
        assert await con.fetchval('SELECT pg_backend_pid()') != pid


async def test_ping_replaces_dead_idle_connection(make_pool: PoolFactory,
                                                  control: Any) -> None:
    pool = await make_pool(min_size=1, max_size=1, ping_after_idle=0.05)
    pid = await pool.fetchval('SELECT pg_backend_pid()')
    await kill_backends(control, pool.app)  # type: ignore[attr-defined]
    await asyncio.sleep(0.1)
    assert await pool.fetchval('SELECT pg_backend_pid()') != pid
    stats = pool.get_stats()
    assert stats.connections_lost >= 1


async def test_stats(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=2, max_size=2)
    async with pool.acquire():
        pass
    stats = pool.get_stats()
    assert stats.acquires == 1
    assert stats.releases == 1
    assert stats.connections_created == 2
    assert (stats.size, stats.idle, stats.in_use) == (2, 2, 0)


# -- P1: idle connections killed -------------------------------------------------


async def test_p1_idle_connections_killed(make_pool: PoolFactory, control: Any,
                                          figure: Any) -> None:
    pool = await make_pool(min_size=10, max_size=10)
    app = pool.app  # type: ignore[attr-defined]
    old = await kill_backends(control, app)
    assert len(old) == 10
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def gone() -> bool:
        return not (await backend_pids(control, app)) & old

    # The backends are gone (their FATAL and EOF are on the way): what the
    # row tests is that the pool never hands out one of these connections,
    # not a race with packets still in flight.
    await wait_for_condition(gone, timeout=10)
    await asyncio.sleep(0.05)
    errors = 0
    for _ in range(100):
        try:
            async with pool.acquire(timeout=10) as con:
                assert await con.fetchval('SELECT 1') == 1
        except Exception:
            errors += 1

    async def whole() -> bool:
        pids = await backend_pids(control, app)
        return (pool.get_idle_size() == 10 and len(pids) == 10
                and not pids & old)

    await wait_for_condition(whole, timeout=10)
    figure('p1_app_visible_errors', errors)
    figure('p1_seconds_to_full_pool', loop.time() - start)
    assert errors == 0
    pool._check_invariants()


# -- P2 / P3: server restart and outage (managed cluster only) --------------------


def need_managed(cluster: Any) -> None:
    if not getattr(cluster, 'managed', False):
        pytest.skip('needs a cluster we manage, to stop and start the server')


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['fast', 'immediate'])
async def test_p2_server_restart(make_pool: PoolFactory, cluster: Any,
                                 control: Any, mode: str,
                                 figure: Any) -> None:
    need_managed(cluster)
    await control.close()  # it would die with the server anyway
    pool = await make_pool(min_size=10, max_size=10)
    loop = asyncio.get_running_loop()
    # Runs in a thread, so the loop notices the dying connections meanwhile.
    await asyncio.to_thread(cluster.restart, mode)
    ready = loop.time()
    await wait_for_condition(lambda: pool.get_idle_size() == 10, timeout=10,
                             interval=0.005)
    refill = loop.time() - ready
    figure(f'p2_{mode}_seconds_ready_to_full_pool', refill)
    errors = 0
    for _ in range(1000):
        try:
            async with pool.acquire(timeout=10) as con:
                await con.fetchval('SELECT 1')
        except Exception:
            errors += 1
    figure(f'p2_{mode}_app_visible_errors', errors)
    assert errors == 0
    # RELIABILITY P2 asks for < 1 s; reconnect_delay_max (0.5 s) bounds it.
    assert refill < 1.0


@pytest.mark.slow
async def test_p3_server_down(make_pool: PoolFactory, cluster: Any,
                              figure: Any) -> None:
    need_managed(cluster)
    pool = await make_pool(min_size=4, max_size=4)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.to_thread(cluster.stop_server, 'fast')
        await wait_for_condition(lambda: pool.get_size() == 0, timeout=5)

        # acquire(timeout=0.5) raises TimeoutError while the server is down.
        for _ in range(3):
            start = loop.time()
            with pytest.raises(asyncio.TimeoutError):
                await pool.acquire(timeout=0.5)
            assert 0.45 <= loop.time() - start < 1.5

        # Connection attempts follow the backoff, not the acquire rate.
        before = pool.get_stats().connect_errors
        window_start = loop.time()

        async def hammer() -> None:
            with pytest.raises(asyncio.TimeoutError):
                await pool.acquire(timeout=0.1)

        while loop.time() - window_start < 3.0:
            await asyncio.gather(*[hammer() for _ in range(20)])
        rate = (pool.get_stats().connect_errors - before) / (
            loop.time() - window_start)
        figure('p3_connect_attempts_per_second_while_down', rate)
        # Default backoff: 0.1 s doubling to 0.5 s, each wait 50-100 % of
        # the step: at most ~4 attempts/s.
        assert 0.5 <= rate <= 6, rate
    finally:
        await asyncio.to_thread(cluster.start_server)
    ready = loop.time()
    await wait_for_condition(lambda: pool.get_idle_size() == 4, timeout=10,
                             interval=0.005)
    recovery = loop.time() - ready
    figure('p3_seconds_ready_to_full_pool', recovery)
    # Recovery within one backoff step (reconnect_delay_max) plus connecting.
    assert recovery < 0.5 + 0.5
    async with pool.acquire(timeout=1) as con:
        assert await con.fetchval('SELECT 1') == 1


@pytest.mark.slow
async def test_p3_no_timeout_caller_gets_the_error(make_pool: PoolFactory,
                                                   cluster: Any) -> None:
    need_managed(cluster)
    pool = await make_pool(min_size=0, max_size=2)
    try:
        await asyncio.to_thread(cluster.stop_server, 'fast')
        # Nothing to wait for and no timeout: fail with the connect error
        # (as asyncpg would), within a few backoff steps.
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(pool.acquire(), 5)
        assert not isinstance(info.value, asyncio.TimeoutError)
        assert isinstance(info.value, (OSError, exceptions.PostgresError))
    finally:
        await asyncio.to_thread(cluster.start_server)
    async with pool.acquire(timeout=5) as con:
        assert await con.fetchval('SELECT 1') == 1


# -- P6: cancellation in acquire / release / reset ------------------------------------


@pytest.mark.slow
async def test_p6_random_cancels(make_pool: PoolFactory, control: Any,
                                 figure: Any) -> None:
    pool = await make_pool(min_size=2, max_size=5, max_queries=20)
    rng = random.Random(0)
    loop = asyncio.get_running_loop()
    cancels = 0

    async def worker(i: int) -> None:
        try:
            async with pool.acquire(timeout=rng.choice([None, 0.01, 1])) as con:
                if rng.random() < 0.3:
                    await con.execute('BEGIN')
                await con.fetchval('SELECT pg_sleep($1)', rng.random() * 0.005)
                assert await con.fetchval('SELECT $1::int', i) == i
        except (asyncio.TimeoutError, exceptions.PostgresError,
                exceptions.InterfaceError):
            pass

    tasks = []
    for i in range(2000):
        task = asyncio.create_task(worker(i))
        tasks.append(task)
        if rng.random() < 0.5:
            loop.call_later(rng.random() * 0.01, task.cancel)
            cancels += 1
        if i % 20 == 0:
            await asyncio.sleep(0.002)
            pool._check_invariants()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    unexpected = [r for r in results if isinstance(r, BaseException)
                  and not isinstance(r, asyncio.CancelledError)]
    assert unexpected == []
    await wait_for_condition(lambda: not pool._in_use, timeout=10)
    pool._check_invariants()
    figure('p6_cancels', cancels)
    # A cancelled query must leave the connection resettable: pg_client's
    # reset() waits for the cancelled operation to finish first.
    assert pool.get_stats().resets_failed == 0

    # No capacity lost, every pooled session clean, no stray backends.
    held = [await pool.acquire(timeout=5) for _ in range(5)]
    for con in held:
        assert not con.is_in_transaction()
        assert await con.fetchval('SELECT 1') == 1
    for con in held:
        await pool.release(con)
    app = pool.app  # type: ignore[attr-defined]

    async def no_strays() -> bool:
        return len(await backend_pids(control, app)) == pool.get_size()

    await wait_for_condition(no_strays, timeout=5)


# -- P7: dirty release -------------------------------------------------------------------


async def _same_session(pool: pg_pool.Pool, pid: int) -> Any:
    con = await pool.acquire(timeout=5)
    assert await con.fetchval('SELECT pg_backend_pid()') == pid, (
        'a clean release should keep the connection')
    return con


async def test_p7_open_transaction(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as con:
        pid = await con.fetchval('SELECT pg_backend_pid()')
        await con.execute('BEGIN')
        await con.execute('SELECT txid_current()')
        assert con.is_in_transaction()
    con = await _same_session(pool, pid)
    try:
        assert not con.is_in_transaction()
        assert await con.fetchval('SELECT txid_current_if_assigned()') is None
    finally:
        await pool.release(con)


async def test_p7_failed_transaction(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as con:
        pid = await con.fetchval('SELECT pg_backend_pid()')
        await con.execute('BEGIN')
        with pytest.raises(exceptions.DivisionByZeroError):
            await con.execute('SELECT 1/0')
    con = await _same_session(pool, pid)
    try:
        assert not con.is_in_transaction()
        assert await con.fetchval('SELECT 1') == 1
    finally:
        await pool.release(con)


async def test_p7_unfinished_transaction_object(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx))
    try:
        async with pool.acquire() as con:
            pid = await con.fetchval('SELECT pg_backend_pid()')
            await con.transaction().start()
    finally:
        loop.set_exception_handler(previous)
    con = await _same_session(pool, pid)
    try:
        assert not con.is_in_transaction()
        async with con.transaction():  # not "nested" in a forgotten one
            assert await con.fetchval('SELECT 1') == 1
    finally:
        await pool.release(con)


async def test_p7_cursor_listen_lock_settings(make_pool: PoolFactory,
                                              control: Any) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    default_work_mem = await control.fetchval('SHOW work_mem')
    async with pool.acquire() as con:
        pid = await con.fetchval('SELECT pg_backend_pid()')
        await con.execute('BEGIN; DECLARE held CURSOR WITH HOLD FOR '
                          'SELECT 1; COMMIT')
        await con.execute('LISTEN pool_dirty_channel')
        await con.execute('SELECT pg_advisory_lock(4242)')
        await con.execute("SET work_mem = '7777kB'")
        await con.execute('SET search_path = pg_catalog')
        ps = await con.prepare('SELECT 1')
    con = await _same_session(pool, pid)
    try:
        # (pg_cursors also lists this query's own unnamed portal.)
        assert await con.fetchval(
            "SELECT count(*) FROM pg_cursors WHERE name = 'held'") == 0
        assert await con.fetchval(
            'SELECT count(*) FROM pg_listening_channels()') == 0
        assert await con.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            'AND pid = pg_backend_pid()') == 0
        assert await con.fetchval('SHOW work_mem') == default_work_mem
        assert await con.fetchval('SHOW search_path') != 'pg_catalog'
        with pytest.raises(exceptions.InterfaceError, match='released'):
            await ps.fetchval()
        # The statement cache itself survives and still works.
        assert await con.fetchval('SELECT 1') == 1
    finally:
        await pool.release(con)


async def test_p7_listener_left_behind(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    pid = await con.fetchval('SELECT pg_backend_pid()')
    await con.add_listener('pool_cb_channel', lambda *args: None)
    with pytest.warns(exceptions.InterfaceWarning):
        await pool.release(con)
    con = await _same_session(pool, pid)
    try:
        assert await con.fetchval(
            'SELECT count(*) FROM pg_listening_channels()') == 0
    finally:
        await pool.release(con)


async def test_p7_reset_failure_closes(make_pool: PoolFactory,
                                       control: Any) -> None:
    async def bad_reset(con: Any) -> None:
        raise RuntimeError('reset hook failed')

    pool = await make_pool(min_size=1, max_size=1, reset=bad_reset)
    con = await pool.acquire()
    pid = await con.fetchval('SELECT pg_backend_pid()')
    with pytest.raises(RuntimeError, match='reset hook failed'):
        await pool.release(con)

    async def gone() -> bool:
        return pid not in await backend_pids(
            control, pool.app)  # type: ignore[attr-defined]

    await wait_for_condition(gone, timeout=5)
    con = await pool.acquire(timeout=5)
    try:
        assert await con.fetchval('SELECT pg_backend_pid()') != pid
    finally:
        with pytest.raises(RuntimeError):
            await pool.release(con)


async def test_p7_custom_reset_hook(make_pool: PoolFactory) -> None:
    calls = []

    async def reset(con: Any) -> None:
        assert not con.is_in_transaction()  # rolled back before the hook
        calls.append(con)
        await con.execute(con.get_reset_query())

    pool = await make_pool(min_size=1, max_size=1, reset=reset)
    async with pool.acquire() as con:
        await con.execute('BEGIN')
        await con.execute("SET work_mem = '7777kB'")
    assert len(calls) == 1
    async with pool.acquire() as con:
        assert await con.fetchval('SHOW work_mem') != '7777kB'


# -- P10: close with users -------------------------------------------------------------


async def test_p10_close_waits_for_release(make_pool: PoolFactory,
                                           control: Any) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    started = asyncio.Event()
    released = False

    async def worker() -> None:
        nonlocal released
        async with pool.acquire() as con:
            async with con.transaction():
                started.set()
                await asyncio.sleep(0.1)
        released = True

    task = asyncio.create_task(worker())
    await started.wait()
    await pool.close()
    assert released
    await task
    app = pool.app  # type: ignore[attr-defined]

    async def none_left() -> bool:
        return not await backend_pids(control, app)

    await wait_for_condition(none_left, timeout=5)


async def test_p10_close_timeout(make_pool: PoolFactory, control: Any) -> None:
    pool = await make_pool(min_size=2, max_size=2)
    started = asyncio.Event()

    async def worker() -> None:
        async with pool.acquire():
            started.set()
            await asyncio.sleep(0.5)

    task = asyncio.create_task(worker())
    await started.wait()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pool.close(), timeout=0.1)
    assert pool.is_closing()
    await task  # its release finds the pool terminated: no error
    app = pool.app  # type: ignore[attr-defined]

    async def none_left() -> bool:
        return not await backend_pids(control, app)

    await wait_for_condition(none_left, timeout=5)


async def test_p10_terminate(make_pool: PoolFactory, control: Any) -> None:
    pool = await make_pool(min_size=3, max_size=3)
    con = await pool.acquire()
    pool.terminate()
    assert pool.is_closing()
    with pytest.raises(exceptions.InterfaceError):
        await con.fetchval('SELECT 1')
    with pytest.raises(exceptions.InterfaceError, match='pool is closed'):
        await pool.acquire()
    await pool.release(con)  # already released by terminate(): no-op
    app = pool.app  # type: ignore[attr-defined]

    async def none_left() -> bool:
        return not await backend_pids(control, app)

    await wait_for_condition(none_left, timeout=5)


async def test_p10_close_fails_waiters(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()

    async def take() -> Any:
        return await pool.acquire()

    waiter = asyncio.create_task(take())
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(pool.close())
    with pytest.raises(exceptions.InterfaceError, match='pool is closing'):
        await waiter
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        await pool.release(con)
    await closing
