"""Unit tests of pg_pool.pool against fake connections (no server).

Durations are a few milliseconds; the whole module runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import re
import warnings
from typing import Any

import pytest
from conftest import PoolFactory, drain
from pg_pool_fakes import FakeConnection, FakeServer

import pg_client
import pg_pool
from pg_client import exceptions
from pg_pool import Pool, PoolConnectionProxy, TooManyWaitersError

# Seed of the cancellation storm; PG_POOL_STORM_SEED overrides it.
SEED = int(os.environ.get('PG_POOL_STORM_SEED', '1234'))


async def settle(n: int = 5) -> None:
    """Run pending callbacks (termination listeners, handed-off futures)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def wait_until(predicate: Any, timeout: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError('condition not reached in time')
        await asyncio.sleep(0.001)


def spawn_acquire(pool: Pool, timeout: float | None = None,
                  ) -> asyncio.Task[PoolConnectionProxy]:
    async def acquire() -> PoolConnectionProxy:
        return await pool.acquire(timeout=timeout)
    return asyncio.create_task(acquire())


# -- construction and validation ---------------------------------------------


@pytest.mark.parametrize(('kwargs', 'message'), [
    ({'min_size': 1, 'max_size': 0},
     'max_size is expected to be greater than zero'),
    ({'min_size': -1, 'max_size': 1},
     'min_size is expected to be greater or equal to zero'),
    ({'min_size': 3, 'max_size': 2}, 'min_size is greater than max_size'),
    ({'min_size': 1, 'max_size': 2, 'init_size': -1},
     'init_size is expected to be greater or equal to zero'),
    ({'min_size': 1, 'max_size': 2, 'init_size': 3},
     'init_size is greater than max_size'),
    ({'min_size': 2, 'max_size': 3, 'init_size': 1},
     'init_size is smaller than min_size'),
    ({'max_queries': 0}, 'max_queries is expected to be greater than zero'),
    ({'max_inactive_connection_lifetime': -1},
     'max_inactive_connection_lifetime is expected to be greater or equal '
     'to zero'),
    ({'max_lifetime': -1}, 'max_lifetime is expected'),
    ({'ping_after_idle': -1}, 'ping_after_idle is expected'),
    ({'ping_timeout': 0}, 'ping_timeout is expected'),
    ({'max_waiting': -1}, 'max_waiting is expected'),
    ({'reconnect_delay_min': 0}, 'reconnect_delay_min is expected'),
    ({'reconnect_delay_min': 2, 'reconnect_delay_max': 1},
     'reconnect_delay_max is smaller'),
])
def test_validation_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        pg_pool.create_pool(**kwargs)
    assert str(info.value).startswith(message)


def test_class_validation() -> None:
    with pytest.raises(TypeError, match=re.escape(
            'connection_class is expected to be a subclass of '
            "pg_client.Connection, got <class 'int'>")):
        pg_pool.create_pool(connection_class=int)
    with pytest.raises(TypeError, match=re.escape(
            'record_class is expected to be a subclass of '
            "pg_client.Record, got <class 'int'>")):
        pg_pool.create_pool(record_class=int)


def test_create_pool_is_not_a_coroutine() -> None:
    pool = pg_pool.create_pool(min_size=0, max_size=1)
    assert isinstance(pool, Pool)
    assert not inspect.iscoroutine(pool)
    assert pool.get_min_size() == 0
    assert pool.get_max_size() == 1
    assert pool.get_init_size() == 0


def test_public_names() -> None:
    assert set(pg_pool.__all__) == {
        'Pool', 'PoolAcquireContext', 'PoolConnectionProxy', 'PoolStats',
        'TooManyWaitersError', '__version__', 'create_pool'}
    assert issubclass(TooManyWaitersError, exceptions.InterfaceError)


async def test_init_opens_init_size(make_pool: PoolFactory,
                                    server: FakeServer) -> None:
    pool = await make_pool(min_size=2, max_size=5, init_size=3)
    assert pool.get_size() == 3
    assert pool.get_idle_size() == 3
    assert pool.get_init_size() == 3
    assert len(server.connections) == 3
    assert await pool is pool  # awaiting again is harmless
    pool._check_invariants()


async def test_connect_receives_arguments(make_pool: PoolFactory,
                                          server: FakeServer) -> None:
    pool = await make_pool(dsn='postgresql://x/y', min_size=1,
                           statement_cache_size=7)
    args, kwargs = server.connect_calls[0]
    assert args == ('postgresql://x/y',)
    assert kwargs['statement_cache_size'] == 7
    assert kwargs['connection_class'] is pg_client.Connection
    assert kwargs['record_class'] is pg_client.Record
    assert kwargs['loop'] is asyncio.get_running_loop()

    pool.set_connect_args('postgresql://other', application_name='z')
    await pool.expire_connections()
    await wait_until(lambda: pool.get_idle_size() == 1)
    args, kwargs = server.connect_calls[-1]
    assert args == ('postgresql://other',)
    assert kwargs['application_name'] == 'z'
    assert 'statement_cache_size' not in kwargs


async def test_async_with_pool(server: FakeServer) -> None:
    async with pg_pool.Pool(connect=server.connect, min_size=1,
                            max_size=1) as pool:
        assert await pool.fetchval('SELECT 1') == ('fetchval', 'SELECT 1',
                                                   (), 0)
    assert pool.is_closing()
    assert server.alive() == []


async def test_init_failure_closes_pool(server: FakeServer) -> None:
    server.fail_next = 0
    pool = pg_pool.create_pool(connect=server.connect, min_size=3,
                               max_size=3)
    # The first connection succeeds, one of the others fails.
    calls = 0
    real_connect = server.connect

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError('boom')
        return await real_connect(*args, **kwargs)

    pool._connect = flaky
    with pytest.raises(OSError, match='boom'):
        await pool
    assert pool.is_closing()
    await settle()
    assert server.alive() == []
    with pytest.raises(exceptions.InterfaceError, match='pool is closed'):
        await pool.acquire()
    assert await pool is pool  # as in asyncpg: initialized, but closed
    pool._check_invariants()


async def test_init_race(server: FakeServer) -> None:
    server.connect_delay = 0.005
    pool = pg_pool.create_pool(connect=server.connect, min_size=1,
                               max_size=1)
    t1 = asyncio.ensure_future(pool)
    t2 = asyncio.ensure_future(pool)
    await t1
    with pytest.raises(exceptions.InterfaceError,
                       match='pool is being initialized in another task'):
        await t2
    await pool.close()


async def test_init_and_use_race(server: FakeServer) -> None:
    server.connect_delay = 0.005
    pool = pg_pool.create_pool(connect=server.connect, min_size=1,
                               max_size=1)
    with pytest.raises(exceptions.InterfaceError, match='pool is not initialized'):
        await pool.fetchval('SELECT 1')
    task = asyncio.ensure_future(pool)
    await asyncio.sleep(0)
    with pytest.raises(exceptions.InterfaceError,
                       match='being initialized, but not yet ready'):
        await pool.fetchval('SELECT 1')
    await task
    await pool.close()


async def test_wrong_connection_type(make_pool: PoolFactory,
                                     server: FakeServer) -> None:
    pool = await make_pool(min_size=0, max_size=1)
    server.wrong_type = True
    with pytest.raises(exceptions.InterfaceError,
                       match=re.escape(
                           'expected pool connect callback to return an '
                           f"instance of '{pg_client.Connection.__module__}."
                           "Connection', got 'object'")):
        await pool.acquire()
    server.wrong_type = False
    async with pool.acquire(timeout=1) as con:
        assert isinstance(con._con, FakeConnection)
    assert pool._reconnect_task is None


# -- acquire and release -----------------------------------------------------


async def test_acquire_release_basic(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=2, max_size=3)
    assert (pool.get_size(), pool.get_idle_size()) == (2, 2)
    async with pool.acquire() as a:
        assert pool.get_idle_size() == 1
        b = await pool.acquire()
        assert pool.get_idle_size() == 0
        async with pool.acquire() as c:
            assert pool.get_size() == 3
            assert pool.get_idle_size() == 0
            assert len({id(a._con), id(b._con), id(c._con)}) == 3
        await pool.release(b)
        await pool.release(b)  # twice is a no-op
    assert pool.get_idle_size() == 3
    pool._check_invariants()


async def test_lifo_reuse(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=3, max_size=3)
    async with pool.acquire() as con:
        first = con._con
    async with pool.acquire() as con:
        assert con._con is first


async def test_release_foreign_connection(make_pool: PoolFactory) -> None:
    pool1 = await make_pool(min_size=1, max_size=1)
    pool2 = await make_pool(min_size=1, max_size=1)
    con = await pool1.acquire()
    with pytest.raises(exceptions.InterfaceError, match='is not a member'):
        await pool2.release(con)
    with pytest.raises(exceptions.InterfaceError, match='is not a member'):
        await pool1.release(con._con)
    await pool1.release(con)


async def test_acquire_context_reuse(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    ctx = pool.acquire()
    async with ctx:
        pass
    with pytest.raises(exceptions.InterfaceError,
                       match='a connection is already acquired'):
        async with ctx:
            pass


async def test_release_timeout_defaults_to_acquire_timeout(
        make_pool: PoolFactory, server: FakeServer) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire(timeout=0.01)
    server.reset_delay = 0.05
    with pytest.raises(asyncio.TimeoutError):
        await pool.release(con)
    server.reset_delay = 0
    assert pool.get_stats().resets_failed == 1
    await wait_until(lambda: pool.get_idle_size() == 1)


async def test_acquire_timeout(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    held = await pool.acquire()
    with pytest.raises(asyncio.TimeoutError):
        await pool.acquire(timeout=0.005)
    stats = pool.get_stats()
    assert stats.timeouts == 1
    assert stats.waits == 1
    assert stats.wait_time_total >= 0.004
    assert stats.waiting == 0
    pool._check_invariants()
    await pool.release(held)
    with pytest.raises(asyncio.TimeoutError):
        async with pool.acquire(timeout=0.005):
            async with pool.acquire(timeout=0.005):
                pass
    assert pool.get_idle_size() == 1


async def test_waiters_are_served_fifo(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    held = await pool.acquire()
    order: list[int] = []

    async def worker(i: int) -> None:
        async with pool.acquire():
            order.append(i)

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(worker(i)))
        await settle(1)
    await pool.release(held)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_max_waiting(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, max_waiting=2)
    held = await pool.acquire()
    waiters = [spawn_acquire(pool) for _ in range(2)]
    await settle()
    with pytest.raises(TooManyWaitersError, match='max_waiting=2'):
        await pool.acquire()
    assert pool.get_stats().waiters_rejected == 1
    await pool.release(held)
    for task in waiters:
        con = await task
        await pool.release(con)
    pool._check_invariants()


async def test_max_waiting_zero_still_grows(make_pool: PoolFactory,
                                            server: FakeServer) -> None:
    # Callers that a new connection will serve are not "queued".
    server.connect_delay = 0.002
    pool = await make_pool(min_size=0, max_size=2, max_waiting=0)
    a, b = await asyncio.gather(pool.acquire(), pool.acquire())
    with pytest.raises(TooManyWaitersError):
        await pool.acquire()
    await pool.release(a)
    await pool.release(b)


# -- the proxy -----------------------------------------------------------------


async def test_proxy_forwards_and_is_a_connection(
        make_pool: PoolFactory) -> None:
    pool = await make_pool()
    async with pool.acquire() as con:
        assert isinstance(con, PoolConnectionProxy)
        assert isinstance(con, pg_client.Connection)
        assert isinstance(con, pg_client.connection.ConnectionProxy)
        assert await con.fetchval('SELECT $1', 5, column=0) == (
            'fetchval', 'SELECT $1', (5,), 0)
        assert con.get_server_pid() == 1000 + con._con.fake_id
        assert con.fake_id == con._con.fake_id  # attributes forwarded
        assert con.execute.__name__ == 'execute'
        assert repr(con._con) in repr(con)
        assert con._con.fake_proxy is con
    assert '[released]' in repr(con)


async def test_proxy_after_release_raises(make_pool: PoolFactory) -> None:
    pool = await make_pool()
    async with pool.acquire() as con:
        bound = con.fetchval
        stmt = await con.prepare('SELECT 1')
        assert await stmt.fetchval() == ('fetchval', 'SELECT 1', (), 0)
    with pytest.raises(exceptions.InterfaceError,
                       match=r'cannot call Connection\.execute\(\): '
                             r'connection has been released back to the pool'):
        con.execute('SELECT 1')
    with pytest.raises(exceptions.InterfaceError, match='released back'):
        bound('SELECT 1')
    with pytest.raises(exceptions.InterfaceError, match='released back'):
        con.fake_id  # noqa: B018
    with pytest.raises(exceptions.InterfaceError, match='released back'):
        await stmt.fetchval()
    with pytest.raises(AttributeError):
        con._private_thing  # noqa: B018


async def test_listener_warning_on_release(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    await con.add_listener('chan', lambda *a: None)
    with pytest.warns(exceptions.InterfaceWarning, match='active notification'):
        await pool.release(con)
    # The warning did not keep the connection from coming back.
    assert pool.get_idle_size() == 1
    assert con._holder.con.fake_listeners == {}
    pool._check_invariants()


async def test_listener_warning_as_error_still_releases(
        make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    await con.add_listener('chan', lambda *a: None)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(exceptions.InterfaceWarning):
            await pool.release(con)
    assert pool.get_idle_size() == 1
    assert '[released]' in repr(con)
    pool._check_invariants()


async def test_cache_drop_propagates(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=3, max_size=3)
    async with pool.acquire() as con:
        raw = con._con
        raw.trigger_cache_drop('types')
    others = [h.con for h in pool._idle if h.con is not raw]
    assert len(others) == 2
    assert all(c.fake_dropped == ['types'] for c in others)
    assert raw.fake_dropped == ['types']


# -- reset on release ------------------------------------------------------------


async def test_release_resets(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as con:
        raw = con._con
        await con.execute('BEGIN')
        assert raw.is_in_transaction()
    assert raw.fake_resets == 1
    assert not raw.is_in_transaction()
    async with pool.acquire() as con:
        assert con._con is raw


async def test_reset_failure_terminates(make_pool: PoolFactory,
                                        server: FakeServer) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    raw = con._con
    server.reset_error = exceptions.InterfaceError('reset broke')
    with pytest.raises(exceptions.InterfaceError, match='reset broke'):
        await pool.release(con)
    server.reset_error = None
    assert raw.is_closed()
    assert pool.get_stats().resets_failed == 1
    async with pool.acquire() as con2:
        assert con2._con is not raw
    pool._check_invariants()


async def test_reset_timeout_terminates(make_pool: PoolFactory,
                                        server: FakeServer) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    raw = con._con
    server.reset_delay = 0.05
    with pytest.raises(asyncio.TimeoutError):
        await pool.release(con, timeout=0.002)
    server.reset_delay = 0
    assert raw.is_closed()
    await wait_until(lambda: pool.get_idle_size() == 1)


async def test_block_exception_wins_over_release_error(
        make_pool: PoolFactory, server: FakeServer,
        caplog: pytest.LogCaptureFixture) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    server.reset_error = exceptions.InterfaceError('reset broke')
    with pytest.raises(KeyError), caplog.at_level(logging.WARNING, 'pg_pool'):
        async with pool.acquire():
            raise KeyError('from the block')
    assert 'reset broke' in caplog.text

    async def cancelled_in_block() -> None:
        async with pool.acquire():
            await asyncio.sleep(10)

    task = asyncio.create_task(cancelled_in_block())
    await asyncio.sleep(0.002)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(exceptions.InterfaceError, match='reset broke'):
        async with pool.acquire():
            pass
    server.reset_error = None
    assert pool.get_stats().resets_failed == 3
    pool._check_invariants()


async def test_custom_reset_hook(make_pool: PoolFactory) -> None:
    seen: list[Any] = []

    async def reset(con: Any) -> None:
        # The transaction is already gone when the hook runs.
        assert not con.is_in_transaction()
        assert con.fake_client_resets == len(seen) + 1
        seen.append(con)

    pool = await make_pool(min_size=1, max_size=1, reset=reset)
    async with pool.acquire() as con:
        raw = con._con
        await con.execute('BEGIN')
    assert seen == [raw]
    assert raw.fake_resets == 0  # Connection.reset() not used


async def test_custom_reset_failure_and_timeout(make_pool: PoolFactory) -> None:
    mode = 'fail'

    async def reset(con: Any) -> None:
        if mode == 'fail':
            raise RuntimeError('hook failed')
        await asyncio.sleep(0.05)

    pool = await make_pool(min_size=1, max_size=1, reset=reset)
    con = await pool.acquire()
    raw = con._con
    with pytest.raises(RuntimeError, match='hook failed'):
        await pool.release(con)
    assert raw.is_closed()
    mode = 'slow'
    con = await pool.acquire()
    raw = con._con
    with pytest.raises(asyncio.TimeoutError):
        await pool.release(con, timeout=0.002)
    assert raw.is_closed()
    assert pool.get_stats().resets_failed == 2


async def test_release_of_dead_connection_is_silent(
        make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    raw = con._con
    raw.kill()  # e.g. pg_terminate_backend while in use
    await pool.release(con)  # no error, asyncpg's test_pool_remote_close
    async with pool.acquire(timeout=0.1) as con2:
        assert con2._con is not raw
    assert pool.get_stats().connections_lost == 1


async def test_terminate_by_user_frees_the_slot(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    con.terminate()
    # As in asyncpg, the holder is freed right away; the proxy is released.
    con2 = await pool.acquire(timeout=0.1)
    assert '[released]' in repr(con)
    await pool.release(con)  # harmless
    await con2.close()
    await pool.release(con2)
    async with pool.acquire(timeout=0.1):
        pass
    pool._check_invariants()


# -- hooks -----------------------------------------------------------------------------


async def test_setup_and_init_hooks(make_pool: PoolFactory) -> None:
    inits: list[Any] = []
    setups: list[Any] = []

    async def init(con: Any) -> None:
        assert not isinstance(con, PoolConnectionProxy)
        assert con not in inits
        inits.append(con)

    async def setup(proxy: Any) -> None:
        assert isinstance(proxy, PoolConnectionProxy)
        assert proxy._con in inits
        setups.append(proxy)

    pool = await make_pool(min_size=2, max_size=5, init=init, setup=setup)

    async def user() -> None:
        async with pool.acquire() as con:
            assert setups[-1] is not None
            await asyncio.sleep(0.001)
            assert con._con in inits

    await asyncio.gather(*[user() for _ in range(10)])
    assert len(inits) == 5
    assert len(setups) == 10


async def test_setup_failure_closes_connection(make_pool: PoolFactory) -> None:
    calls = 0
    last: Any = None

    async def setup(proxy: Any) -> None:
        nonlocal calls, last
        calls += 1
        last = proxy._con
        if calls == 1:
            raise ZeroDivisionError

    pool = await make_pool(min_size=1, max_size=1, setup=setup)
    with pytest.raises(ZeroDivisionError):
        await pool.acquire()
    first = last
    await drain(pool)
    assert first.is_closed()
    async with pool.acquire() as con:
        assert con._con is not first
    pool._check_invariants()


async def test_init_failure_closes_connection(make_pool: PoolFactory) -> None:
    calls = 0
    seen: list[Any] = []

    async def init(con: Any) -> None:
        nonlocal calls
        calls += 1
        seen.append(con)
        if calls == 1:
            raise ZeroDivisionError

    pool = await make_pool(min_size=0, max_size=1, init=init)
    # No connection and no timeout: the caller gets the error.
    with pytest.raises(ZeroDivisionError):
        await pool.acquire()
    assert seen[0].is_closed()
    async with pool.acquire(timeout=1) as con:
        assert con._con is seen[-1]
    assert pool.get_stats().connect_errors == 1


async def test_setup_timeout_counts(make_pool: PoolFactory) -> None:
    async def setup(proxy: Any) -> None:
        await asyncio.sleep(0.05)

    pool = await make_pool(min_size=1, max_size=1, setup=setup)
    with pytest.raises(asyncio.TimeoutError):
        await pool.acquire(timeout=0.005)
    assert pool.get_stats().timeouts == 1
    await wait_until(lambda: pool.get_idle_size() == 1)


# -- recycling: max_queries, generations, lifetimes ------------------------------


async def test_max_queries(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, max_queries=2)
    async with pool.acquire() as con:
        first = con._con
        await con.execute('SELECT 1')
    async with pool.acquire() as con:
        assert con._con is first
        await con.execute('SELECT 1')
    await wait_until(lambda: pool.get_idle_size() == 1)
    async with pool.acquire() as con:
        assert con._con is not first
    assert first.is_closed()
    assert pool.get_stats().connections_expired == 1


async def test_expire_connections(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=2, max_size=3)
    held = await pool.acquire()
    held_raw = held._con
    idle_raw = pool._idle[0].con
    await pool.expire_connections()
    await drain(pool)
    assert idle_raw.is_closed()
    assert not held_raw.is_closed()
    await pool.release(held)
    await drain(pool)
    assert held_raw.is_closed()
    await wait_until(lambda: pool.get_idle_size() == 2)
    assert all(h.generation == pool._generation for h in pool._idle)
    assert pool.get_stats().connections_expired == 2


async def test_expire_during_connect(make_pool: PoolFactory,
                                     server: FakeServer) -> None:
    pool = await make_pool(min_size=0, max_size=1)
    server.connect_delay = 0.01
    task = spawn_acquire(pool)
    await asyncio.sleep(0.002)
    await pool.expire_connections()
    con = await task
    # The connection begun before expire_connections() was replaced.
    assert server.connections[0].is_closed()
    assert con._con is server.connections[1]
    await pool.release(con)


async def test_inactive_lifetime_keeps_min_size(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=3,
                           max_inactive_connection_lifetime=0.01)
    cons = [await pool.acquire() for _ in range(3)]
    for con in cons:
        await pool.release(con)
    assert pool.get_size() == 3
    await wait_until(lambda: pool.get_size() == 1, timeout=0.5)
    await asyncio.sleep(0.03)
    assert pool.get_size() == 1  # the floor stays (asyncpg 0.32)
    assert pool.get_stats().connections_idle_closed == 2
    # Lowering min_size lets the floor drain too.
    pool.resize(min_size=0)
    await wait_until(lambda: pool.get_size() == 0, timeout=0.5)


async def test_inactive_lifetime_counts_from_release(
        make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=0, max_size=1, init_size=1,
                           max_inactive_connection_lifetime=0.02)
    async with pool.acquire() as con:
        raw = con._con
        await asyncio.sleep(0.03)  # longer than the lifetime, but in use
    async with pool.acquire() as con:
        assert con._con is raw
    await wait_until(lambda: pool.get_size() == 0, timeout=0.5)


async def test_inactive_lifetime_with_the_timer_left_armed(
        make_pool: PoolFactory) -> None:
    """A checkout leaves the idle timer armed: when it fires on a connection
    used since (in use, or idle for less than the lifetime), it does nothing
    but look again later; the connection closes only once really idle."""
    pool = await make_pool(min_size=0, max_size=1, init_size=1,
                           max_inactive_connection_lifetime=0.05)
    loop = asyncio.get_running_loop()
    raw = None
    end = loop.time() + 0.2
    while loop.time() < end:
        async with pool.acquire() as con:
            raw = raw or con._con
            assert con._con is raw
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)
    assert pool.get_size() == 1 and not raw.is_closed()
    assert pool.get_stats().connections_idle_closed == 0
    await wait_until(lambda: pool.get_size() == 0, timeout=0.5)
    # The pool lets go of it at once and closes it in a task of its own.
    await wait_until(raw.is_closed, timeout=0.5)
    assert pool.get_stats().connections_idle_closed == 1


async def test_max_lifetime_with_jitter(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=20, max_size=20, max_lifetime=1000.0)
    lifetimes = [h.expires_at - h.created_at for h in pool._idle]
    assert all(900.0 <= t <= 1000.0 for t in lifetimes)
    assert len({round(t, 6) for t in lifetimes}) > 10  # spread out


async def test_max_lifetime_replaces_idle_and_released(
        make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=2, max_lifetime=0.02)
    first = pool._idle[0].con
    await wait_until(lambda: first.is_closed(), timeout=0.5)
    await wait_until(lambda: pool.get_idle_size() == 1, timeout=0.5)
    con = await pool.acquire()
    raw = con._con
    await asyncio.sleep(0.03)  # expires while in use: not interrupted
    assert not raw.is_closed()
    await pool.release(con)
    await drain(pool)
    assert raw.is_closed()
    assert pool.get_stats().connections_expired >= 2


# -- pings ---------------------------------------------------------------------


async def test_ping_replaces_dead_connection(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, ping_after_idle=0.005,
                           ping_timeout=0.02)
    raw = pool._idle[0].con
    raw.fake_execute_error = exceptions.InterfaceError('broken pipe')
    await asyncio.sleep(0.01)
    async with pool.acquire() as con:
        assert con._con is not raw
    assert raw.is_closed()
    stats = pool.get_stats()
    assert (stats.pings, stats.pings_failed) == (1, 1)
    assert stats.connections_lost == 1


async def test_ping_timeout_replaces_blackholed(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, ping_after_idle=0.005,
                           ping_timeout=0.01)
    raw = pool._idle[0].con
    raw.fake_hang = True
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with pool.acquire(timeout=1) as con:
        assert con._con is not raw
    assert loop.time() - start < 0.5
    assert raw.is_closed()
    assert pool.get_stats().pings_failed == 1


async def test_ping_only_after_idle(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, ping_after_idle=10.0)
    async with pool.acquire() as con:
        assert con._con.fake_calls == []
    assert pool.get_stats().pings == 0
    pool2 = await make_pool(min_size=1, max_size=1, ping_after_idle=0)
    await asyncio.sleep(0.002)
    async with pool2.acquire() as con:
        assert con._con.fake_calls == []  # 0 disables


async def test_ping_ok(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, ping_after_idle=0.001)
    raw = pool._idle[0].con
    await asyncio.sleep(0.003)
    async with pool.acquire() as con:
        assert con._con is raw
        assert raw.fake_calls[0][1] == ('SELECT 1',)
    assert pool.get_stats().pings == 1


# -- dead idle connections, reconnecting, backoff ------------------------------


async def test_idle_connection_killed_is_replaced(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=3, max_size=3)
    for h in list(pool._idle):
        h.con.kill()
    await settle()
    await wait_until(lambda: pool.get_idle_size() == 3)
    for _ in range(10):
        async with pool.acquire(timeout=0.1) as con:
            assert not con._con.is_closed()
    assert pool.get_stats().connections_lost == 3


async def test_killed_before_noticed(make_pool: PoolFactory) -> None:
    # The connection is closed but its termination callback has not run:
    # acquire() checks is_closed() and skips it.
    pool = await make_pool(min_size=2, max_size=2)
    for h in list(pool._idle):
        h.con.kill()
    async with pool.acquire(timeout=0.1) as con:
        assert not con._con.is_closed()


async def test_backoff_while_server_down(make_pool: PoolFactory,
                                         server: FakeServer) -> None:
    pool = await make_pool(min_size=2, max_size=4, reconnect_delay_min=0.005,
                           reconnect_delay_max=0.02)
    loop = asyncio.get_running_loop()
    server.down = True
    for h in list(pool._idle):
        h.con.kill()
    await settle()
    start_attempts = len(server.attempts)
    start = loop.time()

    # Many impatient acquirers: none of them adds connection attempts.
    async def impatient() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await pool.acquire(timeout=0.02)

    while loop.time() - start < 0.2:
        await asyncio.gather(*[impatient() for _ in range(5)])
        pool._check_invariants()
    attempts = len(server.attempts) - start_attempts
    elapsed = loop.time() - start
    # Backoff (0.005 -> 0.02 s, jittered) allows at most ~elapsed/0.01 + a
    # few; a busy loop would make thousands.
    assert 3 <= attempts <= elapsed / 0.01 + 6, attempts
    assert pool.get_stats().connect_errors >= attempts
    assert pool._reconnect_task is not None

    # A timeout error says why.
    with pytest.raises(asyncio.TimeoutError) as info:
        await pool.acquire(timeout=0.005)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)

    server.down = False
    back = loop.time()
    await wait_until(lambda: pool.get_idle_size() == 2, timeout=1)
    # Refilled within one backoff step (plus scheduling slack).
    assert loop.time() - back <= 0.02 + 0.05
    assert pool._reconnect_task is None
    pool._check_invariants()


async def test_no_timeout_waiter_gets_connect_error(
        make_pool: PoolFactory, server: FakeServer) -> None:
    pool = await make_pool(min_size=0, max_size=2)
    server.down = True
    with pytest.raises(ConnectionRefusedError):
        await pool.acquire()
    # Later callers without timeout fail at the next attempt too.
    with pytest.raises(ConnectionRefusedError):
        await pool.acquire()
    server.down = False
    async with pool.acquire(timeout=1):
        pass


async def test_waiter_with_timeout_survives_outage(
        make_pool: PoolFactory, server: FakeServer) -> None:
    pool = await make_pool(min_size=0, max_size=1)
    server.down = True
    task = spawn_acquire(pool, timeout=1)
    await asyncio.sleep(0.03)
    assert not task.done()
    server.down = False
    con = await task
    await pool.release(con)


async def test_connection_errors_dont_wedge_in_use_waiters(
        make_pool: PoolFactory, server: FakeServer) -> None:
    # The pool has a connection in use; the server goes down; a caller
    # without timeout waits for that connection instead of failing.
    pool = await make_pool(min_size=1, max_size=2)
    held = await pool.acquire()
    server.down = True
    task = spawn_acquire(pool)
    await asyncio.sleep(0.02)
    assert not task.done()
    await pool.release(held)
    con = await task
    assert con._con is held._holder.con
    server.down = False
    await pool.release(con)


# -- cancellation ------------------------------------------------------------------


async def test_cancelled_waiter_assigned_connection_is_reclaimed(
        make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    held = await pool.acquire()
    waiter = spawn_acquire(pool)
    await settle()
    # The release hands the connection to the waiter's future; cancel the
    # waiter right then, before it gets to run.
    deliver = pool._deliver

    def deliver_then_cancel(holder: Any) -> None:
        deliver(holder)
        waiter.cancel()

    pool._deliver = deliver_then_cancel  # type: ignore[method-assign]
    await pool.release(held)
    with pytest.raises(asyncio.CancelledError):
        await waiter
    pool._check_invariants()
    assert pool.get_idle_size() == 1
    assert not pool._in_use


async def test_cancel_during_connect_keeps_connection(
        make_pool: PoolFactory, server: FakeServer) -> None:
    pool = await make_pool(min_size=0, max_size=1)
    server.connect_delay = 0.01
    task = spawn_acquire(pool)
    await asyncio.sleep(0.002)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pool._check_invariants()
    await wait_until(lambda: pool.get_idle_size() == 1)
    assert len(server.connections) == 1  # not lost, not duplicated


async def test_cancel_during_release(make_pool: PoolFactory,
                                     server: FakeServer) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    server.reset_delay = 0.01

    async def worker() -> None:
        async with pool.acquire():
            pass

    task = asyncio.create_task(worker())
    await asyncio.sleep(0.003)  # inside the reset
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: pool.get_idle_size() == 1)
    assert pool._idle[0].con.fake_resets == 1  # the reset completed
    pool._check_invariants()


async def test_cancel_during_ping(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1, ping_after_idle=0.001,
                           ping_timeout=1)
    raw = pool._idle[0].con
    raw.fake_hang = True
    await asyncio.sleep(0.003)
    task = spawn_acquire(pool)
    await asyncio.sleep(0.003)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert raw.is_closed()
    pool._check_invariants()
    await wait_until(lambda: pool.get_idle_size() == 1)


async def test_cancel_during_setup(make_pool: PoolFactory) -> None:
    async def setup(proxy: Any) -> None:
        await asyncio.sleep(1)

    pool = await make_pool(min_size=1, max_size=1, setup=setup)
    raw = pool._idle[0].con
    task = spawn_acquire(pool)
    await asyncio.sleep(0.003)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await drain(pool)
    assert raw.is_closed()
    pool._check_invariants()
    await wait_until(lambda: pool.get_idle_size() == 1)


async def test_cancellation_storm(make_pool: PoolFactory,
                                  server: FakeServer) -> None:
    rng = random.Random(SEED)
    server.connect_delay = 0.001
    server.reset_delay = 0.0005

    async def setup(proxy: Any) -> None:
        if rng.random() < 0.3:
            await asyncio.sleep(0)

    pool = await make_pool(min_size=2, max_size=5, setup=setup,
                           ping_after_idle=0.002, ping_timeout=0.01,
                           max_inactive_connection_lifetime=0.004,
                           max_queries=7, max_waiting=50)
    loop = asyncio.get_running_loop()
    cancels = 0

    async def worker() -> None:
        timeout = rng.choice([None, 0.001, 0.005, 0.05])
        try:
            async with pool.acquire(timeout=timeout) as con:
                if rng.random() < 0.5:
                    await con.execute('SELECT 1')
                if rng.random() < 0.05:
                    con._con.kill()
                await asyncio.sleep(rng.random() * 0.001)
        except (asyncio.TimeoutError, TooManyWaitersError,
                exceptions.InterfaceError, exceptions.PostgresError):
            pass

    tasks: list[asyncio.Task[None]] = []
    for i in range(1500):
        task = asyncio.create_task(worker())
        tasks.append(task)
        if rng.random() < 0.5:
            loop.call_later(rng.random() * 0.003, task.cancel)
            cancels += 1
        if i % 10 == 0:
            await asyncio.sleep(rng.random() * 0.001)
            pool._check_invariants()
        if i % 200 == 0:
            await pool.expire_connections()
    await asyncio.gather(*tasks, return_exceptions=True)
    pool._check_invariants()
    await drain(pool)
    pool._check_invariants()
    assert not pool._in_use
    assert not pool._waiters
    assert cancels > 500
    # No capacity lost: max_size connections can be held at once.
    held = [await pool.acquire(timeout=1) for _ in range(5)]
    assert pool.get_size() == 5
    for con in held:
        await pool.release(con)
    pool._check_invariants()
    # Every connection the fake server opened is either pooled or closed
    # (once the closes the pool started in tasks of their own have run).
    await wait_until(lambda: not pool._close_tasks, timeout=1)
    pooled = {id(h.con) for h in pool._idle}
    assert all(c.is_closed() or id(c) in pooled for c in server.connections)


# -- close and terminate -----------------------------------------------------------


async def test_close_waits_for_release(make_pool: PoolFactory,
                                       server: FakeServer) -> None:
    pool = await make_pool(min_size=1, max_size=2)
    released = False

    async def worker(started: asyncio.Future[None]) -> None:
        nonlocal released
        async with pool.acquire():
            started.set_result(None)
            await asyncio.sleep(0.01)
        released = True

    started = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(worker(started))
    await started
    await pool.close()
    assert released
    assert pool.is_closing()
    assert server.alive() == []
    await task
    with pytest.raises(exceptions.InterfaceError, match='pool is closed'):
        await pool.acquire()
    await pool.close()  # again: no-op
    pool.terminate()    # no-op too


async def test_close_fails_waiters(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    held = await pool.acquire()
    waiter = spawn_acquire(pool)
    await settle()
    closing = asyncio.create_task(pool.close())
    with pytest.raises(exceptions.InterfaceError, match='pool is closing'):
        await waiter
    with pytest.raises(exceptions.InterfaceError, match='pool is closing'):
        await pool.acquire()
    assert not closing.done()
    await pool.release(held)
    await closing


async def test_close_timeout_terminates(make_pool: PoolFactory,
                                        server: FakeServer) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pool.close(), timeout=0.005)
    assert pool.is_closing()
    assert server.alive() == []
    assert '[released]' in repr(con)
    await pool.release(con)  # released already: no error


async def test_close_logs_when_slow(make_pool: PoolFactory,
                                    caplog: pytest.LogCaptureFixture,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Pool, '_close_warning_delay', 0.005)
    pool = await make_pool(min_size=1, max_size=1)
    con = await pool.acquire()
    with caplog.at_level(logging.WARNING, logger='pg_pool'):
        closing = asyncio.create_task(pool.close())
        await asyncio.sleep(0.02)
        await pool.release(con)
        await closing
    assert 'Pool.close() has been waiting' in caplog.text


async def test_terminate(make_pool: PoolFactory, server: FakeServer) -> None:
    pool = await make_pool(min_size=2, max_size=3)
    con = await pool.acquire()
    waiter_pool = await make_pool(min_size=1, max_size=1)
    held = await waiter_pool.acquire()
    waiter = spawn_acquire(waiter_pool)
    await settle()
    pool.terminate()
    waiter_pool.terminate()
    assert all(c.is_closed() for c in server.connections)
    with pytest.raises(exceptions.InterfaceError, match='released back'):
        await con.fetchval('SELECT 1')
    with pytest.raises(exceptions.InterfaceError, match='pool is closed'):
        await waiter
    await pool.release(con)
    await waiter_pool.release(held)
    pool._check_invariants()
    with pytest.raises(exceptions.InterfaceError, match='pool is closed'):
        await pool.acquire()


async def test_close_during_reconnect(make_pool: PoolFactory,
                                      server: FakeServer) -> None:
    pool = await make_pool(min_size=2, max_size=2)
    server.down = True
    for h in list(pool._idle):
        h.con.kill()
    await asyncio.sleep(0.02)
    assert pool._reconnect_task is not None
    await pool.close()
    assert pool._reconnect_task is None
    pool._check_invariants()


async def test_close_during_slow_connect(make_pool: PoolFactory,
                                         server: FakeServer) -> None:
    pool = await make_pool(min_size=0, max_size=1)
    server.connect_delay = 0.05
    task = spawn_acquire(pool)
    await asyncio.sleep(0.002)
    await pool.close()
    with pytest.raises(exceptions.InterfaceError):
        await task
    pool._check_invariants()
    assert pool._connecting == 0


# -- resize and stats --------------------------------------------------------------


async def test_resize(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=2)
    pool.resize(min_size=3, max_size=4)
    await wait_until(lambda: pool.get_idle_size() == 3)
    assert (pool.get_min_size(), pool.get_max_size()) == (3, 4)
    held = [await pool.acquire() for _ in range(4)]
    pool.resize(min_size=1, max_size=2)
    assert pool.get_size() == 4  # in use: closed only when released
    for con in held:
        await pool.release(con)
    await drain(pool)
    assert pool.get_size() == 2
    pool._check_invariants()
    with pytest.raises(ValueError, match='min_size is greater than max_size'):
        pool.resize(min_size=5)


async def test_resize_serves_waiters(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    held = await pool.acquire()
    waiter = spawn_acquire(pool)
    await settle()
    assert not waiter.done()
    pool.resize(max_size=2)
    con = await asyncio.wait_for(waiter, 1)
    await pool.release(con)
    await pool.release(held)


async def test_stats(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=2)
    async with pool.acquire():
        async with pool.acquire():
            stats = pool.get_stats()
            assert (stats.size, stats.idle, stats.in_use) == (2, 0, 2)
    stats = pool.get_stats()
    assert stats.acquires == 2
    assert stats.releases == 2
    assert stats.waits == 1  # the second one waited for a new connection
    assert stats.connections_created == 2
    assert (stats.min_size, stats.max_size) == (1, 2)
    assert stats.connecting == 0 and stats.waiting == 0


# -- shortcuts -------------------------------------------------------------------


async def test_shortcuts_forward(make_pool: PoolFactory) -> None:
    pool = await make_pool(min_size=1, max_size=1)
    raw = pool._idle[0].con
    assert await pool.execute('SELECT $1', 1, timeout=2) == 'SELECT 1'
    await pool.executemany('INSERT $1', [(1,), (2,)], timeout=3)
    assert await pool.fetch('Q', 1, timeout=4, record_class=None) == [
        ('fetch', 'Q', (1,))]
    assert await pool.fetchrow('Q', 2) == ('fetchrow', 'Q', (2,))
    assert await pool.fetchval('Q', 3, column=1) == ('fetchval', 'Q', (3,), 1)
    assert await pool.fetchmany('Q', [(1,)]) == [('fetchmany', 'Q')]
    assert await pool.copy_from_table('t', output='f', columns=['a'],
                                      delimiter=',') == 'COPY 1'
    assert await pool.copy_from_query('Q', 1, output='f',
                                      format='csv') == 'COPY 2'
    assert await pool.copy_to_table('t', source='f', where='a > 1',
                                    force_null=['a']) == 'COPY 3'
    assert await pool.copy_records_to_table('t', records=[(1,)],
                                            where='x') == 'COPY 4'
    names = [c[0] for c in raw.fake_calls]
    assert names == ['execute', 'executemany', 'fetch', 'fetchrow',
                     'fetchval', 'fetchmany', 'copy_from_table',
                     'copy_from_query', 'copy_to_table',
                     'copy_records_to_table']
    assert raw.fake_calls[0][2] == {'timeout': 2}
    assert raw.fake_calls[6][2]['delimiter'] == ','
    assert raw.fake_calls[8][2]['where'] == 'a > 1'
    assert raw.fake_calls[9][2]['records'] == [(1,)]
    assert pool.get_idle_size() == 1


async def test_connection_class_subclass(make_pool: PoolFactory) -> None:
    class MyConnection(FakeConnection):
        async def foo(self) -> int:
            return 42

        async def fetchval(self, query: str, *args: Any, column: int = 0,
                           timeout: float | None = None) -> Any:
            return 'overridden'

    pool = await make_pool(connection_class=MyConnection)
    async with pool.acquire() as con:
        assert await con.foo() == 42
        assert await con.fetchval('SELECT 1') == 'overridden'
        assert isinstance(con._con, MyConnection)


async def test_connection_to_a_server_turned_read_only_is_not_lent_again(
        make_pool: PoolFactory) -> None:
    """A pooled connection whose server no longer fits target_session_attrs
    (it turned read-only, or became a standby) is replaced, not reused."""
    pool = await make_pool(min_size=1, max_size=1)
    async with pool.acquire() as con:
        first = con._con
        first.fake_read_only = True
    await wait_until(lambda: pool.get_idle_size() == 1)
    async with pool.acquire() as con:
        assert con._con is not first
    assert first.is_closed()
