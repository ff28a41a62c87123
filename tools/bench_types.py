"""Client CPU per type, pg_client beside asyncpg: decoding results, encoding parameters.

The workloads of ``tools/bench.py`` use a handful of types; an application
uses many. For each type this runs, in one process on uvloop, on the same
server, alternating the two clients:

* decode: ``fetch("SELECT <expr> FROM generate_series(1, 500) i")``;
* encode: ``executemany("INSERT INTO <temp table> VALUES ($1)", 500 rows)``.

and prints the client's CPU time (``time.process_time()``, user + system)
per call, best of several rounds, and the ratio. Both include the same
socket work, so a ratio near 1 means "as fast", and below 1 "faster". The
figures are for finding slow codecs, not for publishing: the VM's noise is
a few percent.

Usage: ``python tools/bench_types.py [--types int4,uuid,...] [--rounds 5]``
(uses the bench venv that ``tools/bench.py`` makes, and a throwaway server
unless ``BENCH_DSN`` is set).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))

ROWS = 500

# name: (SQL expression of row i for decoding, Python expression of row i for
# encoding or None). The Python side may use datetime, decimal, uuid,
# ipaddress, json and R (the client's Range class).
TYPES: dict[str, tuple[str, str | None]] = {
    "int2": ("(i % 1000)::int2", "i % 1000"),
    "int4": ("i", "i"),
    "int8": ("i::int8 * 1000000000", "i * 10**12"),
    "float4": ("i::float4 / 3", "i / 4"),
    "float8": ("i::float8 / 3", "i / 3"),
    "numeric": ("(i * 1.2345)::numeric(12,4)", "decimal.Decimal(i) / 7"),
    "bool": ("i % 2 = 0", "i % 2 == 0"),
    "text": ("'some text value ' || i", "f'some text value {i}'"),
    "bytea": ("decode(md5(i::text), 'hex')", "b'x' * 16"),
    "date": ("'2024-01-01'::date + i", "datetime.date(2024, 1, 1) + datetime.timedelta(days=i)"),
    "time": ("'12:34:56.789'::time + i * interval '1 second'", "datetime.time(12, 30, i % 60)"),
    "timetz": ("'12:34:56.789+02'::timetz", None),
    "timestamp": ("'2024-01-01'::timestamp + i * interval '1 minute'",
                  "datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=i)"),
    "timestamptz": ("'2024-01-01'::timestamptz + i * interval '1 minute'",
                    "datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)"
                    " + datetime.timedelta(minutes=i)"),
    "interval": ("i * interval '1 day 3 hours 1.5 seconds'",
                 "datetime.timedelta(days=i, seconds=5)"),
    "uuid": ("md5(i::text)::uuid", "uuid.UUID(int=i)"),
    "json": ("json_build_object('a', i, 'b', 'x')", "json.dumps({'a': i})"),
    "jsonb": ("jsonb_build_object('a', i, 'b', 'x')", "json.dumps({'a': i})"),
    "inet": ("('10.0.' || (i % 256) || '.' || (i / 256))::inet",
             "ipaddress.ip_address(f'10.0.{i % 256}.1')"),
    "cidr": ("('10.' || (i % 256) || '.0.0/16')::cidr",
             "ipaddress.ip_network(f'10.{i % 256}.0.0/16')"),
    "macaddr": ("'08:00:2b:01:02:03'::macaddr", None),
    "point": ("point(i, i)", None),
    "box": ("box(point(i, i), point(0, 0))", None),
    "int4range": ("int4range(i, i + 10)", "R(i, i + 10)"),
    "tstzrange": ("tstzrange('2024-01-01'::timestamptz, "
                  "'2024-01-01'::timestamptz + i * interval '1 day')", None),
    "int4multirange": ("int4multirange(int4range(i, i + 10))", None),
    "int4[]": ("ARRAY[i, i + 1, i + 2, i + 3]", "[i, i + 1, i + 2, i + 3]"),
    "text[]": ("ARRAY['a' || i, 'b', 'c']", "['a', 'b', str(i)]"),
    "record": ("ROW(i, 'x'::text)", None),
    "money": ("(i * 1.25)::money", None),
    "bit": ("B'10101'", None),
    "tsvector": ("'a fat cat'::tsvector", None),
    "xml": ("'<a>x</a>'::xml", None),
}

CHILD = r"""
import asyncio, datetime, decimal, ipaddress, json, os, sys, time, uuid
import uvloop
import asyncpg, pg_client, pg_codecs

TYPES, ROWS, ROUNDS = eval(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

async def timed(call, reps):
    await call()
    t0 = time.process_time()
    for _ in range(reps):
        await call()
    return (time.process_time() - t0) / reps

async def best(calls, reps):
    best = [1e9] * len(calls)
    for _ in range(ROUNDS):
        for k, call in enumerate(calls):
            best[k] = min(best[k], await timed(call, reps))
    return best

def line(name, ours, theirs):
    print(f"  {name:16s} {ours * 1e6:9.0f} us {theirs * 1e6:9.0f} us  {ours / theirs:5.2f}x",
          flush=True)

async def main():
    dsn = os.environ["BENCH_DSN"]
    cons = [await pg_client.connect(dsn, ssl=False), await asyncpg.connect(dsn, ssl=False)]
    print(f"decode: fetch() of {ROWS} rows of one value, client CPU per call")
    print(f"  {'type':16s} {'pg_client':>12s} {'asyncpg':>12s}  ratio")
    for name, (sql, _) in TYPES.items():
        query = f"SELECT {sql} AS v FROM generate_series(1, {ROWS}) i"
        line(name, *await best([lambda c=c: c.fetch(query) for c in cons], 20))
    print(f"encode: executemany() of {ROWS} rows of one parameter, client CPU per call")
    print(f"  {'type':16s} {'pg_client':>12s} {'asyncpg':>12s}  ratio")
    for name, (_, py) in TYPES.items():
        if py is None:
            continue
        table = "t_" + name.replace("[]", "_array")
        calls = []
        for con, R in zip(cons, (pg_codecs.Range, asyncpg.Range)):
            await con.execute(f"CREATE TEMP TABLE {table} (v {name})")
            rows = [(eval(py, {**globals(), "R": R, "i": i}),) for i in range(ROWS)]
            insert = f"INSERT INTO {table} VALUES ($1)"
            calls.append(lambda con=con, rows=rows, insert=insert: con.executemany(insert, rows))
        line(name, *await best(calls, 5))
    for con in cons:
        await con.close()

uvloop.run(main())
"""


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--types", default="", help=f"comma-separated, of: {', '.join(TYPES)}")
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    names = [t for t in opts.types.split(",") if t] or list(TYPES)
    unknown = [t for t in names if t not in TYPES]
    if unknown:
        parser.error(f"unknown types: {', '.join(unknown)}")
    python = REPO / ".cache" / "bench-venv" / "bin" / "python"
    if not python.exists():
        print("bench_types: run tools/bench.py once to make the bench venv", file=sys.stderr)
        return 1
    dsn = os.environ.get("BENCH_DSN")
    if not dsn:
        import pgcluster

        dsn = pgcluster.get_cluster().dsn()
    path = [str(REPO / "packages" / p / "src")
            for p in ("pg-codecs", "pg-wire", "pg-client", "pg-pool")]
    env = dict(os.environ, BENCH_DSN=dsn, PYTHONPATH=os.pathsep.join(path))
    chosen = {n: TYPES[n] for n in names}
    return subprocess.run(
        [str(python), "-c", CHILD, repr(chosen), str(ROWS), str(opts.rounds)], env=env,
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
