"""The benchmark's workloads: SQL, setup, expected results, pgbench scripts.

Shared by the orchestrator (``tools/bench.py``, which sets the tables up and
runs pgbench) and the worker (``tools/bench/worker.py``, which runs one client
on one workload). Standard library only: the worker imports it inside the
bench venv, the orchestrator inside whatever Python runs ``bench.py``.

The first seven follow MagicStack's driver toolbench (pgbench_python): the
same statements, row counts and table shapes. Queries are written with
asyncpg's ``$n`` placeholders; :func:`pyformat` turns them into psycopg's
``%s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: The row that copy and batch insert, as the toolbench has it.
INSERT_ROW: tuple[Any, ...] = (10, 11, 10, "TESTTESTTEST", 10.333, 12341234, "123412341234")
INSERT_COLUMNS = ("a", "b", "c", "d", "e", "f", "g")
#: PostgreSQL types of INSERT_COLUMNS, for clients whose binary COPY wants them.
INSERT_TYPES = ("int4", "int4", "int4", "text", "float8", "int4", "text")
_INSERT_TABLE_DDL = "(a int, b int, c int, d text, e float8, f int, g text)"

MIXED_ROW_SQL = (
    "SELECT 42::int4 AS i, 'hello world'::text AS t, "
    "'2024-05-06 07:08:09.123456+00'::timestamptz AS ts, "
    "12345.6789::numeric AS n, "
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, "
    """'{"a": 1, "b": [1, 2, 3], "c": "text"}'::jsonb AS j"""
)

#: The shape of the wide fetches: the 100,000-row table and the memory checks.
ROWS_SELECT = "i AS id, 'name-' || i AS name, (i * 0.5)::float8 AS value"
#: The memory checks: the same row shape, made by the server on the fly.
SERIES_ROWS_SQL = f"SELECT {ROWS_SELECT} FROM generate_series(1, $1) AS i"


@dataclass(frozen=True)
class Workload:
    """One benchmark workload."""

    name: str
    #: What it measures, in a few words (the table legend and the docs).
    description: str
    #: "fetch" (run a query, get all rows), "batch" (executemany),
    #: "copy_in" (binary COPY FROM STDIN of records), "copy_out" (COPY TO STDOUT).
    kind: str
    sql: str = ""
    args: tuple[Any, ...] = ()
    #: Table for copy_in/copy_out/batch.
    table: str = ""
    #: Rows per operation for batch/copy_in (they send that many copies of INSERT_ROW).
    count: int = 0
    #: Rows each operation returns or moves; None: ask the server (pg_type).
    expected_rows: int | None = None
    #: SQL that counts the rows one operation should return (when expected_rows is None).
    count_sql: str = ""
    #: TRUNCATE before each run, so inserted rows do not pile up between runs.
    truncate: bool = False
    #: The script pgbench runs for the ceiling, or "" with pgbench_note saying why not.
    pgbench_script: str = ""
    pgbench_note: str = ""
    from_toolbench: bool = False


def insert_sql(table: str) -> str:
    """The batch workload's INSERT into *table*."""
    cols = ", ".join(INSERT_COLUMNS)
    params = ", ".join(f"${i}" for i in range(1, len(INSERT_COLUMNS) + 1))
    return f"INSERT INTO {table} ({cols}) VALUES ({params})"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def inline_args(sql: str, args: tuple[Any, ...]) -> str:
    """Replace ``$n`` by the literal of ``args[n-1]`` (for pgbench scripts)."""
    return re.sub(r"\$(\d+)", lambda m: _literal(args[int(m.group(1)) - 1]), sql)


def pyformat(sql: str) -> str:
    """asyncpg's ``$1`` placeholders -> psycopg's ``%s`` (in order; none is repeated here)."""
    return re.sub(r"\$\d+", "%s", sql)


_PG_TYPE_SQL = (
    "SELECT typname, typnamespace, typowner, typlen, typbyval, typcategory, "
    "typispreferred, typisdefined, typdelim, typrelid, typelem, typarray "
    "FROM pg_type WHERE typtypmod = $1 AND typisdefined = $2"
)
_BATCH_SQL = insert_sql("_bench_batch")


def _fetch_script(sql: str, args: tuple[Any, ...] = ()) -> str:
    return inline_args(sql, args) + ";\n"


def _batch_script() -> str:
    one = inline_args(_BATCH_SQL, INSERT_ROW) + ";\n"
    # A pipeline, as asyncpg's executemany and psycopg's (which pipelines
    # too) send it: one round trip for the whole batch.
    return "\\startpipeline\n" + one * 1000 + "\\endpipeline\n"


_NO_COPY = "pgbench cannot run COPY"

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload(
            "pg_type",
            "catalog scan of pg_type, 12 columns of mixed types, two parameters",
            "fetch",
            _PG_TYPE_SQL,
            (-1, True),
            count_sql="SELECT count(*) FROM pg_type WHERE typtypmod = -1 AND typisdefined",
            pgbench_script=_fetch_script(_PG_TYPE_SQL, (-1, True)),
            from_toolbench=True,
        ),
        Workload(
            "generate_series",
            "1,000 rows of one int4 column",
            "fetch",
            "SELECT i FROM generate_series(1, $1) AS i",
            (1000,),
            expected_rows=1000,
            pgbench_script=_fetch_script("SELECT i FROM generate_series(1, $1) AS i", (1000,)),
            from_toolbench=True,
        ),
        Workload(
            "large_bytea",
            "100 rows of one 1,000-byte bytea value (the toolbench's 'large_object')",
            "fetch",
            "SELECT * FROM _bench_bytes",
            expected_rows=100,
            pgbench_script=_fetch_script("SELECT * FROM _bench_bytes"),
            from_toolbench=True,
        ),
        Workload(
            "arrays",
            "10 rows of one int4[] of 1,000 elements",
            "fetch",
            "SELECT * FROM _bench_arrays",
            expected_rows=10,
            pgbench_script=_fetch_script("SELECT * FROM _bench_arrays"),
            from_toolbench=True,
        ),
        Workload(
            "copy",
            "binary COPY FROM STDIN of 10,000 records (7 columns: int, text, float8)",
            "copy_in",
            table="_bench_copy",
            count=10_000,
            expected_rows=10_000,
            truncate=True,
            pgbench_note=_NO_COPY,
            from_toolbench=True,
        ),
        Workload(
            "batch",
            "executemany: INSERT of 1,000 rows (7 parameters each), one batch",
            "batch",
            _BATCH_SQL,
            table="_bench_batch",
            count=1000,
            expected_rows=1000,
            truncate=True,
            pgbench_script=_batch_script(),
            from_toolbench=True,
        ),
        Workload(
            "one_plus_one",
            "SELECT 1+1: one round trip, one row; the client's fixed cost per query",
            "fetch",
            "SELECT 1+1",
            expected_rows=1,
            pgbench_script=_fetch_script("SELECT 1+1"),
            from_toolbench=True,
        ),
        Workload(
            "mixed_row",
            "one row of int4, text, timestamptz, numeric, uuid, jsonb",
            "fetch",
            MIXED_ROW_SQL,
            expected_rows=1,
            pgbench_script=_fetch_script(MIXED_ROW_SQL),
        ),
        Workload(
            "fetch_100k",
            "100,000 rows of (int4, text, float8) from a table",
            "fetch",
            "SELECT id, name, value FROM _bench_rows",
            expected_rows=100_000,
            pgbench_script=_fetch_script("SELECT id, name, value FROM _bench_rows"),
        ),
        Workload(
            "copy_out",
            "binary COPY TO STDOUT of a 10,000-row table (the copy rows), bytes discarded",
            "copy_out",
            table="_bench_copyout",
            expected_rows=10_000,
            pgbench_note=_NO_COPY,
        ),
    ]
}


def client_table(w: Workload, client: str) -> str:
    """The table *client* inserts into: one per client, so each one's rows can be counted."""
    return f"{w.table}_{client}"


def setup_sql(clients: list[str]) -> str:
    """Create and fill every table the workloads read or write (idempotent)."""
    row = ", ".join(_literal(v) for v in INSERT_ROW)
    per_client = "".join(
        f"DROP TABLE IF EXISTS {t}_{c};\nCREATE TABLE {t}_{c} {_INSERT_TABLE_DDL};\n"
        for t in ("_bench_copy", "_bench_batch")
        for c in clients
    )
    return f"""
{per_client}
DROP TABLE IF EXISTS _bench_bytes, _bench_arrays, _bench_copy, _bench_batch,
    _bench_copyout, _bench_rows;
CREATE TABLE _bench_bytes (b bytea);
INSERT INTO _bench_bytes (b) SELECT repeat('a', 1000)::bytea FROM generate_series(1, 100);
CREATE TABLE _bench_arrays (a int[]);
INSERT INTO _bench_arrays (a)
    SELECT (SELECT array_agg(i) FROM generate_series(1, 1000) AS s(i))
    FROM generate_series(1, 10);
CREATE TABLE _bench_copy {_INSERT_TABLE_DDL};
CREATE TABLE _bench_batch {_INSERT_TABLE_DDL};
CREATE TABLE _bench_copyout {_INSERT_TABLE_DDL};
INSERT INTO _bench_copyout SELECT {row} FROM generate_series(1, 10000);
CREATE TABLE _bench_rows (id int, name text, value float8);
INSERT INTO _bench_rows SELECT {ROWS_SELECT} FROM generate_series(1, 100000) AS i;
VACUUM ANALYZE _bench_bytes, _bench_arrays, _bench_copyout, _bench_rows;
"""
