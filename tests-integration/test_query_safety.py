"""SQL text built by the client, and server text shown by it (RELIABILITY.md Q2, Q5).

Q2: the quoting helpers behind COPY (``pg_client._copy.quote_ident`` /
``quote_literal``, used by ``copy_to_table`` and ``copy_records_to_table``
for table and column names) and the LISTEN channel quoting behind
``add_listener``, fed arbitrary ``str`` by Hypothesis: quotes, backslashes,
``--``, ``/*``, ``$tag$``, non-ASCII, NUL and lone surrogates. A name either
round-trips exactly (the server's catalog, a result column, the NOTIFY
channel a callback gets) or is refused with ``ValueError`` before anything
is sent (NUL, lone surrogates: CVE-2025-1094); never an extra statement
(a canary table survives; CVE-2024-27289). Tables with those names are
created by the server itself from a bind parameter (``format('%I')``
through asyncpg), not by the code under test.

Q5: error and notice text from a scripted server (``fakeserver.py``) with
``%s``, ``{0}``, ``%(x)s``, ANSI escapes and a 1 MB message: the exception
and the log-listener message carry it verbatim, ``str()``/``repr()`` work,
and the ``logging`` module can log them (server text is an argument, never
a format string).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import traceback
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import pg_client
from pg_client import _copy
from pg_wire.backend import error_response, notice_response
from pg_wire.messages import Query, ReadyForQuery, StartupMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeserver import FakeConn, FakeServer, expect, send, wait_closed

pytestmark = pytest.mark.timeout(180)

# On a failure Hypothesis imports libcst to print a patch, and that import
# warns (DeprecationWarning), which warnings-as-errors turns into an
# INTERNALERROR; import it once with the warning silenced (as
# test_types_roundtrip.py does).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

NAMEDATALEN = 64

# -- Q2: strategies ---------------------------------------------------------------------------

TOKENS = [
    '"', '""', "'", "''", "\\", "\\'", '\\"', "--", "-- x\n", "/*", "*/", "/* */", "$tag$",
    "$$", "$1", ";", " ", "\n", "\r\n", "\t", "E'", "U&\"", "%I", "%L", "%s", "{0}",
    '"; DROP TABLE canary; --', "'); DROP TABLE canary; --", "é", "Ω", "☃", "𝄞", "\u2028",
    "\ufeff", "\u200b", "\x7f", "\x1b[31m",
]
BAD = ["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\udc80"]  # NUL, lone surrogates

CLEAN_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
                     max_size=8)
CLEAN = st.lists(st.one_of(CLEAN_TEXT, st.sampled_from(TOKENS)), min_size=1,
                 max_size=6).map("".join).filter(bool)
DIRTY = st.tuples(CLEAN | st.just(""), st.sampled_from(BAD), CLEAN | st.just("")).map("".join)
# Every str Python can hold, surrogates and NUL included.
RAW = st.text(st.characters(exclude_categories=[]), max_size=30)
ANY = st.one_of(CLEAN, DIRTY, RAW)


def is_invalid(s: str) -> bool:
    return "\x00" in s or any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def fits_name(s: str) -> bool:
    """A valid identifier the server keeps as it is (no truncation to 63 bytes)."""
    return bool(s) and not is_invalid(s) and len(s.encode()) < NAMEDATALEN


SERVER_NAMES = st.one_of(CLEAN, DIRTY, RAW).filter(lambda s: fits_name(s) or is_invalid(s))


QSETTINGS = settings(max_examples=300, deadline=None, database=None,
                     phases=[Phase.explicit, Phase.generate, Phase.shrink],
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def unquote_ident(q: str) -> str:
    """Parse a double-quoted identifier; fail unless it is exactly one token."""
    assert len(q) >= 2 and q[0] == '"' and q[-1] == '"', q
    body = q[1:-1]
    assert '"' not in body.replace('""', ""), f"lone quote in {q!r}"
    return body.replace('""', '"')


def unquote_literal(q: str) -> str:
    """Parse a string literal (``'...'`` or ``E'...'``); fail unless it is exactly one token."""
    escaped = q.startswith("E'")
    assert q.endswith("'") and (escaped or q.startswith("'")) and len(q) >= (3 if escaped else 2)
    body = q[2:-1] if escaped else q[1:-1]
    # Without E the literal must not depend on standard_conforming_strings.
    assert escaped or "\\" not in body, q
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "'" or (escaped and c == "\\"):
            assert body[i + 1: i + 2] == c, f"lone {c!r} at {i} in {q!r}"
            i += 2
        else:
            i += 1
        out.append(c)
    return "".join(out)


# -- Q2: the helpers alone --------------------------------------------------------------------


@QSETTINGS
@given(ANY)
def test_q2_quote_helpers(s: str) -> None:
    if is_invalid(s):
        for helper in (_copy.quote_ident, _copy.quote_literal,
                       lambda v: _copy.column_list([v]), lambda v: _copy.table_ref(v, None),
                       lambda v: _copy.table_ref("t", v)):
            with pytest.raises(ValueError):
                helper(s)
        return
    assert unquote_ident(_copy.quote_ident(s)) == s
    assert unquote_literal(_copy.quote_literal(s)) == s
    assert _copy.column_list([s, "x"]) == f"({_copy.quote_ident(s)}, \"x\")"
    assert _copy.table_ref(s, None) == _copy.quote_ident(s)
    if s:  # an empty schema name means "no schema"
        assert _copy.table_ref(s, s) == f"{_copy.quote_ident(s)}.{_copy.quote_ident(s)}"


# -- Q2: against the server ------------------------------------------------------------------


class Session:
    """pg_client and asyncpg connections in a private event loop (Hypothesis is synchronous)."""

    def __init__(self, runner: asyncio.Runner, con: pg_client.Connection,
                 ref: asyncpg.Connection, schema: str, canary: str) -> None:
        self.runner, self.con, self.ref, self.schema, self.canary = runner, con, ref, schema, canary

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    def assert_canary(self) -> None:
        assert self.run(self.ref.fetchval(f"SELECT count(*) FROM {self.canary}")) == 1
        assert self.run(self.con.fetchval("SELECT 1")) == 1


@pytest.fixture
def session(cluster: Any) -> Iterator[Session]:
    schema = f"q2_{uuid.uuid4().hex[:8]}"
    canary = f"{schema}.canary"
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        ref = runner.run(asyncpg.connect(cluster.dsn()))
        con = runner.run(pg_client.connect(cluster.dsn()))
        try:
            # Helpers that build names on the server side, from bind parameters.
            runner.run(ref.execute(f"""
                CREATE SCHEMA {schema};
                CREATE TABLE {canary} (a int); INSERT INTO {canary} VALUES (1);
                CREATE FUNCTION {schema}.mk(n text) RETURNS void LANGUAGE plpgsql AS $f$
                BEGIN EXECUTE format('CREATE TABLE %I.%I (%I text)', '{schema}', n, n); END $f$;
                CREATE FUNCTION {schema}.rows(n text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
                BEGIN RETURN QUERY EXECUTE format('SELECT %I FROM %I.%I ORDER BY 1', n,
                                                  '{schema}', n); END $f$;
                CREATE FUNCTION {schema}.rm(n text) RETURNS void LANGUAGE plpgsql AS $f$
                BEGIN EXECUTE format('DROP TABLE %I.%I', '{schema}', n); END $f$;
            """))
            s = Session(runner, con, ref, schema, canary)
            yield s
            s.assert_canary()
            tables = runner.run(ref.fetchval(
                "SELECT count(*) FROM pg_class WHERE relnamespace = $1::regnamespace "
                "AND relkind = 'r'", schema))
            assert tables == 1, "a table was left behind (or created by an injection)"
        finally:
            runner.run(ref.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            runner.run(ref.close())
            runner.run(con.close())


def test_q2_select_column_names_and_literals(session: Session) -> None:
    con = session.con

    @QSETTINGS
    @given(SERVER_NAMES, ANY)
    def check(name: str, value: str) -> None:
        if is_invalid(name):
            with pytest.raises(ValueError):
                _copy.quote_ident(name)
            return
        if is_invalid(value):
            with pytest.raises(ValueError):
                _copy.quote_literal(value)
            value = "v"
        ident, literal = _copy.quote_ident(name), _copy.quote_literal(value)
        # The simple protocol runs any number of statements: one command may come back.
        assert session.run(con.execute(f"SELECT {literal} AS {ident}")) == "SELECT 1"
        row = session.run(con.fetchrow(f"SELECT {literal}::text AS {ident}"))
        assert list(row.keys()) == [name] and row[0] == value
        # The E'' form and the plain form both mean the same without conforming strings.
        session.run(con.execute("SET standard_conforming_strings = off"))
        try:
            assert session.run(con.fetchval(f"SELECT {literal}::text")) == value
        finally:
            session.run(con.execute("RESET standard_conforming_strings"))

    check()
    session.assert_canary()


def test_q2_copy_table_and_column_names(session: Session) -> None:
    con, ref, schema = session.con, session.ref, session.schema

    @QSETTINGS
    @given(SERVER_NAMES)
    def check(name: str) -> None:
        if is_invalid(name):
            with pytest.raises(ValueError):
                session.run(con.copy_to_table(name, schema_name=schema, columns=[name],
                                              source=io.BytesIO(b"x\n")))
            with pytest.raises(ValueError):
                session.run(con.copy_to_table("canary", schema_name=schema, columns=[name],
                                              source=io.BytesIO(b"x\n")))
            with pytest.raises(ValueError):
                session.run(con.copy_records_to_table(name, schema_name=schema,
                                                      columns=[name], records=[("x",)]))
            assert session.run(con.fetchval("SELECT 1")) == 1
            return
        session.run(ref.execute(f"SELECT {schema}.mk($1)", name))
        try:
            catalog = session.run(ref.fetch(
                "SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a "
                "ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                "WHERE c.relnamespace = $1::regnamespace AND c.relname = $2", schema, name))
            assert [tuple(r) for r in catalog] == [(name, name)]
            status = session.run(con.copy_to_table(name, schema_name=schema, columns=[name],
                                                   source=io.BytesIO(b"from copy\n")))
            assert status == "COPY 1"
            status = session.run(con.copy_records_to_table(name, schema_name=schema,
                                                           columns=[name],
                                                           records=[("from records",)]))
            assert status == "COPY 1"
            rows = session.run(ref.fetch(f"SELECT * FROM {schema}.rows($1)", name))
            assert [r[0] for r in rows] == ["from copy", "from records"]
        finally:
            session.run(ref.execute(f"SELECT {schema}.rm($1)", name))

    check()
    session.assert_canary()


def test_q2_empty_name(session: Session) -> None:
    """A zero-length name can't be quoted; refused by the client or the server, no more."""
    try:
        session.run(session.con.copy_to_table("", schema_name=session.schema, columns=["a"],
                                              source=io.BytesIO(b"x\n")))
    except ValueError:
        pass
    except pg_client.PostgresSyntaxError as e:
        assert e.sqlstate == "42601"
    else:
        pytest.fail("COPY into a table named '' succeeded")
    session.assert_canary()


def test_q2_listen_channel_names(session: Session) -> None:
    con, ref = session.con, session.ref
    notifier_pid = ref.get_server_pid()

    @settings(QSETTINGS, max_examples=150)
    @given(SERVER_NAMES, CLEAN | st.just(""))
    def check(channel: str, payload: str) -> None:
        async def scenario() -> None:
            got: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

            def callback(*args: Any) -> None:
                got.put_nowait(args)

            if is_invalid(channel):
                with pytest.raises(ValueError):
                    await con.add_listener(channel, callback)
                assert await con.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
                return
            await con.add_listener(channel, callback)
            try:
                listening = await ref.fetchval(
                    "SELECT array_agg(c) FROM pg_listening_channels() c")  # ref: not listening
                assert listening is None
                assert await con.fetchval("SELECT array_agg(c) FROM pg_listening_channels() c"
                                          ) == [channel]
                await ref.execute("SELECT pg_notify($1, $2)", channel, payload)
                _con, pid, got_channel, got_payload = await asyncio.wait_for(got.get(), 10)
                assert (pid, got_channel, got_payload) == (notifier_pid, channel, payload)
            finally:
                await con.remove_listener(channel, callback)
            assert await con.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0

        session.run(scenario())

    check()
    session.assert_canary()


# -- Q5: server text is data -----------------------------------------------------------------

BIG = ("%s{0}%(x)s\x1b[31m%%{}" * (1024 * 1024 // 20 + 1))[: 1024 * 1024]
HOSTILE_TEXTS = [
    "value %s and %d and %(x)s and %% and %",
    "{0} {} {x} {0.__class__.__mro__} {{ }} {",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[2J\x1b[H\r\x08 erased",
    "%(message)s %(asctime)s {message} $1 \\n \\x00 é ☃ 𝄞",
    BIG,
]


class StrictHandler(logging.Handler):
    """Keeps formatted records; a formatting error raises instead of being printed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def handleError(self, record: logging.LogRecord) -> None:
        raise


@pytest.fixture
def strict_log() -> Iterator[tuple[logging.Logger, StrictHandler]]:
    logger = logging.getLogger(f"q5_{uuid.uuid4().hex[:8]}")
    handler = StrictHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)


def check_error(e: BaseException, text: str, log: logging.Logger,
                handler: StrictHandler) -> None:
    assert isinstance(e, pg_client.PostgresError)
    assert e.message == text
    assert e.detail == text and e.hint == text
    assert e.args[0] == text
    assert str(e) == f"{text}\nDETAIL:  {text}\nHINT:  {text}"
    repr(e)
    "".join(traceback.format_exception(e))
    before = len(handler.lines)
    log.error("query failed: %s", e)
    log.error(e)  # the exception as the message, no arguments: not %-formatted
    log.error("%r", e)
    try:
        raise e
    except pg_client.PostgresError:
        log.exception("failed")
    lines = handler.lines[before:]
    assert len(lines) == 4
    assert lines[0] == f"ERROR query failed: {e}"
    assert lines[1] == f"ERROR {e}"
    assert lines[3].startswith("ERROR failed\nTraceback") and text in lines[3]


async def test_q5_error_and_notice_text_verbatim(strict_log: Any) -> None:
    log, handler = strict_log

    async def script(conn: FakeConn) -> None:
        await conn.accept_startup()
        for text in HOSTILE_TEXTS:
            await conn.expect(Query)
            conn.send(notice_response(text, detail=text, hint=text),
                      error_response("XX000", text, detail=text, hint=text),
                      ReadyForQuery("I"))
        await conn.serve()

    async with FakeServer(script) as server:
        con = await pg_client.connect(host=server.host, port=server.port, user="u",
                                      database="d", ssl=False)
        notices: list[Any] = []
        con.add_log_listener(lambda _con, message: notices.append(message))
        try:
            for i, text in enumerate(HOSTILE_TEXTS):
                with pytest.raises(pg_client.PostgresError) as info:
                    await con.execute(f"SELECT {i}")
                check_error(info.value, text, log, handler)
                for _ in range(100):
                    if len(notices) > i:
                        break
                    await asyncio.sleep(0.01)
                notice = notices[i]
                assert notice.message == text and notice.detail == text
                assert notice.hint == text
                assert str(notice) == f"{type(notice).__name__}: {text}"
                log.warning("server said: %s", notice)
                log.warning(notice)
                assert handler.lines[-2] == f"WARNING server said: {notice}"
                assert handler.lines[-1] == f"WARNING {notice}"
            assert len(notices) == len(HOSTILE_TEXTS)
            assert not con.is_closed()
        finally:
            await con.close()


@pytest.mark.parametrize("index", range(len(HOSTILE_TEXTS)),
                         ids=["percent", "braces", "ansi", "logging_keys", "1MB"])
async def test_q5_fatal_at_startup_verbatim(strict_log: Any, index: int) -> None:
    log, handler = strict_log
    text = HOSTILE_TEXTS[index]
    script = [expect(StartupMessage),
              send(error_response("28000", text, severity="FATAL", detail=text, hint=text)),
              wait_closed()]
    async with FakeServer(script) as server:
        with pytest.raises(pg_client.PostgresError) as info:
            await pg_client.connect(host=server.host, port=server.port, user="u",
                                    database="d", ssl=False)
    check_error(info.value, text, log, handler)
    assert info.value.sqlstate == "28000"
