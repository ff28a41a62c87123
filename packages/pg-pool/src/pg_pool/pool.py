"""An asyncio connection pool for pg_client, with asyncpg's Pool API.

The pool keeps between ``min_size`` and ``max_size`` open connections, lends
them out wrapped in a :class:`PoolConnectionProxy`, and puts each one back
in a clean state when it is released. It only uses pg_client's public API:
``pg_client.connect()`` (or the user's ``connect=`` coroutine) and the
documented methods of ``pg_client.Connection``, including the few that exist
for pool implementers (``attach_proxy``, ``detach_proxy``,
``get_query_count``, ``reset_transaction_and_listeners``,
``drop_local_cache``). It knows nothing about the wire protocol or codecs.

How it works
------------

Every connection the pool owns sits in a *holder*, which is in exactly one
of three states::

    IDLE    in ``_idle`` (a stack: the most recently used is lent first,
            so surplus connections age out and get closed)
    IN_USE  in ``_in_use``: lent to a caller, or being checked out (ping,
            ``setup``), or being reset on its way back
    CLOSED  no longer counted; its connection is closed or closing

A *slot* is a unit of capacity. ``_slots`` counts idle holders, in-use
holders and connection attempts in flight (``_connecting``)::

    len(_idle) + len(_in_use) + _connecting == _slots <= max_size

(``_slots`` exceeds a ``max_size`` lowered by ``resize()`` until the busy
surplus comes back and is closed.)
Every state change that touches these numbers is synchronous code with no
``await`` in between, so the equation holds whenever another task can run.
``_check_invariants()`` asserts it (and a few more); the tests call it after
cancellation storms.

Who does what:

* ``_acquire()`` pops an idle holder, or queues a *waiter* (a future) and
  asks ``_maintain()`` for a new connection. Connections are opened by
  pool-owned tasks, never by the acquiring task, so cancelling an acquirer
  can't lose a half-made connection: it lands in the pool and goes to the
  next waiter. A waiter that was handed a holder but got cancelled before it
  resumed gives the holder back (the classic ``wait_for`` leak, avoided by
  not using ``wait_for`` for the queue).
* ``_checkout()`` validates a holder (closed? expired?), pings it if it sat
  idle longer than ``ping_after_idle``, wraps it in a proxy and runs
  ``setup``. Any failure or cancellation there discards the holder.
  ``pool.acquire()`` (awaited or ``async with``) first tries
  ``_acquire_idle()``: the same without a coroutine, when an idle holder
  is fit and needs no ping and there is no ``setup`` hook.
* ``release()`` detaches the proxy at once, then resets the connection:
  cancelling the releasing task doesn't interrupt the reset. The default
  reset is sent at once (``Connection.start_reset()``) and its end gives
  the holder back (``_reset_ended``), with no task; a ``reset`` hook runs
  in a shielded task. A connection whose reset fails or times out is
  terminated, never reused.
* ``_maintain()`` opens connections while the pool is below ``min_size`` or
  has more waiters than idle + connecting connections. After a failed
  attempt the pool switches to one reconnect loop (``_reconnect_loop``)
  that retries with jittered exponential backoff until an attempt succeeds;
  then it refills in parallel. So a down server sees a bounded trickle of
  attempts, never a busy loop, whatever the number of acquirers. Waiters
  with a deadline keep waiting; waiters without one get the connection
  error when the pool has nothing left to wait for (``_slots == 0``).
* A termination listener on each connection drops holders whose connection
  died while idle (or while lent), so the pool refills promptly.
* Per-holder timers close idle connections past
  ``max_inactive_connection_lifetime`` (never below ``min_size``, as in
  asyncpg 0.32) or past their jittered ``max_lifetime``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import functools
import inspect
import logging
import random
import warnings
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any, Final

import pg_client
from pg_client import exceptions
from pg_client.connection import ConnectionProxy

__all__ = (
    'Pool',
    'PoolAcquireContext',
    'PoolConnectionProxy',
    'PoolStats',
    'TooManyWaitersError',
    'create_pool',
)

logger = logging.getLogger('pg_pool')

Connection = pg_client.Connection

#: Coroutine function that replaces ``pg_client.connect()``.
ConnectCallback = Callable[..., Awaitable[Any]]
#: ``setup(proxy)``: runs before every ``acquire()`` returns.
SetupCallback = Callable[['PoolConnectionProxy'], Awaitable[Any]]
#: ``init(connection)`` / ``reset(connection)``.
ConnectionCallback = Callable[[Any], Awaitable[Any]]

# Lifetimes are jittered downwards by up to this fraction, so connections
# opened together don't all expire together.
_LIFETIME_JITTER: Final = 0.1
# Seconds a background close() may take before the connection is aborted.
_CLOSE_TIMEOUT: Final = 10.0
# Timer callbacks may run up to one clock tick early.
_TIMER_SLACK: Final = 1e-3


class TooManyWaitersError(exceptions.InterfaceError):
    """Raised by ``acquire()`` when ``max_waiting`` tasks are already queued.

    The pool has no idle connection and the queue of waiting acquirers is
    full, so the request is refused at once instead of piling up.
    """


@dataclasses.dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's gauges and counters (see ``Pool.get_stats()``).

    Gauges describe the moment of the call; counters add up since the pool
    was created.

    :ivar size: Open connections (idle + in use), like ``get_size()``.
    :ivar idle: Idle connections, like ``get_idle_size()``.
    :ivar in_use: Connections lent out, or being checked out or reset.
    :ivar connecting: Connection attempts in flight.
    :ivar waiting: Tasks queued in ``acquire()``.
    :ivar min_size: Current ``min_size``.
    :ivar max_size: Current ``max_size``.
    :ivar acquires: Successful ``acquire()`` calls.
    :ivar waits: ``acquire()`` calls that had to queue.
    :ivar wait_time_total: Seconds spent queued, summed over all acquires
        (including those that timed out).
    :ivar wait_time_max: Longest single queueing time, in seconds.
    :ivar timeouts: ``acquire()`` calls that raised ``TimeoutError``.
    :ivar waiters_rejected: ``acquire()`` calls refused with
        ``TooManyWaitersError``.
    :ivar releases: ``release()`` calls that returned a connection.
    :ivar connections_created: Connections opened (after ``init``).
    :ivar connect_errors: Failed connection attempts (``connect`` or
        ``init`` raised).
    :ivar connections_closed: Connections the pool let go, for any reason
        (the ones below, plus shrinking, failed ``setup`` and shutdown).
    :ivar connections_lost: Connections found dead: closed by the server or
        the network, or failing a ping.
    :ivar connections_expired: Connections retired by ``max_lifetime``,
        ``max_queries`` or ``expire_connections()``.
    :ivar connections_idle_closed: Connections closed by
        ``max_inactive_connection_lifetime``.
    :ivar pings: Pings sent before handing out a long-idle connection.
    :ivar pings_failed: Pings that failed or timed out.
    :ivar resets_failed: Releases whose reset failed or timed out.
    """

    size: int
    idle: int
    in_use: int
    connecting: int
    waiting: int
    min_size: int
    max_size: int
    acquires: int
    waits: int
    wait_time_total: float
    wait_time_max: float
    timeouts: int
    waiters_rejected: int
    releases: int
    connections_created: int
    connect_errors: int
    connections_closed: int
    connections_lost: int
    connections_expired: int
    connections_idle_closed: int
    pings: int
    pings_failed: int
    resets_failed: int


class _Counters:
    """The mutable counters behind PoolStats."""

    __slots__ = (
        'acquires', 'connect_errors', 'connections_closed',
        'connections_created', 'connections_expired',
        'connections_idle_closed', 'connections_lost', 'pings',
        'pings_failed', 'releases', 'resets_failed', 'timeouts',
        'wait_time_max', 'wait_time_total', 'waiters_rejected', 'waits',
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)
        self.wait_time_total = 0.0
        self.wait_time_max = 0.0

    acquires: int
    connect_errors: int
    connections_closed: int
    connections_created: int
    connections_expired: int
    connections_idle_closed: int
    connections_lost: int
    pings: int
    pings_failed: int
    releases: int
    resets_failed: int
    timeouts: int
    wait_time_max: float
    wait_time_total: float
    waiters_rejected: int
    waits: int


class _State(enum.Enum):
    IDLE = 'idle'
    IN_USE = 'in use'
    CLOSED = 'closed'


# Why a holder is let go; each maps to a PoolStats counter (or none).
_LOST: Final = 'lost'
_EXPIRED: Final = 'expired'
_IDLE_TIMEOUT: Final = 'idle'
_RESET_FAILED: Final = 'reset failed'
_OTHER: Final = 'other'


def _released_error(what: str) -> exceptions.InterfaceError:
    return exceptions.InterfaceError(
        f'cannot call Connection.{what}(): '
        f'connection has been released back to the pool')


class PoolConnectionProxy(ConnectionProxy):
    """A pooled connection, as handed out by ``Pool.acquire()``.

    Forwards every public ``Connection`` method and attribute to the
    connection it wraps, and passes ``isinstance(proxy, pg_client.Connection)``.
    Once the connection goes back to the pool, every method and public
    attribute raises ``InterfaceError``; so do prepared statements and
    cursors created through it. Callbacks registered through the proxy
    (notifications, log messages, termination) receive the proxy.
    """

    __slots__ = ('_con', '_holder') + (
        () if hasattr(ConnectionProxy, '__weakref__') else ('__weakref__',))

    _con: Any
    _holder: _Holder

    def __init__(self, holder: _Holder, con: Any) -> None:
        self._con = con
        self._holder = holder
        con.attach_proxy(self, on_cache_drop=holder.cache_drop_callback)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the class doesn't define: attributes, and
        # methods of Connection subclasses.
        if name in ('_con', '_holder') or name.startswith('__'):
            raise AttributeError(name)
        con = self._con
        if con is None:
            if name.startswith('_'):
                raise AttributeError(name)
            raise exceptions.InterfaceError(
                f'cannot access Connection.{name}: '
                f'connection has been released back to the pool')
        return getattr(con, name)

    def _detach(self) -> Any:
        """Stop forwarding; return the connection (None if already done).

        Tells the connection it is no longer lent out: it warns about
        listeners left behind and invalidates statements and cursors.
        """
        con = self._con
        if con is None:
            return None
        self._con = None
        con.detach_proxy()
        return con

    def __repr__(self) -> str:
        cls = type(self).__name__
        if self._con is None:
            return f'<{cls} [released] {id(self):#x}>'
        return f'<{cls} {self._con!r} {id(self):#x}>'


def _make_forwarder(name: str, meth: Callable[..., Any]) -> Callable[..., Any]:
    def forward(self: PoolConnectionProxy, *args: Any, **kwargs: Any) -> Any:
        con = self._con
        if con is None:
            raise _released_error(name)
        # Look the method up on the connection's own class, so overrides
        # in a connection_class subclass apply.
        return getattr(type(con), name)(con, *args, **kwargs)

    functools.update_wrapper(forward, meth)
    if inspect.iscoroutinefunction(meth):
        mark = getattr(inspect, 'markcoroutinefunction', None)  # 3.12+
        if mark is not None:
            mark(forward)
    return forward


def _install_forwarders(cls: type, source: type) -> None:
    """Give *cls* a forwarding method for each public function of *source*."""
    own = set(dir(ConnectionProxy)) | set(cls.__dict__)
    for name in dir(source):
        if name.startswith('_') or name in own:
            continue
        meth = getattr(source, name)
        if inspect.isfunction(meth):
            setattr(cls, name, _make_forwarder(name, meth))
    if cls.__doc__ is None:
        cls.__doc__ = source.__doc__


_install_forwarders(PoolConnectionProxy, Connection)


class _Holder:
    """One pooled connection and its bookkeeping."""

    __slots__ = (
        '__weakref__', 'cache_drop_callback', 'con', 'created_at',
        'expires_at', 'generation', 'last_used', 'pool', 'proxy',
        'release_timeout', 'state', 'termination_callback', 'timer',
    )

    def __init__(self, pool: Pool, con: Any, generation: int,
                 now: float, expires_at: float | None) -> None:
        self.pool = pool
        self.con = con
        self.generation = generation
        self.created_at = now
        self.last_used = now
        self.expires_at = expires_at
        self.state = _State.IN_USE
        self.proxy: PoolConnectionProxy | None = None
        self.release_timeout: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        # Weak references: a connection kept alive by its transport must
        # not keep an abandoned pool alive.
        ref = weakref.ref(self)
        self.termination_callback = functools.partial(_holder_terminated, ref)
        self.cache_drop_callback = functools.partial(_holder_cache_drop, ref)

    def __repr__(self) -> str:
        return f'<_Holder {self.state.value} {self.con!r}>'


def _holder_terminated(ref: weakref.ref[_Holder], con: object) -> None:
    holder = ref()
    if holder is not None:
        holder.pool._on_connection_terminated(holder)


def _holder_cache_drop(ref: weakref.ref[_Holder], kind: str) -> None:
    holder = ref()
    if holder is not None:
        holder.pool._on_cache_drop(holder, kind)


class _Waiter:
    """A task queued in acquire(): its future gets a holder or an error."""

    __slots__ = ('deadline', 'future')

    def __init__(self, future: asyncio.Future[_Holder],
                 deadline: float | None) -> None:
        self.future = future
        self.deadline = deadline


def _check_sizes(min_size: int, max_size: int) -> None:
    if max_size <= 0:
        raise ValueError('max_size is expected to be greater than zero')
    if min_size < 0:
        raise ValueError(
            'min_size is expected to be greater or equal to zero')
    if min_size > max_size:
        raise ValueError('min_size is greater than max_size')


def _consume_result(task: asyncio.Future[Any]) -> None:
    """Done-callback: retrieve an exception nobody else will look at."""
    if not task.cancelled():
        exc = task.exception()
        if exc is not None:
            logger.debug('pg_pool background task failed', exc_info=exc)


class Pool:
    """A pool of connections to one PostgreSQL server.

    Create it with :func:`create_pool` (or ``Pool(...)``), then ``await`` it
    or use it as an async context manager. Borrow connections with
    :meth:`acquire`, give them back with :meth:`release` (or let
    ``async with pool.acquire()`` do it). A released connection is reset:
    its transaction rolled back, listeners removed, and session state
    (settings, advisory locks, ``LISTEN``, cursors) cleared by
    ``Connection.reset()``. Prepared statements survive in the connection's
    statement cache, but statement and cursor objects created through the
    proxy stop working.

    Beyond asyncpg's pool it also:

    * retires connections after ``max_lifetime`` seconds (each one a little
      earlier, at random, so they don't all reconnect at once);
    * pings a connection that sat idle longer than ``ping_after_idle``
      before lending it, and quietly replaces it if the ping fails;
    * reconnects in the background with jittered exponential backoff while
      the server is unreachable, refilling to ``min_size`` as soon as it is
      back;
    * bounds the queue of waiting acquirers (``max_waiting``);
    * reports counters (:meth:`get_stats`) and can be resized at run time
      (:meth:`resize`).

    See :func:`create_pool` for the parameters.
    """

    # Seconds after which close() logs that it is still waiting.
    _close_warning_delay: float = 60.0

    def __init__(
        self,
        dsn: str | None = None,
        *,
        min_size: int = 10,
        max_size: int = 10,
        max_queries: int = 50000,
        max_inactive_connection_lifetime: float = 300.0,
        connect: ConnectCallback | None = None,
        setup: SetupCallback | None = None,
        init: ConnectionCallback | None = None,
        reset: ConnectionCallback | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        connection_class: type[Any] = Connection,
        record_class: type[Any] = pg_client.Record,
        init_size: int | None = None,
        max_lifetime: float | None = 3600.0,
        ping_after_idle: float | None = 30.0,
        ping_timeout: float = 5.0,
        max_waiting: int | None = None,
        reconnect_delay_min: float = 0.1,
        reconnect_delay_max: float = 0.5,
        **connect_kwargs: Any,
    ) -> None:
        _check_sizes(min_size, max_size)
        if init_size is None:
            init_size = min_size
        if init_size < 0:
            raise ValueError(
                'init_size is expected to be greater or equal to zero')
        if init_size > max_size:
            raise ValueError('init_size is greater than max_size')
        if init_size < min_size:
            raise ValueError('init_size is smaller than min_size')
        if max_queries <= 0:
            raise ValueError('max_queries is expected to be greater than zero')
        if max_inactive_connection_lifetime < 0:
            raise ValueError(
                'max_inactive_connection_lifetime is expected to be greater '
                'or equal to zero')
        if not issubclass(connection_class, Connection):
            raise TypeError(
                'connection_class is expected to be a subclass of '
                f'pg_client.Connection, got {connection_class!r}')
        if not issubclass(record_class, pg_client.Record):
            raise TypeError(
                'record_class is expected to be a subclass of '
                f'pg_client.Record, got {record_class!r}')
        if max_lifetime is not None and max_lifetime < 0:
            raise ValueError(
                'max_lifetime is expected to be greater or equal to zero, '
                'or None')
        if ping_after_idle is not None and ping_after_idle < 0:
            raise ValueError(
                'ping_after_idle is expected to be greater or equal to zero, '
                'or None')
        if ping_timeout <= 0:
            raise ValueError('ping_timeout is expected to be greater than zero')
        if max_waiting is not None and max_waiting < 0:
            raise ValueError(
                'max_waiting is expected to be greater or equal to zero, '
                'or None')
        if reconnect_delay_min <= 0:
            raise ValueError(
                'reconnect_delay_min is expected to be greater than zero')
        if reconnect_delay_max < reconnect_delay_min:
            raise ValueError(
                'reconnect_delay_max is smaller than reconnect_delay_min')

        self._loop: asyncio.AbstractEventLoop | None = loop
        self._init_size = init_size
        self._min_size = min_size
        self._max_size = max_size
        self._max_queries = max_queries
        self._max_inactive = float(max_inactive_connection_lifetime)
        self._max_lifetime = max_lifetime or None
        self._ping_after_idle = ping_after_idle or None
        self._ping_timeout = ping_timeout
        self._max_waiting = max_waiting
        self._reconnect_delay_min = reconnect_delay_min
        self._reconnect_delay_max = reconnect_delay_max

        self._connect: ConnectCallback = (
            connect if connect is not None else pg_client.connect)
        self._connect_args: tuple[Any, ...] = (dsn,)
        self._connect_kwargs: dict[str, Any] = connect_kwargs
        self._connection_class = connection_class
        self._record_class = record_class
        self._setup = setup
        self._init = init
        self._reset = reset

        self._initialized = False
        self._initializing = False
        self._closing = False
        self._closed = False
        self._generation = 0

        self._idle: list[_Holder] = []
        self._in_use: set[_Holder] = set()
        self._connecting = 0
        self._slots = 0
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._released = asyncio.Event()

        self._connect_tasks: set[asyncio.Task[None]] = set()
        self._release_tasks: set[asyncio.Task[None]] = set()
        self._close_tasks: set[asyncio.Task[None]] = set()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._reconnect_wakeup = asyncio.Event()
        self._reconnect_delay = reconnect_delay_min
        self._last_connect_error: BaseException | None = None

        self._stats = _Counters()
        self._rng = random.Random()

    # -- initialization ---------------------------------------------------

    def __await__(self) -> Generator[Any, None, Pool]:
        return self._async__init__().__await__()

    async def __aenter__(self) -> Pool:
        await self._async__init__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _async__init__(self) -> Pool:
        if self._initialized:
            return self
        if self._initializing:
            raise exceptions.InterfaceError(
                'pool is being initialized in another task')
        if self._closed:
            raise exceptions.InterfaceError('pool is closed')
        self._initializing = True
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        try:
            await self._initialize()
            return self
        except BaseException:
            # A failed start must not leave warm connections behind.
            self._closed = True
            for holder in list(self._idle):
                self._discard(holder, _OTHER, graceful=False)
            raise
        finally:
            self._initializing = False
            self._initialized = True
            self._maintain()

    async def _initialize(self) -> None:
        if not self._init_size:
            return
        # Open one connection alone, so a wrong DSN fails fast with a
        # single error, then the rest in parallel.
        await self._open_into_pool()
        if self._init_size > 1:
            results = await asyncio.gather(
                *[self._open_into_pool() for _ in range(self._init_size - 1)],
                return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    async def _open_into_pool(self) -> None:
        """Open one connection during initialization and make it idle."""
        self._slots += 1
        self._connecting += 1
        try:
            con, generation = await self._open_connection()
        except BaseException:
            self._connecting -= 1
            self._slots -= 1
            raise
        self._adopt(con, generation)

    # -- public API: state ------------------------------------------------

    def is_closing(self) -> bool:
        """Tell whether the pool is closing or closed.

        :return: True once :meth:`close` or :meth:`terminate` was called.
        """
        return self._closed or self._closing

    def get_size(self) -> int:
        """Return the number of open connections, idle or in use.

        Connections still being opened are not counted.
        """
        return len(self._idle) + len(self._in_use)

    def get_idle_size(self) -> int:
        """Return the number of idle connections."""
        return len(self._idle)

    def get_init_size(self) -> int:
        """Return how many connections the pool opened when it started."""
        return self._init_size

    def get_min_size(self) -> int:
        """Return the connection floor: the pool refills up to this size."""
        return self._min_size

    def get_max_size(self) -> int:
        """Return the largest number of connections the pool will open."""
        return self._max_size

    def get_stats(self) -> PoolStats:
        """Return a snapshot of the pool's gauges and counters.

        :return: A :class:`PoolStats`; counters are cumulative since the
            pool was created.
        """
        s = self._stats
        return PoolStats(
            size=self.get_size(),
            idle=len(self._idle),
            in_use=len(self._in_use),
            connecting=self._connecting,
            waiting=len(self._waiters),
            min_size=self._min_size,
            max_size=self._max_size,
            acquires=s.acquires,
            waits=s.waits,
            wait_time_total=s.wait_time_total,
            wait_time_max=s.wait_time_max,
            timeouts=s.timeouts,
            waiters_rejected=s.waiters_rejected,
            releases=s.releases,
            connections_created=s.connections_created,
            connect_errors=s.connect_errors,
            connections_closed=s.connections_closed,
            connections_lost=s.connections_lost,
            connections_expired=s.connections_expired,
            connections_idle_closed=s.connections_idle_closed,
            pings=s.pings,
            pings_failed=s.pings_failed,
            resets_failed=s.resets_failed,
        )

    def set_connect_args(self, dsn: str | None = None,
                         **connect_kwargs: Any) -> None:
        """Use new connection arguments for connections opened from now on.

        Open connections keep their old settings until they are replaced;
        call :meth:`expire_connections` to replace them sooner.

        :param dsn: Connection string, as for ``pg_client.connect()``.
        :param connect_kwargs: Keyword arguments for ``pg_client.connect()``
            (they replace the previous ones entirely).
        """
        self._connect_args = (dsn,)
        self._connect_kwargs = connect_kwargs

    async def expire_connections(self) -> None:
        """Replace every connection that is open now.

        Idle connections are closed at once (and the pool refills to
        ``min_size`` with fresh ones); connections in use are closed when
        they are released, as are connections still being opened.
        """
        self._generation += 1
        for holder in list(self._idle):
            self._discard(holder, _EXPIRED, graceful=True)
        self._maintain()

    def resize(self, min_size: int | None = None,
               max_size: int | None = None) -> None:
        """Change the pool's size limits while it runs.

        Growing opens connections right away (up to the new ``min_size``,
        and for tasks already waiting). Shrinking closes surplus idle
        connections at once and surplus in-use ones when they are
        released; idle connections above the new ``min_size`` are then
        subject to ``max_inactive_connection_lifetime`` as usual.

        :param min_size: New floor, or None to keep the current one.
        :param max_size: New ceiling, or None to keep the current one.
        :raises ValueError: For the same invalid sizes as the constructor.
        :raises pg_client.exceptions.InterfaceError: If the pool is closing.
        """
        new_min = self._min_size if min_size is None else min_size
        new_max = self._max_size if max_size is None else max_size
        _check_sizes(new_min, new_max)
        if self.is_closing():
            raise exceptions.InterfaceError('pool is closing')
        self._min_size = new_min
        self._max_size = new_max
        # Oldest first: idle[0] is the least recently used.
        while self._idle and self._slots > self._max_size:
            self._discard(self._idle[0], _OTHER, graceful=True)
        self._maintain()

    # -- public API: acquire and release ----------------------------------

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        """Borrow a connection from the pool.

        Use the result with ``async with`` (the connection is released at
        the end of the block) or ``await`` it (then call :meth:`release`)::

            async with pool.acquire() as con:
                await con.execute(...)

        If no connection is idle and the pool is at ``max_size``, the call
        queues, first come first served. While the server is unreachable,
        calls with a *timeout* keep waiting for the pool to reconnect;
        calls without one fail with the connection error once the pool has
        no connection left to wait for.

        :param timeout: Seconds to wait for a connection (including
            ``setup`` and a ping), or None to wait as long as it takes. It
            also becomes the default timeout of the matching
            :meth:`release`.
        :return: A context manager / awaitable giving a
            :class:`PoolConnectionProxy`.
        :raises asyncio.TimeoutError: If *timeout* passed first.
        :raises TooManyWaitersError: If ``max_waiting`` tasks already wait.
        :raises pg_client.exceptions.InterfaceError: If the pool is not
            initialized, closing or closed.
        """
        return PoolAcquireContext(self, timeout)

    async def _acquire(self, timeout: float | None) -> PoolConnectionProxy:
        if self._closing:
            raise exceptions.InterfaceError('pool is closing')
        self._check_init()
        loop = self._get_loop()
        start = loop.time()
        deadline = None if timeout is None else start + timeout
        waited = False
        try:
            while True:
                holder = self._pop_idle()
                if holder is None:
                    if (self._max_waiting is not None
                            and self._queued(1) > self._max_waiting):
                        self._stats.waiters_rejected += 1
                        raise TooManyWaitersError(
                            f'too many tasks waiting for a connection: '
                            f'{self._queued(0)} already queue for a '
                            f'connection in use (max_waiting='
                            f'{self._max_waiting})')
                    if not waited:
                        waited = True
                        self._stats.waits += 1
                    holder = await self._wait_for_holder(deadline)
                proxy = await self._checkout(holder, deadline, timeout)
                if proxy is not None:
                    self._stats.acquires += 1
                    return proxy
                if deadline is not None and loop.time() >= deadline:
                    raise asyncio.TimeoutError()
        except asyncio.TimeoutError:
            self._stats.timeouts += 1
            raise
        finally:
            if waited:
                elapsed = loop.time() - start
                self._stats.wait_time_total += elapsed
                if elapsed > self._stats.wait_time_max:
                    self._stats.wait_time_max = elapsed

    def _acquire_idle(self, timeout: float | None) -> PoolConnectionProxy | None:
        """_acquire() without awaiting, when an idle holder needs no ping
        and there is no ``setup`` hook (the common case); else None."""
        if (not self._idle or self._closing or not self._initialized
                or self._closed or self._setup is not None):
            return None
        holder = self._idle[-1]
        now = self._get_loop().time()
        if self._ping_due(holder, now):
            return None
        if self._unusable_reason(holder, now) is not None:
            return None  # _acquire() discards it and takes the next
        proxy = PoolConnectionProxy(holder, holder.con)
        self._pop_idle()
        holder.proxy = proxy
        holder.release_timeout = timeout
        self._stats.acquires += 1
        return proxy

    def _queued(self, extra: int) -> int:
        """Waiters (plus *extra* newcomers) that no connection being, or
        about to be, opened will serve: they queue for one in use."""
        absorbable = self._connecting + max(0, self._max_size - self._slots)
        return max(0, len(self._waiters) + extra - absorbable)

    def _pop_idle(self) -> _Holder | None:
        """Take the most recently used idle holder and mark it in use."""
        if not self._idle:
            return None
        holder = self._idle.pop()
        # Its idle timer stays armed (see _arm_timer): it does nothing to a
        # holder in use.
        holder.state = _State.IN_USE
        self._in_use.add(holder)
        return holder

    async def _wait_for_holder(self, deadline: float | None) -> _Holder:
        """Queue until a holder is handed over, the deadline or an error."""
        loop = self._get_loop()
        future: asyncio.Future[_Holder] = loop.create_future()
        waiter = _Waiter(future, deadline)
        self._waiters.append(waiter)
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline, self._waiter_timed_out, waiter)
        self._maintain()
        try:
            return await future
        except BaseException:
            if (future.done() and not future.cancelled()
                    and future.exception() is None):
                # A holder was handed to us just as we were cancelled:
                # it was never used, so it goes to the next in line.
                self._return_clean(future.result())
            else:
                self._remove_waiter(waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _remove_waiter(self, waiter: _Waiter) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass

    def _waiter_timed_out(self, waiter: _Waiter) -> None:
        if waiter.future.done():
            return
        self._remove_waiter(waiter)
        error = asyncio.TimeoutError()
        if self._reconnect_task is not None and self._last_connect_error:
            # Say why no connection came: the server is unreachable.
            error = asyncio.TimeoutError(
                'timed out waiting for a connection; the pool cannot '
                f'connect: {self._last_connect_error!r}')
            error.__cause__ = self._last_connect_error
        waiter.future.set_exception(error)

    async def _checkout(self, holder: _Holder, deadline: float | None,
                        timeout: float | None) -> PoolConnectionProxy | None:
        """Validate, ping and set up *holder*; None if it was unusable."""
        loop = self._get_loop()
        if self._closing or self._closed:
            self._discard(holder, _OTHER, graceful=not self._closed)
            raise exceptions.InterfaceError('pool is closing')
        now = loop.time()
        reason = self._unusable_reason(holder, now)
        if reason is not None:
            self._discard(holder, reason, graceful=reason != _LOST)
            return None

        ok = False
        try:
            if self._ping_due(holder, now):
                if not await self._ping(holder, deadline):
                    return None
                if holder.state is not _State.IN_USE:
                    return None

            proxy = PoolConnectionProxy(holder, holder.con)
            holder.proxy = proxy
            if self._setup is not None:
                if deadline is None:
                    await self._setup(proxy)
                else:
                    await asyncio.wait_for(
                        self._setup(proxy), max(deadline - loop.time(), 0))
                if holder.state is not _State.IN_USE:
                    # The connection died while setup ran.
                    return None
            holder.release_timeout = timeout
            ok = True
            return proxy
        finally:
            if not ok and holder.state is _State.IN_USE:
                # setup failed or was cancelled: we can't tell whether the
                # session is fit for reuse.
                self._discard(holder, _OTHER, graceful=True)

    def _ping_due(self, holder: _Holder, now: float) -> bool:
        """Whether *holder* sat idle long enough to be pinged before use."""
        return (self._ping_after_idle is not None
                and now - holder.last_used >= self._ping_after_idle)

    async def _ping(self, holder: _Holder, deadline: float | None) -> bool:
        """Check a long-idle connection with a round trip.

        :return: True if it answered; otherwise the holder is discarded.
        """
        loop = self._get_loop()
        limit = self._ping_timeout
        if deadline is not None:
            limit = min(limit, max(deadline - loop.time(), 0.0))
        self._stats.pings += 1
        con = holder.con
        task = loop.create_task(con.execute('SELECT 1'))
        try:
            done, _ = await asyncio.wait((task,), timeout=limit)
        except BaseException:
            # Cancelled mid-ping: the session state is unknown.
            self._abandon_ping(holder, task)
            raise
        if done and not task.cancelled() and task.exception() is None:
            return True
        self._stats.pings_failed += 1
        self._abandon_ping(holder, task)
        return False

    def _abandon_ping(self, holder: _Holder,
                      task: asyncio.Task[Any]) -> None:
        # Terminate first, so the query fails promptly instead of waiting
        # for a cancel round trip on a connection we are dropping anyway.
        self._discard(holder, _LOST, graceful=False)
        if not task.done():
            task.cancel()
        task.add_done_callback(_consume_result)

    async def release(self, connection: Any, *,
                      timeout: float | None = None) -> None:
        """Give a connection back to the pool.

        The proxy stops working at once. The connection's transaction is
        rolled back, its listeners removed (with an ``InterfaceWarning`` if
        any were left), and its session reset (``Connection.reset()``, or
        the pool's ``reset`` callback). Cancelling the calling task does
        not interrupt this. If the reset fails or times out, the connection
        is terminated instead of reused, and the error is raised here.
        Releasing an already released connection does nothing.

        :param connection: A proxy returned by :meth:`acquire` on this pool.
        :param timeout: Seconds allowed for the reset; defaults to the
            *timeout* given to the matching :meth:`acquire`.
        :raises pg_client.exceptions.InterfaceError: If *connection* did
            not come from this pool.
        """
        if (not isinstance(connection, PoolConnectionProxy)
                or connection._holder.pool is not self):
            raise exceptions.InterfaceError(
                f'Pool.release() received invalid connection: '
                f'{connection!r} is not a member of this pool')
        if connection._con is None:
            return
        self._check_init()

        holder = connection._holder
        if timeout is None:
            timeout = holder.release_timeout
        detach_error: Exception | None = None
        if holder.proxy is connection:
            holder.proxy = None
        try:
            connection._detach()
        except Exception as exc:
            # With warnings turned into errors, the listener warning is an
            # exception: give the connection back first, then raise it.
            detach_error = exc
        self._stats.releases += 1

        if self._reset is None:
            # The default reset needs no task: the connection finishes it
            # and _reset_ended() gives the holder back, whether or not the
            # caller is still waiting (cancelling it must not cut a reset
            # short).
            done = self._start_reset(holder, timeout)
            if done is not None:
                await done
        else:
            task = self._get_loop().create_task(
                self._release_holder(holder, timeout))
            self._release_tasks.add(task)
            task.add_done_callback(self._release_tasks.discard)
            task.add_done_callback(_consume_result)
            await asyncio.shield(task)
        if detach_error is not None:
            raise detach_error

    def _start_reset(self, holder: _Holder,
                     timeout: float | None) -> asyncio.Future[None] | None:
        """Send the default reset of a released holder; -> what to await.

        None when there is nothing to wait for (the holder was discarded).
        """
        if not self._releasable(holder):
            return None
        try:
            reset = holder.con.start_reset(timeout=timeout)
        except BaseException:
            self._reset_failed(holder)
            raise
        done: asyncio.Future[None] = self._get_loop().create_future()
        reset.add_done_callback(
            functools.partial(self._reset_ended, holder, done))
        return done

    def _reset_ended(self, holder: _Holder, done: asyncio.Future[None],
                     reset: asyncio.Future[Any]) -> None:
        cancelled = reset.cancelled()
        error = None if cancelled else reset.exception()
        if error is None and not cancelled:
            self._reset_done(holder)
        else:
            self._reset_failed(holder)
            if self._closed:
                # terminate() cut the reset short; nothing to report.
                error = None
                cancelled = False
        if done.done():
            return  # the releasing task was cancelled: nobody to tell
        if cancelled:
            done.cancel()
        elif error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def _releasable(self, holder: _Holder) -> bool:
        """Whether a released holder should be reset (else it is dealt with)."""
        if holder.state is not _State.IN_USE:
            return False  # it died, or the pool was terminated, meanwhile
        if holder.con.is_closed():
            self._discard(holder, _LOST, graceful=False)
            return False
        reason = self._recycle_reason(holder)
        if reason is not None:
            self._discard(holder, reason, graceful=True)
            return False
        return True

    def _reset_failed(self, holder: _Holder) -> None:
        if holder.state is _State.IN_USE:
            self._stats.resets_failed += 1
        self._discard(holder, _RESET_FAILED, graceful=False)

    def _reset_done(self, holder: _Holder) -> None:
        if holder.state is not _State.IN_USE:
            return
        holder.last_used = self._get_loop().time()
        self._return_clean(holder)

    async def _release_holder(self, holder: _Holder,
                              timeout: float | None) -> None:
        """Release with the pool's ``reset`` hook (in a task of its own)."""
        if not self._releasable(holder):
            return
        con = holder.con
        try:
            if timeout is None:
                await self._custom_reset(con)
            else:
                await asyncio.wait_for(self._custom_reset(con), timeout)
        except BaseException:
            self._reset_failed(holder)
            if self._closed:
                return  # terminate() cut the reset short; nothing to report
            raise
        self._reset_done(holder)

    async def _custom_reset(self, con: Any) -> None:
        await con.reset_transaction_and_listeners()
        assert self._reset is not None
        await self._reset(con)

    def _return_clean(self, holder: _Holder) -> None:
        """Hand an in-use holder whose session is clean to a waiter, or idle."""
        if holder.state is not _State.IN_USE:
            return
        reason = self._recycle_reason(holder)
        if reason is None and holder.con.is_closed():
            reason = _LOST
        if reason is not None:
            self._discard(holder, reason, graceful=reason != _LOST)
            return
        self._in_use.discard(holder)
        self._deliver(holder)
        self._note_released()

    # -- public API: shutdown ---------------------------------------------

    async def close(self) -> None:
        """Close the pool gracefully.

        Tasks waiting in :meth:`acquire` get ``InterfaceError``. The call
        then waits for every connection in use to be released (logging a
        warning if that takes over a minute), and closes all connections.
        If anything goes wrong, including cancellation (for instance by
        ``asyncio.wait_for(pool.close(), timeout)``), the pool is
        terminated instead and the error re-raised.
        """
        if self._closed:
            return
        self._check_init()
        self._closing = True
        loop = self._get_loop()
        warning = None
        try:
            self._fail_waiters(exceptions.InterfaceError('pool is closing'))
            await self._stop_connecting()
            warning = loop.call_later(
                self._close_warning_delay, self._warn_on_long_close)
            while self._in_use:
                self._released.clear()
                await self._released.wait()
            for holder in list(self._idle):
                self._discard(holder, _OTHER, graceful=True)
            if self._close_tasks:
                await asyncio.gather(*self._close_tasks,
                                     return_exceptions=True)
        except BaseException:
            self.terminate()
            raise
        finally:
            if warning is not None:
                warning.cancel()
            self._closed = True
            self._closing = False

    def _warn_on_long_close(self) -> None:
        logger.warning(
            'Pool.close() has been waiting for over %.0f seconds for '
            '%d connection(s) to be released. Check for connections '
            'that are never released, or bound close() with '
            'asyncio.wait_for().',
            self._close_warning_delay, len(self._in_use))

    def terminate(self) -> None:
        """Close the pool now: abort every connection, idle or in use.

        Proxies in use stop working; waiting acquirers get
        ``InterfaceError``.
        """
        if self._closed:
            return
        self._check_init()
        self._closed = True
        self._fail_waiters(exceptions.InterfaceError('pool is closed'))
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        for task in list(self._connect_tasks):
            task.cancel()
        for holder in list(self._idle) + list(self._in_use):
            self._discard(holder, _OTHER, graceful=False)
        for task in list(self._close_tasks):
            task.cancel()

    async def _stop_connecting(self) -> None:
        """Cancel connection attempts in flight and wait for them to end."""
        tasks: list[asyncio.Task[None]] = list(self._connect_tasks)
        if self._reconnect_task is not None:
            tasks.append(self._reconnect_task)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _check_init(self) -> None:
        if not self._initialized:
            if self._initializing:
                raise exceptions.InterfaceError(
                    'pool is being initialized, but not yet ready: '
                    'likely there is a race between creating a pool and '
                    'using it')
            raise exceptions.InterfaceError('pool is not initialized')
        if self._closed:
            raise exceptions.InterfaceError('pool is closed')

    # -- connections: opening, adopting, discarding ------------------------

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _ready(self) -> bool:
        return (self._initialized and not self._initializing
                and not self._closing and not self._closed)

    async def _open_connection(self) -> tuple[Any, int]:
        """Connect and run ``init``; return the connection and generation."""
        generation = self._generation
        try:
            con = await self._connect(
                *self._connect_args,
                loop=self._loop,
                connection_class=self._connection_class,
                record_class=self._record_class,
                **self._connect_kwargs,
            )
            if not isinstance(con, self._connection_class):
                good = self._connection_class
                bad = type(con)
                good_n = f'{good.__module__}.{good.__name__}'
                bad_n = (bad.__name__ if bad.__module__ == 'builtins'
                         else f'{bad.__module__}.{bad.__name__}')
                raise exceptions.InterfaceError(
                    'expected pool connect callback to return an instance '
                    f"of '{good_n}', got '{bad_n}'")
            if self._init is not None:
                try:
                    await self._init(con)
                except asyncio.CancelledError:
                    con.terminate()
                    raise
                except Exception:
                    # We can't know whether the session is usable.
                    await self._close_connection(con)
                    raise
            if con.is_closed():
                raise exceptions.ConnectionDoesNotExistError(
                    'connection was closed during pool initialization')
        except asyncio.CancelledError:
            raise
        except Exception:
            self._stats.connect_errors += 1
            raise
        self._stats.connections_created += 1
        return con, generation

    def _adopt(self, con: Any, generation: int) -> None:
        """Turn a finished connection attempt into a holder."""
        self._connecting -= 1
        loop = self._get_loop()
        now = loop.time()
        expires_at = None
        if self._max_lifetime is not None:
            jitter = 1.0 - _LIFETIME_JITTER * self._rng.random()
            expires_at = now + self._max_lifetime * jitter
        holder = _Holder(self, con, generation, now, expires_at)
        holder.state = _State.IN_USE  # momentarily, so _discard/_deliver apply
        self._in_use.add(holder)
        con.add_termination_listener(holder.termination_callback)
        if self._closing or self._closed:
            self._discard(holder, _OTHER, graceful=not self._closed)
            return
        self._return_clean(holder)
        # After a reconnect, this refills the pool in parallel.
        self._maintain()

    def _discard(self, holder: _Holder, reason: str, *,
                 graceful: bool) -> None:
        """Stop counting *holder* and close its connection.

        Idempotent. *graceful* closes in the background (Terminate message,
        with a timeout), otherwise the connection is aborted at once.
        """
        state = holder.state
        if state is _State.CLOSED:
            return
        if state is _State.IDLE:
            self._idle.remove(holder)
        else:
            self._in_use.discard(holder)
        holder.state = _State.CLOSED
        self._slots -= 1
        self._cancel_timer(holder)

        s = self._stats
        s.connections_closed += 1
        if reason == _LOST:
            s.connections_lost += 1
        elif reason == _EXPIRED:
            s.connections_expired += 1
        elif reason == _IDLE_TIMEOUT:
            s.connections_idle_closed += 1

        con = holder.con
        try:
            con.remove_termination_listener(holder.termination_callback)
        except Exception:  # pragma: no cover - defensive
            pass
        if graceful and not con.is_closed():
            task = self._get_loop().create_task(self._close_connection(con))
            self._close_tasks.add(task)
            task.add_done_callback(self._close_tasks.discard)
            task.add_done_callback(_consume_result)
        else:
            con.terminate()

        proxy = holder.proxy
        holder.proxy = None
        if proxy is not None and proxy._con is not None:
            proxy._con = None
            with warnings.catch_warnings():
                # The connection is going away: leftover listeners are moot.
                warnings.simplefilter('ignore')
                try:
                    con.detach_proxy()
                except Exception:  # pragma: no cover - defensive
                    logger.debug('detach_proxy() failed', exc_info=True)

        if state is _State.IN_USE:
            self._note_released()
        self._maintain()

    async def _close_connection(self, con: Any) -> None:
        try:
            await con.close(timeout=_CLOSE_TIMEOUT)
        except asyncio.CancelledError:
            con.terminate()
            raise
        except Exception:
            con.terminate()
            logger.debug('closing a pooled connection failed', exc_info=True)

    def _note_released(self) -> None:
        if not self._in_use:
            self._released.set()

    def _deliver(self, holder: _Holder) -> None:
        """Give a ready holder (counted in no container) to a waiter, or idle."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.future.done():
                continue
            holder.state = _State.IN_USE
            self._in_use.add(holder)
            waiter.future.set_result(holder)
            return
        holder.state = _State.IDLE
        self._idle.append(holder)
        self._arm_timer(holder)

    def _unusable_reason(self, holder: _Holder, now: float) -> str | None:
        if holder.con.is_closed():
            return _LOST
        if holder.generation != self._generation:
            return _EXPIRED
        if holder.expires_at is not None and now >= holder.expires_at:
            return _EXPIRED
        if not holder.con.matches_target_session_attrs():
            # The server turned read-only or became a standby under us
            # (asyncpg PR #253's case): open a connection to one that fits.
            return _EXPIRED
        return None

    def _recycle_reason(self, holder: _Holder) -> str | None:
        """Why a holder on its way back must be closed instead, if it must."""
        if self._closing or self._closed:
            return _OTHER
        if self._slots > self._max_size:
            return _OTHER  # shrinking after resize()
        reason = self._unusable_reason(holder, self._get_loop().time())
        if reason is not None:
            return reason
        if holder.con.get_query_count() >= self._max_queries:
            return _EXPIRED
        return None

    def _on_connection_terminated(self, holder: _Holder) -> None:
        """Termination listener: a pooled connection ended."""
        if holder.state is _State.IDLE:
            self._discard(holder, _LOST, graceful=False)
        elif holder.state is _State.IN_USE and holder.proxy is not None:
            # Lent out and closed by the server, the network or the user:
            # free the slot now (as asyncpg does); the proxy is released.
            self._discard(holder, _LOST, graceful=False)
        # Otherwise it is being checked out or reset, and that code will
        # notice the failure itself.

    def _on_cache_drop(self, source: _Holder, kind: str) -> None:
        """A connection dropped a cache after a schema change: drop it on
        every other connection of the pool too."""
        for holder in list(self._idle) + list(self._in_use):
            if holder is not source:
                holder.con.drop_local_cache(kind)

    # -- timers -------------------------------------------------------------

    def _cancel_timer(self, holder: _Holder) -> None:
        if holder.timer is not None:
            holder.timer.cancel()
            holder.timer = None

    def _arm_timer(self, holder: _Holder, idle_from: float | None = None) -> None:
        # A timer still armed from an earlier idle spell is due no later
        # than this one would be (the same expiry, an earlier last use):
        # when it fires, _on_idle_timer looks at the holder as it is then
        # and arms the next. So a checkout and return cost no timer made
        # and cancelled (a call_at() and a cancel() per acquire on
        # uvloop's loop).
        if holder.timer is not None:
            return
        when = None
        if self._max_inactive:
            base = holder.last_used if idle_from is None else idle_from
            when = base + self._max_inactive
        if holder.expires_at is not None:
            when = (holder.expires_at if when is None
                    else min(when, holder.expires_at))
        if when is not None:
            holder.timer = self._get_loop().call_at(
                when, self._on_idle_timer, holder)

    def _on_idle_timer(self, holder: _Holder) -> None:
        holder.timer = None
        if holder.state is not _State.IDLE:
            return
        now = self._get_loop().time() + _TIMER_SLACK
        if holder.expires_at is not None and now >= holder.expires_at:
            self._discard(holder, _EXPIRED, graceful=True)
            return
        if self._max_inactive and now >= holder.last_used + self._max_inactive:
            if self.get_size() > self._min_size:
                self._discard(holder, _IDLE_TIMEOUT, graceful=True)
                return
            # A floor connection stays; look again one period from now, in
            # case min_size is lowered meanwhile.
            self._arm_timer(holder, idle_from=now)
            return
        self._arm_timer(holder)

    # -- growing and reconnecting -------------------------------------------

    def _connections_wanted(self) -> int:
        """How many more connections to open right now."""
        demand = max(self._min_size, len(self._in_use) + len(self._waiters))
        return max(0, min(demand, self._max_size) - self._slots)

    def _maintain(self) -> None:
        """Open connections if the pool is below its floor or has waiters."""
        if not self._ready():
            return
        wanted = self._connections_wanted()
        if not wanted:
            return
        if self._reconnect_task is not None:
            # Backing off: the reconnect loop makes the next attempt.
            self._reconnect_wakeup.set()
            return
        loop = self._get_loop()
        for _ in range(wanted):
            self._slots += 1
            self._connecting += 1
            task = loop.create_task(self._connect_task())
            self._connect_tasks.add(task)
            task.add_done_callback(self._connect_tasks.discard)
            task.add_done_callback(_consume_result)

    async def _connect_task(self) -> None:
        try:
            con, generation = await self._open_connection()
        except BaseException as exc:
            self._connecting -= 1
            self._slots -= 1
            if isinstance(exc, Exception):
                self._connect_failed(exc)
            raise
        self._adopt(con, generation)

    def _connect_failed(self, exc: Exception) -> None:
        self._last_connect_error = exc
        if self._closing or self._closed:
            return
        if self._reconnect_task is None:
            logger.warning(
                'pg_pool: cannot open a connection (%r); retrying with '
                'backoff', exc)
            self._reconnect_task = self._get_loop().create_task(
                self._reconnect_loop())
            self._reconnect_task.add_done_callback(_consume_result)
        else:
            logger.debug('pg_pool: connection attempt failed: %r', exc)
        if self._slots == 0:
            # Nothing open and nothing being opened: acquirers without a
            # timeout would wait for the server indefinitely, so they get
            # the error (as asyncpg's acquire() would raise it).
            self._fail_waiters(exc, only_without_deadline=True)

    async def _reconnect_loop(self) -> None:
        """Single-flight reconnection with jittered exponential backoff."""
        attempts = 0
        try:
            while True:
                delay = self._reconnect_delay
                # "Equal jitter": between half and all of the current step.
                await asyncio.sleep(delay * (0.5 + 0.5 * self._rng.random()))
                self._reconnect_delay = min(delay * 2,
                                            self._reconnect_delay_max)
                while not self._connections_wanted():
                    self._reconnect_wakeup.clear()
                    await self._reconnect_wakeup.wait()
                attempts += 1
                self._slots += 1
                self._connecting += 1
                try:
                    con, generation = await self._open_connection()
                except asyncio.CancelledError:
                    self._connecting -= 1
                    self._slots -= 1
                    raise
                except Exception as exc:
                    self._connecting -= 1
                    self._slots -= 1
                    self._connect_failed(exc)
                    continue
                logger.info('pg_pool: reconnected after %d attempt(s)',
                            attempts)
                self._reconnect_task = None
                self._reconnect_delay = self._reconnect_delay_min
                self._last_connect_error = None
                # Adopting calls _maintain(), which now refills in parallel.
                self._adopt(con, generation)
                return
        finally:
            if self._reconnect_task is asyncio.current_task():
                self._reconnect_task = None

    def _fail_waiters(self, exc: BaseException, *,
                      only_without_deadline: bool = False) -> None:
        keep: collections.deque[_Waiter] = collections.deque()
        while self._waiters:
            waiter = self._waiters.popleft()
            if waiter.future.done():
                continue
            if only_without_deadline and waiter.deadline is not None:
                keep.append(waiter)
                continue
            waiter.future.set_exception(exc)
        self._waiters = keep

    # -- testing aid --------------------------------------------------------

    def _check_invariants(self) -> None:
        """Assert the bookkeeping is consistent (used by the tests)."""
        idle, in_use = self._idle, self._in_use
        assert self._connecting >= 0, f'connecting={self._connecting}'
        assert self._slots == len(idle) + len(in_use) + self._connecting, (
            f'slots={self._slots} idle={len(idle)} in_use={len(in_use)} '
            f'connecting={self._connecting}')
        assert len(set(idle)) == len(idle), 'holder idle twice'
        assert not set(idle) & in_use, 'holder both idle and in use'
        assert all(h.state is _State.IDLE for h in idle), 'idle state'
        assert all(h.state is _State.IN_USE for h in in_use), 'in-use state'
        # A cancelled waiter leaves the queue when its task resumes.
        assert all(not w.future.done() or w.future.cancelled()
                   for w in self._waiters), 'stale waiter'
        if self._ready():
            assert not (idle and self._waiters), 'idle connection while waiting'
            assert not idle or self._slots <= self._max_size, 'over max_size'
        for h in idle:
            assert h.proxy is None, 'idle holder with a proxy'

    def _background_tasks(self) -> list[asyncio.Task[None]]:
        """Every task the pool started that may still run (for tests)."""
        tasks = [*self._connect_tasks, *self._release_tasks,
                 *self._close_tasks]
        if self._reconnect_task is not None:
            tasks.append(self._reconnect_task)
        return tasks

    def __repr__(self) -> str:
        state = ('closed' if self._closed else 'closing' if self._closing
                 else 'open' if self._initialized else 'new')
        return (f'<{type(self).__module__}.{type(self).__name__} {state} '
                f'size={self.get_size()} idle={len(self._idle)} '
                f'min={self._min_size} max={self._max_size}>')

    # -- shortcuts ----------------------------------------------------------

    async def execute(self, query: str, *args: Any,
                      timeout: float | None = None) -> str:
        """Run an SQL command (or several) on a pooled connection.

        Same as ``Connection.execute()``, with a connection acquired for the
        call and released afterwards.

        :return: The status of the last command, e.g. ``'INSERT 0 1'``.
        """
        async with self.acquire() as con:
            result: str = await con.execute(query, *args, timeout=timeout)
            return result

    async def executemany(self, command: str, args: Iterable[Sequence[Any]], *,
                          timeout: float | None = None) -> None:
        """Run *command* once per argument sequence in *args*, atomically.

        Same as ``Connection.executemany()`` on a pooled connection.
        """
        async with self.acquire() as con:
            await con.executemany(command, args, timeout=timeout)

    async def fetch(self, query: str, *args: Any,
                    timeout: float | None = None,
                    record_class: type[Any] | None = None) -> list[Any]:
        """Run a query and return all its rows.

        Same as ``Connection.fetch()`` on a pooled connection.

        :return: A list of records (of *record_class* if given).
        """
        async with self.acquire() as con:
            rows: list[Any] = await con.fetch(
                query, *args, timeout=timeout, record_class=record_class)
            return rows

    async def fetchval(self, query: str, *args: Any, column: int = 0,
                       timeout: float | None = None) -> Any:
        """Run a query and return one value of its first row.

        Same as ``Connection.fetchval()`` on a pooled connection.

        :param column: Index of the column to return.
        :return: The value, or None if there were no rows.
        """
        async with self.acquire() as con:
            return await con.fetchval(
                query, *args, column=column, timeout=timeout)

    async def fetchrow(self, query: str, *args: Any,
                       timeout: float | None = None,
                       record_class: type[Any] | None = None) -> Any:
        """Run a query and return its first row.

        Same as ``Connection.fetchrow()`` on a pooled connection.

        :return: A record, or None if there were no rows.
        """
        async with self.acquire() as con:
            return await con.fetchrow(
                query, *args, timeout=timeout, record_class=record_class)

    async def fetchmany(self, query: str, args: Iterable[Sequence[Any]], *,
                        timeout: float | None = None,
                        record_class: type[Any] | None = None) -> list[Any]:
        """Run *query* once per argument sequence and return all rows.

        Same as ``Connection.fetchmany()`` on a pooled connection.
        """
        async with self.acquire() as con:
            rows: list[Any] = await con.fetchmany(
                query, args, timeout=timeout, record_class=record_class)
            return rows

    async def copy_from_table(
        self, table_name: str, *, output: Any,
        columns: Iterable[str] | None = None,
        schema_name: str | None = None, timeout: float | None = None,
        format: str | None = None, oids: bool | None = None,
        delimiter: str | None = None, null: str | None = None,
        header: bool | None = None, quote: str | None = None,
        escape: str | None = None, force_quote: Any = None,
        encoding: str | None = None,
    ) -> str:
        """Copy a table's contents to *output* (``COPY ... TO STDOUT``).

        Same as ``Connection.copy_from_table()`` on a pooled connection.

        :return: The COPY status, e.g. ``'COPY 100'``.
        """
        async with self.acquire() as con:
            result: str = await con.copy_from_table(
                table_name, output=output, columns=columns,
                schema_name=schema_name, timeout=timeout, format=format,
                oids=oids, delimiter=delimiter, null=null, header=header,
                quote=quote, escape=escape, force_quote=force_quote,
                encoding=encoding)
            return result

    async def copy_from_query(
        self, query: str, *args: Any, output: Any,
        timeout: float | None = None, format: str | None = None,
        oids: bool | None = None, delimiter: str | None = None,
        null: str | None = None, header: bool | None = None,
        quote: str | None = None, escape: str | None = None,
        force_quote: Any = None, encoding: str | None = None,
    ) -> str:
        """Copy a query's result to *output* (``COPY (query) TO STDOUT``).

        Same as ``Connection.copy_from_query()`` on a pooled connection.

        :return: The COPY status.
        """
        async with self.acquire() as con:
            result: str = await con.copy_from_query(
                query, *args, output=output, timeout=timeout, format=format,
                oids=oids, delimiter=delimiter, null=null, header=header,
                quote=quote, escape=escape, force_quote=force_quote,
                encoding=encoding)
            return result

    async def copy_to_table(
        self, table_name: str, *, source: Any,
        columns: Iterable[str] | None = None,
        schema_name: str | None = None, timeout: float | None = None,
        format: str | None = None, oids: bool | None = None,
        freeze: bool | None = None, delimiter: str | None = None,
        null: str | None = None, header: bool | None = None,
        quote: str | None = None, escape: str | None = None,
        force_quote: Any = None, force_not_null: Any = None,
        force_null: Any = None, encoding: str | None = None,
        where: str | None = None,
    ) -> str:
        """Copy data from *source* into a table (``COPY ... FROM STDIN``).

        Same as ``Connection.copy_to_table()`` on a pooled connection.

        :return: The COPY status.
        """
        async with self.acquire() as con:
            result: str = await con.copy_to_table(
                table_name, source=source, columns=columns,
                schema_name=schema_name, timeout=timeout, format=format,
                oids=oids, freeze=freeze, delimiter=delimiter, null=null,
                header=header, quote=quote, escape=escape,
                force_quote=force_quote, force_not_null=force_not_null,
                force_null=force_null, encoding=encoding, where=where)
            return result

    async def copy_records_to_table(
        self, table_name: str, *, records: Any,
        columns: Iterable[str] | None = None,
        schema_name: str | None = None, timeout: float | None = None,
        where: str | None = None,
    ) -> str:
        """Copy a list (or async iterable) of tuples into a table, in binary.

        Same as ``Connection.copy_records_to_table()`` on a pooled
        connection.

        :return: The COPY status.
        """
        async with self.acquire() as con:
            result: str = await con.copy_records_to_table(
                table_name, records=records, columns=columns,
                schema_name=schema_name, timeout=timeout, where=where)
            return result


class PoolAcquireContext:
    """What :meth:`Pool.acquire` returns: ``await`` it or ``async with`` it.

    ``async with`` releases the connection when the block ends; a context
    can be entered once. If the block raises (or is cancelled) and the
    release fails too, the block's exception propagates and the release
    error is logged; either way the connection is not reused.
    """

    __slots__ = ('connection', 'done', 'pool', 'timeout')

    def __init__(self, pool: Pool, timeout: float | None) -> None:
        self.pool = pool
        self.timeout = timeout
        self.connection: PoolConnectionProxy | None = None
        self.done = False

    async def __aenter__(self) -> PoolConnectionProxy:
        if self.connection is not None or self.done:
            raise exceptions.InterfaceError('a connection is already acquired')
        con = self.pool._acquire_idle(self.timeout)
        if con is None:
            con = await self.pool._acquire(self.timeout)
        self.connection = con
        return con

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> None:
        self.done = True
        con = self.connection
        self.connection = None
        try:
            await self.pool.release(con)
        except Exception as exc:
            if exc_val is None:
                raise
            # The block is already leaving with an exception (a
            # cancellation, typically): let that one through rather than
            # replace it. The connection was terminated, not reused.
            logger.warning(
                'pg_pool: releasing a connection after %r failed: %r',
                exc_val, exc)

    def __await__(self) -> Generator[Any, None, PoolConnectionProxy]:
        self.done = True
        con = self.pool._acquire_idle(self.timeout)
        if con is not None:
            return _at_once(con)
        return self.pool._acquire(self.timeout).__await__()


def _at_once(value: PoolConnectionProxy) -> Generator[Any, None, PoolConnectionProxy]:
    """An awaitable's iterator that gives *value* without suspending."""
    return value
    yield  # a generator function, whose first next() returns *value*


def create_pool(
    dsn: str | None = None,
    *,
    min_size: int = 10,
    max_size: int = 10,
    max_queries: int = 50000,
    max_inactive_connection_lifetime: float = 300.0,
    connect: ConnectCallback | None = None,
    setup: SetupCallback | None = None,
    init: ConnectionCallback | None = None,
    reset: ConnectionCallback | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    connection_class: type[Any] = Connection,
    record_class: type[Any] = pg_client.Record,
    init_size: int | None = None,
    max_lifetime: float | None = 3600.0,
    ping_after_idle: float | None = 30.0,
    ping_timeout: float = 5.0,
    max_waiting: int | None = None,
    reconnect_delay_min: float = 0.1,
    reconnect_delay_max: float = 0.5,
    **connect_kwargs: Any,
) -> Pool:
    r"""Create a connection pool (not a coroutine: ``await`` the result).

    ::

        async with pg_pool.create_pool(dsn, min_size=2, max_size=20) as pool:
            await pool.fetch('SELECT 1')
            async with pool.acquire() as con:
                await con.execute('...')

    The parameters up to ``record_class`` are asyncpg's, with the same
    defaults and meaning (``init_size`` is asyncpg 0.32's).

    :param dsn: Connection string for ``pg_client.connect()``.
    :param min_size: Connections kept open even when idle; the pool
        refills to this floor in the background. ``0`` lets it drain.
    :param max_size: Most connections open at once.
    :param max_queries: Queries after which a connection is replaced (on
        release).
    :param max_inactive_connection_lifetime: Seconds after which an idle
        connection above *min_size* is closed; ``0`` disables.
    :param connect: Coroutine function called instead of
        ``pg_client.connect()``, with the same arguments; must return an
        instance of *connection_class*.
    :param setup: ``async setup(proxy)``, run before every
        :meth:`Pool.acquire` returns. If it raises, the connection is
        closed and the error propagates.
    :param init: ``async init(connection)``, run once on each new
        connection (e.g. to register type codecs). If it raises, the
        connection is closed and the attempt counts as failed.
    :param reset: ``async reset(connection)``, run on release instead of
        ``Connection.reset()``, after the open transaction was rolled back
        and the listeners removed. ``Connection.get_reset_query()`` gives
        the default reset SQL.
    :param loop: Ignored except as the loop passed to *connect*; the pool
        uses the running loop.
    :param connection_class: Class of the connections; a subclass of
        ``pg_client.Connection``.
    :param record_class: Class of the rows the connections return; a
        subclass of ``pg_client.Record``.
    :param init_size: Connections opened when the pool starts (between
        *min_size* and *max_size*; defaults to *min_size*).
    :param max_lifetime: Seconds after which a connection is replaced (when
        idle, or on release), or None/``0`` for no limit. Each connection
        gets a lifetime between 90 % and 100 % of this, at random, so
        connections opened together don't expire together.
    :param ping_after_idle: Before lending a connection that has been idle
        at least this many seconds, check it with a ``SELECT 1``; if that
        fails or takes longer than *ping_timeout*, drop it and lend another
        one. None or ``0`` disables.
    :param ping_timeout: Seconds a ping may take.
    :param max_waiting: Most tasks allowed to queue in
        :meth:`Pool.acquire` for a connection in use (tasks that a
        connection being opened will serve don't count); more raise
        :class:`TooManyWaitersError` at once. None means no limit; ``0``
        means never queue behind busy connections.
    :param reconnect_delay_min: After a failed connection attempt, seconds
        before the next one. The delay doubles after every failure up to
        *reconnect_delay_max*, and each wait is randomly between half and
        all of it. Only one attempt is made at a time while reconnecting.
    :param reconnect_delay_max: Cap of the reconnect delay, so recovery
        comes at most this long after the server is back.
    :param connect_kwargs: Keyword arguments for ``pg_client.connect()``.
    :return: A :class:`Pool`, not yet started.
    """
    return Pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=max_queries,
        max_inactive_connection_lifetime=max_inactive_connection_lifetime,
        connect=connect,
        setup=setup,
        init=init,
        reset=reset,
        loop=loop,
        connection_class=connection_class,
        record_class=record_class,
        init_size=init_size,
        max_lifetime=max_lifetime,
        ping_after_idle=ping_after_idle,
        ping_timeout=ping_timeout,
        max_waiting=max_waiting,
        reconnect_delay_min=reconnect_delay_min,
        reconnect_delay_max=reconnect_delay_max,
        **connect_kwargs,
    )
