"""A fake server and fake connections for pg_pool's unit tests.

``FakeConnection`` subclasses ``pg_client.Connection`` (the real one, or
the stand-in from conftest.py) without calling its constructor, and
implements exactly the public methods pg_pool uses, plus the query methods
the proxy and the shortcuts forward. Failures and delays are controlled per
server (``FakeServer``) or per connection. Like pg_client, a connection
calls its termination listeners through ``loop.call_soon`` when it ends,
for any reason.
"""

from __future__ import annotations

import asyncio
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import pg_client
from pg_client import exceptions

_ids = itertools.count(1)


class FakeServer:
    """Hands out FakeConnections; can be "down", slow or failing."""

    def __init__(self) -> None:
        self.down = False
        self.connect_delay = 0.0
        self.fail_next = 0
        self.attempts: list[float] = []
        self.connections: list[FakeConnection] = []
        self.connect_calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.reset_delay = 0.0
        self.reset_error: BaseException | None = None
        self.close_delay = 0.0
        self.wrong_type = False

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        self.attempts.append(loop.time())
        self.connect_calls.append((args, kwargs))
        if self.connect_delay:
            await asyncio.sleep(self.connect_delay)
        if self.down:
            raise ConnectionRefusedError('fake server is down')
        if self.fail_next:
            self.fail_next -= 1
            raise OSError('fake connect failure')
        if self.wrong_type:
            return object()
        cls = kwargs.get('connection_class')
        if not (isinstance(cls, type) and issubclass(cls, FakeConnection)):
            cls = FakeConnection
        con = cls(self, kwargs)
        self.connections.append(con)
        return con

    def alive(self) -> list[FakeConnection]:
        return [c for c in self.connections if not c.fake_closed]


class FakeStatement:
    """A prepared statement that dies when its connection is released."""

    def __init__(self, con: FakeConnection, query: str) -> None:
        self.con = con
        self.query = query
        self.generation = con.fake_release_count

    async def fetchval(self, *args: Any) -> Any:
        if self.generation != self.con.fake_release_count:
            raise exceptions.InterfaceError(
                'cannot call PreparedStatement.fetchval(): '
                'the underlying connection has been released back to the pool')
        return await self.con.fetchval(self.query, *args)


class FakeConnection(pg_client.Connection):  # type: ignore[misc]
    """Quacks like pg_client.Connection for everything the pool does."""

    def __init__(self, server: FakeServer, kwargs: dict[str, Any]) -> None:
        # The real Connection.__init__ needs a protocol: don't call it.
        self.fake_id = next(_ids)
        self.fake_server = server
        self.fake_kwargs = kwargs
        self.fake_closed = False
        self.fake_loop = asyncio.get_running_loop()
        self.fake_termination: list[Callable[..., Any]] = []
        self.fake_listeners: dict[str, list[Callable[..., Any]]] = {}
        self.fake_proxy: Any = None
        self.fake_on_cache_drop: Callable[[str], None] | None = None
        self.fake_release_count = 0
        self.fake_queries = 0
        self.fake_read_only = False  # the server turned read-only under us
        self.fake_in_tx = False
        self.fake_hang = False          # queries never answer (blackhole)
        self.fake_execute_error: BaseException | None = None
        self.fake_calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.fake_resets = 0
        self.fake_client_resets = 0
        self.fake_dropped: list[str] = []
        self.fake_attach_count = 0

    def __del__(self) -> None:
        pass

    def __repr__(self) -> str:
        return f'<FakeConnection #{self.fake_id}>'

    # -- life cycle --------------------------------------------------------

    def is_closed(self) -> bool:
        return self.fake_closed

    def _fake_end(self) -> None:
        if self.fake_closed:
            return
        self.fake_closed = True
        self.fake_listeners.clear()
        callbacks, self.fake_termination = self.fake_termination, []
        target = self.fake_proxy if self.fake_proxy is not None else self
        for cb in callbacks:
            self.fake_loop.call_soon(cb, target)

    def kill(self) -> None:
        """The server (or the network) ends the session."""
        self._fake_end()

    async def close(self, *, timeout: float | None = None) -> None:
        delay = self.fake_server.close_delay
        if delay:
            await asyncio.sleep(delay)
        self._fake_end()

    def terminate(self) -> None:
        self._fake_end()

    def add_termination_listener(self, callback: Callable[..., Any]) -> None:
        if callback not in self.fake_termination:
            self.fake_termination.append(callback)

    def remove_termination_listener(self, callback: Callable[..., Any]) -> None:
        if callback in self.fake_termination:
            self.fake_termination.remove(callback)

    # -- pool hooks (public pg_client API for pool implementers) -------------

    def attach_proxy(self, proxy: Any, *,
                     on_cache_drop: Callable[[str], None] | None = None) -> None:
        if self.fake_proxy is not None:
            raise exceptions.InterfaceError('connection is already proxied')
        self.fake_proxy = proxy
        self.fake_on_cache_drop = on_cache_drop
        self.fake_attach_count += 1

    def detach_proxy(self) -> None:
        self.fake_proxy = None
        self.fake_on_cache_drop = None
        self.fake_release_count += 1
        count = sum(len(v) for v in self.fake_listeners.values())
        if count:
            warnings.warn(exceptions.InterfaceWarning(
                f'{self!r} is being released to the pool but has {count} '
                f'active notification listener{"s" if count > 1 else ""}'),
                stacklevel=2)

    def get_query_count(self) -> int:
        return self.fake_queries

    def matches_target_session_attrs(self) -> bool:
        return not self.fake_read_only

    async def reset_transaction_and_listeners(
            self, *, timeout: float | None = None) -> None:
        self._check_open()
        self.fake_client_resets += 1
        self.fake_in_tx = False
        self.fake_listeners.clear()

    def drop_local_cache(self, kind: str) -> None:
        self.fake_dropped.append(kind)

    def trigger_cache_drop(self, kind: str) -> None:
        """Act as if a schema change made this connection drop a cache."""
        self.fake_dropped.append(kind)
        if self.fake_on_cache_drop is not None:
            self.fake_on_cache_drop(kind)

    # -- session -----------------------------------------------------------

    def _check_open(self) -> None:
        if self.fake_closed:
            raise exceptions.ConnectionDoesNotExistError(
                'connection was closed in the middle of operation')

    async def reset(self, *, timeout: float | None = None) -> None:
        self._check_open()
        server = self.fake_server
        if server.reset_delay:
            if timeout is not None and server.reset_delay > timeout:
                await asyncio.sleep(timeout)
                raise asyncio.TimeoutError()
            await asyncio.sleep(server.reset_delay)
        self._check_open()
        if server.reset_error is not None:
            raise server.reset_error
        self.fake_resets += 1
        self.fake_in_tx = False
        self.fake_listeners.clear()

    def start_reset(self, *, timeout: float | None = None) -> asyncio.Future[None]:
        self._check_open()
        return asyncio.ensure_future(self.reset(timeout=timeout))

    def get_reset_query(self) -> str:
        return 'SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;'

    def is_in_transaction(self) -> bool:
        return self.fake_in_tx

    async def _fake_query(self, name: str, args: tuple[Any, ...],
                          kwargs: dict[str, Any]) -> None:
        self._check_open()
        self.fake_calls.append((name, args, kwargs))
        self.fake_queries += 1
        if self.fake_hang:
            # A blackhole: only a timeout (command_timeout) ends the wait.
            await asyncio.wait_for(asyncio.Event().wait(), kwargs.get('timeout'))
        if self.fake_execute_error is not None:
            raise self.fake_execute_error
        await asyncio.sleep(0)
        self._check_open()

    async def execute(self, query: str, *args: Any,
                      timeout: float | None = None) -> str:
        """Execute an SQL command (or commands)."""
        await self._fake_query('execute', (query, *args), {'timeout': timeout})
        if query.strip().upper() == 'BEGIN':
            self.fake_in_tx = True
        return 'SELECT 1'

    async def executemany(self, command: str, args: Any, *,
                          timeout: float | None = None) -> None:
        await self._fake_query('executemany', (command, args),
                               {'timeout': timeout})

    async def fetch(self, query: str, *args: Any, timeout: float | None = None,
                    record_class: Any = None) -> list[Any]:
        await self._fake_query('fetch', (query, *args),
                               {'timeout': timeout, 'record_class': record_class})
        return [('fetch', query, args)]

    async def fetchval(self, query: str, *args: Any, column: int = 0,
                       timeout: float | None = None) -> Any:
        await self._fake_query('fetchval', (query, *args),
                               {'column': column, 'timeout': timeout})
        return ('fetchval', query, args, column)

    async def fetchrow(self, query: str, *args: Any,
                       timeout: float | None = None,
                       record_class: Any = None) -> Any:
        await self._fake_query('fetchrow', (query, *args),
                               {'timeout': timeout, 'record_class': record_class})
        return ('fetchrow', query, args)

    async def fetchmany(self, query: str, args: Any, *,
                        timeout: float | None = None,
                        record_class: Any = None) -> list[Any]:
        await self._fake_query('fetchmany', (query, args),
                               {'timeout': timeout, 'record_class': record_class})
        return [('fetchmany', query)]

    async def copy_from_table(self, table_name: str, **kwargs: Any) -> str:
        await self._fake_query('copy_from_table', (table_name,), kwargs)
        return 'COPY 1'

    async def copy_from_query(self, query: str, *args: Any,
                              **kwargs: Any) -> str:
        await self._fake_query('copy_from_query', (query, *args), kwargs)
        return 'COPY 2'

    async def copy_to_table(self, table_name: str, **kwargs: Any) -> str:
        await self._fake_query('copy_to_table', (table_name,), kwargs)
        return 'COPY 3'

    async def copy_records_to_table(self, table_name: str,
                                    **kwargs: Any) -> str:
        await self._fake_query('copy_records_to_table', (table_name,), kwargs)
        return 'COPY 4'

    async def prepare(self, query: str) -> FakeStatement:
        self._check_open()
        return FakeStatement(self, query)

    async def add_listener(self, channel: str,
                           callback: Callable[..., Any]) -> None:
        self._check_open()
        self.fake_listeners.setdefault(channel, []).append(callback)

    async def remove_listener(self, channel: str,
                              callback: Callable[..., Any]) -> None:
        cbs = self.fake_listeners.get(channel, [])
        if callback in cbs:
            cbs.remove(callback)
        if not cbs:
            self.fake_listeners.pop(channel, None)

    def get_server_pid(self) -> int:
        return 1000 + self.fake_id
