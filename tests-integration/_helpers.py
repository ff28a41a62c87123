"""Shared fixtures and helpers for the connection-level integration tests.

Test modules import this file by path (``tests-integration`` is not a
package and ``--import-mode=importlib`` does not put it on ``sys.path``)::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _helpers import con, acon, ...  # noqa: E402

Importing a fixture function into a test module registers it there.

``pg`` is the client under test: ``pg_client`` normally. Setting
``PG_CLIENT_TEST_IMPL=asyncpg`` runs the same tests through asyncpg itself,
which is how the expectations in these tests were checked against the
reference implementation. ``ref`` is always asyncpg (for differential checks).
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg as ref
import pytest

IMPL = os.environ.get("PG_CLIENT_TEST_IMPL", "pg_client")
pg: Any = importlib.import_module(IMPL)
pg_connection: Any = importlib.import_module(f"{IMPL}.connection")
pg_transaction: Any = importlib.import_module(f"{IMPL}.transaction")
pg_types: Any = importlib.import_module(f"{IMPL}.types")
exc: Any = pg.exceptions
# asyncpg keeps the interface-level DataError (a ValueError) in exceptions._base;
# the top-level name is the SQLSTATE 22000 class.
exc_base: Any = importlib.import_module(f"{IMPL}.exceptions._base")

_counter = itertools.count()


def unique(prefix: str = "t") -> str:
    """A fresh lower-case identifier, safe to use unquoted in SQL."""
    return f"{prefix}_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"


async def connect(cluster: Any, **kwargs: Any) -> Any:
    """A connection of the client under test to the session's server."""
    return await pg.connect(cluster.dsn(), **kwargs)


async def ref_connect(cluster: Any, **kwargs: Any) -> Any:
    """An asyncpg connection to the session's server (the reference)."""
    return await ref.connect(cluster.dsn(), **kwargs)


async def close_quietly(c: Any) -> None:
    if c is None or c.is_closed():
        return
    try:
        await asyncio.wait_for(c.close(), 5)
    except Exception:
        c.terminate()


@pytest.fixture
async def con(cluster: Any) -> AsyncIterator[Any]:
    """A connection of the client under test, closed afterwards."""
    c = await pg.connect(cluster.dsn())
    try:
        yield c
    finally:
        await close_quietly(c)


@pytest.fixture
async def con2(cluster: Any) -> AsyncIterator[Any]:
    """A second connection of the client under test (notifier, killer, ...)."""
    c = await pg.connect(cluster.dsn())
    try:
        yield c
    finally:
        await close_quietly(c)


@pytest.fixture
async def acon(cluster: Any) -> AsyncIterator[Any]:
    """An asyncpg connection: the reference for differential checks."""
    c = await ref.connect(cluster.dsn())
    try:
        yield c
    finally:
        await close_quietly(c)


async def wait_for_condition(predicate: Any, timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll an (async or sync) predicate until it is true or *timeout* passes."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        if loop.time() >= end:
            return False
        await asyncio.sleep(step)


async def backend_gone(observer: Any, pid: int, timeout: float = 5.0) -> bool:
    """True once *pid* no longer runs a query (idle or gone) per pg_stat_activity."""

    async def check() -> bool:
        state = await observer.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
        return state != "active"

    return await wait_for_condition(check, timeout)
