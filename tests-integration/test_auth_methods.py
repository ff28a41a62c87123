"""Authentication against the real server: every method of the test roles,
channel binding, require_auth, password sources, protocol 3.2.

RELIABILITY.md S10 (channel binding, 6 cells) and S11 (require_auth against
a real server; "nothing was sent" is checked on the bytes, through the fault
proxy in record mode, with TLS off so the proxy can read them). Protocol 3.2
(PostgreSQL 18): negotiated, long cancel key, cancellation works.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import pg_client
from pg_client import exceptions as exc
from pgcluster import (
    MD5_USER,
    NOSSL_USER,
    PASSWORD_USER,
    PASSWORDS,
    SCRAM_USER,
    SSL_USER,
    TRUST_USER,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _helpers import backend_gone
from faultproxy import FaultProxy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _managed(cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not cluster.managed:
        pytest.skip("PGTEST_DSN server: the test roles are not there")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.pgpass, no ~/.postgresql
    for var in ("PGPASSWORD", "PGPASSFILE", "PGSSLMODE", "PGREQUIREAUTH", "PGCHANNELBINDING",
                "PGSERVICE", "PGSERVICEFILE"):
        monkeypatch.delenv(var, raising=False)


async def connect_as(cluster: Any, user: str, password: str | None = None, *,
                     ssl: str = "prefer", **kwargs: Any) -> Any:
    return await pg_client.connect(host=cluster.host, port=cluster.port, user=user,
                                   password=password, database="postgres", ssl=ssl,
                                   timeout=10, **kwargs)


async def whoami(con: Any) -> tuple[str, bool]:
    user = await con.fetchval("SELECT current_user")
    tls = await con.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    await con.close()
    return user, tls


# -- each method --------------------------------------------------------------------------


@pytest.mark.parametrize("user", [TRUST_USER, PASSWORD_USER, MD5_USER, SCRAM_USER])
@pytest.mark.parametrize("ssl", ["disable", "require"])
async def test_each_method(cluster: Any, user: str, ssl: str) -> None:
    con = await connect_as(cluster, user, PASSWORDS.get(user), ssl=ssl)
    assert await whoami(con) == (user, ssl == "require")


@pytest.mark.parametrize("user", [PASSWORD_USER, MD5_USER, SCRAM_USER])
async def test_wrong_password(cluster: Any, user: str) -> None:
    with pytest.raises(exc.InvalidPasswordError):
        await connect_as(cluster, user, "not-the-password")
    with pytest.raises(asyncpg.InvalidPasswordError):  # the reference agrees
        await asyncpg.connect(host=cluster.host, port=cluster.port, user=user,
                              password="not-the-password", database="postgres")


@pytest.mark.parametrize("user", [PASSWORD_USER, MD5_USER, SCRAM_USER])
async def test_missing_password(cluster: Any, user: str) -> None:
    # asyncpg sends an empty password and gets 28P01; we send nothing and
    # raise an InvalidPasswordError too.
    with pytest.raises(exc.InvalidPasswordError):
        await connect_as(cluster, user)


async def test_hostssl_and_hostnossl_roles(cluster: Any) -> None:
    pw = PASSWORDS[SSL_USER]
    # ssl_user: hostssl only. prefer and require use TLS; allow retries with TLS.
    for mode in ("prefer", "require", "allow"):
        assert await whoami(await connect_as(cluster, SSL_USER, pw, ssl=mode)) == (SSL_USER, True)
    with pytest.raises(exc.InvalidAuthorizationSpecificationError):
        await connect_as(cluster, SSL_USER, pw, ssl="disable")
    # nossl_user: hostnossl only. prefer falls back to plaintext after the refusal.
    for mode in ("prefer", "allow", "disable"):
        assert await whoami(await connect_as(cluster, NOSSL_USER, ssl=mode)) == (NOSSL_USER, False)
    with pytest.raises(exc.InvalidAuthorizationSpecificationError):
        await connect_as(cluster, NOSSL_USER, ssl="require")


# -- password sources ---------------------------------------------------------------------


async def test_password_callables_are_called_per_connection(cluster: Any) -> None:
    calls: list[str] = []

    def sync_password() -> str:
        calls.append("sync")
        return PASSWORDS[SCRAM_USER]

    async def async_password() -> str:
        calls.append("async")
        await asyncio.sleep(0)
        return PASSWORDS[SCRAM_USER]

    for getter in (sync_password, sync_password, async_password, async_password):
        assert (await whoami(await connect_as(cluster, SCRAM_USER, getter)))[0] == SCRAM_USER
    assert calls == ["sync", "sync", "async", "async"]


async def test_pgpassword_and_passfile(cluster: Any, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    monkeypatch.setenv("PGPASSWORD", PASSWORDS[MD5_USER])
    assert (await whoami(await connect_as(cluster, MD5_USER)))[0] == MD5_USER
    monkeypatch.delenv("PGPASSWORD")
    passfile = tmp_path / "pgpass"
    passfile.write_text(
        "# comment\n"
        f"otherhost:*:*:*:nope\n"
        f"{cluster.host}:{cluster.port}:postgres:{SCRAM_USER}:{PASSWORDS[SCRAM_USER]}\n"
        f"localhost:*:*:{PASSWORD_USER}:{PASSWORDS[PASSWORD_USER]}\n")
    passfile.chmod(0o600)
    con = await connect_as(cluster, SCRAM_USER, passfile=str(passfile))
    assert (await whoami(con))[0] == SCRAM_USER
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    assert (await whoami(await connect_as(cluster, SCRAM_USER)))[0] == SCRAM_USER
    # A Unix socket matches "localhost" in the password file.
    con = await pg_client.connect(host=str(cluster.socket_dir), port=cluster.port,
                                  user=PASSWORD_USER, database="postgres", timeout=10)
    assert (await whoami(con))[0] == PASSWORD_USER
    # ~/.pgpass is the default (HOME is tmp_path here).
    monkeypatch.delenv("PGPASSFILE")
    (tmp_path / ".pgpass").write_text(passfile.read_text())
    (tmp_path / ".pgpass").chmod(0o600)
    assert (await whoami(await connect_as(cluster, SCRAM_USER)))[0] == SCRAM_USER


# -- S10: channel binding -----------------------------------------------------------------


@pytest.fixture
async def recording_proxy(cluster: Any) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", cluster.port, record=True) as proxy:
        yield proxy


def _client_tags(proxy: FaultProxy) -> list[bytes]:
    return [tag for conn in proxy.connections for tag, _, _ in conn.c2s.messages]


def _client_bytes(proxy: FaultProxy) -> bytes:
    return b"".join(bytes(conn.c2s.data) for conn in proxy.connections)


@pytest.mark.parametrize("binding", ["require", "prefer", "disable"])
async def test_s10_scram_over_tls(cluster: Any, binding: str) -> None:
    con = await connect_as(cluster, SCRAM_USER, PASSWORDS[SCRAM_USER], ssl="require",
                           channel_binding=binding)
    assert await whoami(con) == (SCRAM_USER, True)


async def test_s10_require_needs_tls_and_fails_before_any_credential(
        cluster: Any, recording_proxy: FaultProxy) -> None:
    with pytest.raises(exc.InvalidAuthorizationSpecificationError, match="TLS"):
        await pg_client.connect(host=recording_proxy.host, port=recording_proxy.port,
                                user=SCRAM_USER, password=PASSWORDS[SCRAM_USER],
                                database="postgres", ssl="disable", channel_binding="require",
                                timeout=10)
    assert b"p" not in _client_tags(recording_proxy)  # no SASLInitialResponse
    assert recording_proxy.accepted == 1


@pytest.mark.parametrize("user", [TRUST_USER, PASSWORD_USER, MD5_USER])
async def test_s10_require_refuses_methods_without_binding(cluster: Any, user: str) -> None:
    with pytest.raises(exc.InvalidAuthorizationSpecificationError, match="channel"):
        await connect_as(cluster, user, PASSWORDS.get(user), ssl="require",
                         channel_binding="require")


# -- S11: require_auth ----------------------------------------------------------------------


@pytest.mark.parametrize(("user", "require_auth"), [
    (MD5_USER, "scram-sha-256"),
    (PASSWORD_USER, "scram-sha-256"),
    (PASSWORD_USER, "!password"),
    (PASSWORD_USER, "md5"),
    (SCRAM_USER, "md5,password"),
    (SCRAM_USER, "none"),
    (TRUST_USER, "scram-sha-256"),
    (TRUST_USER, "!none"),
])
async def test_s11_require_auth_refusals(cluster: Any, recording_proxy: FaultProxy,
                                         user: str, require_auth: str) -> None:
    password = PASSWORDS.get(user, "unused-password")
    with pytest.raises(exc.InvalidAuthorizationSpecificationError, match="require_auth"):
        await pg_client.connect(host=recording_proxy.host, port=recording_proxy.port,
                                user=user, password=password, database="postgres",
                                ssl="disable", require_auth=require_auth, timeout=10)
    assert b"p" not in _client_tags(recording_proxy)
    assert password.encode() not in _client_bytes(recording_proxy)


@pytest.mark.parametrize(("user", "require_auth"), [
    (SCRAM_USER, "scram-sha-256"),
    (MD5_USER, "md5"),
    (MD5_USER, "!password"),
    (PASSWORD_USER, "password"),
    (TRUST_USER, "none"),
    (TRUST_USER, "!scram-sha-256,!md5"),
    (SCRAM_USER, "md5,scram-sha-256"),
])
async def test_s11_require_auth_allows(cluster: Any, user: str, require_auth: str) -> None:
    con = await connect_as(cluster, user, PASSWORDS.get(user), require_auth=require_auth)
    assert (await whoami(con))[0] == user


async def test_require_auth_from_the_environment(cluster: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGREQUIREAUTH", "scram-sha-256")
    with pytest.raises(exc.InvalidAuthorizationSpecificationError, match="require_auth"):
        await connect_as(cluster, MD5_USER, PASSWORDS[MD5_USER])
    monkeypatch.setenv("PGCHANNELBINDING", "require")
    con = await connect_as(cluster, SCRAM_USER, PASSWORDS[SCRAM_USER], ssl="require")
    assert (await whoami(con))[0] == SCRAM_USER


# -- protocol 3.2 -----------------------------------------------------------------------------


@pytest.mark.pg(">= 18")
@pytest.mark.parametrize("ssl", ["disable", "require"])
async def test_protocol_3_2(cluster: Any, ssl: str) -> None:
    con = await connect_as(cluster, SCRAM_USER, PASSWORDS[SCRAM_USER], ssl=ssl,
                           max_protocol_version="3.2")
    observer = await connect_as(cluster, "postgres", ssl="disable")
    try:
        assert con._protocol_minor == 2
        assert len(con._core.backend_key) > 4  # PostgreSQL 18 sends 32 bytes under 3.2
        pid = con.get_server_pid()
        # The long key is what the CancelRequest carries: the server cancels.
        with pytest.raises(asyncio.TimeoutError):
            await con.execute("SELECT pg_sleep(30)", timeout=0.3)
        assert await backend_gone(observer, pid, timeout=3)
        assert await con.fetchval("SELECT 3") == 3
        # And a cancel from elsewhere still works on a 3.2 session.
        task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.2)
        await observer.execute(f"SELECT pg_cancel_backend({pid})")
        with pytest.raises(exc.QueryCanceledError):
            await asyncio.wait_for(task, 5)
    finally:
        await con.close()
        await observer.close()
    con = await connect_as(cluster, TRUST_USER, min_protocol_version="3.2")
    assert con._protocol_minor == 2
    await con.close()


@pytest.mark.pg("< 18")
async def test_protocol_3_2_before_18(cluster: Any) -> None:
    con = await connect_as(cluster, TRUST_USER, max_protocol_version="3.2")
    assert con._protocol_minor == 0  # NegotiateProtocolVersion: down to 3.0
    assert len(con._core.backend_key) == 4
    await con.close()
    with pytest.raises(exc.UnsupportedServerFeatureError, match=r"3\.2"):
        await connect_as(cluster, TRUST_USER, min_protocol_version="3.2")


async def test_default_protocol_is_3_0(cluster: Any) -> None:
    con = await connect_as(cluster, TRUST_USER)
    assert con._protocol_minor == 0
    await con.close()


async def test_gsslib_and_krbsrvname_are_accepted(cluster: Any) -> None:
    con = await connect_as(cluster, TRUST_USER, krbsrvname="postgres", gsslib="gssapi")
    await con.close()
    with pytest.raises(pg_client.ClientConfigurationError, match="gsslib"):
        await connect_as(cluster, TRUST_USER, gsslib="kerberos")
