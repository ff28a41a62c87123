"""One client on one workload, one event loop, N connections: the benchmark's worker.

Started by ``tools/bench.py`` as ``<bench-venv>/bin/python worker.py '<json>'``,
one fresh process per client and row of the matrix, so that one client's
imports, event loop, caches and garbage never touch another's, and so that
the process's CPU time is that client's alone.

It talks to the orchestrator in lines. On stdout, it writes ``BENCH-READY``
(set up and warmed up), one ``BENCH-SEGMENT {...}`` per measured segment, and
then ``BENCH-DONE``. A failure at any point (import, connect, a query, a wrong
result) becomes ``BENCH-RESULT {"status": "error", ...}`` rather than a crash;
what a client has no API for becomes ``{"status": "n/a"}``. On stdin it
reads ``run <seconds> <rewarm>`` and ``quit``.

How a throughput run goes: open N connections; check one operation's result
(the row count, and every value of mixed_row), so that a client returning the
wrong thing can't look fast; warm up for ``warmup`` seconds (psycopg prepares
a statement on its 5th use, the others on the first); say READY. Then, for
each ``run``: ``rewarm`` seconds unmeasured, then N tasks, one per
connection, each running the operation back to back until ``seconds`` pass.
Every operation's latency is taken with perf_counter_ns. Client CPU is
``time.process_time()`` over the measured part; it counts all threads of the
process, so psqlpy's tokio threads too.

A watchdog (faulthandler's timer) ends a worker that stops making progress,
with a traceback on stderr; some client bugs block the event loop for good.

The other modes are ``fetch_memory`` (peak RSS of fetching N rows into a list)
and ``cursor_memory`` (peak RSS of iterating a cursor over N rows in a
transaction). Each prints a single ``BENCH-RESULT``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import faulthandler
import gc
import json
import os
import resource
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import workloads as wl

Op = Callable[[], Awaitable[int]]


class Unsupported(Exception):
    """The client has no API for this workload: reported as n/a, not as an error."""


class WrongResult(Exception):
    """The operation ran but returned something else than the server sent."""


# --------------------------------------------------------------------------
# Client adapters. Each: connect(cfg) -> conn, close(conn), op(conn, workload) -> Op.


class AsyncpgLike:
    """asyncpg, and pg_client, which has asyncpg's API."""

    def __init__(self, module_name: str) -> None:
        self.module_name = module_name
        self.m = __import__(module_name)

    def version(self) -> str:
        return str(getattr(self.m, "__version__", "?"))

    async def connect(self, cfg: dict[str, Any]) -> Any:
        return await self.m.connect(cfg["dsn"], ssl=False)

    async def close(self, conn: Any) -> None:
        await conn.close()

    def op(self, conn: Any, w: wl.Workload) -> Op:
        if w.kind == "fetch":
            sql, args = w.sql, w.args

            async def fetch() -> int:
                return len(await conn.fetch(sql, *args))

            return fetch
        if w.kind == "batch":
            rows = [wl.INSERT_ROW] * w.count

            async def batch() -> int:
                await conn.executemany(w.sql, rows)
                return len(rows)

            return batch
        if w.kind == "copy_in":
            rows = [wl.INSERT_ROW] * w.count
            columns = list(wl.INSERT_COLUMNS)

            async def copy_in() -> int:
                status = await conn.copy_records_to_table(w.table, records=rows, columns=columns)
                return _copy_count(status)

            return copy_in
        if w.kind == "copy_out":

            async def sink(data: bytes) -> None:
                pass

            async def copy_out() -> int:
                status = await conn.copy_from_table(w.table, output=sink, format="binary")
                return _copy_count(status)

            return copy_out
        raise Unsupported(w.kind)

    async def mixed_row(self, conn: Any) -> tuple[Any, ...]:
        return tuple(await conn.fetchrow(wl.MIXED_ROW_SQL))

    async def series(self, conn: Any, n: int) -> int:
        return len(await conn.fetch(wl.SERIES_ROWS_SQL, n))

    async def cursor(self, conn: Any, n: int) -> int:
        count = 0
        async with conn.transaction():
            async for _ in conn.cursor(wl.SERIES_ROWS_SQL, n):
                count += 1
        return count


def _copy_count(status: Any) -> int:
    """``"COPY 10000"`` -> 10000."""
    return int(str(status).rpartition(" ")[2])


class Psycopg:
    """psycopg 3, async, binary results, its C speedups (psycopg[binary])."""

    def __init__(self) -> None:
        import psycopg

        self.m = psycopg
        if psycopg.pq.__impl__ not in ("binary", "c"):
            raise RuntimeError(f"psycopg runs its {psycopg.pq.__impl__!r} implementation")

    def version(self) -> str:
        return f"{self.m.__version__} ({self.m.pq.__impl__}, libpq {self.m.pq.version()})"

    async def connect(self, cfg: dict[str, Any]) -> Any:
        conninfo = (
            f"host={cfg['host']} port={cfg['port']} user={cfg['user']} "
            f"dbname={cfg['database']} sslmode=disable"
        )
        # autocommit: asyncpg's behaviour; otherwise every query sits in a
        # transaction opened by an extra BEGIN.
        return await self.m.AsyncConnection.connect(conninfo, autocommit=True)

    async def close(self, conn: Any) -> None:
        await conn.close()

    def op(self, conn: Any, w: wl.Workload) -> Op:
        cur = conn.cursor(binary=True)
        if w.kind == "fetch":
            sql, args = wl.pyformat(w.sql), (w.args or None)

            async def fetch() -> int:
                await cur.execute(sql, args)
                return len(await cur.fetchall())

            return fetch
        if w.kind == "batch":
            rows = [wl.INSERT_ROW] * w.count
            sql = wl.pyformat(w.sql)

            async def batch() -> int:
                await cur.executemany(sql, rows)
                return len(rows)

            return batch
        if w.kind == "copy_in":
            rows = [wl.INSERT_ROW] * w.count
            stmt = f"COPY {w.table} ({', '.join(wl.INSERT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"

            async def copy_in() -> int:
                async with cur.copy(stmt) as copy:
                    copy.set_types(list(wl.INSERT_TYPES))
                    for row in rows:
                        await copy.write_row(row)
                return int(cur.rowcount)

            return copy_in
        if w.kind == "copy_out":
            stmt = f"COPY {w.table} TO STDOUT (FORMAT BINARY)"

            async def copy_out() -> int:
                async with cur.copy(stmt) as copy:
                    async for _ in copy:
                        pass
                return int(cur.rowcount)

            return copy_out
        raise Unsupported(w.kind)

    async def mixed_row(self, conn: Any) -> tuple[Any, ...]:
        cur = conn.cursor(binary=True)
        await cur.execute(wl.MIXED_ROW_SQL)
        return tuple(await cur.fetchone())

    async def series(self, conn: Any, n: int) -> int:
        cur = conn.cursor(binary=True)
        await cur.execute(wl.pyformat(wl.SERIES_ROWS_SQL), (n,))
        return len(await cur.fetchall())

    async def cursor(self, conn: Any, n: int) -> int:
        raise Unsupported("cursor check is for pg_client and asyncpg")


class Psqlpy:
    """psqlpy (Rust, tokio-postgres underneath)."""

    def __init__(self) -> None:
        import psqlpy

        self.m = psqlpy

    def version(self) -> str:
        from importlib.metadata import version

        return version("psqlpy")

    async def connect(self, cfg: dict[str, Any]) -> Any:
        return await self.m.connect(
            host=cfg["host"],
            port=cfg["port"],
            username=cfg["user"],
            db_name=cfg["database"],
            ssl_mode=self.m.SslMode.Disable,
        )

    async def close(self, conn: Any) -> None:
        res = conn.close()
        if asyncio.iscoroutine(res):
            await res

    def op(self, conn: Any, w: wl.Workload) -> Op:
        if w.kind == "fetch":
            sql, args = w.sql, (list(w.args) or None)

            async def fetch() -> int:
                # result() turns the rows into Python objects; until then
                # they are undecoded, so skipping it would not be a fetch.
                return len((await conn.fetch(sql, args)).result(as_tuple=True))

            return fetch
        if w.kind == "batch":
            rows = [list(wl.INSERT_ROW)] * w.count

            async def batch() -> int:
                await conn.execute_many(w.sql, rows)
                return len(rows)

            return batch
        if w.kind == "copy_in":
            rows = [wl.INSERT_ROW] * w.count
            columns = list(wl.INSERT_COLUMNS)

            async def copy_in() -> int:
                return int(await conn.copy_records_to_table(w.table, records=rows, columns=columns))

            return copy_in
        raise Unsupported("psqlpy has no COPY TO STDOUT API")

    async def mixed_row(self, conn: Any) -> tuple[Any, ...]:
        return tuple((await conn.fetch_row(wl.MIXED_ROW_SQL)).result(as_tuple=True))

    async def series(self, conn: Any, n: int) -> int:
        return len((await conn.fetch(wl.SERIES_ROWS_SQL, [n])).result(as_tuple=True))

    async def cursor(self, conn: Any, n: int) -> int:
        raise Unsupported("cursor check is for pg_client and asyncpg")


def make_client(name: str) -> Any:
    if name in ("pg_client", "asyncpg"):
        return AsyncpgLike(name)
    if name == "psycopg":
        return Psycopg()
    if name == "psqlpy":
        return Psqlpy()
    raise ValueError(f"unknown client {name!r}")


# --------------------------------------------------------------------------
# Checks


_MIXED_EXPECTED = (
    42,
    "hello world",
    datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc),
    decimal.Decimal("12345.6789"),
    uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    {"a": 1, "b": [1, 2, 3], "c": "text"},
)


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, dict) and isinstance(got, (str, bytes)):
        got = json.loads(got)  # asyncpg's jsonb is text unless a codec is set
    if isinstance(want, datetime.datetime) and isinstance(got, datetime.datetime):
        return got == want
    if isinstance(want, uuid.UUID):
        return str(got) == str(want)
    return bool(got == want)


async def check(client: Any, conn: Any, w: wl.Workload, op: Op, expected: int | None) -> None:
    rows = await op()
    if expected is not None and rows != expected:
        raise WrongResult(f"{w.name}: got {rows} rows, expected {expected}")
    if w.name == "mixed_row":
        row = await client.mixed_row(conn)
        bad = [
            f"column {i}: got {g!r}, expected {e!r}"
            for i, (g, e) in enumerate(zip(row, _MIXED_EXPECTED, strict=False))
            if not _same(g, e)
        ]
        if len(row) != len(_MIXED_EXPECTED) or bad:
            raise WrongResult("mixed_row: " + "; ".join(bad or [f"{len(row)} columns"]))


# --------------------------------------------------------------------------
# Runs


def _percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in microseconds."""
    if not sorted_ns:
        return float("nan")
    k = min(len(sorted_ns) - 1, max(0, round(q * len(sorted_ns) + 0.5) - 1))
    return sorted_ns[k] / 1000.0


async def _drive(ops: list[Op], seconds: float, lat: list[int] | None) -> tuple[int, int, float]:
    """Run each op back to back in its own task until *seconds* pass; -> queries, rows, wall."""
    clock = time.perf_counter
    deadline = clock() + seconds
    now_ns = time.perf_counter_ns

    async def one(op: Op) -> tuple[int, int]:
        queries = rows = 0
        while True:
            t0 = now_ns()
            rows += await op()
            if lat is not None:
                lat.append(now_ns() - t0)
            queries += 1
            if clock() >= deadline:
                return queries, rows

    start = clock()
    results = await asyncio.gather(*(one(op) for op in ops))
    wall = clock() - start
    return sum(q for q, _ in results), sum(r for _, r in results), wall


def _segment_stats(
    queries: int, rows: int, wall: float, cpu: float, lat: list[int]
) -> dict[str, Any]:
    lat.sort()
    return {
        "queries": queries,
        "rows": rows,
        "seconds": wall,
        "qps": queries / wall,
        "rows_per_s": rows / wall,
        "p50_us": _percentile(lat, 0.50),
        "p99_us": _percentile(lat, 0.99),
        "cpu_s": cpu,
        "cpu_us_per_query": cpu / queries * 1e6,
    }


def _watchdog(seconds: float | None) -> None:
    """Exit with a traceback on stderr if *seconds* pass before the next call (None: off).

    faulthandler's timer is a C thread that needs no GIL, so it fires even when
    a client blocks the event loop inside an extension while holding the GIL.
    """
    faulthandler.cancel_dump_traceback_later()
    if seconds is not None:
        faulthandler.dump_traceback_later(seconds, exit=True)


def _emit(tag: str, payload: dict[str, Any]) -> None:
    print(f"BENCH-{tag} " + json.dumps(payload), flush=True)


async def throughput(cfg: dict[str, Any]) -> None:
    """Set up, then measure one segment per ``run`` line read from stdin, until ``quit``.

    The orchestrator keeps one such process per client alive for a row of the
    matrix and asks them for segments in turn (A B C D A B C D ...), so that a
    slow spell of the machine hits every client instead of one. While one
    client measures, the others sit blocked on stdin and use no CPU.
    """
    w = wl.WORKLOADS[cfg["workload"]]
    if cfg.get("table"):
        sql = wl.insert_sql(cfg["table"]) if w.kind == "batch" else w.sql
        w = dataclasses.replace(w, table=cfg["table"], sql=sql)
    stage = "import"
    conns: list[Any] = []
    client: Any = None
    inserted = 0
    _watchdog(cfg["setup_timeout"])
    try:
        client = make_client(cfg["client"])
        version = client.version()
        stage = "connect"
        for _ in range(cfg["concurrency"]):
            conns.append(await client.connect(cfg))
        stage = "prepare"
        ops = [client.op(c, w) for c in conns]
        stage = "check"
        await check(client, conns[0], w, ops[0], cfg.get("expected_rows"))
        inserted += w.count
        stage = "warm-up"
        warm_q, warm_rows, warm_wall = await _drive(ops, cfg["warmup"], None)
        inserted += warm_rows
        op_seconds = warm_wall * len(ops) / warm_q  # mean time of one operation
        _emit("READY", {"client_version": version})
        while True:
            _watchdog(None)
            line = sys.stdin.readline().split()
            if not line or line[0] == "quit":
                break
            seconds, rewarm = float(line[1]), float(line[2])
            _watchdog(seconds + rewarm + cfg["segment_timeout"])
            stage = "run"
            if op_seconds < rewarm:
                # Skipped for slow operations: one of them takes longer than
                # the re-warm-up and warms the caches just as well.
                _, warm_rows, _ = await _drive(ops, rewarm, None)
                inserted += warm_rows
            lat: list[int] = []
            gc.collect()
            cpu0 = time.process_time()
            queries, rows, wall = await _drive(ops, seconds, lat)
            cpu = time.process_time() - cpu0
            inserted += rows
            op_seconds = wall * len(ops) / queries
            _emit("SEGMENT", _segment_stats(queries, rows, wall, cpu, lat))
        _watchdog(30)
        _emit("DONE", {"rows_all_phases": inserted if w.count else None})
    except Unsupported as e:
        _emit("RESULT", {"status": "n/a", "error": str(e)})
    except Exception as e:
        _emit("RESULT", {"status": "error", "stage": stage, "error": _describe(e)})
    finally:
        for c in conns:
            try:
                await asyncio.wait_for(client.close(c), 5)
            except Exception:
                pass


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _current_rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


async def memory(cfg: dict[str, Any]) -> dict[str, Any]:
    stage = "import"
    out: dict[str, Any] = {}
    conn = None
    client: Any = None
    _watchdog(cfg["timeout"])
    try:
        client = make_client(cfg["client"])
        out["client_version"] = client.version()
        stage = "connect"
        conn = await client.connect(cfg)
        stage = "warm-up"
        await client.series(conn, 1000)  # codecs, statement cache and buffers in place
        gc.collect()
        baseline = _current_rss_kb()
        stage = cfg["mode"]
        n = cfg["rows"]
        t0 = time.perf_counter()
        if cfg["mode"] == "fetch_memory":
            got = await client.series(conn, n)
        else:
            got = await client.cursor(conn, n)
        seconds = time.perf_counter() - t0
        if got != n:
            raise WrongResult(f"got {got} rows, expected {n}")
        peak = _rss_kb()
        out.update(
            status="ok",
            rows=n,
            seconds=seconds,
            baseline_mb=baseline / 1024,
            peak_rss_mb=peak / 1024,
            growth_mb=(peak - baseline) / 1024,
        )
    except Unsupported as e:
        out.update(status="n/a", error=str(e))
    except Exception as e:
        out.update(status="error", stage=stage, error=_describe(e))
    finally:
        if conn is not None:
            try:
                await asyncio.wait_for(client.close(conn), 5)
            except Exception:
                pass
    return out


def _describe(e: BaseException) -> str:
    """Exception type and message, plus where in the client it was raised."""
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
    msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}{where}"


def main() -> int:
    cfg = json.loads(sys.argv[1])
    coro = throughput(cfg) if cfg["mode"] == "throughput" else memory(cfg)
    loop_name = cfg.get("loop", "asyncio")
    try:
        if loop_name == "uvloop":
            import uvloop

            result = uvloop.run(coro)
        else:
            result = asyncio.run(coro)
    except ImportError as e:
        coro.close()
        result = {"status": "error", "stage": "loop", "error": f"{loop_name}: {e}"}
    if result is not None:
        _emit("RESULT", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
