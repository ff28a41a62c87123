"""A deterministic cancel sweep (RELIABILITY.md H4, rust-postgres ``Cancellable``).

The question a sweep answers: if the task running an operation is cancelled
at *any* moment, is the connection (or pool) afterwards either usable or
visibly closed? It runs the operation once per cancel point n = 0, 1, 2, ...
and cancels it at that point, until the operation completes before point n
is reached.

How the points are counted
--------------------------

``mode="data"`` (default): a point is one ``data_received`` call of a
pg_client connection (``buffer_updated`` on the standard library's loops),
i.e. one batch of server bytes handed to the driver, the moments at which
the driver's state changes. The sweep wraps
``pg_client._transport.ClientProtocol.data_received`` and
``BufferedClientProtocol.buffer_updated`` (the class attributes, so
connections made during the operation are counted too, e.g. by
``connect()`` or a pool) and calls ``task.cancel()`` *inside* the n-th call,
right after the driver has processed those bytes. A task whose reply those
bytes completed has resumed by then when the driver's waiter wakes it at
once (pg_client's Waiter on the standard loops) and is cancelled at its
next suspension; with a future it has not resumed yet: a reply has arrived,
nobody has consumed it.
Point 0 is "after the task first suspended, before any reply". The count is
driven by the bytes themselves, not by the timing of ``sleep(0)`` loops,
so a sweep is reproducible for a given chunking of the server's replies
(loopback delivers a reply in the same chunks nearly always; when it does
not, a point moves, none is skipped: the sweep goes on until the operation
completes twice in a row).

``mode="steps"``: a point is one event-loop iteration (``await
asyncio.sleep(0)`` by the sweeper). Covers suspension points that are not
data arrivals (drain, locks, pool queues), at the cost of determinism.

Use::

    result = await sweep(
        "fetch",
        setup=lambda: pg_client.connect(dsn),
        operation=lambda con: con.fetch("SELECT ..."),
        check=check_connection,         # -> "usable" | "closed" | "violation: ..."
        teardown=lambda con: con.close(),
    )
    assert not result.violations, result.violations
    print(result)   # fetch: 7 cancel points, completed at point 7, usable=6 closed=1

``pg_client.connect`` itself can be swept with ``setup`` returning None and
``operation`` connecting (the sweep closes a connection the operation
returns when it completes, see ``on_result``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pg_client
from pg_client import _transport

__all__ = ["DataEventCounter", "SweepResult", "check_connection", "sweep"]

CLOSED_ERRORS = (pg_client.InterfaceError, pg_client.PostgresConnectionError, OSError)


class DataEventCounter:
    """Counts ``data_received`` calls of every pg_client ClientProtocol.

    ``with DataEventCounter() as c:`` patches the class; ``c.count`` is the
    number of calls so far; ``c.at(n, fn)`` calls *fn* right after the call
    that brings the count to *n* (once).
    """

    def __init__(self) -> None:
        self.count = 0
        self._hooks: dict[int, list[Callable[[], None]]] = collections.defaultdict(list)
        self._original: Any = None

    def at(self, n: int, fn: Callable[[], None]) -> None:
        if n <= self.count:
            fn()
        else:
            self._hooks[n].append(fn)

    def clear_hooks(self) -> None:
        self._hooks.clear()

    def __enter__(self) -> DataEventCounter:
        # Connections on the standard library's loops read through
        # BufferedClientProtocol.buffer_updated(), the others through
        # ClientProtocol.data_received(): both are counted.
        plain, buffered = _transport.ClientProtocol, _transport.BufferedClientProtocol
        self._original = (plain.data_received, buffered.buffer_updated)
        original_data, original_buffer = self._original
        counter = self

        def arrived() -> None:
            counter.count += 1
            for fn in counter._hooks.pop(counter.count, ()):
                fn()

        def data_received(proto: Any, data: bytes) -> None:
            original_data(proto, data)
            arrived()

        def buffer_updated(proto: Any, nbytes: int) -> None:
            original_buffer(proto, nbytes)
            arrived()

        plain.data_received = data_received  # type: ignore[method-assign]
        buffered.buffer_updated = buffer_updated  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        plain, buffered = _transport.ClientProtocol, _transport.BufferedClientProtocol
        plain.data_received, buffered.buffer_updated = self._original  # type: ignore[method-assign]


@dataclass
class SweepResult:
    name: str
    mode: str
    points: int = 0  # cancel points at which the task was really cancelled
    completed_at: int | None = None  # first point the operation finished before
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    violations: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        outs = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return (f"{self.name} [{self.mode}]: {self.points} cancel points, completed at "
                f"point {self.completed_at}, {outs}, {len(self.violations)} violations")


async def check_connection(con: Any) -> str:
    """``"usable"`` (right answers, no transaction open), ``"closed"``, or a violation."""
    if con is None:
        return "usable"
    if con.is_closed():
        try:
            await asyncio.wait_for(con.fetchval("SELECT 1"), 10)
        except CLOSED_ERRORS:
            return "closed"
        return "violation: is_closed() but a query still worked"
    try:
        value = await asyncio.wait_for(con.fetchval("SELECT $1::int", 4242), 15)
        status = await asyncio.wait_for(con.execute("SELECT 1"), 15)
    except CLOSED_ERRORS as e:
        if con.is_closed() and not isinstance(e, pg_client.ProtocolError):
            return "closed"
        return f"violation: next query raised {e!r}"
    except Exception as e:
        return f"violation: next query raised {e!r}"
    if value != 4242 or status != "SELECT 1":
        return f"violation: wrong results {value!r}, {status!r}"
    if con.is_in_transaction():
        return "violation: a transaction was left open"
    return "usable"


async def _close_result(value: Any) -> None:
    if isinstance(value, pg_client.Connection):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(value.close(), 5)
        if not value.is_closed():
            value.terminate()


async def sweep(
    name: str,
    *,
    setup: Callable[[], Awaitable[Any]],
    operation: Callable[[Any], Awaitable[Any]],
    check: Callable[[Any], Awaitable[str]] = check_connection,
    teardown: Callable[[Any], Awaitable[Any]] | None = None,
    on_result: Callable[[Any], Awaitable[Any]] = _close_result,
    mode: str = "data",
    max_points: int = 400,
    completions: int = 2,
    op_timeout: float = 20.0,
) -> SweepResult:
    """Cancel *operation* at each point in turn; see the module docstring.

    :param setup: Makes the state the operation works on (a connection, a
        pool; or None); called once per point.
    :param operation: ``operation(state)``: the coroutine to cancel.
    :param check: ``check(state)`` after each point: ``"usable"``,
        ``"closed"`` or a text starting with ``"violation"``.
    :param teardown: ``teardown(state)`` after the check.
    :param on_result: Called with the operation's result when it completes
        (closes a Connection by default, for connect sweeps).
    :param completions: Stop after this many consecutive points at which the
        operation completed before being cancelled.
    """
    if mode not in ("data", "steps"):
        raise ValueError("mode must be 'data' or 'steps'")
    result = SweepResult(name, mode)
    in_a_row = 0
    with DataEventCounter() as counter:
        for n in range(max_points):
            state = await setup()
            task: asyncio.Future[Any] | None = None
            try:
                base = counter.count
                task = asyncio.ensure_future(operation(state))
                cancel_now = task.cancel
                if mode == "data":
                    await asyncio.sleep(0)  # let it send its request: point 0
                    if n == 0:
                        cancel_now()
                    else:
                        counter.at(base + n, cancel_now)
                else:
                    for _ in range(n):
                        if task.done():
                            break
                        await asyncio.sleep(0)
                    if not task.done():
                        cancel_now()
                done, _ = await asyncio.wait({task}, timeout=op_timeout)
                counter.clear_hooks()
                if not done:
                    result.violations.append(f"{name} point {n}: still running after "
                                             f"{op_timeout} s (a hang)")
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    break
                errored: BaseException | None = None
                if task.cancelled():
                    in_a_row = 0
                    result.points += 1
                else:
                    exc = task.exception()
                    if exc is not None:
                        in_a_row = 0
                        result.points += 1
                        errored = exc
                        result.outcomes["error:" + type(exc).__name__] += 1
                    else:
                        in_a_row += 1
                        if in_a_row == 1:
                            result.completed_at = n
                        result.outcomes["completed"] += 1
                        await on_result(task.result())
                outcome = await check(state)
                if outcome.startswith("violation"):
                    result.violations.append(f"{name} point {n}: {outcome}")
                elif errored is not None and (
                        outcome != "closed" or not isinstance(errored, CLOSED_ERRORS)
                        or isinstance(errored, pg_client.ProtocolError)):
                    # A cancelled call may end in a connection error only when
                    # the connection really is closed; anything else must be
                    # CancelledError.
                    result.violations.append(
                        f"{name} point {n}: raised {errored!r} instead of CancelledError "
                        f"(connection {outcome})")
                else:
                    result.outcomes[outcome] += 1
            finally:
                if task is not None and not task.done():
                    task.cancel()
                if task is not None:
                    await asyncio.gather(task, return_exceptions=True)
                if teardown is not None:
                    await teardown(state)
            if in_a_row >= completions:
                break
        else:
            result.violations.append(f"{name}: did not complete within {max_points} points")
    return result


@contextlib.contextmanager
def counting() -> Iterator[DataEventCounter]:
    """``with counting() as c:`` count data events without cancelling anything."""
    with DataEventCounter() as c:
        yield c
