"""TLS against real servers: the sslmode matrix and every TLS option.

RELIABILITY.md S1 (sslmode x server certificate x root certificate, 48
cells, each also run through asyncpg as the reference), S2 (host vs
hostaddr), client certificates (incl. an encrypted key and the default files
in ~/.postgresql), sslcrl, TLS versions, ssl.SSLContext / ssl=True /
sslrootcert=system, and direct TLS (PostgreSQL 17+).

The matrix needs servers with different certificates: one extra cluster
(``tls_cluster``) is reconfigured between them with ALTER SYSTEM and a
reload, so the session's cluster is never touched. HOME points at an empty
directory in every test, so no ~/.postgresql file of the machine counts.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import pg_client
import pgcluster
from pg_client import exceptions as exc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _helpers import backend_gone

pytestmark = pytest.mark.timeout(120)


def _needs_managed(cluster: Any) -> None:
    if not cluster.managed:
        pytest.skip("PGTEST_DSN server: no test certificates or roles to rely on")


@pytest.fixture(autouse=True)
def _empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ~/.postgresql/root.crt or client certificate unless a test writes one."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL",
                "PGSSLNEGOTIATION", "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION",
                "SSL_CERT_FILE", "SSL_CERT_DIR", "PGPASSWORD", "PGCHANNELBINDING"):
        monkeypatch.delenv(var, raising=False)
    return home


# -- a cluster whose certificate we switch -----------------------------------------


class TLSServer:
    """An extra cluster, switched between the four server kinds of S1."""

    KINDS = ("no-tls", "self-signed", "wrong-host", "right-host")

    def __init__(self, cluster: pgcluster.Cluster) -> None:
        import trustme

        self.cluster = cluster
        self.kind = "right-host"
        tls = Path(cluster.base_dir) / "tls"  # type: ignore[arg-type]
        owner = os.stat(cluster.data_dir)  # type: ignore[arg-type]
        other_ca = trustme.CA(organization_name="not the test CA")
        wrong = cluster.trust_ca.issue_cert("wronghost.invalid")
        self.files = {
            "right-host": (str(cluster.server_cert_path), str(cluster.server_key_path)),
            # A self-signed certificate: another CA's own root.
            "self-signed": self._write(tls, "self", other_ca.cert_pem.bytes(),
                                       other_ca.private_key_pem.bytes(), owner),
            "wrong-host": self._write(tls, "wrong", wrong.cert_chain_pems[0].bytes(),
                                      wrong.private_key_pem.bytes(), owner),
        }

    @staticmethod
    def _write(tls: Path, name: str, cert: bytes, key: bytes, owner: Any) -> tuple[str, str]:
        cert_path, key_path = tls / f"{name}.crt", tls / f"{name}.key"
        cert_path.write_bytes(cert)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        for path in (cert_path, key_path):
            os.chown(path, owner.st_uid, owner.st_gid)
        return str(cert_path), str(key_path)

    async def _admin(self) -> Any:
        return await asyncpg.connect(host=str(self.cluster.socket_dir), port=self.cluster.port,
                                     user="postgres", database="postgres")

    async def use(self, kind: str, **settings: str) -> None:
        """Switch the server to *kind* (plus extra ALTER SYSTEM settings)."""
        wanted = {"ssl": "off" if kind == "no-tls" else "on", **settings}
        if kind != "no-tls":
            wanted["ssl_cert_file"], wanted["ssl_key_file"] = self.files[kind]
        con = await self._admin()
        try:
            current = {name: await con.fetchval("SELECT current_setting($1)", name)
                       for name in wanted}
            if current == wanted and self.kind == kind:
                return
            await con.execute("ALTER SYSTEM RESET ALL")
            for name, value in wanted.items():
                await con.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            await con.execute("SELECT pg_reload_conf()")
        finally:
            await con.close()
        # New backends fork from the postmaster: once one sees the settings,
        # the postmaster has reloaded them (its TLS context included).
        for _ in range(250):
            con = await self._admin()
            try:
                seen = {name: await con.fetchval("SELECT current_setting($1)", name)
                        for name in wanted}
            finally:
                await con.close()
            if seen == wanted:
                self.kind = kind
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"the server did not reload {wanted}")


@pytest.fixture(scope="module")
def tls_cluster(cluster: Any) -> Iterator[pgcluster.Cluster]:
    _needs_managed(cluster)
    extra = pgcluster.Cluster(cluster.bin_dir)
    extra.start()
    try:
        yield extra
    finally:
        extra.stop()


@pytest.fixture(scope="module")
def tls_server(tls_cluster: pgcluster.Cluster) -> TLSServer:
    return TLSServer(tls_cluster)


async def _ssl_in_use(con: Any) -> bool:
    return bool(await con.fetchval(
        "SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()"))


# -- S1: the matrix --------------------------------------------------------------------


def expected_outcome(server: str, mode: str, root: bool) -> str:
    """libpq's outcome for one cell: plain, tls, refused, verify-fail or config."""
    if mode in ("verify-ca", "verify-full") and not root:
        return "config"  # no root certificate to verify with
    if server == "no-tls":
        return "plain" if mode in ("disable", "allow", "prefer") else "refused"
    if mode in ("disable", "allow"):
        return "plain"
    if mode == "prefer":
        return "tls"  # prefer never verifies
    # require verifies the chain when a root certificate is there (libpq's legacy rule).
    if server == "self-signed" and (mode != "require" or root):
        return "verify-fail"
    if server == "wrong-host" and mode == "verify-full":
        return "verify-fail"
    return "tls"


async def _outcome(impl: Any, cluster: Any, mode: str, root: bool) -> str:
    query = f"sslmode={mode}" + (f"&sslrootcert={cluster.ca_path}" if root else "")
    dsn = cluster.dsn(database="postgres") + "?" + query
    try:
        con = await impl.connect(dsn, timeout=10)
    except ssl.SSLCertVerificationError:
        return "verify-fail"
    except (pg_client.ClientConfigurationError, asyncpg.ClientConfigurationError):
        return "config"
    except ConnectionError as e:
        assert "rejected SSL upgrade" in str(e)
        return "refused"
    try:
        return "tls" if await _ssl_in_use(con) else "plain"
    finally:
        await con.close()


MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@pytest.mark.parametrize("server", TLSServer.KINDS)
async def test_s1_sslmode_matrix(tls_server: TLSServer, server: str) -> None:
    await tls_server.use(server)
    cells = []
    for mode in MODES:
        for root in (False, True):
            want = expected_outcome(server, mode, root)
            got = await _outcome(pg_client, tls_server.cluster, mode, root)
            ref = await _outcome(asyncpg, tls_server.cluster, mode, root)
            cells.append((mode, root, want, got, ref))
    wrong = [c for c in cells if not c[2] == c[3] == c[4]]
    assert not wrong, "(mode, root, libpq, pg_client, asyncpg): " + repr(wrong)


async def test_s2_hostaddr_dials_but_host_is_verified(tls_server: TLSServer) -> None:
    await tls_server.use("wrong-host")
    c = tls_server.cluster
    base = f"port={c.port} user=postgres dbname=postgres sslrootcert={c.ca_path}"
    # The certificate is for wronghost.invalid: verify against host, dial hostaddr.
    con = await pg_client.connect(
        f"host=wronghost.invalid hostaddr=127.0.0.1 {base} sslmode=verify-full", timeout=10)
    assert await _ssl_in_use(con)
    await con.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        await pg_client.connect(f"host=127.0.0.1 {base} sslmode=verify-full", timeout=10)


async def test_s2_ip_and_dns_names(tls_server: TLSServer) -> None:
    await tls_server.use("right-host")  # SAN: localhost, 127.0.0.1, ::1
    c = tls_server.cluster
    for host in ("localhost", "127.0.0.1"):
        con = await pg_client.connect(
            f"host={host} port={c.port} user=postgres dbname=postgres "
            f"sslrootcert={c.ca_path} sslmode=verify-full", timeout=10)
        await con.close()


# -- root certificate from ~/.postgresql, CRLs, versions, contexts ---------------------


async def test_require_with_default_root_crt_verifies_the_chain(
        tls_server: TLSServer, _empty_home: Path) -> None:
    await tls_server.use("right-host")
    c = tls_server.cluster
    dotdir = _empty_home / ".postgresql"
    dotdir.mkdir()
    dsn = c.dsn(database="postgres", sslmode="require")
    (dotdir / "root.crt").write_bytes(Path(c.ca_path).read_bytes())
    con = await pg_client.connect(dsn, timeout=10)
    await con.close()
    # The wrong CA in root.crt: require now fails, as in libpq and asyncpg.
    import trustme

    (dotdir / "root.crt").write_bytes(trustme.CA().cert_pem.bytes())
    with pytest.raises(ssl.SSLCertVerificationError):
        await pg_client.connect(dsn, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncpg.connect(dsn, timeout=10)


def _crl(cluster: Any, revoked_serials: list[int]) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    key = serialization.load_pem_private_key(cluster.trust_ca.private_key_pem.bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(cluster.trust_ca.cert_pem.bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca_cert.subject)
               .last_update(now - datetime.timedelta(minutes=1))
               .next_update(now + datetime.timedelta(days=1)))
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(now - datetime.timedelta(minutes=1)).build())
    crl = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return crl.public_bytes(serialization.Encoding.PEM)


async def test_sslcrl(tls_server: TLSServer, tmp_path: Path) -> None:
    from cryptography import x509

    await tls_server.use("right-host")
    c = tls_server.cluster
    serial = x509.load_pem_x509_certificate(
        Path(c.server_cert_path).read_bytes()).serial_number
    good, bad = tmp_path / "empty.crl", tmp_path / "revoked.crl"
    good.write_bytes(_crl(c, []))
    bad.write_bytes(_crl(c, [serial]))
    dsn = f"{c.dsn(database='postgres')}?sslmode=verify-full&sslrootcert={c.ca_path}"
    con = await pg_client.connect(f"{dsn}&sslcrl={good}", timeout=10)
    await con.close()
    with pytest.raises(ssl.SSLCertVerificationError, match="revoked"):
        await pg_client.connect(f"{dsn}&sslcrl={bad}", timeout=10)


async def test_tls_versions(tls_server: TLSServer) -> None:
    c = tls_server.cluster
    dsn = f"{c.dsn(database='postgres')}?sslmode=require"
    await tls_server.use("right-host")
    con = await pg_client.connect(dsn, timeout=10)
    assert con._transport.get_extra_info("ssl_object").version() == "TLSv1.3"
    await con.close()
    con = await pg_client.connect(dsn + "&ssl_max_protocol_version=TLSv1.2", timeout=10)
    assert con._transport.get_extra_info("ssl_object").version() == "TLSv1.2"
    assert await con.fetchval("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()") \
        == "TLSv1.2"
    await con.close()
    await tls_server.use("right-host", ssl_max_protocol_version="TLSv1.2")
    try:
        with pytest.raises(ssl.SSLError):
            await pg_client.connect(dsn + "&ssl_min_protocol_version=TLSv1.3", timeout=10)
    finally:
        await tls_server.use("right-host")


async def test_ssl_context_is_used_as_given(cluster: Any) -> None:
    _needs_managed(cluster)
    ctx = ssl.create_default_context(cafile=str(cluster.ca_path))
    for host in ("localhost", "127.0.0.1"):
        con = await pg_client.connect(host=host, port=cluster.port, user="postgres",
                                      database="postgres", ssl=ctx, timeout=10)
        assert con._ssl_in_use
        await con.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        await pg_client.connect(host="127.0.0.1", port=cluster.port, user="postgres",
                                database="postgres", ssl=ssl.create_default_context(),
                                timeout=10)


async def test_ssl_true_and_sslrootcert_system(
        cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_managed(cluster)
    kwargs = dict(host="localhost", port=cluster.port, user="postgres", database="postgres",
                  timeout=10)
    # ssl=True is verify-full against the system store, which lacks the test CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        await pg_client.connect(ssl=True, **kwargs)
    with pytest.raises(ssl.SSLCertVerificationError):
        await pg_client.connect("sslrootcert=system", **kwargs)
    # Make the test CA the "system" store: sslrootcert=system implies verify-full.
    monkeypatch.setenv("SSL_CERT_FILE", str(cluster.ca_path))
    con = await pg_client.connect("sslrootcert=system", **kwargs)
    assert con._ssl_in_use
    await con.close()
    with pytest.raises(pg_client.ClientConfigurationError, match="weak sslmode"):
        await pg_client.connect("sslrootcert=system sslmode=require", **kwargs)


# -- client certificates -------------------------------------------------------------------


def _cert_dsn(cluster: Any, **extra: str) -> str:
    params = {"sslmode": "verify-full", "sslrootcert": str(cluster.ca_path), **extra}
    return cluster.dsn(user=pgcluster.CERT_USER, database="postgres", **params)


async def test_client_certificate_auth(cluster: Any) -> None:
    _needs_managed(cluster)
    con = await pg_client.connect(_cert_dsn(cluster, sslcert=str(cluster.client_cert_path),
                                            sslkey=str(cluster.client_key_path)), timeout=10)
    assert await con.fetchval("SELECT current_user") == pgcluster.CERT_USER
    dn = await con.fetchval("SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert "CN=cert_use" in dn  # pg_stat_ssl truncates to 63 bytes
    await con.close()
    with pytest.raises(exc.InvalidAuthorizationSpecificationError):
        await pg_client.connect(_cert_dsn(cluster), timeout=10)


async def test_client_certificate_from_home(cluster: Any, _empty_home: Path) -> None:
    _needs_managed(cluster)
    dotdir = _empty_home / ".postgresql"
    dotdir.mkdir()
    (dotdir / "postgresql.crt").write_bytes(Path(cluster.client_cert_path).read_bytes())
    key = dotdir / "postgresql.key"
    key.write_bytes(Path(cluster.client_key_path).read_bytes())
    key.chmod(0o600)
    (dotdir / "root.crt").write_bytes(Path(cluster.ca_path).read_bytes())
    con = await pg_client.connect(cluster.dsn(user=pgcluster.CERT_USER, database="postgres",
                                              sslmode="verify-ca"), timeout=10)
    assert await con.fetchval("SELECT current_user") == pgcluster.CERT_USER
    await con.close()
    key.chmod(0o644)
    with pytest.raises(pg_client.ClientConfigurationError, match="group or world access"):
        await pg_client.connect(cluster.dsn(user=pgcluster.CERT_USER, database="postgres",
                                            sslmode="verify-ca"), timeout=10)


async def test_encrypted_client_key_with_sslpassword(cluster: Any, tmp_path: Path) -> None:
    _needs_managed(cluster)
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(cluster.client_key_path).read_bytes(), None)
    encrypted = tmp_path / "client-encrypted.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"key-pass-phrase")))
    encrypted.chmod(0o600)
    files = dict(sslcert=str(cluster.client_cert_path), sslkey=str(encrypted))
    con = await pg_client.connect(_cert_dsn(cluster, sslpassword="key-pass-phrase", **files),
                                  timeout=10)
    assert await con.fetchval("SELECT current_user") == pgcluster.CERT_USER
    await con.close()
    with pytest.raises(pg_client.ClientConfigurationError) as info:
        await pg_client.connect(_cert_dsn(cluster, sslpassword="wrong-phrase", **files),
                                timeout=10)
    assert "wrong-phrase" not in str(info.value)


# -- direct TLS (PostgreSQL 17+) ---------------------------------------------------------------


@pytest.mark.pg(">= 17")
@pytest.mark.parametrize("how", ["direct_tls", "sslnegotiation"])
async def test_direct_tls(cluster: Any, how: str) -> None:
    _needs_managed(cluster)
    dsn = cluster.dsn(database="postgres", sslmode="verify-full", sslrootcert=str(cluster.ca_path))
    dsn = dsn.replace("127.0.0.1", "localhost")
    if how == "direct_tls":
        con = await pg_client.connect(dsn, direct_tls=True, timeout=10)
    else:
        con = await pg_client.connect(dsn + "&sslnegotiation=direct", timeout=10)
    assert con._ssl_in_use
    assert con._transport.get_extra_info("ssl_object").selected_alpn_protocol() == "postgresql"
    assert await _ssl_in_use(con)
    # The CancelRequest goes over direct TLS too.
    with pytest.raises(asyncio.TimeoutError):
        await con.execute("SELECT pg_sleep(30)", timeout=0.3)
    assert await con.fetchval("SELECT 1") == 1
    await con.close()


@pytest.mark.pg("< 17")
async def test_direct_tls_needs_17(cluster: Any) -> None:
    _needs_managed(cluster)
    with pytest.raises(ConnectionError, match="17"):
        await pg_client.connect(cluster.dsn(database="postgres", sslmode="require"),
                                direct_tls=True, timeout=10)


async def test_cancel_over_tls_reaches_the_server(cluster: Any) -> None:
    _needs_managed(cluster)
    con = await pg_client.connect(cluster.dsn(database="postgres", sslmode="require"),
                                  timeout=10)
    observer = await pg_client.connect(cluster.dsn(database="postgres"), ssl="disable")
    try:
        assert con._ssl_in_use
        pid = con.get_server_pid()
        with pytest.raises(asyncio.TimeoutError):
            await con.execute("SELECT pg_sleep(30)", timeout=0.3)
        assert await backend_gone(observer, pid, timeout=3)
        assert await con.fetchval("SELECT 2") == 2
    finally:
        await con.close()
        await observer.close()
