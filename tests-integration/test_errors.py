"""Server errors: the exception class for each SQLSTATE, its fields, and the
state of the connection afterwards. Each case also runs through asyncpg and the
two exceptions are compared (class, fields, str())."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import (
    acon,
    close_quietly,
    con,
    con2,
    connect,
    exc,
    exc_base,
    ref_connect,
    unique,
    wait_for_condition,
)

__all__ = ["acon", "con", "con2"]


@pytest.fixture(scope="module")
async def tables(cluster: Any) -> Any:
    """Permanent tables (visible to both clients), dropped at the end."""
    c = await ref_connect(cluster)
    parent, child = unique("err_parent"), unique("err_child")
    await c.execute(
        f"""
        CREATE TABLE {parent} (id int CONSTRAINT {parent}_pk PRIMARY KEY,
                               v int NOT NULL CONSTRAINT {parent}_v_check CHECK (v >= 0),
                               u text CONSTRAINT {parent}_u_key UNIQUE);
        CREATE TABLE {child} (id int REFERENCES {parent} (id));
        INSERT INTO {parent} VALUES (1, 1, 'one');
        """
    )
    try:
        yield {"parent": parent, "child": child}
    finally:
        await c.execute(f"DROP TABLE {child}, {parent}")
        await c.close()


def _lineage(cls: type) -> list[str]:
    """Class names up the MRO, leaving out Python's own classes."""
    return [c.__name__ for c in cls.__mro__ if c.__module__ != "builtins"]


async def _both(con: Any, acon: Any, query: str, *args: Any) -> Any:
    """Run *query* on both clients; both must fail the same way. Returns ours."""
    with pytest.raises(Exception) as expected:
        await acon.execute(query, *args)
    with pytest.raises(exc.PostgresError) as got:
        await con.execute(query, *args)
    e, g = expected.value, got.value
    assert type(g).__name__ == type(e).__name__
    assert _lineage(type(g)) == _lineage(type(e))
    assert g.as_dict() == e.as_dict()
    assert str(g) == str(e)
    # the connection is usable afterwards
    assert await con.fetchval("SELECT 1") == 1
    assert not con.is_in_transaction()
    return g


async def test_unique_violation(con: Any, acon: Any, tables: dict[str, str]) -> None:
    p = tables["parent"]
    e = await _both(con, acon, f"INSERT INTO {p} VALUES (1, 1, 'x')")
    assert isinstance(e, exc.UniqueViolationError)
    assert isinstance(e, exc.IntegrityConstraintViolationError)
    assert e.sqlstate == "23505"
    assert e.constraint_name == f"{p}_pk"
    assert e.table_name == p
    assert e.schema_name == "public"
    assert e.detail == "Key (id)=(1) already exists."
    assert e.severity == "ERROR" and e.severity_en == "ERROR"
    assert e.message.startswith("duplicate key value violates unique constraint")
    assert str(e) == f"{e.message}\nDETAIL:  {e.detail}"

    # with arguments (extended protocol)
    e = await _both(con, acon, f"INSERT INTO {p} VALUES ($1, 1, $2)", 2, "one")
    assert e.constraint_name == f"{p}_u_key"


async def test_other_integrity_errors(con: Any, acon: Any, tables: dict[str, str]) -> None:
    p, c = tables["parent"], tables["child"]
    e = await _both(con, acon, f"INSERT INTO {p} (id, v) VALUES (5, NULL)")
    assert isinstance(e, exc.NotNullViolationError)
    assert e.column_name == "v"
    e = await _both(con, acon, f"INSERT INTO {p} (id, v) VALUES (5, -1)")
    assert isinstance(e, exc.CheckViolationError)
    assert e.constraint_name == f"{p}_v_check"
    e = await _both(con, acon, f"INSERT INTO {c} VALUES (999)")
    assert isinstance(e, exc.ForeignKeyViolationError)
    assert e.table_name == c


async def test_undefined_table(con: Any, acon: Any) -> None:
    name = unique("nope")
    e = await _both(con, acon, f"SELECT * FROM {name}")
    assert isinstance(e, exc.UndefinedTableError)
    assert e.sqlstate == "42P01"
    assert e.position == "15"
    e = await _both(con, acon, f"SELECT * FROM {name} WHERE $1::int = 1", 1)
    assert isinstance(e, exc.UndefinedTableError)


async def test_syntax_error_position(con: Any, acon: Any) -> None:
    e = await _both(con, acon, "SELECT 1 FROM WHERE")
    assert isinstance(e, exc.PostgresSyntaxError)
    assert isinstance(e, exc.SyntaxOrAccessError)
    assert e.sqlstate == "42601"
    assert e.position == "15"
    e = await _both(con, acon, "SELECT $1::int FRM x", 1)
    assert isinstance(e, exc.PostgresSyntaxError)
    assert e.position is not None


async def test_undefined_column_and_function(con: Any, acon: Any) -> None:
    e = await _both(con, acon, "SELECT no_such_column FROM pg_class")
    assert isinstance(e, exc.UndefinedColumnError)
    e = await _both(con, acon, "SELECT no_such_function(1)")
    assert isinstance(e, exc.UndefinedFunctionError)
    assert e.hint is not None


async def test_division_by_zero(con: Any, acon: Any) -> None:
    e = await _both(con, acon, "SELECT 1 / 0")
    assert isinstance(e, exc.DivisionByZeroError)
    assert isinstance(e, exc.DataError)
    assert e.sqlstate == "22012"
    e = await _both(con, acon, "SELECT $1::int / 0", 5)
    assert isinstance(e, exc.DivisionByZeroError)


@pytest.mark.parametrize(
    ("query", "cls"),
    [
        ("SELECT 'abc'::int", "InvalidTextRepresentationError"),
        ("SELECT 40000::int2", "NumericValueOutOfRangeError"),
        ("SELECT '2020-13-01'::date", "DatetimeFieldOverflowError"),
        (
            "SELECT repeat('x', 2)::varchar(1)::text, 'ab'::char(1), E'\\\\x1'::bytea",
            "InvalidParameterValueError",
        ),
        (
            "SELECT 1 FROM (SELECT 1) s(a) GROUP BY a HAVING 1 = 'x'",
            "InvalidTextRepresentationError",
        ),
        (
            "SELECT * FROM generate_series(1, 2) WHERE (SELECT generate_series(1, 2)) = 1",
            "CardinalityViolationError",
        ),
        ("SET no_such.thing_a TO 1; SHOW no_such_setting", "UndefinedObjectError"),
        ("DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'd', HINT = 'h'; END $$", "RaiseError"),
        ("DO $$ BEGIN ASSERT false, 'nope'; END $$", "AssertError"),
        (
            "DO $$ DECLARE x int; BEGIN SELECT 1 INTO STRICT x FROM generate_series(1, 2); END $$",
            "TooManyRowsError",
        ),
        ("DO $$ BEGIN RAISE SQLSTATE 'ZZ999'; END $$", "UnknownPostgresError"),
        ("DO $$ BEGIN RAISE SQLSTATE '22ZZZ'; END $$", "UnknownPostgresError"),
        ("DO $$ BEGIN RAISE SQLSTATE '40001'; END $$", "SerializationError"),
        ("DO $$ BEGIN RAISE SQLSTATE '40P01'; END $$", "DeadlockDetectedError"),
        ("DO $$ BEGIN RAISE SQLSTATE '57P01'; END $$", "AdminShutdownError"),
        ("DO $$ BEGIN RAISE SQLSTATE '08003'; END $$", "ConnectionDoesNotExistError"),
        ("DO $$ BEGIN RAISE SQLSTATE '0A000'; END $$", "FeatureNotSupportedError"),
        ("SELECT pg_advisory_unlock_all(), 1/0", "DivisionByZeroError"),
        ("CREATE TABLE pg_temp.x (a int); CREATE TABLE pg_temp.x (a int)", "DuplicateTableError"),
        ("SELECT 1; VACUUM", "ActiveSQLTransactionError"),
        ("DROP DATABASE no_such_database_at_all", "InvalidCatalogNameError"),
    ],
)
async def test_error_classes(con: Any, acon: Any, query: str, cls: str) -> None:
    try:
        e = await _both(con, acon, query)
    finally:
        for c in (con, acon):
            if c.is_in_transaction():
                await c.execute("ROLLBACK")
    assert type(e).__name__ == cls
    assert isinstance(e, exc.PostgresError)


async def test_raise_fields(con: Any, acon: Any) -> None:
    e = await _both(
        con,
        acon,
        "DO $$ BEGIN RAISE EXCEPTION 'boom %', 1 USING DETAIL = 'd', HINT = 'h', "
        "COLUMN = 'c', CONSTRAINT = 'k', DATATYPE = 'dt', TABLE = 'tb', SCHEMA = 'sc'; END $$",
    )
    assert isinstance(e, exc.RaiseError)
    assert (e.message, e.detail, e.hint) == ("boom 1", "d", "h")
    assert (e.column_name, e.constraint_name, e.data_type_name, e.table_name, e.schema_name) == (
        "c",
        "k",
        "dt",
        "tb",
        "sc",
    )
    assert e.context.startswith("PL/pgSQL function")
    assert e.server_source_function == "exec_stmt_raise"
    assert str(e) == "boom 1\nDETAIL:  d\nHINT:  h"
    d = e.as_dict()
    assert d["sqlstate"] == "P0001" and d["hint"] == "h"


async def test_internal_query(con: Any, acon: Any) -> None:
    e = await _both(con, acon, "DO $$ BEGIN EXECUTE 'SELECT 1 FROM nowhere_at_all'; END $$")
    assert isinstance(e, exc.UndefinedTableError)
    assert e.internal_query == "SELECT 1 FROM nowhere_at_all"
    assert e.internal_position == "15"


async def test_error_in_prepare_and_bind_keeps_connection(con: Any) -> None:
    for _ in range(3):
        with pytest.raises(exc.DivisionByZeroError):
            await con.fetch("SELECT 1 / $1::int", 0)
        with pytest.raises(exc.InvalidTextRepresentationError):
            await con.fetchval("SELECT $1::text::int", "abc")
        with pytest.raises(exc.PostgresSyntaxError):
            await con.fetchrow("SELEKT $1", 1)
    # rows before the error are not returned; the statement is still usable
    with pytest.raises(exc.DivisionByZeroError):
        await con.fetch("SELECT 10 / (3 - g) FROM generate_series(1, 5) g")
    assert await con.fetch("SELECT 1 / $1::int", 1) == [(1,)]
    assert not con.is_in_transaction()


async def test_query_canceled_by_statement_timeout(con: Any, acon: Any) -> None:
    for c in (con, acon):
        await c.execute("SET statement_timeout = '100ms'")
    e = await _both(con, acon, "SELECT pg_sleep(5)")
    assert isinstance(e, exc.QueryCanceledError)
    assert e.sqlstate == "57014"
    assert isinstance(e, exc.OperatorInterventionError)
    await con.execute("RESET statement_timeout")
    assert await con.fetchval("SELECT pg_sleep(0.2)::text") == ""


async def test_deadlock_detected(cluster: Any, tables: dict[str, str]) -> None:
    t = unique("dl")
    a, b = await connect(cluster), await connect(cluster)
    try:
        await a.execute(
            f"CREATE TABLE {t} (id int PRIMARY KEY, v int);INSERT INTO {t} VALUES (1, 0), (2, 0)"
        )
        for c in (a, b):
            await c.execute("SET deadlock_timeout = '100ms'")
            await c.execute("BEGIN")
        await a.execute(f"UPDATE {t} SET v = 1 WHERE id = 1")
        await b.execute(f"UPDATE {t} SET v = 1 WHERE id = 2")
        results = await asyncio.gather(
            a.execute(f"UPDATE {t} SET v = 2 WHERE id = 2"),
            b.execute(f"UPDATE {t} SET v = 2 WHERE id = 1"),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1
        assert isinstance(errors[0], exc.DeadlockDetectedError)
        assert isinstance(errors[0], exc.TransactionRollbackError)
        assert errors[0].sqlstate == "40P01"
        for c in (a, b):
            await c.execute("ROLLBACK")
            assert await c.fetchval("SELECT 1") == 1
    finally:
        await a.execute(f"DROP TABLE IF EXISTS {t}")
        await close_quietly(a)
        await close_quietly(b)


async def test_serialization_failure(cluster: Any) -> None:
    t = unique("ser")
    a, b = await connect(cluster), await connect(cluster)
    try:
        await a.execute(
            f"CREATE TABLE {t} (id int PRIMARY KEY, v int); INSERT INTO {t} VALUES (1, 0)"
        )
        ta = a.transaction(isolation="repeatable_read")
        tb = b.transaction(isolation="repeatable_read")
        await ta.start()
        await tb.start()
        assert await a.fetchval(f"SELECT v FROM {t}") == 0
        assert await b.fetchval(f"SELECT v FROM {t}") == 0
        await a.execute(f"UPDATE {t} SET v = 1")
        await ta.commit()
        with pytest.raises(exc.SerializationError) as info:
            await b.execute(f"UPDATE {t} SET v = 2")
        assert info.value.sqlstate == "40001"
        await tb.rollback()
        assert await b.fetchval(f"SELECT v FROM {t}") == 1
    finally:
        await a.execute(f"DROP TABLE IF EXISTS {t}")
        await close_quietly(a)
        await close_quietly(b)


async def test_terminated_while_idle(cluster: Any, con2: Any) -> None:
    """asyncpg: the connection notices, is_closed() turns True, and the next
    call raises InterfaceError('connection is closed')."""
    c = await connect(cluster)
    try:
        assert await con2.fetchval("SELECT pg_terminate_backend($1)", c.get_server_pid())
        assert await wait_for_condition(c.is_closed)
        with pytest.raises(exc.InterfaceError, match="connection is closed"):
            await c.fetchval("SELECT 1")
        with pytest.raises(exc.InterfaceError, match="connection is closed"):
            await c.execute("SELECT 1")
    finally:
        await close_quietly(c)


async def test_terminated_during_query(cluster: Any, con2: Any) -> None:
    """asyncpg raises ConnectionDoesNotExistError ("connection was closed in
    the middle of operation: terminating connection due to administrator
    command"), not the AdminShutdownError that the server's FATAL carries."""
    c = await connect(cluster)
    try:
        pid = c.get_server_pid()
        task = asyncio.ensure_future(c.fetchval("SELECT pg_sleep(30)"))

        async def running() -> bool:
            return bool(
                await con2.fetchval(
                    "SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1", pid
                )
            )

        assert await wait_for_condition(running)
        assert await con2.fetchval("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(exc.ConnectionDoesNotExistError) as info:
            await task
        assert "terminating connection due to administrator command" in str(info.value)
        assert isinstance(info.value, exc.PostgresConnectionError)
        assert c.is_closed()
        with pytest.raises(exc.InterfaceError):
            await c.fetchval("SELECT 1")
    finally:
        await close_quietly(c)


async def test_terminated_during_query_fatal_is_not_silent(cluster: Any, con2: Any) -> None:
    """Whatever the class, the error must be a PostgresError mentioning the
    server's reason, and the connection must end up closed."""
    c = await connect(cluster)
    try:
        task = asyncio.ensure_future(c.fetch("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.2)
        await con2.fetchval("SELECT pg_terminate_backend($1)", c.get_server_pid())
        with pytest.raises(exc.PostgresError, match="administrator command"):
            await task
        assert c.is_closed()
    finally:
        await close_quietly(c)


async def test_exception_hierarchy(con: Any) -> None:
    assert issubclass(exc.UniqueViolationError, exc.IntegrityConstraintViolationError)
    assert issubclass(exc.PostgresError, exc_base.PostgresMessage)
    assert issubclass(exc.PostgresError, Exception)
    assert issubclass(exc.UnknownPostgresError, exc.FatalPostgresError)
    assert issubclass(exc.InterfaceError, Exception)
    assert not issubclass(exc.InterfaceError, exc.PostgresError)
    assert issubclass(exc.PostgresWarning, Warning)
    assert issubclass(exc.ClientConfigurationError, ValueError)
    assert issubclass(exc.InvalidCachedStatementError, exc.FeatureNotSupportedError)
    # the interface-level DataError lives on in exceptions._base (a ValueError),
    # shadowed at the top level by the SQLSTATE 22000 class
    assert issubclass(exc_base.DataError, exc.InterfaceError)
    assert issubclass(exc_base.DataError, ValueError)
    assert exc_base.DataError is not exc.DataError
    assert issubclass(exc.DataError, exc.PostgresError)
    e = exc.UniqueViolationError("custom")
    assert e.sqlstate == "23505"
    assert str(e) == "custom"
