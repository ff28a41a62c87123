"""The CPU floor of one round trip, against pg_client and asyncpg.

Measures, on the default asyncio loop against a throwaway server, the client
CPU per ``SELECT 1+1`` of:

* the raw client of ``tools/bench_raw.py``: the request pg_client would send,
  pre-built, written to the socket, and a protocol that only looks for
  ReadyForQuery in what arrives (no parsing, no decoding): what the event
  loop and the kernel cost alone for a client that awaits plain futures
  (pg_client's waiter skips one pass of the loop per query, so it can come
  close to this figure);
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

import bench_raw
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

    apg = await asyncpg.connect(dsn, ssl=False)
    pgc = await pg_client.connect(dsn, ssl=False)

    async def fetch_loop(con: Any) -> None:
        for _ in range(QUERIES):
            await con.fetchval("SELECT 1+1")

    results = {"asyncpg": await _best(lambda: fetch_loop(apg)),
               "pg_client": await _best(lambda: fetch_loop(pgc))}

    raw = await bench_raw.connect(dsn)
    results["raw floor"] = await _best(lambda: raw.run(QUERIES))
    raw.close()
    pgc.terminate()
    await apg.close()
    for name, value in results.items():
        print(f"{name:10s} {value:6.2f} us CPU per SELECT 1+1")


if __name__ == "__main__":
    asyncio.run(main(pgcluster.get_cluster().dsn()))
