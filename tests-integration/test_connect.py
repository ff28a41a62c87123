"""connect()'s arguments against the real server: where to connect and how.

DSNs in URI and keyword form, explicit arguments over the DSN, PG*
environment variables, the service file, Unix sockets (a directory, a full
socket path, the default directory search), TCP keepalives, server settings,
and connect()'s validation errors checked against asyncpg (same exception
classes for the same mistakes).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

import pg_client
from pg_client import _connect_params
from pgcluster import PASSWORD_USER, PASSWORDS, SCRAM_USER, TRUST_USER

pytestmark = pytest.mark.timeout(120)

_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGPASSFILE",
        "PGSERVICE", "PGSERVICEFILE", "PGSSLMODE", "PGTARGETSESSIONATTRS", "PGAPPNAME",
        "PGCONNECT_TIMEOUT", "PGSYSCONFDIR", "PGSSLNEGOTIATION", "PGREQUIREAUTH")


@pytest.fixture(autouse=True)
def _clean_env(cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not cluster.managed:
        pytest.skip("PGTEST_DSN server: the test roles and socket dir are not known")
    for var in _ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PGSYSCONFDIR", str(tmp_path / "no-sysconf"))


async def facts(con: Any) -> dict[str, Any]:
    row = await con.fetchrow(
        "SELECT current_user AS user, current_database() AS db,"
        " current_setting('application_name') AS app,"
        " inet_server_addr() IS NULL AS unix,"
        " (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS tls")
    await con.close()
    return dict(row)


# -- DSNs ----------------------------------------------------------------------------------


async def test_uri_dsn(cluster: Any) -> None:
    dsn = (f"postgresql://{SCRAM_USER}:{quote(PASSWORDS[SCRAM_USER])}@{cluster.host}:"
           f"{cluster.port}/pgtest?sslmode=disable&application_name=uri-app")
    assert await facts(await pg_client.connect(dsn)) == {
        "user": SCRAM_USER, "db": "pgtest", "app": "uri-app", "unix": False, "tls": False}


async def test_keyword_dsn(cluster: Any) -> None:
    dsn = (f"host={cluster.host} port={cluster.port} user={PASSWORD_USER} "
           f"password='{PASSWORDS[PASSWORD_USER]}' dbname=pgtest sslmode=require "
           "application_name='kw app' options='-c search_path=pg_catalog'")
    con = await pg_client.connect(dsn)
    assert await con.fetchval("SHOW search_path") == "pg_catalog"
    assert await facts(con) == {
        "user": PASSWORD_USER, "db": "pgtest", "app": "kw app", "unix": False, "tls": True}


async def test_arguments_win_over_the_dsn(cluster: Any) -> None:
    dsn = f"postgresql://nobody@{cluster.host}:1/nodb?application_name=dsn"
    con = await pg_client.connect(dsn, port=cluster.port, user=TRUST_USER, database="pgtest",
                                  server_settings={"application_name": "kwarg"})
    assert await facts(con) == {
        "user": TRUST_USER, "db": "pgtest", "app": "kwarg", "unix": False, "tls": True}


async def test_uri_query_keys_become_server_settings(cluster: Any) -> None:
    con = await pg_client.connect(cluster.dsn(search_path="pg_catalog", work_mem="5MB"))
    assert await con.fetchval("SHOW work_mem") == "5MB"
    assert await con.fetchval("SHOW search_path") == "pg_catalog"
    await con.close()


async def test_multi_host_uri(cluster: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    dsn = f"postgresql://{TRUST_USER}@127.0.0.1:{closed},{cluster.host}:{cluster.port}/pgtest"
    assert (await facts(await pg_client.connect(dsn)))["user"] == TRUST_USER
    ref = await asyncpg.connect(dsn)
    await ref.close()


# -- environment and service file -----------------------------------------------------------


async def test_environment_variables(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", cluster.host)
    monkeypatch.setenv("PGPORT", str(cluster.port))
    monkeypatch.setenv("PGUSER", SCRAM_USER)
    monkeypatch.setenv("PGPASSWORD", PASSWORDS[SCRAM_USER])
    monkeypatch.setenv("PGDATABASE", "pgtest")
    monkeypatch.setenv("PGSSLMODE", "disable")
    assert await facts(await pg_client.connect()) == {
        "user": SCRAM_USER, "db": "pgtest", "app": "", "unix": False, "tls": False}
    monkeypatch.setenv("PGSSLMODE", "require")
    assert (await facts(await pg_client.connect()))["tls"] is True
    # The same environment gives asyncpg the same connection.
    ref = await asyncpg.connect()
    assert await ref.fetchval("SELECT current_user") == SCRAM_USER
    await ref.close()


async def test_pghost_socket_dir_and_pgport(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", str(cluster.socket_dir))
    monkeypatch.setenv("PGPORT", str(cluster.port))
    con = await pg_client.connect(user=TRUST_USER, database="postgres")
    assert (await facts(con))["unix"] is True


async def test_service_file(cluster: Any, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    servicefile = tmp_path / "services.conf"
    servicefile.write_text(
        "[other]\nhost=nowhere.invalid\n\n"
        f"[mydb]\nhost={cluster.host}\nport={cluster.port}\nuser={SCRAM_USER}\n"
        f"password={PASSWORDS[SCRAM_USER]}\ndbname=pgtest\nsslmode=require\n")
    con = await pg_client.connect(service="mydb", servicefile=str(servicefile))
    assert await facts(con) == {
        "user": SCRAM_USER, "db": "pgtest", "app": "", "unix": False, "tls": True}
    # Through the DSN, and through PGSERVICE/PGSERVICEFILE.
    con = await pg_client.connect(f"service=mydb servicefile={servicefile} sslmode=disable")
    assert (await facts(con))["tls"] is False
    monkeypatch.setenv("PGSERVICEFILE", str(servicefile))
    monkeypatch.setenv("PGSERVICE", "mydb")
    assert (await facts(await pg_client.connect()))["user"] == SCRAM_USER
    # ~/.pg_service.conf is the default service file.
    monkeypatch.delenv("PGSERVICEFILE")
    (tmp_path / ".pg_service.conf").write_text(servicefile.read_text())
    assert (await facts(await pg_client.connect(user=TRUST_USER)))["user"] == TRUST_USER
    with pytest.raises(pg_client.ClientConfigurationError, match="nosuch"):
        await pg_client.connect(service="nosuch")


# -- Unix sockets -------------------------------------------------------------------------------


async def test_unix_socket_directory_and_path(cluster: Any) -> None:
    for host in (str(cluster.socket_dir), str(cluster.socket_path)):
        con = await pg_client.connect(host=host, port=cluster.port, user=TRUST_USER,
                                      database="postgres", ssl="require")
        # sslmode does not apply to Unix sockets (libpq, asyncpg).
        assert await facts(con) == {
            "user": TRUST_USER, "db": "postgres", "app": "", "unix": True, "tls": False}
    encoded = quote(str(cluster.socket_dir), safe="")
    con = await pg_client.connect(f"postgresql://{TRUST_USER}@{encoded}:{cluster.port}/postgres")
    assert (await facts(con))["unix"] is True
    con = await pg_client.connect(
        f"postgresql:///postgres?host={cluster.socket_dir}&port={cluster.port}"
        f"&user={TRUST_USER}")
    assert (await facts(con))["unix"] is True


async def test_default_socket_directory_search(cluster: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # No host anywhere: the default list is tried in order; a directory
    # without the socket passes the turn to the next entry.
    defaults = (str(tmp_path / "no-socket-here"), str(cluster.socket_dir), "localhost")
    monkeypatch.setattr(_connect_params, "_DEFAULT_HOSTS", defaults)
    con = await pg_client.connect(port=cluster.port, user=TRUST_USER, database="postgres")
    assert (await facts(con))["unix"] is True
    assert _connect_params.resolve(port=1).hosts[0].host == defaults[0]


# -- TCP options ------------------------------------------------------------------------------


async def test_tcp_keepalives_on_by_default(cluster: Any) -> None:
    con = await pg_client.connect(cluster.dsn())
    sock = con._transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    await con.close()
    con = await pg_client.connect(cluster.dsn(keepalives="0"))
    sock = con._transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    await con.close()
    con = await pg_client.connect(cluster.dsn(keepalives_idle="17", keepalives_interval="3",
                                              keepalives_count="4"))
    sock = con._transport.get_extra_info("socket")
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 17
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
    await con.close()


async def test_loop_argument(cluster: Any) -> None:
    con = await pg_client.connect(cluster.dsn(), loop=asyncio.get_running_loop())
    assert await con.fetchval("SELECT 1") == 1
    await con.close()


async def test_client_encoding_is_utf8(cluster: Any) -> None:
    con = await pg_client.connect(cluster.dsn())
    assert con.get_settings().client_encoding == "UTF8"
    await con.close()
    with pytest.raises(pg_client.ClientConfigurationError, match="UTF8"):
        await pg_client.connect(cluster.dsn(), server_settings={"client_encoding": "LATIN1"})


# -- validation: the same exception classes as asyncpg ---------------------------------------------


BAD_ARGUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("statement_cache_size", {"statement_cache_size": -1}),
    ("statement_cache_size bool", {"statement_cache_size": True}),
    ("max_cached_statement_lifetime", {"max_cached_statement_lifetime": -5}),
    ("max_cacheable_statement_size", {"max_cacheable_statement_size": -1}),
    ("command_timeout", {"command_timeout": 0}),
    ("command_timeout negative", {"command_timeout": -1.5}),
    ("connection_class", {"connection_class": object}),
    ("server_settings", {"server_settings": {"work_mem": 1}}),
    ("target_session_attrs", {"target_session_attrs": "writable"}),
    ("ssl", {"ssl": "sometimes"}),
    ("gsslib", {"gsslib": "kerberos"}),
    ("direct_tls without require", {"ssl": "prefer", "direct_tls": True}),
    ("dsn scheme", {"dsn": "mysql://localhost/db"}),
    ("dsn sslmode", {"dsn": "postgresql://localhost/db?sslmode=sometimes"}),
    ("dsn target_session_attrs", {"dsn": "postgresql://localhost/db?target_session_attrs=x"}),
    ("ports for hosts", {"host": ["a", "b", "c"], "port": [1, 2]}),
    ("sslnegotiation", {"dsn": "postgresql://localhost/db?sslnegotiation=sometimes"}),
]


@pytest.mark.parametrize(("what", "kwargs"), BAD_ARGUMENTS, ids=[w for w, _ in BAD_ARGUMENTS])
async def test_validation_errors_match_asyncpg(cluster: Any, what: str,
                                               kwargs: dict[str, Any]) -> None:
    kwargs = dict(kwargs)
    dsn = kwargs.pop("dsn", None)
    if dsn is None and "host" not in kwargs:
        kwargs.update(host=cluster.host, port=cluster.port, user=TRUST_USER)
    with pytest.raises(Exception) as ours:
        await pg_client.connect(dsn, timeout=2, **kwargs)
    with pytest.raises(Exception) as theirs:
        await asyncpg.connect(dsn, timeout=2, **kwargs)
    assert type(ours.value).__name__ == type(theirs.value).__name__, (ours.value, theirs.value)
    for base in (ValueError, pg_client.InterfaceError):
        ref_base = asyncpg.InterfaceError if base is pg_client.InterfaceError else base
        assert isinstance(ours.value, base) == isinstance(theirs.value, ref_base)


async def test_record_class_must_be_a_record(cluster: Any) -> None:
    with pytest.raises(pg_client.InterfaceError):
        await pg_client.connect(cluster.dsn(), record_class=dict)
    with pytest.raises(asyncpg.InterfaceError):
        await asyncpg.connect(cluster.dsn(), record_class=dict)


async def test_timeout_default_and_validation(cluster: Any) -> None:
    params = _connect_params.resolve(host="h")
    assert params.timeout == 60
    with pytest.raises(pg_client.ClientConfigurationError):
        await pg_client.connect(cluster.dsn(), timeout="soon")  # type: ignore[arg-type]
    con = await pg_client.connect(cluster.dsn(), timeout=None)
    await con.close()


async def test_password_user_via_kwargs(cluster: Any) -> None:
    con = await pg_client.connect(host=cluster.host, port=cluster.port, user=PASSWORD_USER,
                                  password=PASSWORDS[PASSWORD_USER], database="postgres")
    assert (await facts(con))["user"] == PASSWORD_USER
