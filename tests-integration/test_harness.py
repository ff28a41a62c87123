"""Tests of the throwaway-server harness itself (tools/pgcluster.py and conftest.py).

The protocol bytes here are written by hand on purpose: these tests must not
depend on the client under test. Message names are those of the PostgreSQL
docs ("Message Formats").
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

import pgcluster

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def needs_managed(server: Any) -> None:
    if not server.managed:
        pytest.skip("PGTEST_DSN server: test roles, certificates and files are not ours")


# -- hand-written protocol v3 -------------------------------------------------


def startup_message(**params: str) -> bytes:
    body = struct.pack("!i", 196608)  # protocol 3.0
    body += b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!i", len(body) + 4) + body


def query_message(sql: str) -> bytes:
    body = sql.encode() + b"\0"
    return b"Q" + struct.pack("!i", len(body) + 4) + body


SSL_REQUEST = struct.pack("!ii", 8, 80877103)
TERMINATE = b"X" + struct.pack("!i", 4)


def error_fields(payload: bytes) -> dict[str, str]:
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode()
    return fields


def data_row_values(payload: bytes) -> list[bytes | None]:
    (count,) = struct.unpack_from("!h", payload)
    pos, values = 2, []
    for _ in range(count):
        (n,) = struct.unpack_from("!i", payload, pos)
        pos += 4
        values.append(None if n < 0 else payload[pos : pos + n])
        pos += max(n, 0)
    return values


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    (length,) = struct.unpack("!i", header[1:])
    return header[:1], await reader.readexactly(length - 4)


async def first_auth_reply(
    host: str, port: int | None, user: str, *, path: str | None = None
) -> tuple[bytes, Any]:
    """Send StartupMessage; return (b"R", auth code) or (b"E", SQLSTATE)."""
    if path:
        reader, writer = await asyncio.open_unix_connection(path)
    else:
        reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(startup_message(user=user, database="postgres"))
        await writer.drain()
        kind, payload = await asyncio.wait_for(read_message(reader), 10)
        if kind == b"R":
            return kind, struct.unpack_from("!i", payload)[0]
        if kind == b"E":
            return kind, error_fields(payload)["C"]
        raise AssertionError(f"unexpected first message {kind!r}")
    finally:
        writer.close()
        await writer.wait_closed()


# -- the server really talks --------------------------------------------------


def test_startup_and_simple_query(cluster: Any) -> None:
    user = pgcluster.TRUST_USER if cluster.managed else cluster.superuser

    async def run() -> list[list[bytes | None]]:
        reader, writer = await asyncio.open_connection(cluster.host, cluster.port)
        try:
            writer.write(startup_message(user=user, database="postgres"))
            await writer.drain()
            params = {}
            while True:
                kind, payload = await asyncio.wait_for(read_message(reader), 10)
                if kind == b"R":
                    code = struct.unpack_from("!i", payload)[0]
                    if code != 0:
                        pytest.skip(
                            f"server asks {user} for auth (code {code}); raw test does trust only"
                        )
                elif kind == b"S":
                    name, value, _ = payload.split(b"\0")
                    params[name] = value
                elif kind == b"E":
                    raise AssertionError(error_fields(payload))
                elif kind == b"Z":
                    break
            assert b"server_version" in params
            writer.write(query_message("SELECT 1"))
            await writer.drain()
            rows = []
            while True:
                kind, payload = await asyncio.wait_for(read_message(reader), 10)
                if kind == b"D":
                    rows.append(data_row_values(payload))
                elif kind == b"E":
                    raise AssertionError(error_fields(payload))
                elif kind == b"Z":
                    assert payload == b"I"
                    break
            writer.write(TERMINATE)
            await writer.drain()
            return rows
        finally:
            writer.close()
            await writer.wait_closed()

    assert asyncio.run(run()) == [[b"1"]]


def test_ssl_request_answered_with_s(cluster: Any) -> None:
    async def run() -> bytes:
        reader, writer = await asyncio.open_connection(cluster.host, cluster.port)
        try:
            writer.write(SSL_REQUEST)
            await writer.drain()
            return await asyncio.wait_for(reader.readexactly(1), 10)
        finally:
            writer.close()
            await writer.wait_closed()

    assert asyncio.run(run()) == b"S"


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
def test_tls_with_client_certificate(cluster: Any, server_hostname: str) -> None:
    """Verified TLS both ways: server cert against our CA, cert_user by its client cert."""
    needs_managed(cluster)
    ctx = ssl.create_default_context(cafile=str(cluster.ca_path))
    ctx.load_cert_chain(str(cluster.client_cert_path), str(cluster.client_key_path))
    with socket.create_connection((cluster.host, cluster.port), timeout=10) as raw:
        raw.sendall(SSL_REQUEST)
        assert raw.recv(1) == b"S"
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            tls.sendall(startup_message(user=pgcluster.CERT_USER, database="postgres"))
            kinds = []
            buf = b""
            while b"Z" not in kinds:
                while len(buf) < 5 or len(buf) < 1 + struct.unpack("!i", buf[1:5])[0]:
                    chunk = tls.recv(65536)
                    assert chunk, "server closed the connection"
                    buf += chunk
                length = struct.unpack("!i", buf[1:5])[0]
                kind, payload, buf = buf[:1], buf[5 : 1 + length], buf[1 + length :]
                assert kind != b"E", error_fields(payload)
                if kind == b"R":
                    assert struct.unpack_from("!i", payload)[0] == 0  # AuthenticationOk
                kinds.append(kind)
            tls.sendall(TERMINATE)


# What each role gets as the first reply to a StartupMessage: AuthenticationOk
# (R 0), AuthenticationCleartextPassword (R 3), AuthenticationMD5Password (R 5),
# AuthenticationSASL (R 10), or ErrorResponse 28000 (pg_hba.conf rejects).
PLAIN_TCP = {
    pgcluster.SUPERUSER: (b"R", 0),
    pgcluster.TRUST_USER: (b"R", 0),
    pgcluster.PASSWORD_USER: (b"R", 3),
    pgcluster.MD5_USER: (b"R", 5),
    pgcluster.SCRAM_USER: (b"R", 10),
    pgcluster.NOSSL_USER: (b"R", 0),
    pgcluster.SSL_USER: (b"E", "28000"),
    pgcluster.CERT_USER: (b"E", "28000"),
    "no_such_role": (b"R", 10),  # the catch-all line
}
UNIX_SOCKET = {**PLAIN_TCP, pgcluster.NOSSL_USER: (b"E", "28000")}


@pytest.mark.parametrize("user", list(PLAIN_TCP))
@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "unix"])
def test_hba_methods(cluster: Any, user: str, host: str) -> None:
    needs_managed(cluster)
    if host == "::1" and not cluster.has_ipv6:
        pytest.skip("no IPv6 loopback on this machine")
    if host == "unix":
        got = asyncio.run(first_auth_reply("", None, user, path=str(cluster.socket_path)))
        assert got == UNIX_SOCKET[user]
    else:
        assert asyncio.run(first_auth_reply(host, cluster.port, user)) == PLAIN_TCP[user]


# -- files, roles and settings ------------------------------------------------


def test_certificate_files(cluster: Any) -> None:
    needs_managed(cluster)
    for path in (
        cluster.ca_path,
        cluster.server_cert_path,
        cluster.server_key_path,
        cluster.client_cert_path,
        cluster.client_key_path,
    ):
        assert path.is_file(), path
    for key in (cluster.server_key_path, cluster.client_key_path):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert cluster.client_key_path.stat().st_uid == os.getuid()
    assert cluster.psql("SHOW ssl_ca_file") == str(cluster.ca_path)


def test_psql_and_version(cluster: Any) -> None:
    assert cluster.psql("select version()").startswith("PostgreSQL ")
    assert int(cluster.psql("SHOW server_version_num")) // 10000 == cluster.version
    assert cluster.version in pgcluster.SUPPORTED_MAJORS


def test_psql_raises_with_stderr(cluster: Any) -> None:
    with pytest.raises(pgcluster.PgClusterError, match="no_such_table"):
        cluster.psql("SELECT * FROM no_such_table")


def test_settings(cluster: Any) -> None:
    needs_managed(cluster)
    out = cluster.psql(
        "SELECT name, setting FROM pg_settings WHERE name IN "
        "('ssl', 'fsync', 'synchronous_commit', 'full_page_writes', 'max_connections', 'port') "
        "ORDER BY name"
    )
    assert dict(line.split("|") for line in out.splitlines()) == {
        "fsync": "off",
        "full_page_writes": "off",
        "max_connections": "100",
        "port": str(cluster.port),
        "ssl": "on",
        "synchronous_commit": "off",
    }
    assert cluster.psql("show ssl") == "on"


def test_roles_and_database_exist(cluster: Any) -> None:
    needs_managed(cluster)
    roles = cluster.psql("SELECT rolname FROM pg_roles WHERE rolcanlogin ORDER BY 1").splitlines()
    assert set(pgcluster.ROLES) <= set(roles)
    assert cluster.psql(
        f"SELECT rolpassword FROM pg_authid WHERE rolname = '{pgcluster.MD5_USER}'"
    ).startswith("md5")
    assert cluster.psql(
        f"SELECT rolpassword FROM pg_authid WHERE rolname = '{pgcluster.SCRAM_USER}'"
    ).startswith("SCRAM-SHA-256$")
    assert (
        cluster.psql("SELECT current_database()", database=pgcluster.TEST_DATABASE)
        == pgcluster.TEST_DATABASE
    )


@pytest.mark.parametrize(
    "user", [pgcluster.PASSWORD_USER, pgcluster.MD5_USER, pgcluster.SCRAM_USER]
)
def test_psql_as_password_roles(cluster: Any, user: str) -> None:
    needs_managed(cluster)
    assert cluster.psql("SELECT current_user", user=user) == user


def test_unix_socket_exists(cluster: Any) -> None:
    needs_managed(cluster)
    assert cluster.socket_path == cluster.socket_dir / f".s.PGSQL.{cluster.port}"
    assert stat.S_ISSOCK(cluster.socket_path.stat().st_mode)
    assert cluster.log_tail(0) == ""
    # The whole log: after many tests the line is far from the tail.
    assert "ready to accept connections" in cluster.log_path.read_text(errors="replace")


def test_dsn_and_connect_kwargs(cluster: Any) -> None:
    dsn = cluster.dsn("sc@ram:/ü", password="p@ss:w/rd?&", database="db name", sslmode="require")
    parts = urlsplit(dsn)
    assert parts.scheme == "postgresql"
    assert unquote(parts.username) == "sc@ram:/ü" and unquote(parts.password) == "p@ss:w/rd?&"
    assert parts.port == cluster.port
    assert unquote(parts.path) == "/db name"
    assert "sslmode=require" in parts.query.split("&")
    assert urlsplit(cluster.dsn(host="::1")).netloc.endswith(f"[::1]:{cluster.port}")
    kwargs = cluster.connect_kwargs(pgcluster.SCRAM_USER, password=pgcluster.SCRAM_USER_PASSWORD)
    assert kwargs == {
        "host": cluster.host,
        "port": cluster.port,
        "user": "scram_user",
        "database": "postgres",
        "password": "scram-secret",
    }


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        (15, ">= 15", True),
        (14, ">= 15", False),
        (16, ">=14, <17", True),
        (17, ">=14,<17", False),
        (15, "15", True),
        (15, "!= 15", False),
        (18, "> 17", True),
        (14, "<= 14", True),
    ],
)
def test_version_matches(version: int, spec: str, expected: bool) -> None:
    assert pgcluster.version_matches(version, spec) is expected


def test_version_matches_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        pgcluster.version_matches(15, "~= 15")


@pytest.mark.pg(">= 14")
def test_pg_marker_runs(cluster: Any) -> None:
    assert cluster.version >= 14


@pytest.mark.pg("< 14")
def test_pg_marker_skips() -> None:
    raise AssertionError("the pg marker should have skipped this test")


def test_parse_external_dsn() -> None:
    server = pgcluster.ExternalServer(
        "postgresql://u%40x:p%3Aw@[::1]:6543/my%20db?sslmode=verify-full"
    )
    assert (server.superuser, server.host, server.port, server.database) == (
        "u@x",
        "::1",
        6543,
        "my db",
    )
    assert server.dsn() == "postgresql://u%40x:p%3Aw@[::1]:6543/my%20db?sslmode=verify-full"
    assert server.ca_path is None and server.data_dir is None and not server.managed
    kv = pgcluster.ExternalServer("host=/var/run/pg port=5433 user=bob password='a b\\'c' dbname=x")
    assert (kv.socket_dir, kv.port, kv.superuser, kv.database) == (
        Path("/var/run/pg"),
        5433,
        "bob",
        "x",
    )
    assert kv.dsn() == "postgresql://bob:a%20b%27c@/x?host=%2Fvar%2Frun%2Fpg&port=5433"


# -- lifecycle: restart, stop, SIGKILL, SIGTERM -------------------------------


def test_restart_keeps_data_and_port(cluster: Any) -> None:
    needs_managed(cluster)
    cluster.psql(
        "DROP TABLE IF EXISTS harness_restart; CREATE TABLE harness_restart (x int); "
        "INSERT INTO harness_restart VALUES (42)"
    )
    port, pid = cluster.port, cluster.postmaster_pid
    for mode in ("fast", "immediate"):
        cluster.restart(mode)
        assert cluster.port == port and cluster.postmaster_pid not in (None, pid)
        pid = cluster.postmaster_pid
        assert cluster.psql("SELECT x FROM harness_restart") == "42"
    cluster.stop_server("fast")
    assert not cluster.running and cluster.data_dir.exists()
    cluster.start_server()
    assert cluster.psql("SELECT x FROM harness_restart") == "42"
    cluster.psql("DROP TABLE harness_restart")


def port_refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pgcluster._pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stop_leaves_nothing(cluster: Any) -> None:
    needs_managed(cluster)
    other = pgcluster.Cluster(cluster.bin_dir).start()
    base, port, pid = other.base_dir, other.port, other.postmaster_pid
    assert base is not None and port is not None and pid is not None
    assert other.psql("SELECT 1") == "1" and not port_refuses(port)
    other.stop()
    other.stop()  # idempotent
    assert not base.exists()
    assert not pgcluster._pid_alive(pid)
    assert port_refuses(port)


def test_cluster_started_from_a_thread_outlives_the_thread(cluster: Any) -> None:
    """The death signal follows the forking thread, so spawns go through a long-lived one."""
    needs_managed(cluster)
    started: list[pgcluster.Cluster] = []
    worker = threading.Thread(
        target=lambda: started.append(pgcluster.Cluster(cluster.bin_dir).start())
    )
    worker.start()
    worker.join(60)
    assert started, "the thread failed to start a cluster"
    other = started[0]
    try:
        time.sleep(0.3)  # a death signal would have arrived by now
        assert other.running
        assert other.psql("SELECT 1") == "1"
    finally:
        other.stop()


CHILD = """
import json, sys, time
sys.path.insert(0, {tools!r})
import pgcluster
c = pgcluster.Cluster({bin_dir!r}).start()
print(json.dumps({{"base": str(c.base_dir), "pid": c.postmaster_pid, "port": c.port}}), flush=True)
time.sleep(120)
"""


def start_child_cluster(bin_dir: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """A python child that starts a cluster and sleeps; returns it and what it printed."""
    stderr = tempfile.TemporaryFile()
    code = CHILD.format(tools=str(TOOLS), bin_dir=str(bin_dir))
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL),
    )
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 30)
    line = child.stdout.readline() if ready else ""
    if not line:
        child.kill()
        child.wait()
        stderr.seek(0)
        raise AssertionError(
            f"child did not start a cluster:\n{stderr.read().decode(errors='replace')}"
        )
    stderr.close()
    info = json.loads(line)
    # The pid the server itself wrote (first line of postmaster.pid) is the one we watch.
    pm_pid = int((Path(info["base"]) / "data" / "postmaster.pid").read_text().split()[0])
    assert pm_pid == info["pid"] and pgcluster._pid_alive(pm_pid)
    return child, info


def force_cleanup(info: dict[str, Any]) -> None:
    if pgcluster._pid_alive(info["pid"]):
        kids = pgcluster._children_of(info["pid"])
        for pid in [info["pid"], *kids]:
            os.kill(pid, signal.SIGKILL)
    import shutil

    shutil.rmtree(info["base"], ignore_errors=True)


def test_sigkill_of_the_test_process_stops_the_server(cluster: Any) -> None:
    """PR_SET_PDEATHSIG survives the uid switch: SIGKILL the python, the postmaster goes."""
    needs_managed(cluster)
    child, info = start_child_cluster(cluster.bin_dir)
    try:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
        assert wait_gone(info["pid"], 5), "postmaster survived the SIGKILL of its parent"
        assert port_refuses(info["port"])
        assert Path(info["base"]).exists()  # nobody could clean up; the next run's sweep will
        pgcluster._sweep_stale(Path(info["base"]).parent)
        assert not Path(info["base"]).exists()
    finally:
        force_cleanup(info)


def test_sigterm_cleans_up(cluster: Any) -> None:
    needs_managed(cluster)
    child, info = start_child_cluster(cluster.bin_dir)
    try:
        child.send_signal(signal.SIGTERM)
        assert child.wait(20) == -signal.SIGTERM  # cleaned up, then died of the signal
        assert child.stdout is not None
        child.stdout.close()
        assert not pgcluster._pid_alive(info["pid"])
        assert not Path(info["base"]).exists()
        assert port_refuses(info["port"])
    finally:
        force_cleanup(info)
