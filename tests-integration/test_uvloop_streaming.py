"""Long results on uvloop: the wait for the next chunk (``StreamProtocol``).

On loops other than asyncio's, a connection in the middle of a long
row-returning reply polls its socket for a moment after each full chunk
instead of letting the loop sleep (docs/internals/protocol.rst, "Reading").
These tests run that path against the real server, on a uvloop loop of
their own (in a thread, so that it does not matter which loop the rest of
the suite runs on), and check that results stay right and that nothing is
left counted after a cancel, a timeout or a lost connection.

The whole integration suite also runs on uvloop in CI (``PGTEST_LOOP=uvloop``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

import pg_client
from pg_client import _core

BIG = "SELECT i, repeat(chr(97 + i % 26), 1000)::bytea FROM generate_series(1, $1) AS i"
# The same rows, trickling: the server is still sending them a while later.
SLOW = ("SELECT i, repeat(chr(97 + i % 26), 1000)::bytea, pg_sleep(0.0001) "
        "FROM generate_series(1, $1) AS i")


def _on_uvloop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run *main* on a new uvloop loop in a thread; re-raise what it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            uvloop.run(main())
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "the uvloop thread did not finish"
    if errors:
        raise errors[0]


def _check(rows: list[Any], count: int) -> None:
    assert len(rows) == count
    for n, (i, value) in enumerate(rows, 1):
        assert i == n
        assert value == bytes([97 + i % 26]) * 1000


def test_long_results_are_whole_and_the_connection_waits(dsn: str) -> None:
    async def main() -> None:
        con = await pg_client.connect(dsn)
        try:
            assert not isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop)
            for count in (1, 100, 5000):
                _check(await con.fetch(BIG, count), count)
            proto = con._protocol
            # 5 MB came in many full chunks: the wait ran (seeing data or not).
            assert proto.spin_hits + proto.spin_misses > 0
            assert _core._busy_count() == 0
            # A cursor and a prepared statement over the same rows.
            async with con.transaction():
                got = [tuple(r) async for r in con.cursor(BIG, 3000, prefetch=1000)]
            _check(got, 3000)
            stmt = await con.prepare(BIG)
            _check(await stmt.fetch(2000), 2000)
        finally:
            await con.close()
        assert _core._busy_count() == 0

    _on_uvloop(main)


def test_two_connections_streaming_at_once(dsn: str) -> None:
    async def main() -> None:
        cons = [await pg_client.connect(dsn) for _ in range(3)]
        try:
            for _ in range(3):
                results = await asyncio.gather(*(c.fetch(BIG, 3000) for c in cons))
                for rows in results:
                    _check(rows, 3000)
        finally:
            for c in cons:
                await c.close()
        assert _core._busy_count() == 0

    _on_uvloop(main)


def test_a_long_result_cut_short(dsn: str) -> None:
    async def main() -> None:
        con = await pg_client.connect(dsn)
        ctl = await pg_client.connect(dsn)
        try:
            # A timeout in the middle of the rows: the query is cancelled, the
            # connection stays usable and nothing stays counted once the rest
            # of that reply is read.
            try:
                await con.fetch(SLOW, 200_000, timeout=0.3)
            except asyncio.TimeoutError:
                pass
            else:
                raise AssertionError("the fetch should have timed out")
            _check(await con.fetch(BIG, 500), 500)
            assert _core._busy_count() == 0

            # The server goes away in the middle of the rows.
            pid = con.get_server_pid()
            task = asyncio.ensure_future(con.fetch(SLOW, 200_000))
            await asyncio.sleep(0.2)
            assert await ctl.fetchval("SELECT pg_terminate_backend($1)", pid)
            try:
                await task
            except pg_client.ConnectionDoesNotExistError:
                pass
            else:
                raise AssertionError("the fetch should have failed")
            assert con.is_closed()
            assert _core._busy_count() == 0
        finally:
            await con.close()
            await ctl.close()

    _on_uvloop(main)
