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

Three calls are counted: ``fetchval("SELECT 1+1")`` (the raw client too),
the same with ``timeout=30`` (a deadline per query), and
``execute("SELECT 1+1")`` (the simple protocol).

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

async def client(mod, n, call):
    con = await mod.connect(os.environ["BENCH_DSN"], ssl=False)
    if call == "timeout":
        for _ in range(n):
            await con.fetchval("SELECT 1+1", timeout=30)
    elif call == "execute":
        for _ in range(n):
            await con.execute("SELECT 1+1")
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
    uvloop.run(client(__import__(which), n, call))
"""

CALLS = {
    "fetchval": 'fetchval("SELECT 1+1")',
    "timeout": 'fetchval("SELECT 1+1", timeout=30)',
    "execute": 'execute("SELECT 1+1")',
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
    path = [str(REPO / "packages" / p / "src") for p in ("pg-codecs", "pg-wire", "pg-client")]
    env = dict(os.environ, BENCH_DSN=cluster.dsn(), PYTHONPATH=os.pathsep.join([*path, str(TOOLS)]))
    for call, text in CALLS.items():
        print(f"{text}:")
        for which in ("raw", "pg_client", "asyncpg"):
            if which == "raw" and call != "fetchval":
                continue
            base = count(str(python), which, 0, call, env)
            total = count(str(python), which, QUERIES, call, env)
            per_query = (total - base) / QUERIES / 1000
            print(f"  {which:10s} {per_query:6.1f}k user instructions per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
