"""Connection-level queries against a real server: execute/fetch*, timeouts,
cancellation, argument errors, connection attributes and callbacks.

Expectations are asyncpg's; where that is easy, the same call is made through
asyncpg (``acon``) and the results are compared.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import (
    acon,
    backend_gone,
    close_quietly,
    con,
    con2,
    connect,
    exc,
    pg,
    pg_connection,
    ref,
    unique,
    wait_for_condition,
)

__all__ = ["acon", "con", "con2"]  # fixtures used by name


async def _status(c: Any) -> tuple[bool, int]:
    """(in transaction?, 1) after a trivial query: proves the connection works."""
    return c.is_in_transaction(), await c.fetchval("SELECT 1")


# -- execute ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "query", "status"),
    [
        ("", "SELECT 1", "SELECT 1"),
        ("", "SELECT generate_series(1, 5)", "SELECT 5"),
        ("", "CREATE TEMP TABLE {t} (a int)", "CREATE TABLE"),
        ("CREATE TEMP TABLE {t} (a int)", "INSERT INTO {t} VALUES (1), (2), (3)", "INSERT 0 3"),
        ("CREATE TEMP TABLE {t} AS SELECT 1 AS a", "UPDATE {t} SET a = 2", "UPDATE 1"),
        ("CREATE TEMP TABLE {t} AS SELECT 1 AS a", "DELETE FROM {t}", "DELETE 1"),
        ("CREATE TEMP TABLE {t} (a int)", "DROP TABLE {t}", "DROP TABLE"),
        ("", "SET application_name = 'x'", "SET"),
        ("", "DO $$ BEGIN END $$", "DO"),
        ("", "BEGIN; SELECT 1; COMMIT", "COMMIT"),
        ("", "SELECT 1; SELECT 2, 3 UNION ALL SELECT 4, 5", "SELECT 2"),
    ],
)
async def test_execute_status(con: Any, acon: Any, setup: str, query: str, status: str) -> None:
    for c in (con, acon):
        t = unique("ex")
        if setup:
            await c.execute(setup.format(t=t))
        assert await c.execute(query.format(t=t)) == status
    assert await _status(con) == (False, 1)


async def test_execute_multi_statement_simple_protocol(con: Any) -> None:
    t = unique("multi")
    result = await con.execute(
        f"""
        CREATE TEMP TABLE {t} (a int, b text);
        INSERT INTO {t} VALUES (1, 'one');
        INSERT INTO {t} VALUES (2, 'two'), (3, 'three');
        UPDATE {t} SET b = upper(b) WHERE a > 1;
        """
    )
    assert result == "UPDATE 2"
    rows = await con.fetch(f"SELECT a, b FROM {t} ORDER BY a")
    assert [tuple(r) for r in rows] == [(1, "one"), (2, "TWO"), (3, "THREE")]


async def test_execute_multi_statement_error_rolls_back_implicit_transaction(con: Any) -> None:
    t = unique("multi_err")
    await con.execute(f"CREATE TEMP TABLE {t} (a int)")
    with pytest.raises(exc.DivisionByZeroError):
        await con.execute(f"INSERT INTO {t} VALUES (1); SELECT 1/0; INSERT INTO {t} VALUES (2)")
    # A simple-protocol multi-statement string runs in one implicit transaction.
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 0
    assert await _status(con) == (False, 1)


async def test_execute_with_args(con: Any, acon: Any) -> None:
    for c in (con, acon):
        t = unique("exargs")
        await c.execute(f"CREATE TEMP TABLE {t} (a int, b text)")
        assert await c.execute(f"INSERT INTO {t} VALUES ($1, $2)", 1, "x") == "INSERT 0 1"
        assert (
            await c.execute(
                f"INSERT INTO {t} SELECT $1 + g, $2 FROM generate_series(1, 4) g", 10, None
            )
            == "INSERT 0 4"
        )
        assert await c.execute(f"UPDATE {t} SET b = $1 WHERE a > $2", "y", 11) == "UPDATE 3"
        assert await c.execute("SELECT $1::int", 7) == "SELECT 1"
        assert await c.fetchval(f"SELECT count(*) FROM {t} WHERE b = 'y'") == 3


async def test_execute_empty_query(con: Any) -> None:
    # asyncpg 0.32 crashes here with AttributeError (None.decode()): an
    # EmptyQueryResponse has no command tag. The sane result is an empty status.
    assert await con.execute("") == ""
    assert await con.fetch("") == []
    assert await con.fetchval("") is None
    assert await con.fetchrow("") is None
    assert await _status(con) == (False, 1)


async def test_execute_with_args_multiple_statements_is_an_error(con: Any) -> None:
    with pytest.raises(exc.PostgresSyntaxError):
        await con.execute("SELECT $1::int; SELECT 2", 1)
    assert await _status(con) == (False, 1)


# -- fetch family ---------------------------------------------------------------


async def test_fetch_rows(con: Any, acon: Any) -> None:
    q = "SELECT g AS n, g::text AS s, g % 2 = 0 AS even FROM generate_series(1, $1) g"
    rows = await con.fetch(q, 4)
    assert isinstance(rows, list)
    assert [tuple(r) for r in rows] == [
        (1, "1", False),
        (2, "2", True),
        (3, "3", False),
        (4, "4", True),
    ]
    expected = await acon.fetch(q, 4)
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected]
    assert list(rows[0].keys()) == list(expected[0].keys()) == ["n", "s", "even"]


async def test_fetchrow(con: Any) -> None:
    row = await con.fetchrow("SELECT 1 AS a, 'b' AS b UNION ALL SELECT 2, 'c'")
    assert row is not None and tuple(row) == (1, "b")
    assert row["b"] == "b"
    assert await con.fetchrow("SELECT 1 WHERE false") is None


async def test_fetchval(con: Any) -> None:
    assert await con.fetchval("SELECT 10, 20, 30") == 10
    assert await con.fetchval("SELECT 10, 20, 30", column=2) == 30
    assert await con.fetchval("SELECT $1::int, $2::text", 1, "x", column=1) == "x"
    assert await con.fetchval("SELECT NULL") is None
    assert await con.fetchval("SELECT 1 WHERE false") is None
    with pytest.raises(IndexError):
        await con.fetchval("SELECT 1, 2", column=2)
    assert await _status(con) == (False, 1)


async def test_no_rows(con: Any) -> None:
    q = "SELECT a FROM (VALUES (1)) v(a) WHERE a > $1"
    assert await con.fetch(q, 5) == []
    assert await con.fetchrow(q, 5) is None
    assert await con.fetchval(q, 5) is None


async def test_fetchmany(con: Any, acon: Any) -> None:
    results = []
    for c in (con, acon):
        t = unique("fm")
        await c.execute(f"CREATE TEMP TABLE {t} (a int, b text)")
        rows = await c.fetchmany(
            f"INSERT INTO {t} VALUES ($1, $2) RETURNING a * 10 AS x, b",
            [(1, "a"), (2, "b"), (3, None)],
        )
        results.append(rows)
        assert await c.fetchval(f"SELECT count(*) FROM {t}") == 3
        # Statements returning no rows give an empty list.
        assert await c.fetchmany(f"UPDATE {t} SET b = $1 WHERE a = $2", [("z", 1)]) == []
        assert await c.fetchmany(f"SELECT $1::int FROM {t} WHERE false", []) == []
    assert [tuple(r) for r in results[0]] == [(10, "a"), (20, "b"), (30, None)]
    assert [tuple(r) for r in results[0]] == [tuple(r) for r in results[1]]
    assert [list(r.keys()) for r in results[0]] == [list(r.keys()) for r in results[1]]


async def test_fetchmany_select_multiple_rows_per_args(con: Any) -> None:
    rows = await con.fetchmany("SELECT g FROM generate_series(1, $1) g", [(2,), (3,)])
    assert [r[0] for r in rows] == [1, 2, 1, 2, 3]


# -- executemany ----------------------------------------------------------------


async def test_executemany(con: Any) -> None:
    t = unique("em")
    await con.execute(f"CREATE TEMP TABLE {t} (a int PRIMARY KEY, b text)")
    result = await con.executemany(
        f"INSERT INTO {t} VALUES ($1, $2)", [(i, str(i)) for i in range(100)]
    )
    assert result is None
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 100
    # generators work too
    await con.executemany(f"UPDATE {t} SET b = $2 WHERE a = $1", ((i, "u") for i in range(10)))
    assert await con.fetchval(f"SELECT count(*) FROM {t} WHERE b = 'u'") == 10
    # empty args: nothing happens
    await con.executemany(f"INSERT INTO {t} VALUES ($1, $2)", [])
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 100


async def test_executemany_is_atomic(con: Any) -> None:
    t = unique("ematom")
    await con.execute(f"CREATE TEMP TABLE {t} (a int PRIMARY KEY)")
    with pytest.raises(exc.UniqueViolationError):
        await con.executemany(f"INSERT INTO {t} VALUES ($1)", [(1,), (2,), (3,), (2,), (5,)])
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 0
    assert await _status(con) == (False, 1)


async def test_executemany_bad_argument_is_atomic(con: Any) -> None:
    t = unique("ematom2")
    await con.execute(f"CREATE TEMP TABLE {t} (a int)")
    with pytest.raises(exc.DataError, match=r"\$1"):
        await con.executemany(f"INSERT INTO {t} VALUES ($1)", [(1,), (2,), ("three",)])
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 0
    assert await _status(con) == (False, 1)


async def test_executemany_inside_transaction(con: Any) -> None:
    t = unique("emtx")
    await con.execute(f"CREATE TEMP TABLE {t} (a int PRIMARY KEY)")
    async with con.transaction():
        await con.execute(f"INSERT INTO {t} VALUES (100)")
        await con.executemany(f"INSERT INTO {t} VALUES ($1)", [(1,), (2,)])
        assert con.is_in_transaction()
        assert await con.fetchval(f"SELECT count(*) FROM {t}") == 3
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 3

    with pytest.raises(exc.UniqueViolationError):
        async with con.transaction():
            await con.execute(f"INSERT INTO {t} VALUES (200)")
            await con.executemany(f"INSERT INTO {t} VALUES ($1)", [(3,), (1,)])
    assert await con.fetchval(f"SELECT count(*) FROM {t}") == 3
    assert not con.is_in_transaction()


# -- timeouts and cancellation ------------------------------------------------------


async def test_timeout_argument(con: Any, con2: Any) -> None:
    pid = con.get_server_pid()
    with pytest.raises(asyncio.TimeoutError):
        await con.fetchval("SELECT pg_sleep(30)", timeout=0.2)
    assert await backend_gone(con2, pid)
    assert await _status(con) == (False, 1)
    assert await con.fetchval("SELECT $1::int + 1", 41) == 42


@pytest.mark.parametrize("method", ["execute", "fetch", "fetchrow", "fetchval"])
async def test_timeout_argument_every_method(con: Any, method: str) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await getattr(con, method)("SELECT pg_sleep(30)", timeout=0.1)
    assert await _status(con) == (False, 1)


async def test_timeout_simple_protocol(con: Any) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await con.execute("SELECT 1; SELECT pg_sleep(30)", timeout=0.1)
    assert await _status(con) == (False, 1)


async def test_command_timeout(cluster: Any, con2: Any) -> None:
    c = await connect(cluster, command_timeout=0.2)
    try:
        pid = c.get_server_pid()
        with pytest.raises(asyncio.TimeoutError):
            await c.fetch("SELECT pg_sleep(30)")
        assert await backend_gone(con2, pid)
        assert await _status(c) == (False, 1)
        # A per-call timeout overrides command_timeout.
        assert await c.fetchval("SELECT pg_sleep(0.4)::text", timeout=10) == ""
        with pytest.raises(asyncio.TimeoutError):
            await c.execute("SELECT pg_sleep(30)")
        assert await _status(c) == (False, 1)
    finally:
        await close_quietly(c)


async def test_timeout_inside_transaction(con: Any) -> None:
    tr = con.transaction()
    await tr.start()
    with pytest.raises(asyncio.TimeoutError):
        await con.fetchval("SELECT pg_sleep(30)", timeout=0.1)
    # The statement was cancelled, so the transaction is aborted.
    assert con.is_in_transaction()
    with pytest.raises(exc.InFailedSQLTransactionError):
        await con.fetchval("SELECT 1")
    await tr.rollback()
    assert await _status(con) == (False, 1)


async def test_cancel_task_mid_query(con: Any, con2: Any) -> None:
    pid = con.get_server_pid()
    task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(30)"))

    async def running() -> bool:
        return (
            await con2.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
        ) == "active"

    assert await wait_for_condition(running, timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The server stops running the query promptly (a CancelRequest was sent).
    assert await backend_gone(con2, pid, timeout=1.0)
    assert await _status(con) == (False, 1)
    assert await con.fetch("SELECT generate_series(1, 3)") == await con.fetch(
        "SELECT generate_series(1, 3)"
    )


async def test_cancel_task_mid_query_with_args(con: Any, con2: Any) -> None:
    pid = con.get_server_pid()
    task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep($1)", 30.0))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await backend_gone(con2, pid, timeout=1.0)
    assert await con.fetchval("SELECT $1::text", "ok") == "ok"
    assert not con.is_in_transaction()


async def test_concurrent_operations_rejected(con: Any) -> None:
    task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(0.5)"))
    await asyncio.sleep(0.05)
    for call in (
        con.fetchval("SELECT 1"),
        con.execute("SELECT 1"),
        con.fetch("SELECT $1::int", 1),
    ):
        with pytest.raises(exc.InterfaceError, match="another operation is in progress"):
            await call
    assert await task is None  # void
    assert await _status(con) == (False, 1)


# -- argument errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "args"),
    [
        ("SELECT $1::int", (1, 2)),
        ("SELECT $1::int, $2::int", (1,)),
        ("SELECT 1", (1,)),
        ("SELECT $1::int, $2::int, $3::int", ()),
    ],
)
async def test_wrong_argument_count(con: Any, acon: Any, query: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(ref.InterfaceError) as expected:
        await acon.fetch(query, *args)
    with pytest.raises(exc.InterfaceError) as got:
        await con.fetch(query, *args)
    assert got.value.args == expected.value.args
    assert got.value.hint == expected.value.hint
    assert str(got.value) == str(expected.value)
    assert await _status(con) == (False, 1)


@pytest.mark.parametrize(
    ("query", "args", "n"),
    [
        ("SELECT $1::int", ("x",), 1),
        ("SELECT $1::int, $2::text", (1, 2), 2),
        ("SELECT $1::int", (2**40,), 1),
        ("SELECT $1::bool, $2::uuid, $3::date", (True, "nope", "2020-01-01"), 2),
    ],
)
async def test_bad_argument_type(
    con: Any, acon: Any, query: str, args: tuple[Any, ...], n: int
) -> None:
    with pytest.raises(ref.exceptions.DataError) as expected:
        await acon.fetch(query, *args)
    with pytest.raises(exc.DataError) as got:
        await con.fetch(query, *args)
    assert f"invalid input for query argument ${n}:" in str(got.value)
    assert str(got.value).split(":")[0] == str(expected.value).split(":")[0]
    assert await _status(con) == (False, 1)


async def test_nul_in_query_text(con: Any, acon: Any) -> None:
    # asyncpg sends the text as is and PostgreSQL rejects the message with
    # ProtocolViolationError; the connection stays usable.
    for c in (acon, con):
        with pytest.raises(exc.ProtocolViolationError if c is con else ref.ProtocolViolationError):
            await c.execute("SELECT 1\x00")
        assert await _status(c) == (False, 1)
        with pytest.raises(exc.ProtocolViolationError if c is con else ref.ProtocolViolationError):
            await c.fetch("SELECT 'a\x00b'")
        assert await _status(c) == (False, 1)


async def test_nul_in_text_argument(con: Any) -> None:
    with pytest.raises(exc.CharacterNotInRepertoireError):
        await con.fetchval("SELECT $1::text", "a\x00b")
    assert await _status(con) == (False, 1)


# -- connect options and connection attributes ----------------------------------------


async def test_server_settings(cluster: Any, con2: Any) -> None:
    name = unique("app")
    settings = {"application_name": name, "search_path": "pg_catalog"}
    c = await connect(cluster, server_settings=settings)
    try:
        assert await c.fetchval("SHOW application_name") == name
        assert await c.fetchval("SHOW search_path") == "pg_catalog"
        assert c.get_settings().application_name == name
        seen = await con2.fetchval(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1", c.get_server_pid()
        )
        assert seen == name
    finally:
        await close_quietly(c)


async def test_connection_class(cluster: Any) -> None:
    class MyConnection(pg.Connection):  # type: ignore[misc, name-defined]
        def hello(self) -> str:
            return "hello"

    c = await connect(cluster, connection_class=MyConnection)
    try:
        assert type(c) is MyConnection
        assert isinstance(c, pg.Connection)
        assert c.hello() == "hello"
        assert await c.fetchval("SELECT 2") == 2
    finally:
        await close_quietly(c)

    class NotAConnection:
        pass

    with pytest.raises(exc.InterfaceError):
        await connect(cluster, connection_class=NotAConnection)


async def test_get_server_pid(con: Any) -> None:
    pid = con.get_server_pid()
    assert isinstance(pid, int) and pid > 0
    assert pid == await con.fetchval("SELECT pg_backend_pid()")


async def test_get_server_version(con: Any, acon: Any) -> None:
    v = con.get_server_version()
    assert isinstance(v, pg.ServerVersion)
    assert v == acon.get_server_version()
    num = int(await con.fetchval("SHOW server_version_num"))
    assert v.major == num // 10000
    assert (v.minor, v.micro) == (0, num % 10000)  # asyncpg's reading of "15.4"
    assert v.releaselevel == "final"
    assert tuple(v)[:2] == (v.major, v.minor)


async def test_get_settings(con: Any, acon: Any) -> None:
    s = con.get_settings()
    assert s.client_encoding == "UTF8"
    assert s.server_version == acon.get_settings().server_version
    assert s.integer_datetimes == "on"
    assert s.is_superuser == "on"
    assert s.TimeZone == acon.get_settings().TimeZone
    with pytest.raises(AttributeError):
        s.no_such_setting  # noqa: B018
    # ParameterStatus updates are reflected.
    await con.execute("SET application_name = 'settings_test'")
    assert con.get_settings().application_name == "settings_test"


async def test_close(cluster: Any) -> None:
    c = await connect(cluster)
    assert not c.is_closed()
    await c.close()
    assert c.is_closed()
    await c.close()  # idempotent
    with pytest.raises(exc.InterfaceError, match="connection is closed"):
        await c.fetchval("SELECT 1")
    with pytest.raises(exc.InterfaceError, match="connection is closed"):
        await c.execute("SELECT 1")


async def test_terminate(cluster: Any, con2: Any) -> None:
    c = await connect(cluster)
    pid = c.get_server_pid()
    c.terminate()
    assert c.is_closed()
    with pytest.raises(exc.InterfaceError):
        await c.fetchval("SELECT 1")

    async def gone() -> bool:
        return not await con2.fetchval(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid
        )

    assert await wait_for_condition(gone)


async def test_termination_listener_on_close(cluster: Any) -> None:
    called: list[Any] = []
    c = await connect(cluster)
    c.add_termination_listener(lambda conn: called.append(conn))
    await c.close()
    assert await wait_for_condition(lambda: called)
    assert called == [c]


async def test_termination_listener_async_and_removed(cluster: Any) -> None:
    called: list[str] = []

    async def async_cb(conn: Any) -> None:
        called.append("async")

    def removed(conn: Any) -> None:
        called.append("removed")

    c = await connect(cluster)
    c.add_termination_listener(async_cb)
    c.add_termination_listener(removed)
    c.remove_termination_listener(removed)
    c.terminate()
    assert await wait_for_condition(lambda: called)
    await asyncio.sleep(0.05)
    assert called == ["async"]


async def test_termination_listener_on_backend_terminate(cluster: Any, con2: Any) -> None:
    called: list[Any] = []
    c = await connect(cluster)
    try:
        c.add_termination_listener(lambda conn: called.append(conn))
        assert await con2.fetchval("SELECT pg_terminate_backend($1)", c.get_server_pid())
        assert await wait_for_condition(lambda: called)
        assert called == [c]
        assert c.is_closed()
    finally:
        await close_quietly(c)


async def test_query_logger(con: Any, acon: Any) -> None:
    def collect(c: Any) -> list[Any]:
        records: list[Any] = []
        c.add_query_logger(records.append)
        return records

    got, expected = collect(con), collect(acon)
    for c in (con, acon):
        await c.execute("SELECT 1")
        await c.fetchval("SELECT $1::int", 5, timeout=10)
        with pytest.raises(Exception):  # noqa: B017
            await c.execute("SELECT 1/0")
        await c.fetch("SELECT $1::text, $2::int", "a", None)
    assert await wait_for_condition(lambda: len(got) >= len(expected) == 4)

    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert isinstance(g, pg_connection.LoggedQuery)
        assert g._fields == e._fields
        assert g.query == e.query
        assert tuple(g.args) == tuple(e.args)
        assert g.timeout == e.timeout
        assert type(g.exception).__name__ == type(e.exception).__name__
        assert isinstance(g.elapsed, float) and g.elapsed >= 0
        assert g.conn_addr == e.conn_addr
        assert g.conn_params.user == e.conn_params.user
        assert g.conn_params.database == e.conn_params.database
    assert got[0].query == "SELECT 1" and got[0].exception is None
    assert isinstance(got[2].exception, exc.DivisionByZeroError)


async def test_query_logger_context_manager(con: Any) -> None:
    seen: list[str] = []

    async def async_logger(record: Any) -> None:
        seen.append(record.query)

    with con.query_logger(async_logger):
        await con.execute("SELECT 'inside'")
    await con.execute("SELECT 'outside'")
    assert await wait_for_condition(lambda: seen)
    await asyncio.sleep(0.05)
    assert seen == ["SELECT 'inside'"]

    def sync_logger(record: Any) -> None:
        seen.append(record.query)

    con.add_query_logger(sync_logger)
    await con.fetchval("SELECT 'again'")
    con.remove_query_logger(sync_logger)
    await con.fetchval("SELECT 'not logged'")
    await asyncio.sleep(0.05)
    assert seen == ["SELECT 'inside'", "SELECT 'again'"]


async def test_log_listener_notice(con: Any) -> None:
    messages: list[tuple[Any, Any]] = []
    con.add_log_listener(lambda c, m: messages.append((c, m)))
    await con.execute(
        "DO $$ BEGIN RAISE NOTICE 'hello %', 42 USING HINT = 'a hint', DETAIL = 'a detail'; END $$"
    )
    assert await wait_for_condition(lambda: messages)
    c, m = messages[0]
    assert c is con
    assert isinstance(m, exc.PostgresLogMessage)
    assert m.message == "hello 42"
    assert m.severity == "NOTICE"
    assert m.sqlstate == "00000"
    assert m.hint == "a hint"
    assert m.detail == "a detail"


async def test_log_listener_warning_class_and_async(con: Any, acon: Any) -> None:
    got: list[Any] = []
    expected: list[Any] = []

    async def cb(c: Any, m: Any) -> None:
        got.append(m)

    con.add_log_listener(cb)
    acon.add_log_listener(lambda c, m: expected.append(m))
    q = "DO $$ BEGIN RAISE WARNING USING ERRCODE = '01004', MESSAGE = 'truncated'; END $$"
    await con.execute(q)
    await acon.execute(q)
    assert await wait_for_condition(lambda: got and expected)
    assert type(got[0]).__name__ == type(expected[0]).__name__ == "StringDataRightTruncation"
    assert isinstance(got[0], exc.PostgresWarning)
    assert got[0].as_dict().keys() == expected[0].as_dict().keys()

    con.remove_log_listener(cb)
    await con.execute("DO $$ BEGIN RAISE NOTICE 'ignored'; END $$")
    await asyncio.sleep(0.05)
    assert len(got) == 1


async def test_reset(con: Any, con2: Any) -> None:
    assert con.get_reset_query() == (
        "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;"
    )
    channel = unique("reset_chan")
    await con.execute("SET application_name = 'dirty'")
    await con.execute("SELECT pg_advisory_lock(424242)")
    await con.add_listener(channel, lambda *a: None)
    await con.reset()
    assert await con.fetchval("SHOW application_name") == ""
    assert (
        await con.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        == 0
    )
    assert await con.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
    assert not con.is_in_transaction()


async def test_start_reset(con: Any, con2: Any) -> None:
    channel = unique("start_reset_chan")
    pid = con.get_server_pid()
    locks = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1")
    default_work_mem = await con2.fetchval("SHOW work_mem")
    await con.execute("SET work_mem = '7777kB'")
    await con.execute("SELECT pg_advisory_lock(424243)")
    await con.add_listener(channel, lambda *a: None)
    await con.execute("BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT 1; COMMIT")
    await con.execute("BEGIN")
    assert await con.start_reset() == "RESET"
    assert not con.is_in_transaction()
    assert await con.fetchval("SHOW work_mem") == default_work_mem
    assert await con2.fetchval(locks, pid) == 0
    assert await con.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
    assert await con.fetchval("SELECT count(*) FROM pg_cursors WHERE name = 'c'") == 0

    # Nobody waits for the outcome: the reset still runs to its end.
    await con.execute("SELECT pg_advisory_lock(424243)")
    fut = con.start_reset(timeout=30)
    fut.cancel()

    async def answers() -> bool:
        # The connection is busy until the reset's reply has come.
        try:
            return bool(await con.fetchval("SELECT 41 + 1") == 42)
        except exc.InterfaceError:
            return False

    assert await wait_for_condition(answers)
    assert await con2.fetchval(locks, pid) == 0
    assert await con.fetchval("SELECT 1") == 1


async def test_start_reset_general_path(con: Any) -> None:
    # With a query logger: the reset is logged, as reset() is.
    logged: list[str] = []
    con.add_query_logger(lambda record: logged.append(record.query))
    await con.execute("SET work_mem = '7777kB'")
    assert await con.start_reset() == "RESET"
    assert logged[-1] == con.get_reset_query()
    assert await con.fetchval("SHOW work_mem") != "7777kB"

    # Another operation in progress: the future carries the error.
    slow = asyncio.ensure_future(con.execute("SELECT pg_sleep(0.2)"))
    await asyncio.sleep(0.05)
    with pytest.raises(exc.InterfaceError, match="another operation"):
        await con.start_reset()
    await slow

    await con.close()
    with pytest.raises(exc.InterfaceError):
        con.start_reset()


async def test_reset_rolls_back_manual_transaction(con: Any) -> None:
    loop = asyncio.get_running_loop()
    contexts: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    try:
        await con.execute("BEGIN")
        assert con.is_in_transaction()
        await con.reset()
    finally:
        loop.set_exception_handler(old)
    assert not con.is_in_transaction()
    assert await con.fetchval("SELECT 1") == 1


async def test_is_in_transaction(con: Any) -> None:
    assert not con.is_in_transaction()
    await con.execute("BEGIN")
    assert con.is_in_transaction()
    with pytest.raises(exc.DivisionByZeroError):
        await con.execute("SELECT 1/0")
    assert con.is_in_transaction()  # failed, still in a transaction block
    await con.execute("ROLLBACK")
    assert not con.is_in_transaction()
    async with con.transaction():
        assert con.is_in_transaction()
    assert not con.is_in_transaction()


async def test_cached_statement_path_logs_and_fails_like_the_first_call(con: Any) -> None:
    """The second run of a query takes the cached path (no coroutine in
    between): same results, same query log entries, same errors, and the
    connection is free again after each."""
    records: list[Any] = []
    con.add_query_logger(records.append)
    try:
        q = "SELECT 10 / $1::int"
        for _ in range(3):
            assert await con.fetchval(q, 2) == 5
            assert (await con.fetchrow(q, 5))[0] == 2
            assert [tuple(r) for r in await con.fetch(q, 10)] == [(1,)]
            assert await con.execute(q, 1) == "SELECT 1"
            with pytest.raises(exc.DivisionByZeroError):
                await con.fetchval(q, 0)
            # Encoding errors are raised before anything is sent.
            with pytest.raises(exc.DataError):
                await con.fetchval(q, "x")
            with pytest.raises(exc.InterfaceError):
                await con.fetchval(q)
        assert await _status(con) == (False, 1)
        assert await wait_for_condition(lambda: len(records) >= 22)
        entries = [(r.query, tuple(r.args), type(r.exception).__name__) for r in records[:7]]
        assert entries == [
            (q, (2,), "NoneType"), (q, (5,), "NoneType"), (q, (10,), "NoneType"),
            (q, (1,), "NoneType"), (q, (0,), "DivisionByZeroError"), (q, ("x",), "DataError"),
            (q, (), "InterfaceError"),
        ]
        assert [(r.query, tuple(r.args)) for r in records[7:21]] == [
            (e[0], e[1]) for e in entries] * 2
        assert all(r.elapsed >= 0 for r in records)
    finally:
        con.remove_query_logger(records.append)


async def test_cached_statement_path_cancelled_and_busy(con: Any) -> None:
    q = "SELECT pg_sleep($1::float8)"
    await con.fetchval(q, 0)  # cached from now on
    task = asyncio.ensure_future(con.fetchval(q, 30))
    await asyncio.sleep(0.2)
    # One operation at a time, as in asyncpg.
    with pytest.raises(exc.InterfaceError, match="another operation is in progress"):
        await con.fetchval(q, 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The server-side query was cancelled; the connection works at once.
    assert await _status(con) == (False, 1)
    assert await con.fetchval(q, 0) is None
    assert await con.fetchval("SELECT 1 + $1::int", 1) == 2


async def test_cached_statement_path_reprepares_after_schema_change(con: Any) -> None:
    t = unique("fast_sc")
    await con.execute(f"CREATE TABLE {t} (a int, b text); INSERT INTO {t} VALUES (1, 'x')")
    try:
        q = f"SELECT * FROM {t} WHERE a = $1"
        assert [tuple(r) for r in await con.fetch(q, 1)] == [(1, "x")]
        await con.execute(f"ALTER TABLE {t} ALTER COLUMN b TYPE varchar(10)")
        await con.execute(f"ALTER TABLE {t} ADD COLUMN c int DEFAULT 7")
        # Cached statement, new row shape: prepared again once, transparently.
        assert [tuple(r) for r in await con.fetch(q, 1)] == [(1, "x", 7)]
        assert (await con.fetchrow(q, 1))["c"] == 7
        assert await _status(con) == (False, 1)
    finally:
        await con.execute(f"DROP TABLE {t}")
