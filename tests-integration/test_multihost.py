"""Several hosts: order, failover, timeouts, target_session_attrs, load balancing.

RELIABILITY.md F1 (refused port), F2 (silent port, per-host
connect_timeout), F3 (all hosts fail: one error listing each host), F7
(load_balance_hosts=random), plus a host with wrong credentials (which ends
the attempt, as in asyncpg and libpq), 57P03 passing the turn to the next
host, and target_session_attrs against a primary.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections import Counter
from typing import Any

import asyncpg
import pytest

import pg_client
from pg_client import exceptions as exc
from pg_wire.backend import error_response
from pg_wire.messages import StartupMessage
from pgcluster import PASSWORD_USER, PASSWORDS, TRUST_USER

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeserver import FakeServer, accept_startup, expect, send, serve, wait_closed
from faultproxy import deaf_listen

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _managed(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if not cluster.managed:
        pytest.skip("PGTEST_DSN server: the test roles are not there")
    for var in ("PGHOST", "PGPORT", "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS",
                "PGCONNECT_TIMEOUT", "PGPASSWORD"):
        monkeypatch.delenv(var, raising=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hosts_dsn(ports: list[int], user: str = TRUST_USER, password: str | None = None,
              **query: Any) -> str:
    auth = user + (f":{password}" if password else "")
    netloc = ",".join(f"127.0.0.1:{p}" for p in ports)
    extra = "&".join(f"{k}={v}" for k, v in query.items())
    return f"postgresql://{auth}@{netloc}/postgres" + (f"?{extra}" if extra else "")


async def port_of(con: Any) -> int:
    port = await con.fetchval("SELECT inet_server_port()")
    await con.close()
    return int(port)


async def test_f1_refused_host_is_skipped(cluster: Any) -> None:
    started = time.monotonic()
    con = await pg_client.connect(hosts_dsn([closed_port(), cluster.port]))
    elapsed = time.monotonic() - started
    assert await port_of(con) == cluster.port
    assert elapsed < 1.0


async def test_f2_silent_host_times_out_per_host(cluster: Any) -> None:
    with deaf_listen() as (_, deaf):
        started = time.monotonic()
        con = await pg_client.connect(hosts_dsn([deaf, cluster.port], connect_timeout="0.5"))
        elapsed = time.monotonic() - started
    assert await port_of(con) == cluster.port
    assert 0.45 <= elapsed <= 0.5 * 1.1 + 0.2


async def test_overall_timeout_covers_every_host(cluster: Any) -> None:
    # asyncpg's timeout is for the whole connect(): a silent first host may use it all.
    with deaf_listen() as (_, deaf):
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await pg_client.connect(hosts_dsn([deaf, cluster.port]), timeout=0.5)
        elapsed = time.monotonic() - started
    assert 0.45 <= elapsed <= 0.75


async def test_f3_every_host_fails(cluster: Any) -> None:
    refused = closed_port()
    with deaf_listen() as (_, deaf):
        dsn = hosts_dsn([refused, deaf, cluster.port], user=PASSWORD_USER, password="wrong",
                        connect_timeout="0.3", sslmode="disable")
        with pytest.raises(exc.InvalidPasswordError) as info:
            await pg_client.connect(dsn)
    text = str(info.value)
    assert f"port {refused}: ConnectionRefusedError" in text
    assert f"port {deaf}: TimeoutError" in text
    assert f"port {cluster.port}: InvalidPasswordError" in text
    assert "password authentication failed" in text
    assert info.value.sqlstate == "28P01"
    # The server's own message is kept as it was.
    assert info.value.message.startswith("password authentication failed")


async def test_all_hosts_refused(cluster: Any) -> None:
    ports = [closed_port(), closed_port()]
    with pytest.raises(ConnectionRefusedError) as info:
        await pg_client.connect(hosts_dsn(ports))
    for port in ports:
        assert f"port {port}: ConnectionRefusedError" in str(info.value)
    with pytest.raises(OSError):  # asyncpg: the last host's error
        await asyncpg.connect(hosts_dsn(ports))


async def test_wrong_credentials_end_the_attempt(cluster: Any) -> None:
    # As in asyncpg and libpq: an authentication failure is not "try the next host".
    dsn = hosts_dsn([cluster.port, cluster.port], user=PASSWORD_USER, password="wrong")
    with pytest.raises(exc.InvalidPasswordError):
        await pg_client.connect(dsn)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(dsn)
    good = hosts_dsn([closed_port(), cluster.port], user=PASSWORD_USER,
                     password=PASSWORDS[PASSWORD_USER])
    assert await port_of(await pg_client.connect(good)) == cluster.port


async def test_starting_up_host_passes_the_turn(cluster: Any) -> None:
    starting = [expect(StartupMessage),
                send(error_response("57P03", "the database system is starting up",
                                    severity="FATAL")), wait_closed()]
    async with FakeServer(starting) as fake:
        con = await pg_client.connect(hosts_dsn([fake.port, cluster.port], sslmode="disable"))
        assert await port_of(con) == cluster.port
    assert fake.accepted == 1


async def test_unix_socket_and_tcp_hosts(cluster: Any) -> None:
    con = await pg_client.connect(host=["/nonexistent-dir", str(cluster.socket_dir)],
                                  port=cluster.port, user=TRUST_USER, database="postgres")
    assert await con.fetchval("SELECT inet_server_addr() IS NULL")
    await con.close()


@pytest.mark.parametrize(("attrs", "fits"), [
    ("any", True), ("primary", True), ("read-write", True), ("prefer-standby", True),
    ("standby", False), ("read-only", False),
])
async def test_target_session_attrs_on_a_primary(cluster: Any, attrs: str, fits: bool) -> None:
    dsn = hosts_dsn([closed_port(), cluster.port], target_session_attrs=attrs)
    if fits:
        assert await port_of(await pg_client.connect(dsn)) == cluster.port
    else:
        with pytest.raises(exc.TargetServerAttributeNotMatched):
            await pg_client.connect(hosts_dsn([cluster.port], target_session_attrs=attrs))
        with pytest.raises(asyncpg.TargetServerAttributeNotMatched):
            await asyncpg.connect(hosts_dsn([cluster.port], target_session_attrs=attrs))


async def test_read_only_session(cluster: Any) -> None:
    settings = {"default_transaction_read_only": "on"}
    con = await pg_client.connect(hosts_dsn([cluster.port]), target_session_attrs="read-only",
                                  server_settings=settings)
    await con.close()
    with pytest.raises(exc.TargetServerAttributeNotMatched):
        await pg_client.connect(hosts_dsn([cluster.port]), target_session_attrs="read-write",
                                server_settings=settings)


async def test_f7_load_balance_hosts_random() -> None:
    servers = [FakeServer([accept_startup(), serve()]) for _ in range(3)]
    for server in servers:
        await server.start()
    try:
        dsn = (f"postgresql://u@{','.join(f'127.0.0.1:{s.port}' for s in servers)}/db"
               "?sslmode=disable")
        rounds = 300
        first: Counter[int] = Counter()
        for _ in range(rounds):
            con = await pg_client.connect(dsn, load_balance_hosts="random")
            first[con._addr[1]] += 1
            con.terminate()
        expected = rounds / 3
        chi2 = sum((first[s.port] - expected) ** 2 / expected for s in servers)
        assert chi2 < 13.8, first  # p > 0.001 with 2 degrees of freedom
        # Without it: always the first host.
        con = await pg_client.connect(dsn)
        assert con._addr[1] == servers[0].port
        con.terminate()
    finally:
        for server in servers:
            await server.close()
