"""The CPU floor of one round trip, against pg_client and asyncpg.

Measures, on the default asyncio loop against a throwaway server, the client
CPU per ``SELECT 1+1`` of:

* a raw client: the request pg_client would send, pre-built, written to the
  socket, and a protocol that only looks for ReadyForQuery in what arrives
  (no parsing, no decoding): what the event loop and the kernel cost alone;
* pg_client's ``fetchval``;
* asyncpg's ``fetchval``.

Usage: ``hatch run python tools/bench_floor.py``. Best of several rounds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pgcluster

ROUNDS = 5
QUERIES = 10_000


async def _best(run: Any) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        await run()
        best = min(best, (time.process_time() - started) / QUERIES * 1e6)
    return best


async def main(dsn: str) -> None:
    import asyncpg

    import pg_client

    loop = asyncio.get_running_loop()

    apg = await asyncpg.connect(dsn, ssl=False)
    pgc = await pg_client.connect(dsn, ssl=False)

    async def fetch_loop(con: Any) -> None:
        for _ in range(QUERIES):
            await con.fetchval("SELECT 1+1")

    results = {"asyncpg": await _best(lambda: fetch_loop(apg)),
               "pg_client": await _best(lambda: fetch_loop(pgc))}

    # The bytes pg_client sends for a cached SELECT 1+1 (Bind, Execute,
    # Sync), replayed on a connection of our own that parses nothing.
    from pg_client import _wire
    from pg_codecs import WriteBuffer

    stmt = next(s for s in pgc._stmt_cache.values() if s.query == "SELECT 1+1")
    out = WriteBuffer()
    _wire.write_bind(out, "", stmt.name, stmt.encoder, (), stmt.result_formats)
    _wire.write_execute(out, "", 1)
    _wire.write_sync(out)
    request = out.take()
    transport = pgc._transport
    waiter: asyncio.Future[None] | None = None

    def data_received(data: bytes) -> None:
        if b"Z\x00\x00\x00\x05" in data and waiter is not None and not waiter.done():
            waiter.set_result(None)

    pgc._protocol.data_received = data_received

    async def raw_loop() -> None:
        nonlocal waiter
        for _ in range(QUERIES):
            waiter = loop.create_future()
            transport.write(request)
            await waiter

    results["raw floor"] = await _best(raw_loop)
    pgc.terminate()
    await apg.close()
    for name, value in results.items():
        print(f"{name:10s} {value:6.2f} us CPU per SELECT 1+1")


if __name__ == "__main__":
    asyncio.run(main(pgcluster.get_cluster().dsn()))
