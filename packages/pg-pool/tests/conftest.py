"""Fixtures for pg_pool's unit tests: a fake server and fake connections.

pg_pool depends on pg_client, which is being written at the same time. The
unit tests never talk to a server, so they only need pg_client's *names*:
``Connection``, ``Record``, ``connect``, ``connection.ConnectionProxy`` and
the exceptions. If the real pg_client provides them, the tests use it (the
fake connections subclass the real ``Connection``). If it doesn't import
yet, a minimal stand-in module is put in ``sys.modules['pg_client']`` before
pg_pool is imported; it keeps the real ``pg_client.exceptions`` when that
imports. ``PG_POOL_TEST_STUB`` in the test output says which one ran.

The fakes themselves live in ``pg_pool_fakes.py`` (this directory is put on
``sys.path`` so the test modules can import it).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def _real_pg_client_usable() -> bool:
    try:
        import pg_client
        import pg_client.connection
        import pg_client.exceptions

        for name in ('Connection', 'Record', 'connect'):
            getattr(pg_client, name)
        pg_client.connection.ConnectionProxy  # noqa: B018
        pg_client.exceptions.InterfaceError  # noqa: B018
        pg_client.exceptions.InterfaceWarning  # noqa: B018
    except (ImportError, AttributeError):
        return False
    return True


def _minimal_exceptions() -> types.ModuleType:
    mod = types.ModuleType('pg_client.exceptions')

    class InterfaceError(Exception):
        def __init__(self, msg: str, *, detail: str | None = None,
                     hint: str | None = None) -> None:
            super().__init__(msg)
            self.detail = detail
            self.hint = hint

    class InterfaceWarning(UserWarning):
        pass

    class PostgresError(Exception):
        pass

    class ConnectionDoesNotExistError(PostgresError):
        pass

    for cls in (InterfaceError, InterfaceWarning, PostgresError,
                ConnectionDoesNotExistError):
        cls.__module__ = mod.__name__
        setattr(mod, cls.__name__, cls)
    return mod


_ASYNC_METHODS = (
    'add_listener', 'add_log_listener', 'close', 'copy_from_query',
    'copy_from_table', 'copy_records_to_table', 'copy_to_table', 'cursor',
    'execute', 'executemany', 'fetch', 'fetchmany', 'fetchrow', 'fetchval',
    'prepare', 'reload_schema_state', 'remove_listener', 'reset',
    'reset_transaction_and_listeners', 'reset_type_codec',
    'set_builtin_type_codec', 'set_type_codec',
)
_SYNC_METHODS = (
    'add_query_logger', 'add_termination_listener', 'attach_proxy',
    'detach_proxy', 'drop_local_cache', 'get_query_count', 'get_reset_query',
    'matches_target_session_attrs',
    'get_server_pid', 'get_server_version', 'get_settings',
    'is_closed', 'is_in_transaction', 'remove_log_listener',
    'remove_query_logger', 'remove_termination_listener', 'terminate',
    'transaction',
)


def _stub_method(name: str, *, is_async: bool) -> Any:
    if is_async:
        async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(name)
    else:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(name)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f'Stand-in for Connection.{name}().'
    return method


def _install_stub() -> None:
    try:
        exc_mod = importlib.import_module('pg_client.exceptions')
        exc_mod.ConnectionDoesNotExistError  # noqa: B018
    except (ImportError, AttributeError):
        exc_mod = _minimal_exceptions()
    for name in list(sys.modules):
        if name == 'pg_client' or (name.startswith('pg_client.')
                                   and not name.startswith('pg_client.exceptions')):
            del sys.modules[name]

    pkg = types.ModuleType('pg_client')
    pkg.__path__ = []
    pkg.__doc__ = 'Stand-in for pg_client in pg_pool unit tests.'
    conn_mod = types.ModuleType('pg_client.connection')

    class ConnectionProxy:
        """Base of pool proxies; isinstance(proxy, Connection) is True."""

        __slots__ = ()

    class ConnectionMeta(type):
        # As in asyncpg: any Connection or proxy passes isinstance against
        # Connection and its subclasses.
        def __instancecheck__(cls, instance: object) -> bool:
            mro = type(instance).__mro__
            return Connection in mro or ConnectionProxy in mro

    class Connection(metaclass=ConnectionMeta):
        """Stand-in Connection."""

    # Public methods by name, so the proxy's forwarders match the real
    # class's (bodies are never run: FakeConnection overrides what it uses).
    for name in _ASYNC_METHODS:
        setattr(Connection, name, _stub_method(name, is_async=True))
    for name in _SYNC_METHODS:
        setattr(Connection, name, _stub_method(name, is_async=False))

    class Record(tuple):  # type: ignore[type-arg]
        pass

    async def connect(*args: Any, **kwargs: Any) -> Connection:
        raise RuntimeError('stub pg_client: pass connect= to the pool')

    for obj in (ConnectionProxy, Connection):
        obj.__module__ = 'pg_client.connection'
    Record.__module__ = 'pg_client'
    conn_mod.ConnectionProxy = ConnectionProxy  # type: ignore[attr-defined]
    conn_mod.Connection = Connection  # type: ignore[attr-defined]
    conn_mod.connect = connect  # type: ignore[attr-defined]
    pkg.connection = conn_mod  # type: ignore[attr-defined]
    pkg.exceptions = exc_mod  # type: ignore[attr-defined]
    pkg.Connection = Connection  # type: ignore[attr-defined]
    pkg.Record = Record  # type: ignore[attr-defined]
    pkg.connect = connect  # type: ignore[attr-defined]
    pkg.PG_POOL_TEST_STUB = True  # type: ignore[attr-defined]
    sys.modules['pg_client'] = pkg
    sys.modules['pg_client.connection'] = conn_mod
    sys.modules['pg_client.exceptions'] = exc_mod


USING_STUB = not _real_pg_client_usable()
if USING_STUB:
    _install_stub()


def pytest_report_header(config: pytest.Config) -> str:
    which = 'stand-in (real pg_client not importable yet)' if USING_STUB \
        else 'real pg_client'
    return f'PG_POOL_TEST_STUB: pg_pool unit tests use a {which}'


from pg_pool_fakes import FakeServer  # noqa: E402

import pg_pool  # noqa: E402

PoolFactory = Callable[..., Awaitable[pg_pool.Pool]]


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
async def make_pool(server: FakeServer) -> AsyncIterator[PoolFactory]:
    """``await make_pool(**kwargs)``: a started pool on the fake server.

    Defaults keep tests fast and deterministic: small sizes, no pings, no
    lifetime, short reconnect delays. At teardown the invariants are
    checked and the pool is terminated, its tasks awaited.
    """
    pools: list[pg_pool.Pool] = []

    async def factory(**kwargs: Any) -> pg_pool.Pool:
        kwargs.setdefault('connect', server.connect)
        kwargs.setdefault('min_size', 1)
        kwargs.setdefault('max_size', 2)
        kwargs.setdefault('max_lifetime', None)
        kwargs.setdefault('ping_after_idle', None)
        kwargs.setdefault('reconnect_delay_min', 0.005)
        kwargs.setdefault('reconnect_delay_max', 0.02)
        pool = pg_pool.create_pool(**kwargs)
        pools.append(pool)
        await pool
        return pool

    yield factory

    for pool in pools:
        if pool._initialized and not pool._closed:
            pool._check_invariants()
            pool.terminate()
        await drain(pool)


async def drain(pool: pg_pool.Pool) -> None:
    """Let the pool's background tasks finish."""
    for _ in range(100):
        tasks = [t for t in pool._background_tasks() if not t.done()]
        if not tasks:
            break
        await asyncio.wait(tasks, timeout=0.5)
    # Termination listeners run via call_soon.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
