"""Fixtures for tests that need a real PostgreSQL server.

The server comes from ``tools/pgcluster.py`` following the env rules of
STYLE.md section 3 (``PGTEST_DSN``, ``PGTEST_PG``). One server per test run,
started on first use and stopped at the end of the session. No server means
the run fails with instructions, never that tests are skipped.

* ``cluster``: the session's :class:`pgcluster.Cluster` (or
  :class:`pgcluster.ExternalServer` under ``PGTEST_DSN``; check
  ``cluster.managed`` before relying on the test roles, certificates or
  restarts, and skip with a reason when it is False).
* ``dsn``: the superuser's ``postgresql://`` URI.
* ``ctl``: an asyncpg connection as the superuser, to look at and act on
  the server (pg_stat_activity, pg_terminate_backend) beside the client
  under test.
* ``figure``: ``figure(name, value)`` records a measured figure for the
  report (the test's user properties and a ``FIGURE`` line).
* ``@pytest.mark.pg(">= 15")``: run the test only on matching server majors.

``PGTEST_LOOP=uvloop`` runs every test on uvloop's event loop instead of
asyncio's default one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_TOOLS = str(Path(__file__).resolve().parent.parent / "tools")
if _TOOLS not in sys.path:
    sys.path.insert(0, _TOOLS)

import pgcluster  # noqa: E402

if os.environ.get("PGTEST_LOOP", "asyncio") == "uvloop":
    # PGTEST_LOOP=uvloop: every test on uvloop's loop (.ci/run runs the
    # integration tests once that way).
    def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
        import uvloop

        return {"uvloop": uvloop.new_event_loop}


def pytest_configure(config: pytest.Config) -> None:
    # Registered here because the root pytest config (--strict-markers) is not ours.
    config.addinivalue_line(
        "markers",
        'pg(spec): run only when the server major version matches spec, e.g. pg(">= 15") '
        'or pg(">=14, <17"); skipped with a reason otherwise',
    )


def pytest_report_header(config: pytest.Config) -> str:
    return pgcluster.describe_choice()


def pytest_runtest_setup(item: pytest.Item) -> None:
    specs = [spec for mark in item.iter_markers("pg") for spec in mark.args]
    if not specs:
        return
    server = pgcluster.get_cluster()
    if server.version is None:
        pytest.skip("server version unknown; pg() marker can't be checked")
    for spec in specs:
        if not pgcluster.version_matches(server.version, spec):
            pytest.skip(f"needs PostgreSQL {spec}, server is {server.version_string}")


def pytest_unconfigure(config: pytest.Config) -> None:
    pgcluster.stop_cluster()  # in case a pg() marker started it without the fixture


@pytest.fixture(scope="session")
def cluster() -> Iterator[pgcluster.Cluster | pgcluster.ExternalServer]:
    """The session's PostgreSQL server, started on first use."""
    yield pgcluster.get_cluster()
    pgcluster.stop_cluster()


@pytest.fixture(scope="session")
def dsn(cluster: pgcluster.Cluster | pgcluster.ExternalServer) -> str:
    """The superuser's DSN: ``postgresql://postgres@127.0.0.1:<port>/postgres`` for ours."""
    return cluster.dsn()


@pytest.fixture
async def ctl(cluster: pgcluster.Cluster | pgcluster.ExternalServer) -> AsyncIterator[Any]:
    """An asyncpg connection as the superuser, closed quietly afterwards."""
    import asyncpg

    con = await asyncpg.connect(cluster.dsn())
    try:
        yield con
    finally:
        # The test may have restarted or crashed the server.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(con.close(), 5)
        if not con.is_closed():
            con.terminate()


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """``figure(name, value)``: a measured figure for the report."""

    def record(name: str, value: object) -> None:
        request.node.user_properties.append((name, value))
        print(f"FIGURE {request.node.name}: {name} = {value}")

    return record
