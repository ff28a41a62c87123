"""Leak probes for reliability tests (RELIABILITY.md H6).

What a test can leave behind, and how each is counted:

* open file descriptors: the entries of ``/proc/self/fd`` (sockets of
  connections nobody closed, cancel side-connections, proxy sockets);
* asyncio tasks: ``asyncio.all_tasks()`` (drain tasks, pool tasks, callbacks
  still running);
* server backends: rows of ``pg_stat_activity`` whose ``application_name``
  is the test's own tag (sessions left open, queries still running on the
  server after the client gave up: "orphaned queries");
* memory: ``tracemalloc`` peak (Python allocations) and the RSS from
  ``/proc/self/statm`` (everything, C buffers included);
* ``ResourceWarning``: turned into a recorded failure.

Use :class:`LeakProbe` around the code under test::

    async with LeakProbe(control=ctl, app=app) as probe:
        ... run the workload, close what it opened ...
    # __aexit__ waits up to *settle* seconds for counts to come back to the
    # baseline, then raises LeakError listing what is left.
    print(probe.report)     # {'fds': 0, 'tasks': 0, 'backends': 0, ...}

or the fixture-friendly ``leak_check`` fixture (import it into a test
module)::

    from probes import leak_check  # noqa: F401

    async def test_x(leak_check):
        async with leak_check(app=app):
            ...

*control* is a connection used to look at ``pg_stat_activity``: pass an
asyncpg connection (an independent client, so a pg_client bug cannot hide
itself) opened *before* the probe starts, so its own socket is part of the
baseline. Without *control* and *app*, backends are not checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import tracemalloc
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = [
    "LeakError",
    "LeakProbe",
    "MemoryPeak",
    "RssSampler",
    "backends",
    "fd_count",
    "leak_check",
    "open_fds",
    "resource_warnings_as_errors",
    "rss_bytes",
    "tasks_other_than",
]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class LeakError(AssertionError):
    """Something the code under test opened is still there."""


def open_fds() -> dict[int, str]:
    """``{fd: target}`` for every open descriptor of this process."""
    result: dict[int, str] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # not Linux: nothing to count
        return result
    for name in names:
        try:
            result[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the fd of the listdir itself, gone already
    return result


def fd_count() -> int:
    """Number of open file descriptors (procfs ``self/fd``)."""
    return len(open_fds())


def rss_bytes() -> int:
    """Resident set size of this process, in bytes (``/proc/self/statm``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def tasks_other_than(baseline: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks of the running loop that are not done and not in *baseline*."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t not in baseline and t is not current
            and not t.done()]


async def backends(control: Any, app: str, *, active_only: bool = False) -> list[Any]:
    """``pg_stat_activity`` rows (pid, state, query) tagged with *app*."""
    sql = ("SELECT pid, state, query FROM pg_stat_activity "
           "WHERE application_name = $1 AND pid <> pg_backend_pid()")
    if active_only:
        sql += " AND state <> 'idle'"
    return list(await control.fetch(sql, app))


class MemoryPeak:
    """``with MemoryPeak() as m: ...`` then ``m.peak`` (bytes above the start).

    Starts tracemalloc if it is not running (and stops it afterwards).
    """

    def __init__(self) -> None:
        self.peak = 0
        self._started = False
        self._base = 0

    def __enter__(self) -> MemoryPeak:
        if not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started = True
        gc.collect()
        tracemalloc.reset_peak()
        self._base = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = max(0, tracemalloc.get_traced_memory()[1] - self._base)
        if self._started:
            tracemalloc.stop()


class RssSampler:
    """Sample the RSS every *interval* seconds in a task: ``async with RssSampler() as s``.

    ``s.growth`` is the largest RSS seen minus the RSS at the start.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start = 0
        self.max = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def growth(self) -> int:
        return max(0, self.max - self.start)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def sample(self) -> None:
        self.max = max(self.max, rss_bytes())

    async def __aenter__(self) -> RssSampler:
        gc.collect()
        self.start = self.max = rss_bytes()
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.sample()


@contextlib.contextmanager
def resource_warnings_as_errors() -> Iterator[list[warnings.WarningMessage]]:
    """Record every ResourceWarning raised inside (also from ``__del__``).

    Yields the list; :class:`LeakProbe` fails when it is not empty. Warnings
    from ``__del__`` cannot be raised as exceptions (Python swallows them),
    so they are recorded instead.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        found: list[warnings.WarningMessage] = []
        try:
            yield found
        finally:
            gc.collect()
            found.extend(w for w in caught if issubclass(w.category, ResourceWarning))


@dataclass
class LeakProbe:
    """Baseline on enter; on exit, wait for everything to come back to it.

    :param control: Connection for ``pg_stat_activity`` (see module docs).
    :param app: The ``application_name`` the code under test uses.
    :param settle: Seconds to wait for counts to return to the baseline
        (closing sockets and finishing tasks takes a few loop turns).
    :param fd_slack: Extra descriptors tolerated (0: none).
    :param check_resource_warnings: Fail on any ResourceWarning inside.
    :param raise_on_leak: Raise LeakError on exit (else only fill ``report``).
    """

    control: Any = None
    app: str | None = None
    settle: float = 5.0
    fd_slack: int = 0
    check_resource_warnings: bool = True
    raise_on_leak: bool = True
    report: dict[str, Any] = field(default_factory=dict)
    _fds: dict[int, str] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _warnings: Any = None
    _warned: list[warnings.WarningMessage] = field(default_factory=list)

    async def __aenter__(self) -> LeakProbe:
        gc.collect()
        self._fds = open_fds()
        self._tasks = set(asyncio.all_tasks())
        if self.check_resource_warnings:
            self._warnings = resource_warnings_as_errors()
            self._warned = self._warnings.__enter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        problems = await self.measure()
        if self._warnings is not None:
            self._warnings.__exit__(None, None, None)
            self._warnings = None
            self.report["resource_warnings"] = len(self._warned)
            if self._warned:
                problems.append("ResourceWarning: " + "; ".join(
                    str(w.message) for w in self._warned[:5]))
        self.report["leaks"] = len(problems)
        if problems and self.raise_on_leak and exc_type is None:
            raise LeakError("leaks after the test:\n  " + "\n  ".join(problems))

    async def measure(self) -> list[str]:
        """Wait up to ``settle`` s for the baseline; return what is still leaked."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle
        while True:
            gc.collect()
            new_fds = {fd: t for fd, t in open_fds().items()
                       if fd not in self._fds or self._fds[fd] != t}
            extra_fds = len(open_fds()) - len(self._fds)
            tasks = tasks_other_than(self._tasks)
            rows: list[Any] = []
            if self.control is not None and self.app is not None:
                rows = await backends(self.control, self.app)
            fds_ok = extra_fds <= self.fd_slack
            if (fds_ok and not tasks and not rows) or loop.time() >= deadline:
                break
            await asyncio.sleep(0.02)
        self.report.update(fds=max(0, extra_fds), tasks=len(tasks), backends=len(rows))
        problems = []
        if not fds_ok:
            problems.append(f"{extra_fds} file descriptors: "
                            + ", ".join(f"{fd}->{t}" for fd, t in list(new_fds.items())[:8]))
        if tasks:
            problems.append(f"{len(tasks)} asyncio tasks: "
                            + "; ".join(repr(t)[:200] for t in tasks[:5]))
        if rows:
            problems.append(f"{len(rows)} server backends tagged {self.app!r}: "
                            + "; ".join(f"pid {r['pid']} {r['state']} {r['query']!r:.80}"
                                        for r in rows[:5]))
        return problems


@pytest.fixture
def leak_check() -> Callable[..., LeakProbe]:
    """``async with leak_check(control=ctl, app=app): ...`` (LeakProbe's arguments)."""

    def make(**kwargs: Any) -> LeakProbe:
        return LeakProbe(**kwargs)

    return make


@contextlib.asynccontextmanager
async def no_leaks(**kwargs: Any) -> AsyncIterator[LeakProbe]:
    """Same as ``async with LeakProbe(**kwargs)``, as a function."""
    async with LeakProbe(**kwargs) as probe:
        yield probe
