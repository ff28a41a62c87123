"""User-space instructions per ``SELECT 1+1``: pg_client, asyncpg, a raw floor.

CPU time per query on a 2-core VM moves by 10-20% between runs, and more
than half of it is the kernel's TCP work, the same for every client. The
number of user-space instructions (``perf stat -e instructions:u``) is
stable to about 1%, and shows only what the client itself executes.

For each client, one child process connects on uvloop and runs N queries;
the count of a run with N = 0 (interpreter start, imports, connecting) is
subtracted, and the rest divided by N. "raw" is the client of
``tools/bench_raw.py``: it writes pg_client's request pre-built (Bind,
Execute, Sync of a prepared statement) and only looks for ReadyForQuery in
what comes back: the event loop and the socket alone.

Besides ``fetchval("SELECT 1+1")`` (the raw client too), the calls of a
typical application are counted the same way, pg_client against asyncpg:
with a timeout, ``execute()`` without arguments, a prepared statement, a
pool's acquire + query + release, a transaction, a cursor, ``executemany()``
and ``copy_records_to_table()`` of 10 rows. ``--calls a,b`` picks some.

Usage: ``python tools/rebuild.py && python tools/bench_instructions.py``
(needs ``perf`` and the bench venv that ``tools/bench.py`` makes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))

import pgcluster  # noqa: E402

QUERIES = 20_000

CHILD = r"""
import asyncio, os, sys
import uvloop

async def client(which, n, call):
    mod = __import__(which)
    dsn = os.environ["BENCH_DSN"]
    if call == "pool":
        if which == "pg_client":
            import pg_pool
            pool = await pg_pool.create_pool(dsn, min_size=1, max_size=1, ssl=False)
        else:
            pool = await mod.create_pool(dsn, min_size=1, max_size=1, ssl=False)
        for _ in range(n):
            async with pool.acquire() as con:
                await con.fetchval("SELECT 1")
        await pool.close()
        return
    con = await mod.connect(dsn, ssl=False)
    await con.execute("CREATE TEMP TABLE t (a int, b text)")
    rows = [(i, "x") for i in range(10)]
    if call == "timeout":
        for _ in range(n):
            await con.fetchval("SELECT 1+1", timeout=30)
    elif call == "execute":
        for _ in range(n):
            await con.execute("SELECT 1+1")
    elif call == "prepared":
        stmt = await con.prepare("SELECT $1::int + 1")
        for _ in range(n):
            await stmt.fetchval(5)
    elif call == "transaction":
        for _ in range(n):
            async with con.transaction():
                await con.execute("SELECT 1")
    elif call == "cursor":
        for _ in range(n):
            async with con.transaction():
                async for _row in con.cursor("SELECT generate_series(1, 10)"):
                    pass
    elif call == "executemany":
        for _ in range(n):
            await con.executemany("INSERT INTO t VALUES ($1, $2)", rows)
    elif call == "copy":
        for _ in range(n):
            await con.copy_records_to_table("t", records=rows)
    else:
        for _ in range(n):
            await con.fetchval("SELECT 1+1")

which, n, call = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if which == "raw":
    import bench_raw
    # con.run() is the task's own coroutine: awaited from another coroutine it would
    # cost ~0.5k instructions per query more (one more frame to resume).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        con = runner.run(bench_raw.connect(os.environ["BENCH_DSN"]))
        runner.run(con.run(n))
        con.close()
else:
    uvloop.run(client(which, n, call))
"""

# name: (what is counted, calls per run)
CALLS = {
    "fetchval": ('fetchval("SELECT 1+1")', QUERIES),
    "timeout": ('fetchval("SELECT 1+1", timeout=30)', QUERIES),
    "execute": ('execute("SELECT 1+1")', QUERIES),
    "prepared": ("PreparedStatement.fetchval(5)", QUERIES),
    "pool": ('pool acquire, fetchval("SELECT 1"), release', 5_000),
    "transaction": ('transaction() around execute("SELECT 1")', 5_000),
    "cursor": ("a cursor over 10 rows, in a transaction", 5_000),
    "executemany": ("executemany() of 10 rows", 5_000),
    "copy": ("copy_records_to_table() of 10 rows", 5_000),
}


def count(python: str, which: str, n: int, call: str, env: dict[str, str]) -> int:
    out = subprocess.run(
        ["perf", "stat", "-x,", "-e", "instructions:u", python, "-c", CHILD, which, str(n),
         call],
        env=env, capture_output=True, text=True, check=True,
    ).stderr
    for line in out.splitlines():
        if "instructions" in line:
            return int(line.split(",")[0])
    raise SystemExit(f"bench_instructions: no count from perf:\n{out}")


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default=",".join(CALLS),
                        help=f"comma-separated, of: {', '.join(CALLS)}")
    opts = parser.parse_args()
    calls = [c for c in opts.calls.split(",") if c]
    unknown = [c for c in calls if c not in CALLS]
    if unknown:
        parser.error(f"unknown calls: {', '.join(unknown)}")
    if shutil.which("perf") is None:
        print("bench_instructions: needs `perf` (Debian: linux-perf)", file=sys.stderr)
        return 1
    python = REPO / ".cache" / "bench-venv" / "bin" / "python"
    if not python.exists():
        print("bench_instructions: run tools/bench.py once to make the bench venv",
              file=sys.stderr)
        return 1
    cluster = pgcluster.get_cluster()
    # The packages' sources, and tools/ for bench_raw.
    path = [str(REPO / "packages" / p / "src")
            for p in ("pg-codecs", "pg-wire", "pg-client", "pg-pool")]
    env = dict(os.environ, BENCH_DSN=cluster.dsn(), PYTHONPATH=os.pathsep.join([*path, str(TOOLS)]))
    print("user-space instructions per call, uvloop (perf stat -e instructions:u)")
    for call in calls:
        text, n = CALLS[call]
        counts = {}
        for which in ("raw", "pg_client", "asyncpg"):
            if which == "raw" and call != "fetchval":
                continue
            base = count(str(python), which, 0, call, env)
            counts[which] = (count(str(python), which, n, call, env) - base) / n / 1000
        ours, theirs = counts["pg_client"], counts["asyncpg"]
        line = f"  {text:45s} pg_client {ours:6.1f}k  asyncpg {theirs:6.1f}k"
        line += f"  ({ours / theirs:.2f}x)"
        if "raw" in counts:
            line += f"  raw {counts['raw']:.1f}k"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
