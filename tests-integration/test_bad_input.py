"""Bad input from the caller and hostile names from the server
(RELIABILITY.md M6, Q1, Q3, Q4, S12 subset).

What is checked: a bad argument is refused before any byte of the request
is written (the fault proxy counts the client's bytes and messages), with
asyncpg's exception class, and the connection stays usable; values round-trip
exactly (no client-side interpolation); any column name works; the password
never shows up in reprs, error messages or logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import traceback
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pg_client
import pgcluster

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(180)

SENTINEL = "S3cr3t-Sentinel-Ω"


@pytest.fixture
async def proxy(cluster: Any) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", cluster.port) as p:
        yield p


@pytest.fixture
async def pcon(cluster: Any, proxy: FaultProxy) -> AsyncIterator[pg_client.Connection]:
    """A connection through the (passthrough) proxy, so tests can count bytes sent."""
    con = await pg_client.connect(cluster.dsn(host=proxy.host, port=proxy.port), ssl=False)
    try:
        yield con
    finally:
        con.terminate()


def _sent(proxy: FaultProxy) -> tuple[int, list[bytes]]:
    """Client bytes forwarded so far on all connections, and the message tags."""
    total = sum(c.c2s.forwarded for c in proxy.connections)
    tags = [m[0] for c in proxy.connections for m in c.c2s.messages]
    return total, tags


async def _settle() -> None:
    # Let the proxy forward anything the client may have written.
    for _ in range(5):
        await asyncio.sleep(0.01)


async def _assert_usable(con: pg_client.Connection) -> None:
    assert not con.is_closed()
    assert await con.fetchval("SELECT $1::int + 1", 41) == 42
    assert await con.execute("SELECT 1") == "SELECT 1"
    assert not con.is_in_transaction()


# -- wrong argument count / type: refused before sending ---------------------------------


@pytest.mark.parametrize(
    "query, args",
    [
        ("SELECT $1::int", ()),
        ("SELECT $1::int", (1, 2)),
        ("SELECT $1::int, $2::text", ("x",)),
        ("SELECT 1", (1,)),
    ],
)
async def test_wrong_arg_count(pcon: pg_client.Connection, proxy: FaultProxy,
                               query: str, args: tuple[Any, ...]) -> None:
    # Prepare it once so the statement is cached: then nothing at all may be sent.
    stmt = await pcon.prepare(query)
    n = len(stmt.get_parameters())
    await pcon.fetch(query, *([1, "a"][:n] if n else []))
    await _settle()
    before = _sent(proxy)
    with pytest.raises(pg_client.InterfaceError) as info:
        await pcon.fetch(query, *args)
    assert f"expects {n} argument" in str(info.value)
    await _settle()
    assert _sent(proxy) == before, "bytes were sent for a call refused client-side"
    await _assert_usable(pcon)


@pytest.mark.parametrize(
    "query, args, position",
    [
        ("SELECT $1::int4", ("abc",), 1),
        ("SELECT $1::int2", (100_000,), 1),
        ("SELECT $1::int2", (-32769,), 1),
        ("SELECT $1::int4, $2::int2", (1, 1 << 15), 2),
        ("SELECT $1::text, $2::int8", ("ok", 1 << 63), 2),
        ("SELECT $1::int[]", ([[1, 2], [3]],), 1),
        ("SELECT $1::int[]", ([[1, 2], 3],), 1),
        ("SELECT $1::text, $2::text, $3::numeric", ("a", "b", "not a number"), 3),
        ("SELECT $1::bytea", ("str is not bytes",), 1),
        ("SELECT $1::date", ("2020-01-01",), 1),
    ],
)
async def test_bad_argument_value(pcon: pg_client.Connection, proxy: FaultProxy,
                                  query: str, args: tuple[Any, ...], position: int) -> None:
    await pcon.fetch(query, *_good_args(query))  # cached: a refused call sends nothing
    await _settle()
    before = _sent(proxy)
    with pytest.raises(pg_client.exceptions.DataError) as info:
        await pcon.fetch(query, *args)
    assert f"${position}" in str(info.value), str(info.value)
    await _settle()
    assert _sent(proxy) == before, "bytes were sent for a call refused client-side"
    await _assert_usable(pcon)


def _good_args(query: str) -> list[Any]:
    import datetime
    import decimal

    samples = {"int4": 1, "int2": 1, "int8": 1, "text": "t", "int[]": [[1, 2], [3, 4]],
               "numeric": decimal.Decimal(1), "bytea": b"b", "date": datetime.date(2020, 1, 1)}
    out = []
    for part in query.split("::")[1:]:
        name = part.split(",")[0].strip()
        out.append(samples[name])
    return out


async def test_bad_argument_matches_asyncpg_class(cluster: Any) -> None:
    """Differential: the same calls raise the same exception classes in asyncpg."""
    cases = [("SELECT $1::int4", ("abc",)), ("SELECT $1::int2", (100_000,)),
             ("SELECT $1::int[]", ([[1, 2], [3]],)), ("SELECT $1::int", (1, 2))]
    ref = await asyncpg.connect(cluster.dsn())
    con = await pg_client.connect(cluster.dsn())
    try:
        for query, args in cases:
            with pytest.raises(Exception) as theirs:
                await ref.fetch(query, *args)
            with pytest.raises(Exception) as ours:
                await con.fetch(query, *args)
            ref_name = type(theirs.value).__name__
            assert type(ours.value).__name__ == ref_name, (query, args, ours.value)
            ours_cls = getattr(pg_client.exceptions, ref_name)
            assert isinstance(ours.value, ours_cls)
    finally:
        await ref.close()
        await con.close()


# -- NUL bytes (Q3) and outgoing limits (M6) ---------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.fetchval("SELECT 1\x00; SELECT 2"),
        lambda c: c.execute("SELECT 1\x00"),
        lambda c: c.execute("SELECT $1::int\x00", 1),
        lambda c: c.prepare("SELECT\x00 1"),
        lambda c: c.fetchrow("SELECT '\x00'"),
        lambda c: c.executemany("INSERT INTO nowhere VALUES ($1)\x00", [(1,)]),
    ],
    ids=["fetchval", "execute-simple", "execute-args", "prepare", "fetchrow", "executemany"],
)
async def test_nul_in_query_text(pcon: pg_client.Connection, proxy: FaultProxy,
                                 call: Any) -> None:
    await _settle()
    before = _sent(proxy)
    with pytest.raises((ValueError, pg_client.InterfaceError)):
        await call(pcon)
    await _settle()
    assert _sent(proxy) == before, "a query with a NUL byte was (partly) sent"
    await _assert_usable(pcon)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user": "post\x00gres"},
        {"database": "post\x00gres"},
        {"server_settings": {"application_name\x00": "x"}},
        {"server_settings": {"application_name": "x\x00user\x00trust_user"}},
        {"server_settings": {"search_path": "\x00"}},
    ],
    ids=["user", "database", "setting-key", "setting-value-smuggle", "setting-value"],
)
async def test_nul_in_startup_parameters(cluster: Any, proxy: FaultProxy,
                                         kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, pg_client.InterfaceError)):
        await asyncio.wait_for(
            pg_client.connect(host=proxy.host, port=proxy.port, ssl=False,
                              **{"user": cluster.superuser, "database": "postgres", **kwargs}),
            10,
        )
    await _settle()
    assert _sent(proxy)[0] == 0, "a startup message with a NUL byte was sent"


async def test_nul_in_startup_via_dsn(cluster: Any, proxy: FaultProxy) -> None:
    for dsn in (
        f"postgresql://post%00gres@{proxy.host}:{proxy.port}/postgres",
        f"postgresql://postgres@{proxy.host}:{proxy.port}/postgres?application_name=a%00b",
    ):
        with pytest.raises((ValueError, pg_client.InterfaceError)):
            await asyncio.wait_for(pg_client.connect(dsn, ssl=False), 10)
    await _settle()
    assert _sent(proxy)[0] == 0


async def test_too_many_arguments_for_statement(pcon: pg_client.Connection,
                                                proxy: FaultProxy) -> None:
    await pcon.fetchval("SELECT 1")
    await _settle()
    before = _sent(proxy)
    with pytest.raises(pg_client.InterfaceError):
        await pcon.fetchval("SELECT 1", *range(65536))
    await _settle()
    assert _sent(proxy) == before
    await _assert_usable(pcon)


def _array_query(n: int) -> str:
    return "SELECT cardinality(ARRAY[" + ",".join(f"${i}::int" for i in range(1, n + 1)) + "])"


async def test_32768_arguments_refused_like_asyncpg(pcon: pg_client.Connection,
                                                    proxy: FaultProxy, cluster: Any) -> None:
    """asyncpg refuses more than 32767 arguments with InterfaceError, before any Bind."""
    query = _array_query(32768)
    ref = await asyncpg.connect(cluster.dsn())
    try:
        with pytest.raises(asyncpg.InterfaceError):
            await ref.fetchval(query, *range(32768))
    finally:
        await ref.close()
    with pytest.raises(pg_client.InterfaceError):
        await pcon.fetchval(query, *range(32768))
    await _settle()
    assert b"B" not in _sent(proxy)[1], "a Bind was written"
    await _assert_usable(pcon)


async def test_65536_parameters_never_bound(pcon: pg_client.Connection,
                                            proxy: FaultProxy) -> None:
    """The server accepts a Parse with 65,536 parameters but can't describe it
    (its int16 count wraps to 0). No Bind may ever be written for it, and the
    connection ends usable or visibly closed, never out of step."""
    with pytest.raises((pg_client.InterfaceError, ValueError, pg_client.ProtocolError)):
        await asyncio.wait_for(pcon.fetchval(_array_query(65536), *range(65536)), 30)
    await _settle()
    assert b"B" not in _sent(proxy)[1], "a Bind was written for 65,536 parameters"
    if pcon.is_closed():
        with pytest.raises(pg_client.InterfaceError):
            await pcon.fetchval("SELECT 1")
    else:
        await _assert_usable(pcon)


# -- Q1: values round-trip exactly (hypothesis) ----------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=300)
SPECIAL = st.sampled_from([
    "'", "''", "\\", "\\'", "';--", "$1", "$$", "$tag$ x $tag$", "/*", "*/", "-- x",
    "' OR 1=1; DROP TABLE canary; --", "E'\\x41'", "\u2028", "\ufeff", "𝄞", "\r\n",
])
HOSTILE = st.one_of(TEXT, SPECIAL, st.lists(st.one_of(TEXT, SPECIAL), max_size=5).map("".join))


@pytest.fixture
def sync_con(cluster: Any) -> Iterator[tuple[asyncio.Runner, pg_client.Connection, str]]:
    """A connection in its own event loop, for Hypothesis (which is synchronous)."""
    canary = f"canary_{uuid.uuid4().hex[:8]}"
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        con = runner.run(pg_client.connect(cluster.dsn()))
        runner.run(con.execute(f"CREATE TABLE {canary} (a int); INSERT INTO {canary} VALUES (1)"))
        try:
            yield runner, con, canary
            assert runner.run(con.fetchval(f"SELECT count(*) FROM {canary}")) == 1
        finally:
            runner.run(con.execute(f"DROP TABLE IF EXISTS {canary}"))
            runner.run(con.close())


QSETTINGS = settings(max_examples=300, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow])


def test_q1_text_round_trip(sync_con: Any) -> None:
    runner, con, _canary = sync_con

    @QSETTINGS
    @given(HOSTILE)
    def check(s: str) -> None:
        assert runner.run(con.fetchval("SELECT $1::text", s)) == s
        assert runner.run(con.fetchval("SELECT $1", s)) == s  # untyped: text
        assert runner.run(con.fetchval("SELECT length($1::text)", s)) == len(s)

    check()


def test_q1_negative_numbers(sync_con: Any) -> None:
    runner, con, _canary = sync_con

    @QSETTINGS
    @given(st.integers(min_value=-(2**31) + 2, max_value=2**31 - 1),
           st.integers(min_value=-(2**63) + 2, max_value=-1))
    def check(i: int, big: int) -> None:
        assert runner.run(con.fetchval("SELECT 1-$1", i)) == 1 - i
        assert runner.run(con.fetchval("SELECT 1 -$1::int8", big)) == 1 - big
        assert runner.run(con.fetchval("SELECT 0-$1::int8", big)) == -big

    check()


def test_q1_copy_from_query_args(sync_con: Any) -> None:
    """copy_from_query is the one API that must turn arguments into SQL text."""
    import io

    runner, con, _canary = sync_con

    @settings(max_examples=100, deadline=None, database=None)
    @given(HOSTILE, st.integers(min_value=-(2**31) + 2, max_value=-1))
    def check(s: str, i: int) -> None:
        buf = io.BytesIO()
        runner.run(con.copy_from_query("SELECT $1::text, 1-$2, '$1'", s, i, output=buf,
                                       format="binary"))
        data = buf.getvalue()
        # binary COPY: header (19 bytes), then int16 count and length-prefixed fields
        pos = 19 + 2
        n = int.from_bytes(data[pos:pos + 4], "big", signed=True)
        assert data[pos + 4:pos + 4 + n].decode() == s
        pos += 4 + n
        n = int.from_bytes(data[pos:pos + 4], "big", signed=True)
        assert int.from_bytes(data[pos + 4:pos + 4 + n], "big", signed=True) == 1 - i
        pos += 4 + n
        n = int.from_bytes(data[pos:pos + 4], "big", signed=True)
        assert data[pos + 4:pos + 4 + n] == b"$1"

    check()


# -- Q4: hostile column names ----------------------------------------------------------------


async def test_hostile_column_names(cluster: Any) -> None:
    long_ascii = "c" * 63
    long_utf8 = "é" * 31 + "x"  # 63 bytes
    too_long = "ü" * 40  # 80 bytes: the server truncates at a character boundary
    query = (
        'SELECT 1 AS "__class__", 2 AS "__class__", 3 AS " ", '
        '4 AS "\'); import os; os.system(\'x\') #", '
        f'5 AS "{long_ascii}", 6 AS "{long_utf8}", 7 AS "{too_long}", '
        '8 AS "keys", 9 AS "get", 10 AS "__init__", 11 AS "Ünïcödé ☃", 12 AS "a""b"'
    )
    ref = await asyncpg.connect(cluster.dsn())
    con = await pg_client.connect(cluster.dsn())
    try:
        theirs = await ref.fetchrow(query)
        ours = await con.fetchrow(query)
    finally:
        await ref.close()
        await con.close()
    assert isinstance(ours, pg_client.Record)
    assert type(ours).__name__ == type(theirs).__name__ == "Record"
    assert tuple(ours) == tuple(range(1, 13))
    assert [ours[i] for i in range(12)] == list(range(1, 13))
    assert list(ours.keys()) == list(theirs.keys())
    assert list(ours.items()) == list(theirs.items())
    assert dict(ours) == dict(theirs)
    for key in theirs.keys():
        assert ours[key] == theirs[key], key
        assert ours.get(key) == theirs.get(key)
        assert key in ours
    keys = list(ours.keys())
    assert keys[2] == " "
    assert keys[4] == long_ascii and keys[5] == long_utf8
    assert len(keys[6].encode()) <= 63 and too_long.startswith(keys[6])
    assert ours["'); import os; os.system('x') #"] == 4
    assert ours['a"b'] == 12
    # The names are data: the class and methods of Record are untouched.
    assert ours.__class__ is type(ours)
    assert callable(ours.keys) and callable(ours.get)
    assert repr(ours) == repr(theirs).replace("asyncpg", "pg_client")


# -- S12 subset: the password never shows ------------------------------------------------------


@pytest.fixture
async def sentinel_role(cluster: Any) -> AsyncIterator[str]:
    if not cluster.managed:
        pytest.skip("PGTEST_DSN server: can't create roles")
    role = f"sentinel_{uuid.uuid4().hex[:8]}"
    literal = "'" + SENTINEL.replace("'", "''") + "'"
    cluster.psql(f"CREATE ROLE {role} LOGIN PASSWORD {literal}")
    try:
        yield role
    finally:
        cluster.psql(f"DROP ROLE IF EXISTS {role}")


def _texts_of(exc: BaseException) -> list[str]:
    out = [repr(exc), str(exc), "".join(traceback.format_exception(exc))]
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        attrs = vars(e) if hasattr(e, "__dict__") else ""
        out += [repr(e), str(e), repr(getattr(e, "args", ())), repr(attrs)]
        e = e.__cause__ or e.__context__
    return out


def _assert_clean(texts: list[str], where: str) -> None:
    for text in texts:
        for needle in (SENTINEL, quote(SENTINEL, safe=""), SENTINEL.encode("utf-8").hex()):
            assert needle not in text, f"password leaked in {where}: {text[:300]!r}"


async def test_password_never_shown(cluster: Any, sentinel_role: str,
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # A good connection made with the sentinel password.
        for how in ("kwarg", "dsn", "callable"):
            if how == "kwarg":
                con = await pg_client.connect(cluster.dsn(sentinel_role), password=SENTINEL)
            elif how == "dsn":
                con = await pg_client.connect(cluster.dsn(sentinel_role, password=SENTINEL))
            else:
                con = await pg_client.connect(cluster.dsn(sentinel_role),
                                              password=lambda: SENTINEL)
            try:
                assert await con.fetchval("SELECT current_user") == sentinel_role
                logged: list[Any] = []
                con.add_query_logger(logged.append)
                await con.fetchval("SELECT 1")
                await asyncio.sleep(0.05)
                texts += [repr(con), str(con), repr(con.get_settings()), repr(logged)]
                texts += [repr(getattr(con, "_params", None)), repr(getattr(con, "_config", None))]
                with pytest.raises(pg_client.PostgresError) as info:
                    await con.execute("SELECT * FROM no_such_table")
                texts += _texts_of(info.value)
            finally:
                await con.close()
            texts.append(repr(con))

        # Wrong password (scram_user's real one is something else).
        for dsn in (cluster.dsn(pgcluster.SCRAM_USER, password=SENTINEL),):
            with pytest.raises(pg_client.InvalidPasswordError) as info:
                await pg_client.connect(dsn)
            texts += _texts_of(info.value)
        with pytest.raises(pg_client.InvalidPasswordError) as info:
            await pg_client.connect(cluster.dsn(pgcluster.SCRAM_USER), password=SENTINEL)
        texts += _texts_of(info.value)

        # Refused port.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        with pytest.raises(OSError) as info:
            await pg_client.connect(host="127.0.0.1", port=closed_port,
                                    user=pgcluster.SCRAM_USER, password=SENTINEL)
        texts += _texts_of(info.value)
        with pytest.raises(OSError) as info:
            await pg_client.connect(
                f"postgresql://{pgcluster.SCRAM_USER}:{quote(SENTINEL, safe='')}"
                f"@127.0.0.1:{closed_port}/postgres")
        texts += _texts_of(info.value)

        # Bad DSNs that carry the password.
        enc = quote(SENTINEL, safe="")
        bad_dsns = [
            f"postgresql://u:{enc}@127.0.0.1:notaport/db",
            f"postgresql://u:{enc}@127.0.0.1:5432/db?sslmode=bogus",
            f"postgresql://u:{enc}@[::1/db",
            f"postgresql://u@127.0.0.1:99999/db?password={enc}",
            f"postgresql://u@127.0.0.1:5432/db?pass%77ord={enc}&sslmode=nope",
            f"postgresql://u:{enc}@127.0.0.1:5432/db?target_session_attrs=bogus",
            f"postgres ql://u:{enc}@host/db",
        ]
        for dsn in bad_dsns:
            with pytest.raises(Exception) as info:
                await asyncio.wait_for(pg_client.connect(dsn, timeout=2), 10)
            texts += _texts_of(info.value)
    texts += [str(w.message) for w in caught]
    texts += [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    texts += [caplog.text]
    _assert_clean(texts, "connection / error / log text")
