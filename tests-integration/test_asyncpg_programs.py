"""Small programs written for asyncpg, run unchanged on pg_client.

Each program below is the kind of code a service built on asyncpg contains.
It takes the library module (``asyncpg`` or ``pg_client``) and that
library's ``create_pool`` (``asyncpg.create_pool`` or
``pg_pool.create_pool``), does its work against its own fresh schema, and
returns plain Python data. Every program runs twice, once per library
(parametrized); the pg_client run must return exactly what the asyncpg run
returned. Each program also checks a few facts about its own result, so
that the asyncpg run is not compared with nothing.

The programs: a todo list (CRUD, UPSERT, transactions, savepoints,
executemany); a bulk loader (COPY in three ways, aggregates); a job queue
driven by LISTEN/NOTIFY; a paginated report over cursors; a counter bumped
by 50 concurrent pool tasks under an advisory lock; error handling that
reads the fields of the server's errors; timeouts with command_timeout and
a retry loop; an inventory service using pool init codecs, a record class
and fetchmany.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import decimal
import hashlib
import io
import json
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import pg_client
import pg_pool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import unique


@dataclasses.dataclass
class Env:
    """What a program gets: its library, its pool factory and where to connect."""

    lib: Any
    create_pool: Callable[..., Any]
    dsn: str
    schema: str

    @property
    def settings(self) -> dict[str, str]:
        return {"search_path": self.schema, "application_name": "asyncpg_programs"}

    def connect(self, **kwargs: Any) -> Awaitable[Any]:
        return self.lib.connect(self.dsn, server_settings=self.settings, **kwargs)

    def pool(self, **kwargs: Any) -> Any:
        return self.create_pool(self.dsn, server_settings=self.settings, **kwargs)


LIBRARIES: dict[str, tuple[Any, Callable[..., Any]]] = {
    "asyncpg": (asyncpg, asyncpg.create_pool),
    "pg_client": (pg_client, pg_pool.create_pool),
}


# -- 1. a todo list -------------------------------------------------------------------------


async def todo_app(env: Env) -> Any:
    lib = env.lib
    con = await env.connect()
    log: list[Any] = []
    try:
        await con.execute("""
            CREATE TABLE todo (
                id       serial PRIMARY KEY,
                title    text NOT NULL CONSTRAINT todo_title_key UNIQUE,
                done     boolean NOT NULL DEFAULT false,
                priority int NOT NULL DEFAULT 0,
                tags     text[] NOT NULL DEFAULT '{}',
                due      date
            )
        """)

        async def upsert(title: str, priority: int, tags: list[str],
                         due: dt.date | None = None) -> Any:
            row = await con.fetchrow("""
                INSERT INTO todo (title, priority, tags, due) VALUES ($1, $2, $3, $4)
                ON CONFLICT (title) DO UPDATE
                   SET priority = EXCLUDED.priority,
                       tags = todo.tags || EXCLUDED.tags,
                       due = coalesce(EXCLUDED.due, todo.due)
                RETURNING id, title, priority, tags, due, (xmax = 0) AS inserted
            """, title, priority, tags, due)
            return dict(row)

        log.append(await upsert("buy milk", 1, ["home"], dt.date(2024, 5, 1)))
        log.append(await upsert("write report", 3, ["work"]))
        log.append(await upsert("call mom", 2, []))
        log.append(await upsert("buy milk", 2, ["urgent"]))          # an update
        log.append(await upsert("write report", 3, [], dt.date(2024, 6, 30)))

        async with con.transaction():
            log.append(await con.execute("UPDATE todo SET done = true WHERE priority >= $1", 3))

        try:
            async with con.transaction():
                await con.execute("DELETE FROM todo")
                await con.execute("INSERT INTO todo (title) VALUES ($1)", None)
        except lib.NotNullViolationError as e:
            log.append(("rolled back", type(e).__name__, e.sqlstate, e.column_name,
                        e.table_name))
        log.append(await con.fetchval("SELECT count(*) FROM todo"))

        async with con.transaction():
            await con.execute("INSERT INTO todo (title) VALUES ('outer')")
            try:
                async with con.transaction():  # a savepoint
                    await con.execute("INSERT INTO todo (title) VALUES ('inner')")
                    raise LookupError("changed my mind")
            except LookupError:
                pass

        await con.executemany("UPDATE todo SET priority = $2 WHERE title = $1",
                              [("call mom", 5), ("outer", 1), ("nobody", 9)])
        rows = await con.fetch("SELECT id, title, done, priority, tags, due FROM todo "
                               "ORDER BY priority DESC, id")
        log.append([dict(r) for r in rows])
        log.append(await con.fetchval(
            "WITH d AS (DELETE FROM todo WHERE done RETURNING title) "
            "SELECT array_agg(title ORDER BY title) FROM d"))
        log.append(await con.fetchval("SELECT sum(priority) FROM todo"))
        log.append(await con.fetchval("SELECT string_agg(DISTINCT t, ',' ORDER BY t) "
                                      "FROM todo, unnest(tags) t"))
    finally:
        await con.close()
    return log


def check_todo_app(log: Any) -> None:
    assert [e["inserted"] for e in log[:5]] == [True, True, True, False, False]
    assert log[3]["tags"] == ["home", "urgent"]
    assert log[5] == "UPDATE 1"
    assert log[6][:4] == ("rolled back", "NotNullViolationError", "23502", "title")
    assert log[7] == 3
    assert [r["title"] for r in log[8]] == ["call mom", "write report", "buy milk", "outer"]
    assert log[9] == ["write report"]
    assert log[10] == 8


# -- 2. a bulk loader -----------------------------------------------------------------------


async def bulk_loader(env: Env) -> Any:
    rnd = random.Random(20240501)
    categories = ["books", "games", "music", "tools"]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    records = [
        (i, f"item-{i}", categories[rnd.randrange(4)],
         decimal.Decimal(rnd.randrange(1, 100_000)) / 100,
         start + dt.timedelta(minutes=rnd.randrange(60 * 24 * 90)),
         rnd.random() < 0.1)
        for i in range(1, 5001)
    ]
    csv = "".join(f"{i},extra-{i},{categories[i % 4]},{i}.5,2024-04-0{1 + i % 9} 12:00:00+00,"
                  f"{'t' if i % 7 == 0 else 'f'}\n" for i in range(5001, 5101))
    con = await env.connect()
    out: list[Any] = []
    try:
        await con.execute("""
            CREATE TABLE sales (
                id int PRIMARY KEY, name text, category text, amount numeric(10, 2),
                sold_at timestamptz, refunded bool)
        """)
        out.append(await con.copy_records_to_table(
            "sales", records=records,
            columns=["id", "name", "category", "amount", "sold_at", "refunded"]))

        async def chunks() -> AsyncIterator[bytes]:
            data = csv.encode()
            for pos in range(0, len(data), 700):
                yield data[pos:pos + 700]

        out.append(await con.copy_to_table("sales", source=chunks(), format="csv"))
        out.append(await con.copy_records_to_table(
            "sales", records=[(9000, "late", None, None, None, None)],
            columns=["id", "name", "category", "amount", "sold_at", "refunded"]))

        rows = await con.fetch("""
            SELECT category, count(*) AS n, sum(amount) AS total,
                   round(avg(amount), 4) AS mean, min(sold_at) AS first, max(sold_at) AS last,
                   count(*) FILTER (WHERE refunded) AS refunds,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS median
            FROM sales GROUP BY category ORDER BY category NULLS LAST
        """)
        out.append([tuple(r) for r in rows])
        out.append(await con.fetchrow(
            "SELECT count(*), sum(amount), date_trunc('month', max(sold_at)) FROM sales "
            "WHERE NOT refunded"))
        out[-1] = tuple(out[-1])

        buf = io.BytesIO()
        out.append(await con.copy_from_query(
            "SELECT * FROM sales WHERE id % $1 = 0 ORDER BY id", 13, output=buf, format="csv"))
        out.append(hashlib.sha256(buf.getvalue()).hexdigest())
        out.append(await con.copy_from_table("sales", columns=["id", "amount"],
                                             output=io.BytesIO(), format="binary"))
    finally:
        await con.close()
    return out


def check_bulk_loader(out: Any) -> None:
    assert out[:3] == ["COPY 5000", "COPY 100", "COPY 1"]
    assert sum(r[1] for r in out[3]) == 5101
    assert out[3][-1][0] is None
    assert isinstance(out[3][0][2], decimal.Decimal)
    assert out[5] == "COPY 392"
    assert out[7] == "COPY 5101"


# -- 3. a LISTEN/NOTIFY job queue -----------------------------------------------------------


async def job_queue(env: Env) -> Any:
    lib = env.lib
    producer = await env.connect()
    worker = await env.connect()
    try:
        for c in (producer, worker):
            await c.set_type_codec("jsonb", schema="pg_catalog", encoder=json.dumps,
                                   decoder=json.loads)
        await producer.execute("""
            CREATE TABLE jobs (id serial PRIMARY KEY, payload jsonb NOT NULL,
                               status text NOT NULL DEFAULT 'new', result jsonb)
        """)
        inbox: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()
        senders: set[bool] = set()

        def on_job(conn: Any, pid: int, channel: str, payload: str) -> None:
            senders.add(pid == producer.get_server_pid() and conn is worker)
            inbox.put_nowait((pid, channel, payload))

        await worker.add_listener("jobs", on_job)

        async def produce() -> list[int]:
            ids = []
            for n in range(1, 13):
                async with producer.transaction():
                    job_id = await producer.fetchval(
                        "INSERT INTO jobs (payload) VALUES ($1) RETURNING id",
                        {"n": n, "op": "square" if n % 3 else "cube"})
                    await producer.execute("SELECT pg_notify('jobs', $1)", str(job_id))
                ids.append(job_id)
            # a job whose transaction rolls back is never announced
            try:
                async with producer.transaction():
                    await producer.execute("SELECT pg_notify('jobs', 'phantom')")
                    raise RuntimeError("abort")
            except RuntimeError:
                pass
            return ids

        async def work(expected: int) -> list[Any]:
            done = []
            while len(done) < expected:
                _pid, channel, payload = await asyncio.wait_for(inbox.get(), 10)
                async with worker.transaction():
                    job = await worker.fetchrow(
                        "UPDATE jobs SET status = 'running' WHERE id = $1 AND status = 'new' "
                        "RETURNING id, payload", int(payload))
                    n = job["payload"]["n"]
                    result = {"value": n ** 2 if job["payload"]["op"] == "square" else n ** 3}
                    await worker.execute(
                        "UPDATE jobs SET status = 'done', result = $2 WHERE id = $1",
                        job["id"], result)
                done.append((channel, job["id"], result["value"]))
            return done

        ids, done = await asyncio.gather(produce(), work(12))
        await asyncio.sleep(0.1)
        leftovers = []
        while not inbox.empty():
            leftovers.append(inbox.get_nowait()[2])

        await worker.remove_listener("jobs", on_job)
        await producer.execute("NOTIFY jobs, 'after removal'")
        await asyncio.sleep(0.1)
        statuses = await producer.fetch(
            "SELECT status, count(*) AS n, sum((result->>'value')::int) AS total "
            "FROM jobs GROUP BY status ORDER BY status")
        errors = []
        try:
            await worker.add_listener("jobs", "not callable")  # type: ignore[arg-type]
        except lib.InterfaceError as e:  # asyncpg checks the callback up front
            errors.append(type(e).__name__)
        return (ids, done, leftovers, inbox.qsize(), senders,
                [dict(r) for r in statuses], errors)
    finally:
        await worker.close()
        await producer.close()


def check_job_queue(res: Any) -> None:
    ids, done, leftovers, remaining, senders, statuses, _ = res
    assert ids == list(range(1, 13))
    assert [d[1] for d in done] == ids
    assert done[2] == ("jobs", 3, 27)
    assert leftovers == [] and remaining == 0
    assert senders == {True}
    assert statuses == [{"status": "done", "n": 12, "total": 1 + 4 + 27 + 16 + 25 + 216 + 49
                         + 64 + 729 + 100 + 121 + 1728}]


# -- 4. a paginated report ------------------------------------------------------------------


async def paginated_report(env: Env) -> Any:
    con = await env.connect()
    lines: list[str] = []
    try:
        await con.execute("""
            CREATE TABLE events AS
            SELECT g AS id, (ARRAY['login', 'logout', 'purchase'])[1 + g % 3] AS kind,
                   (g * 37 % 101)::numeric / 4 AS value,
                   timestamp '2024-01-01' + g * interval '17 minutes' AS at
            FROM generate_series(1, 95) g
        """)
        async with con.transaction(readonly=True, isolation="repeatable_read"):
            cur = await con.cursor("SELECT id, kind, value, at FROM events ORDER BY id")
            page_no = 0
            while True:
                page = await cur.fetch(20)
                if not page:
                    break
                page_no += 1
                total = sum(r["value"] for r in page)
                lines.append(f"page {page_no}: ids {page[0]['id']}-{page[-1]['id']} "
                             f"({len(page)} rows), value {total}, "
                             f"last at {page[-1]['at'].isoformat()}")

            stmt = await con.prepare(
                "SELECT id, value FROM events WHERE kind = $1 AND id > $2 ORDER BY id")
            cur = await stmt.cursor("purchase", 10)
            skipped = await cur.forward(5)
            first = await cur.fetchrow()
            lines.append(f"purchases: skipped {skipped}, then #{first['id']} = {first['value']}")

            running = decimal.Decimal(0)
            by_kind: dict[str, int] = {}
            async for r in con.cursor("SELECT kind, value FROM events ORDER BY id", prefetch=7):
                running += r["value"]
                by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
            lines.append(f"running total {running}; by kind {sorted(by_kind.items())}")

            async for r in stmt.cursor("login", 90, prefetch=2):
                lines.append(f"late login {r['id']}")
            lines.append(f"column types: {[a.type.name for a in stmt.get_attributes()]}")
    finally:
        await con.close()
    return lines


def check_paginated_report(lines: Any) -> None:
    assert lines[0].startswith("page 1: ids 1-20 (20 rows)")
    assert lines[4].startswith("page 5: ids 81-95 (15 rows)")
    assert lines[5] == "purchases: skipped 5, then #26 = 13.2500000000000000"
    assert lines[6].startswith("running total ")
    assert [ln for ln in lines if ln.startswith("late login")] == ["late login 93"]
    assert lines[-1] == "column types: ['int4', 'numeric']"


# -- 5. a counter under an advisory lock ----------------------------------------------------


async def locked_counter(env: Env) -> Any:
    pool = await env.pool(min_size=2, max_size=5)
    try:
        await pool.execute("CREATE TABLE counter (name text PRIMARY KEY, n int NOT NULL)")
        await pool.execute("INSERT INTO counter VALUES ('hits', 0), ('misses', 0)")
        lock_key = 424242

        async def bump(i: int) -> tuple[int, int]:
            name = "hits" if i % 5 else "misses"
            async with pool.acquire() as con:
                async with con.transaction():
                    await con.execute("SELECT pg_advisory_xact_lock($1)", lock_key)
                    n = await con.fetchval("SELECT n FROM counter WHERE name = $1", name)
                    await asyncio.sleep(0.001 * (i % 3))  # widen the race the lock prevents
                    await con.execute("UPDATE counter SET n = $2 WHERE name = $1", name, n + 1)
                    total = await con.fetchval("SELECT sum(n) FROM counter")
            return total, i

        results = await asyncio.gather(*(bump(i) for i in range(50)))
        totals = sorted(t for t, _ in results)
        final = await pool.fetch("SELECT name, n FROM counter ORDER BY name")
        free = await pool.fetchval("SELECT pg_try_advisory_lock($1)", lock_key)
        if free:
            await pool.fetchval("SELECT pg_advisory_unlock($1)", lock_key)
        sizes = (pool.get_min_size(), pool.get_max_size(), pool.get_size() <= 5)
    finally:
        await pool.close()
    return totals, [tuple(r) for r in final], free, sizes


def check_locked_counter(res: Any) -> None:
    totals, final, free, sizes = res
    assert totals == list(range(1, 51))
    assert final == [("hits", 40), ("misses", 10)]
    assert free is True
    assert sizes == (2, 5, True)


# -- 6. error handling ----------------------------------------------------------------------


async def error_handling(env: Env) -> Any:
    lib = env.lib
    con = await env.connect()
    seen: list[Any] = []

    def record(e: Exception) -> None:
        seen.append({
            "class": type(e).__name__, "sqlstate": getattr(e, "sqlstate", None),
            "constraint": getattr(e, "constraint_name", None),
            "table": getattr(e, "table_name", None),
            "column": getattr(e, "column_name", None),
            "schema": getattr(e, "schema_name", None),
            "detail": getattr(e, "detail", None),
            "message": str(e).split("\n")[0],
            "integrity": isinstance(e, lib.IntegrityConstraintViolationError),
            "postgres": isinstance(e, lib.PostgresError),
        })

    try:
        await con.execute("""
            CREATE TABLE users (id int PRIMARY KEY,
                                email text NOT NULL CONSTRAINT users_email_key UNIQUE,
                                age int CONSTRAINT users_age_check CHECK (age >= 0));
            CREATE TABLE orders (id serial PRIMARY KEY,
                                 user_id int NOT NULL
                                     CONSTRAINT orders_user_fk REFERENCES users (id));
        """)
        await con.execute("INSERT INTO users VALUES (1, 'ann@example.com', 30)")

        async def register(uid: int, email: str, age: int) -> str:
            try:
                await con.execute("INSERT INTO users VALUES ($1, $2, $3)", uid, email, age)
                return "created"
            except lib.UniqueViolationError as e:
                record(e)
                if e.constraint_name == "users_email_key":
                    return "email taken"
                return "id taken"
            except lib.CheckViolationError as e:
                record(e)
                return "bad age"

        outcomes = [
            await register(2, "bob@example.com", 40),
            await register(3, "ann@example.com", 20),
            await register(1, "new@example.com", 20),
            await register(4, "kid@example.com", -1),
        ]

        # one transaction, a savepoint per risky step: the failures don't doom the rest
        async with con.transaction():
            for uid in (1, 99, 2):
                try:
                    async with con.transaction():
                        await con.execute("INSERT INTO orders (user_id) VALUES ($1)", uid)
                except lib.ForeignKeyViolationError as e:
                    record(e)
            orders = await con.fetchval("SELECT count(*) FROM orders")

        for query in ("SELECT 1/0", "SELECT * FROM no_such_table", "SELEC 1",
                      "SELECT 'x'::int", "SELECT id FROM users WHERE id = 'one'"):
            try:
                await con.fetchval(query)
            except lib.PostgresError as e:
                record(e)
                seen[-1]["position"] = e.position

        try:
            async with con.transaction():
                await con.execute("UPDATE users SET age = age + 1")
                await con.execute("SELECT 1/0")
        except lib.DivisionByZeroError:
            pass
        ages = await con.fetchval("SELECT array_agg(age ORDER BY id) FROM users")

        try:
            await con.execute("INSERT INTO users VALUES (1, 'dup@example.com', 5)")
        except lib.exceptions.UniqueViolationError as e:
            as_dict = e.as_dict()
            fields = sorted(k for k in as_dict if k not in ("file", "line", "routine"))
        interface = []
        try:
            await con.fetchval("SELECT $1::int", "not an int")
        except lib.DataError as e:
            # the reason in parentheses is the codec's own wording: keep the rest
            interface.append((type(e).__name__, str(e).split(" (")[0]))
        try:
            await con.fetchval("SELECT $1::int, $2::int", 1)
        except lib.InterfaceError as e:
            interface.append((type(e).__name__, str(e)))
    finally:
        await con.close()
    return outcomes, orders, seen, ages, fields, interface


def check_error_handling(res: Any) -> None:
    outcomes, orders, seen, ages, fields, interface = res
    assert outcomes == ["created", "email taken", "id taken", "bad age"]
    assert orders == 2
    assert [s["constraint"] for s in seen[:6]] == [
        "users_email_key", "users_pkey", "users_age_check", "orders_user_fk", None, None]
    assert seen[0]["table"] == "users" and seen[0]["integrity"] is True
    assert "Key (email)=(ann@example.com) already exists." == seen[0]["detail"]
    assert [s["class"] for s in seen[4:]] == [
        "DivisionByZeroError", "UndefinedTableError", "PostgresSyntaxError",
        "InvalidTextRepresentationError", "InvalidTextRepresentationError"]
    assert ages == [30, 40]
    assert "constraint_name" in fields
    assert [i[0] for i in interface] == ["DataError", "InterfaceError"]


# -- 7. timeouts and retries ----------------------------------------------------------------


async def timeouts_and_retry(env: Env) -> Any:
    lib = env.lib
    con = await env.connect(command_timeout=0.2)
    log: list[Any] = []
    try:
        async def slow_lookup(attempt: int) -> str:
            delay = 0.6 if attempt < 3 else 0.0
            return await con.fetchval("SELECT $2::text FROM pg_sleep($1)", delay,
                                      f"answer after attempt {attempt}")

        async def with_retry(op: Callable[[int], Awaitable[str]], attempts: int = 4) -> str:
            for attempt in range(1, attempts + 1):
                try:
                    return await op(attempt)
                except asyncio.TimeoutError as e:
                    log.append(("timeout", attempt, type(e).__name__,
                                isinstance(e, TimeoutError)))
                    # the query was cancelled: the connection is ready for the next try
                    log.append(await con.fetchval("SELECT 'still alive'"))
            raise AssertionError("gave up")

        log.append(await with_retry(slow_lookup))
        # a per-call timeout overrides command_timeout
        log.append(await con.fetchval("SELECT 'patient' FROM pg_sleep(0.3)", timeout=5))
        try:
            await con.execute("SELECT pg_sleep(1)", timeout=0.05)
        except asyncio.TimeoutError:
            log.append("explicit timeout")

        # the server's own statement_timeout gives QueryCanceledError instead
        await con.execute("SET statement_timeout = 50")
        try:
            await con.execute("SELECT pg_sleep(1)")
        except lib.QueryCanceledError as e:
            log.append(("server cancelled", type(e).__name__, e.sqlstate))
        await con.execute("RESET statement_timeout")

        # a timeout inside a transaction leaves the transaction to be rolled back
        try:
            async with con.transaction():
                await con.execute("SELECT pg_sleep(1)")
        except asyncio.TimeoutError:
            log.append(("tx timeout", con.is_in_transaction()))
        log.append(await con.fetchval("SELECT 40 + 2"))
    finally:
        await con.close()
    return log


def check_timeouts_and_retry(log: Any) -> None:
    assert log[0] == ("timeout", 1, "TimeoutError", True)
    assert log[1] == "still alive"
    assert log[4] == "answer after attempt 3"
    assert log[5:8] == ["patient", "explicit timeout",
                        ("server cancelled", "QueryCanceledError", "57014")]
    assert log[-1] == 42


# -- 8. an inventory service ----------------------------------------------------------------


async def inventory_service(env: Env) -> Any:
    lib = env.lib

    class Item(lib.Record):  # type: ignore[misc, name-defined]
        def label(self) -> str:
            return f"{self['sku']} x{self['qty']}"

    async def init(con: Any) -> None:
        await con.set_type_codec("jsonb", schema="pg_catalog", encoder=json.dumps,
                                 decoder=json.loads)
        await con.set_type_codec("numeric", schema="pg_catalog", encoder=str, decoder=float,
                                 format="text")

    pool = await env.pool(min_size=1, max_size=3, init=init, record_class=Item)
    try:
        await pool.execute("""
            CREATE TABLE items (sku text PRIMARY KEY, qty int NOT NULL, price numeric(8, 2),
                                attrs jsonb NOT NULL DEFAULT '{}')
        """)
        await pool.executemany(
            "INSERT INTO items VALUES ($1, $2, $3, $4)",
            [(f"SKU-{i:03}", i * 3 % 17, 1.25 * i, {"color": ["red", "blue"][i % 2],
                                                     "size": i % 4})
             for i in range(1, 31)])

        async with pool.acquire() as con:
            restock = await con.prepare(
                "UPDATE items SET qty = qty + $2 WHERE sku = $1 RETURNING sku, qty, price, attrs")
            restocked = [await restock.fetchrow(f"SKU-{i:03}", 10) for i in (1, 2, 3)]
            labels = [r.label() for r in restocked]
            kinds = [type(r).__name__ for r in restocked]
            rows = await con.fetchmany(
                "UPDATE items SET attrs = attrs || $2 WHERE sku = $1 RETURNING sku, attrs",
                [("SKU-004", {"sale": True}), ("SKU-005", {"sale": False})])
            fetched_many = [(r["sku"], r["attrs"]) for r in rows]

        async def stock_value(color: str) -> Any:
            return await pool.fetchrow(
                "SELECT count(*) AS n, sum(qty * price) AS value, "
                "(jsonb_agg(attrs ORDER BY sku)) -> 0 AS sample "
                "FROM items WHERE attrs->>'color' = $1", color)

        by_color = await asyncio.gather(stock_value("red"), stock_value("blue"))
        low = await pool.fetch("SELECT sku, qty, price, attrs FROM items WHERE qty < $1 "
                               "ORDER BY qty, sku", 3)
        record_types = {type(r).__name__ for r in low}
        return (labels, kinds, fetched_many, [dict(r) for r in by_color],
                [(r.label(), r["price"], r["attrs"]) for r in low], record_types)
    finally:
        await pool.close()


def check_inventory_service(res: Any) -> None:
    labels, kinds, fetched_many, by_color, low, record_types = res
    assert labels == ["SKU-001 x13", "SKU-002 x16", "SKU-003 x19"]
    assert kinds == ["Item"] * 3 and record_types == {"Item"}
    assert fetched_many[0] == ("SKU-004", {"color": "red", "size": 0, "sale": True})
    assert sum(c["n"] for c in by_color) == 30
    assert isinstance(by_color[0]["value"], float)
    assert low and all(isinstance(p, float) for _, p, _ in low)


# -- the harness ----------------------------------------------------------------------------

Program = Callable[[Env], Awaitable[Any]]
PROGRAMS: dict[str, tuple[Program, Callable[[Any], None]]] = {
    "todo_app": (todo_app, check_todo_app),
    "bulk_loader": (bulk_loader, check_bulk_loader),
    "job_queue": (job_queue, check_job_queue),
    "paginated_report": (paginated_report, check_paginated_report),
    "locked_counter": (locked_counter, check_locked_counter),
    "error_handling": (error_handling, check_error_handling),
    "timeouts_and_retry": (timeouts_and_retry, check_timeouts_and_retry),
    "inventory_service": (inventory_service, check_inventory_service),
}

# The asyncpg run's result of each program, kept for the pg_client run.
_reference: dict[str, Any] = {}


def scrub(value: Any, schema: str) -> Any:
    """Replace the run's own schema name (it differs between runs) by a marker."""
    if isinstance(value, str):
        return value.replace(schema, "<schema>")
    if isinstance(value, list):
        return [scrub(v, schema) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub(v, schema) for v in value)
    if isinstance(value, set):
        return {scrub(v, schema) for v in value}
    if isinstance(value, dict):
        return {scrub(k, schema): scrub(v, schema) for k, v in value.items()}
    return value


async def run_program(cluster: Any, name: str, library: str) -> Any:
    program, check = PROGRAMS[name]
    lib, create_pool = LIBRARIES[library]
    schema = unique(f"prog_{name}")
    admin = await asyncpg.connect(cluster.dsn())
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            result = await asyncio.wait_for(
                program(Env(lib, create_pool, cluster.dsn(), schema)), 30)
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()
    result = scrub(result, schema)
    check(result)
    return result


async def reference(cluster: Any, name: str) -> Any:
    if name not in _reference:
        _reference[name] = await run_program(cluster, name, "asyncpg")
    return _reference[name]


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("name", list(PROGRAMS))
async def test_program(cluster: Any, name: str, library: str) -> None:
    result = await run_program(cluster, name, library)
    if library == "asyncpg":
        _reference[name] = result
        return
    assert result == await reference(cluster, name)
