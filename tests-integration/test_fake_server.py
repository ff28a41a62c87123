"""connect() against a scripted fake server: what no real server does.

RELIABILITY.md rows S3-S13 (downgrades, injected bytes, hostile TLS and
SCRAM peers, require_auth, secret hygiene, cancel/reconnect security), T7
(connect timeouts in each phase), W6 (BackendKeyData lengths) and W1
(unexpected messages during startup). The fake server (``fakeserver.py``)
records every byte the client sends, so "nothing was sent" is checked on the
bytes, not inferred. No PostgreSQL server is needed here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import struct
import sys
import time
import traceback
import warnings
from typing import Any

import pytest

import pg_client
from pg_client import exceptions as exc
from pg_wire.backend import error_response, startup_response
from pg_wire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationGSS,
    AuthenticationMD5Password,
    AuthenticationOk,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendKeyData,
    CancelRequest,
    DataRow,
    FieldDescription,
    NegotiateProtocolVersion,
    ParameterStatus,
    PasswordMessage,
    Query,
    ReadyForQuery,
    RowDescription,
    SASLInitialResponse,
    SASLResponse,
    SSLRequest,
    StartupMessage,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakeserver import (
    FakeConn,
    FakeServer,
    ScramServer,
    accept_startup,
    ca_file,
    expect,
    fake_ca,
    send,
    send_raw,
    serve,
    server_tls_context,
    sleep,
    tls,
    wait_closed,
)
from faultproxy import deaf_listen

pytestmark = pytest.mark.timeout(60)

USER = "alice"
PASSWORD = "fake-Pa55word"
SSL_REQUEST_BYTES = SSLRequest().encode()
CREDENTIAL_MESSAGES = (PasswordMessage, SASLInitialResponse, SASLResponse)


async def fconnect(server: FakeServer, dsn: str | None = None, **kwargs: Any) -> Any:
    """connect() to the fake server; plaintext unless told otherwise."""
    kwargs.setdefault("ssl", "disable")
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("user", USER)
    kwargs.setdefault("database", "db")
    return await pg_client.connect(dsn, host=server.host, port=server.port, **kwargs)


def no_credentials(conn: FakeConn, password: str = PASSWORD) -> None:
    """Assert that no credential of any kind left the client on *conn*."""
    assert not [m for m in conn.messages if isinstance(m, CREDENTIAL_MESSAGES)]
    assert password.encode() not in conn.received


def tls_server_script(*after: Any, context: ssl.SSLContext | None = None) -> list[Any]:
    return [expect(SSLRequest), send_raw(b"S"), tls(context), *after]


# -- S3: the server answers N ----------------------------------------------------


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
async def test_s3_refused_tls_sends_nothing_more(mode: str) -> None:
    async with FakeServer([expect(SSLRequest), send_raw(b"N"), wait_closed()]) as server:
        with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
            await fconnect(server, f"sslrootcert={ca_file()}", ssl=mode, password=PASSWORD)
    assert server.accepted == 1
    # Not even the StartupMessage (the user name) after the N.
    assert bytes(server.connections[0].received) == SSL_REQUEST_BYTES


async def test_s3_prefer_goes_on_in_plaintext_on_the_same_socket() -> None:
    script = [expect(SSLRequest), send_raw(b"N"), accept_startup(), serve()]
    async with FakeServer(script) as server:
        con = await fconnect(server, ssl="prefer")
        assert not con._ssl_in_use
        assert await con.fetchval("SELECT 1") == 1
        await con.close()
    assert server.accepted == 1
    assert isinstance(server.connections[0].messages[1], StartupMessage)


async def test_s3_allow_starts_in_plaintext() -> None:
    async with FakeServer([accept_startup(), serve()]) as server:
        con = await fconnect(server, ssl="allow")
        assert not con._ssl_in_use
        await con.close()
    assert isinstance(server.connections[0].messages[0], StartupMessage)


async def test_allow_retries_with_tls_after_a_plaintext_refusal() -> None:
    # pg_hba.conf with only hostssl for us: the plaintext try gets 28000.
    refuse = [expect(StartupMessage),
              send(error_response("28000", "no pg_hba.conf entry", severity="FATAL")),
              wait_closed()]
    async with FakeServer(refuse, tls_server_script(accept_startup(), serve())) as server:
        con = await fconnect(server, ssl="allow")
        assert con._ssl_in_use
        await con.close()
    assert server.accepted == 2


async def test_prefer_retries_in_plaintext_after_a_tls_refusal() -> None:
    # A hostnossl line: the TLS session is refused before authentication.
    refuse = tls_server_script(
        expect(StartupMessage),
        send(error_response("28000", "no pg_hba.conf entry", severity="FATAL")),
        wait_closed())
    async with FakeServer(refuse, [accept_startup(), serve()]) as server:
        con = await fconnect(server, ssl="prefer")
        assert not con._ssl_in_use
        await con.close()
    assert server.accepted == 2
    assert server.connections[1].messages[0] == StartupMessage(
        server.connections[1].messages[0].parameters)


async def test_prefer_no_retry_after_authentication() -> None:
    # An error after AuthenticationOk (no such database) is final.
    script = tls_server_script(
        expect(StartupMessage), send(AuthenticationOk()),
        send(error_response("3D000", "database does not exist", severity="FATAL")),
        wait_closed())
    async with FakeServer(script) as server:
        with pytest.raises(exc.InvalidCatalogNameError):
            await fconnect(server, ssl="prefer")
    assert server.accepted == 1


async def test_tls_handshake_and_startup() -> None:
    async with FakeServer(tls_server_script(accept_startup(), serve())) as server:
        con = await pg_client.connect(
            f"sslrootcert={ca_file()}", host="localhost", port=server.port, user=USER,
            database="db", ssl="verify-full", timeout=5)
        assert con._ssl_in_use
        assert await con.fetchval("SELECT 1") == 1
        await con.close()
    conn = server.connections[0]
    assert conn.received_before_tls == SSL_REQUEST_BYTES
    assert conn.tls_active


async def test_verify_full_refuses_a_certificate_for_another_host() -> None:
    context = server_tls_context(["db.example.invalid"])
    script = [expect(SSLRequest), send_raw(b"S"), tls(context, may_fail=True)]
    async with FakeServer(script) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await fconnect(server, f"sslrootcert={ca_file()}", ssl="verify-full")
    assert not [m for m in server.connections[0].messages if isinstance(m, StartupMessage)]


# -- S4: bytes after S (CVE-2021-23222) ---------------------------------------------


INJECTED = ReadyForQuery("I").encode() + error_response("XX000", "INJECTED").encode()


@pytest.mark.parametrize("mode", ["prefer", "require"])
async def test_s4_bytes_with_the_s_are_refused(mode: str) -> None:
    async with FakeServer([expect(SSLRequest), send_raw(b"S" + INJECTED), wait_closed()]) as s:
        with pytest.raises(ConnectionError, match="unencrypted data after SSL response"):
            await fconnect(s, ssl=mode, password=PASSWORD)
    assert s.accepted == 1  # no plaintext retry either
    assert bytes(s.connections[0].received) == SSL_REQUEST_BYTES


async def test_s4_bytes_after_the_s_are_refused() -> None:
    script = [expect(SSLRequest), send_raw(b"S"), sleep(0.005), send_raw(INJECTED),
              wait_closed()]
    async with FakeServer(script) as server:
        # Either the bytes arrive before the handshake starts ("unencrypted
        # data") or they reach the TLS layer as a broken record: both refuse.
        with pytest.raises(OSError):
            await fconnect(server, ssl="require", password=PASSWORD)
    received = bytes(server.connections[0].received)
    assert received.startswith(SSL_REQUEST_BYTES)
    assert USER.encode() not in received


# -- S5: ErrorResponse to SSLRequest (CVE-2024-10977) -----------------------------------


@pytest.mark.parametrize("mode", ["prefer", "require"])
async def test_s5_error_reply_to_ssl_request_is_not_shown(mode: str) -> None:
    marker = "CRAFTED-" + "x" * 10_000
    reply = error_response("28000", marker, severity="FATAL").encode()
    async with FakeServer([expect(SSLRequest), send_raw(reply), wait_closed()]) as server:
        with pytest.raises(ConnectionError, match="error response during SSL exchange") as info:
            await fconnect(server, ssl=mode)
    text = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert "CRAFTED" not in text
    assert server.accepted == 1


async def test_garbage_reply_to_ssl_request() -> None:
    async with FakeServer([expect(SSLRequest), send_raw(b"X"), wait_closed()]) as server:
        with pytest.raises(ConnectionError, match="invalid response to SSL negotiation"):
            await fconnect(server, ssl="prefer")


# -- S6: direct TLS and ALPN ----------------------------------------------------------


async def test_s6_direct_tls_requires_alpn() -> None:
    # The client hangs up as its handshake ends: the server's side of it may
    # see the reset first (it does on uvloop).
    script = [tls(server_tls_context(alpn=None), may_fail=True), wait_closed()]
    async with FakeServer(script) as server:
        with pytest.raises(ConnectionError, match="ALPN"):
            await fconnect(server, ssl="require", direct_tls=True, password=PASSWORD)
    no_credentials(server.connections[0])
    assert not server.connections[0].messages


async def test_s6_direct_tls_refuses_another_alpn_protocol() -> None:
    script = [tls(server_tls_context(alpn=["http/1.1"]), may_fail=True), wait_closed()]
    async with FakeServer(script) as server:
        with pytest.raises(ConnectionError, match="ALPN"):
            await fconnect(server, ssl="require", direct_tls=True)


@pytest.mark.parametrize("how", ["direct_tls", "sslnegotiation"])
async def test_s6_direct_tls_with_alpn(how: str) -> None:
    script = [tls(), accept_startup(), serve()]
    async with FakeServer(script) as server:
        if how == "direct_tls":
            con = await fconnect(server, ssl="require", direct_tls=True)
        else:
            con = await fconnect(server, "sslnegotiation=direct", ssl="require")
        assert con._ssl_in_use
        assert await con.fetchval("SELECT 1") == 1
        await con.close()
    conn = server.connections[0]
    assert conn.received_before_tls == b""  # no SSLRequest: TLS from the first byte
    assert isinstance(conn.messages[0], StartupMessage)


async def test_direct_tls_against_an_old_server_says_so() -> None:
    # A server before 17 reads the ClientHello as a bad startup packet and hangs up.
    async with FakeServer([sleep(0.05)]) as server:
        with pytest.raises(ConnectionError, match="17"):
            await fconnect(server, ssl="require", direct_tls=True)


# -- S7: TLS version floor ------------------------------------------------------------


async def test_s7_tls_1_1_server_refused_by_default() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl warns about TLS 1.0/1.1
        context = server_tls_context(minimum_version=ssl.TLSVersion.TLSv1,
                                     maximum_version=ssl.TLSVersion.TLSv1_1)
    script = [expect(SSLRequest), send_raw(b"S"), tls(context, may_fail=True)]
    async with FakeServer(script) as server:
        with pytest.raises(OSError):
            await fconnect(server, ssl="require")
    assert not [m for m in server.connections[0].messages if isinstance(m, StartupMessage)]


async def test_s7_ssl_min_protocol_version_is_enforced() -> None:
    context = server_tls_context(maximum_version=ssl.TLSVersion.TLSv1_2)
    script = [expect(SSLRequest), send_raw(b"S"), tls(context, may_fail=True)]
    async with FakeServer(script) as server:
        with pytest.raises(OSError):  # the alert, or the reset that follows it
            await fconnect(server, "ssl_min_protocol_version=TLSv1.3", ssl="require")
    async with FakeServer(tls_server_script(accept_startup(), serve(),
                                            context=context)) as server:
        con = await fconnect(server, ssl="require")
        assert con._transport.get_extra_info("ssl_object").version() == "TLSv1.2"
        await con.close()


# -- S8: file permissions ------------------------------------------------------------


async def test_s8_world_readable_pgpass_is_ignored(tmp_path: Any) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:{USER}:{PASSWORD}\n")
    passfile.chmod(0o644)
    script = [expect(StartupMessage), send(AuthenticationCleartextPassword()), wait_closed()]
    async with FakeServer(script) as server:
        with pytest.warns(UserWarning, match="group or world access"):
            with pytest.raises(exc.InvalidPasswordError, match="no password"):
                await fconnect(server, passfile=str(passfile))
    no_credentials(server.connections[0])
    # 0600: used.
    passfile.chmod(0o600)
    script = [expect(StartupMessage), send(AuthenticationCleartextPassword()),
              expect(PasswordMessage), send(startup_response()), serve()]
    async with FakeServer(script) as server:
        con = await fconnect(server, passfile=str(passfile))
        await con.close()
    assert server.connections[0].messages[1] == PasswordMessage(PASSWORD.encode())


async def test_s8_group_readable_client_key_is_refused(tmp_path: Any) -> None:
    cert = fake_ca().issue_cert("alice@example.invalid", common_name=USER)
    cert_path, key_path = tmp_path / "client.crt", tmp_path / "client.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    key_path.write_bytes(cert.private_key_pem.bytes())
    key_path.chmod(0o644)
    dsn = f"sslcert={cert_path} sslkey={key_path}"
    async with FakeServer(tls_server_script(accept_startup(), serve())) as server:
        with pytest.raises(exc.ClientConfigurationError, match="group or world access"):
            await fconnect(server, dsn, ssl="require")
        assert server.accepted == 0
        key_path.chmod(0o600)
        con = await fconnect(server, dsn, ssl="require")
        await con.close()


# -- S9: hostile SCRAM server -------------------------------------------------------------


def scram_script(variant: str) -> Any:
    async def script(conn: FakeConn) -> None:
        await conn.expect(StartupMessage)
        conn.send(AuthenticationSASL(("SCRAM-SHA-256",)))
        initial = await conn.expect(SASLInitialResponse)
        scram = ScramServer(PASSWORD, iterations=10**9 if variant == "iterations" else 4096)
        if variant == "nonce":
            first = scram.server_first(initial.data, full_nonce="A" * 40)
        elif variant == "salt":
            scram.server_first(initial.data)
            first = f"r={scram.nonce},s=!!not-base64!!,i=4096".encode()
        else:
            first = scram.server_first(initial.data)
        conn.send(AuthenticationSASLContinue(first))
        if variant in ("nonce", "salt", "iterations"):
            await conn.wait_closed()
            return
        final = await conn.expect(SASLResponse)
        if variant == "skip-final":
            conn.send(startup_response())
        elif variant == "signature":
            conn.send(AuthenticationSASLFinal(b"v=" + b"A" * 43 + b"="))
        else:
            conn.send(AuthenticationSASLFinal(scram.server_final(final.data)),
                      startup_response())
            assert scram.proof_ok
            await conn.serve()
            return
        await conn.wait_closed()
    return script


async def test_s9_scram_happy_path() -> None:
    async with FakeServer(scram_script("ok")) as server:
        con = await fconnect(server, password=PASSWORD)
        await con.close()


@pytest.mark.parametrize("variant", ["signature", "nonce", "iterations", "salt", "skip-final"])
async def test_s9_hostile_scram_server(variant: str) -> None:
    async with FakeServer(scram_script(variant)) as server:
        started = time.monotonic()
        with pytest.raises(exc.InvalidAuthorizationSpecificationError):
            await fconnect(server, password=PASSWORD)
        elapsed = time.monotonic() - started
    if variant == "iterations":
        assert elapsed < 1.0  # refused before any PBKDF2 work
    if variant in ("nonce", "iterations", "salt"):
        # The client-final-message (the proof) was never sent.
        assert not [m for m in server.connections[0].messages if isinstance(m, SASLResponse)]


# -- S10: channel binding against a fake TLS server -----------------------------------------


async def test_s10_channel_binding_require_refuses_scram_without_plus() -> None:
    script = tls_server_script(expect(StartupMessage),
                               send(AuthenticationSASL(("SCRAM-SHA-256",))), wait_closed())
    async with FakeServer(script) as server:
        with pytest.raises(exc.InvalidAuthorizationSpecificationError, match="PLUS"):
            await fconnect(server, ssl="require", password=PASSWORD, channel_binding="require")
    no_credentials(server.connections[0])


@pytest.mark.parametrize("binding", ["prefer", "require"])
async def test_s10_scram_plus_with_a_fake_server(binding: str) -> None:
    context = server_tls_context()

    async def script(conn: FakeConn) -> None:
        await conn.expect(SSLRequest)
        conn.send_raw(b"S")
        await conn.tls(context)
        await conn.expect(StartupMessage)
        conn.send(AuthenticationSASL(("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256")))
        initial = await conn.expect(SASLInitialResponse)
        assert initial.mechanism == "SCRAM-SHA-256-PLUS"
        scram = ScramServer(PASSWORD, certificate=context.certificate_der)  # type: ignore[attr-defined]
        conn.send(AuthenticationSASLContinue(scram.server_first(initial.data)))
        final = await conn.expect(SASLResponse)
        conn.send(AuthenticationSASLFinal(scram.server_final(final.data)), startup_response())
        assert scram.proof_ok
        await conn.serve()

    async with FakeServer(script) as server:
        con = await fconnect(server, ssl="require", password=PASSWORD, channel_binding=binding)
        await con.close()


async def test_s10_plus_offered_without_tls_is_refused() -> None:
    # Only a server behind a TLS-stripping middlebox offers -PLUS in plaintext.
    script = [expect(StartupMessage),
              send(AuthenticationSASL(("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"))), wait_closed()]
    async with FakeServer(script) as server:
        with pytest.raises(exc.InvalidAuthorizationSpecificationError, match="without TLS"):
            await fconnect(server, password=PASSWORD)
    no_credentials(server.connections[0])


# -- S11: require_auth ------------------------------------------------------------------------


def asks(request: Any) -> list[Any]:
    return [expect(StartupMessage), send(request), wait_closed()]


TRUST = AuthenticationOk()
CLEARTEXT = AuthenticationCleartextPassword()
MD5 = AuthenticationMD5Password(b"salt")
SCRAM = AuthenticationSASL(("SCRAM-SHA-256",))


@pytest.mark.parametrize(("require_auth", "request_"), [
    ("scram-sha-256", CLEARTEXT),
    ("scram-sha-256", MD5),
    ("scram-sha-256", TRUST),
    ("!password", CLEARTEXT),
    ("!password,!md5", MD5),
    ("none", SCRAM),
    ("none", CLEARTEXT),
    ("password", MD5),
    ("md5,password", SCRAM),
    ("!none", TRUST),
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
async def test_s11_require_auth_refuses_before_any_credential(
        require_auth: str, request_: Any) -> None:
    script = [expect(StartupMessage), send(request_, *(
        [ParameterStatus("server_version", "18.0"), BackendKeyData(1, b"1234"),
         ReadyForQuery("I")] if request_ is TRUST else [])), wait_closed()]
    async with FakeServer(script) as server:
        with pytest.raises(exc.InvalidAuthorizationSpecificationError, match="require_auth"):
            await fconnect(server, password=PASSWORD, require_auth=require_auth)
    no_credentials(server.connections[0])


@pytest.mark.parametrize(("require_auth", "request_"), [
    ("md5", MD5), ("!password", MD5), ("password,md5", CLEARTEXT), ("none", TRUST),
    ("!scram-sha-256", TRUST),
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
async def test_s11_require_auth_allows(require_auth: str, request_: Any) -> None:
    steps = [expect(StartupMessage)]
    if request_ is TRUST:
        steps.append(send(startup_response()))
    else:
        steps += [send(request_), expect(PasswordMessage), send(startup_response())]
    async with FakeServer([*steps, serve()]) as server:
        con = await fconnect(server, password=PASSWORD, require_auth=require_auth)
        await con.close()


async def test_gssapi_is_a_clear_not_supported_error() -> None:
    async with FakeServer(asks(AuthenticationGSS())) as server:
        with pytest.raises(exc.UnsupportedClientFeatureError, match="not supported"):
            await fconnect(server, password=PASSWORD, krbsrvname="postgres", gsslib="gssapi")
    no_credentials(server.connections[0])


async def test_missing_password_is_not_sent() -> None:
    async with FakeServer(asks(MD5)) as server:
        with pytest.raises(exc.InvalidPasswordError, match="no password"):
            await fconnect(server)
    assert not [m for m in server.connections[0].messages if isinstance(m, PasswordMessage)]


# -- S12: secret hygiene ------------------------------------------------------------------------


SENTINEL = "S3cr3t-Sentinel-Ω"
SENTINEL_URI = "S3cr3t-Sentinel-%CE%A9"


def _exception_text(error: BaseException) -> str:
    parts = ["".join(traceback.format_exception(error))]
    seen = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        parts += [repr(e), str(e), repr(e.args), repr(getattr(e, "__dict__", {}))]
        e = e.__cause__ or e.__context__
    return "\n".join(parts)


def _assert_clean(text: str) -> None:
    assert SENTINEL not in text
    assert "S3cr3t" not in text
    assert SENTINEL_URI not in text


@pytest.mark.parametrize("dsn", [
    f"postgresql://alice:{SENTINEL_URI}@127.0.0.1:99999/db",
    f"postgresql://alice:{SENTINEL_URI}@[::1/db",
    f"postgresql://alice@127.0.0.1/db?password={SENTINEL_URI}&port=x",
    f"postgresql://alice@127.0.0.1/db?pass%77ord={SENTINEL_URI}&sslmode=bogus",
    f"postgresql://alice@127.0.0.1/db?password={SENTINEL_URI}%00",
    f"host=127.0.0.1 password='{SENTINEL}",
    f"host=127.0.0.1 password={SENTINEL} port=abc",
    f"host=127.0.0.1 password = {SENTINEL} {SENTINEL}",
    f"host=127.0.0.1 password='x' {SENTINEL}=1",
    f"host=127.0.0.1 sslpassword={SENTINEL} sslmode=bogus",
    f"host=127.0.0.1 password={SENTINEL} target_session_attrs={SENTINEL}",
    f"postgresql://alice:{SENTINEL_URI}@127.0.0.1/db?sslmode={SENTINEL_URI}",
])
async def test_s12_malformed_dsn_never_shows_the_password(dsn: str, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises((exc.InterfaceError, ValueError)) as info:
            await pg_client.connect(dsn, timeout=2)
    _assert_clean(_exception_text(info.value))
    _assert_clean(caplog.text)
    _assert_clean(" ".join(str(w.message) for w in caught))


async def _sentinel_failures(monkeypatch: Any) -> list[BaseException]:
    """connect() with the sentinel password in every form, against failures."""
    errors: list[BaseException] = []
    with deaf_listen() as (_, closed_port):
        pass  # a port that was just closed: connection refused

    async def callable_password() -> str:
        return SENTINEL

    forms: list[tuple[str | None, dict[str, Any]]] = [
        (f"postgresql://alice:{SENTINEL_URI}@127.0.0.1:{{port}}/db", {}),
        (f"postgresql://alice@127.0.0.1:{{port}}/db?password={SENTINEL_URI}", {}),
        (f"host=127.0.0.1 port={{port}} user=alice password={SENTINEL}", {}),
        (None, {"password": SENTINEL}),
        (None, {"password": callable_password}),
        (None, {"password": lambda: SENTINEL}),
        (f"host=127.0.0.1 port={{port}} sslpassword={SENTINEL} sslmode=require", {}),
        (None, {"env": True}),
    ]
    async def rejecting(conn: FakeConn) -> None:
        if isinstance(await conn.expect((SSLRequest, StartupMessage)), SSLRequest):
            conn.send_raw(b"N")  # the sslpassword form insists on TLS: refused
            await conn.wait_closed()
            return
        conn.send(AuthenticationCleartextPassword())
        await conn.expect(PasswordMessage)
        conn.send(error_response("28P01", 'password authentication failed for user "alice"',
                                 severity="FATAL"))
        await conn.wait_closed()

    async def hanging(conn: FakeConn) -> None:
        await conn.expect((SSLRequest, StartupMessage))
        await asyncio.sleep(30)

    async with FakeServer(rejecting) as bad_auth, FakeServer(hanging) as slow:
        for port, timeout in ((closed_port, 2), (bad_auth.port, 2), (slow.port, 0.2)):
            for dsn, kw in forms:
                kw = dict(kw)
                if kw.pop("env", False):
                    monkeypatch.setenv("PGPASSWORD", SENTINEL)
                else:
                    monkeypatch.delenv("PGPASSWORD", raising=False)
                if dsn is None:
                    kw.update(host="127.0.0.1", port=port, user="alice")
                else:
                    dsn = dsn.replace("{port}", str(port))
                kw.setdefault("ssl", "disable") if "sslmode" not in (dsn or "") else None
                try:
                    con = await pg_client.connect(dsn, database="db", timeout=timeout, **kw)
                except Exception as error:
                    errors.append(error)
                else:  # pragma: no cover - every target fails
                    await con.close()
                    raise AssertionError("connected to a failing server")
    monkeypatch.delenv("PGPASSWORD", raising=False)
    return errors


async def test_s12_connection_failures_never_show_the_password(
        monkeypatch: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        errors = await _sentinel_failures(monkeypatch)
    assert len(errors) == 24
    kinds = {type(e).__name__ for e in errors}
    assert {"ConnectionRefusedError", "InvalidPasswordError", "TimeoutError"} <= kinds, kinds
    for error in errors:
        _assert_clean(_exception_text(error))
    _assert_clean(caplog.text)
    _assert_clean(" ".join(str(w.message) for w in caught))


async def test_s12_reprs_never_show_the_password() -> None:
    async def run(conn: FakeConn) -> None:
        await conn.expect(StartupMessage)
        conn.send(AuthenticationCleartextPassword())
        await conn.expect(PasswordMessage)
        conn.send(startup_response())
        await conn.serve()

    async with FakeServer(run) as server:
        con = await pg_client.connect(
            f"postgresql://alice:{SENTINEL_URI}@127.0.0.1:{server.port}/db"
            f"?sslpassword={SENTINEL_URI}", ssl="disable", timeout=5)
        texts = [repr(con), str(con), repr(con._params), str(con._params),
                 repr(con._params.ssl), repr(con._config)]
        await con.close()
    for text in texts:
        _assert_clean(text)
    # The message itself did carry it: the sentinel is not just missing.
    assert SENTINEL.encode() in server.connections[0].received


# -- S13: cancel and reconnect keep the TLS settings ----------------------------------------------


@pytest.mark.parametrize("negotiation", ["postgres", "direct"])
async def test_s13_cancel_request_uses_the_same_tls(negotiation: str) -> None:
    cancelled = asyncio.Event()
    cancels: list[FakeConn] = []

    async def script(conn: FakeConn) -> None:
        if negotiation == "postgres":
            await conn.expect(SSLRequest)
            conn.send_raw(b"S")
        await conn.tls()
        first = await conn.expect((StartupMessage, CancelRequest))
        if isinstance(first, CancelRequest):
            assert first == CancelRequest(77, b"K3y!")
            cancels.append(conn)
            cancelled.set()
            return
        conn.send(startup_response(process_id=77, secret_key=b"K3y!"))
        await conn.expect(Query)
        await asyncio.wait_for(cancelled.wait(), 5)
        conn.send(error_response("57014", "canceling statement due to user request"),
                  ReadyForQuery("I"))
        await conn.serve()

    async with FakeServer(script) as server:
        con = await pg_client.connect(
            f"sslrootcert={ca_file()} sslnegotiation={negotiation}", host="localhost",
            port=server.port, user=USER, database="db", ssl="verify-full", timeout=5)
        with pytest.raises(asyncio.TimeoutError):
            await con.execute("SELECT pg_sleep(10)", timeout=0.2)
        assert await con.fetchval("SELECT 1") == 1
        await con.close()
    assert len(cancels) == 1
    side = cancels[0]
    expected_prefix = SSL_REQUEST_BYTES if negotiation == "postgres" else b""
    assert side.received_before_tls == expected_prefix
    assert side.tls_active


async def test_s13_pool_reconnects_with_the_same_tls() -> None:
    import pg_pool

    async with FakeServer(tls_server_script(accept_startup(), serve())) as server:
        pool = await pg_pool.create_pool(
            f"sslrootcert={ca_file()}", host="localhost", port=server.port, user=USER,
            database="db", ssl="verify-full", min_size=1, max_size=1, timeout=5)
        try:
            assert await pool.fetchval("SELECT 1") == 1
            await pool.expire_connections()
            assert await pool.fetchval("SELECT 1") == 1
        finally:
            await pool.close()
    assert server.accepted >= 2
    for conn in server.connections:
        assert conn.received_before_tls == SSL_REQUEST_BYTES
        assert conn.tls_active


# -- T7: connect timeouts, phase by phase ----------------------------------------------------------


async def _timed_out(coro: Any) -> float:
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await coro
    return time.monotonic() - started


async def test_t7_deaf_listener_times_out() -> None:
    with deaf_listen() as (host, port):
        elapsed = await _timed_out(pg_client.connect(host=host, port=port, user=USER,
                                                     database="db", timeout=0.5))
    assert 0.45 <= elapsed <= 0.75


@pytest.mark.parametrize("phase", ["after-S", "before-auth", "after-SASL", "after-auth-ok"])
async def test_t7_timeout_in_each_phase(phase: str) -> None:
    scripts = {
        "after-S": [expect(SSLRequest), send_raw(b"S"), sleep(30)],
        "before-auth": [expect(StartupMessage), sleep(30)],
        "after-SASL": [expect(StartupMessage), send(SCRAM), expect(SASLInitialResponse),
                       sleep(30)],
        "after-auth-ok": [expect(StartupMessage), send(AuthenticationOk()), sleep(30)],
    }
    mode = "require" if phase == "after-S" else "disable"
    async with FakeServer(scripts[phase]) as server:
        elapsed = await _timed_out(fconnect(server, ssl=mode, password=PASSWORD, timeout=0.5))
    assert 0.45 <= elapsed <= 0.75


async def test_connect_timeout_bounds_each_host() -> None:
    # libpq's connect_timeout: per host; timeout (asyncpg's) stays the overall cap.
    async with FakeServer([expect(StartupMessage), sleep(30)]) as slow, \
            FakeServer([accept_startup(), serve()]) as good:
        started = time.monotonic()
        con = await pg_client.connect(
            f"host=127.0.0.1,127.0.0.1 port={slow.port},{good.port} connect_timeout=0.3",
            user=USER, database="db", ssl="disable", timeout=5)
        elapsed = time.monotonic() - started
        await con.close()
    assert 0.25 <= elapsed <= 1.0


# -- W6: BackendKeyData lengths -----------------------------------------------------------


def _key_data(length: int) -> bytes:
    return b"K" + struct.pack("!ii", 8 + length, 4242) + b"k" * length


def _startup_with_key(length: int) -> bytes:
    return (AuthenticationOk().encode() + ParameterStatus("server_version", "18.0").encode()
            + _key_data(length) + ReadyForQuery("I").encode())


@pytest.mark.parametrize(("version", "length", "ok"), [
    ("3.0", 0, False), ("3.0", 3, False), ("3.0", 4, True), ("3.0", 5, False),
    ("3.0", 257, False), ("3.2", 3, False), ("3.2", 4, True), ("3.2", 32, True),
    ("3.2", 256, True), ("3.2", 257, False),
])
async def test_w6_backend_key_data_length(version: str, length: int, ok: bool) -> None:
    steps = [expect(StartupMessage), send_raw(_startup_with_key(length))]
    async with FakeServer([*steps, serve() if ok else wait_closed()]) as server:
        if ok:
            con = await fconnect(server, max_protocol_version=version)
            assert con._protocol_minor == int(version[-1])
            assert len(con._core.backend_key) == length
            await con.close()
        else:
            with pytest.raises(exc.ProtocolError):
                await fconnect(server, max_protocol_version=version)
    assert server.connections[0].startup.protocol_version == (3 << 16) + int(version[-1])


# -- protocol version negotiation ---------------------------------------------------------


async def test_negotiate_down_to_3_0() -> None:
    script = [expect(StartupMessage), send(NegotiateProtocolVersion((3 << 16) + 0)),
              send(startup_response()), serve()]
    async with FakeServer(script) as server:
        con = await fconnect(server, max_protocol_version="3.2")
        assert con._protocol_minor == 0
        await con.close()


@pytest.mark.parametrize(("kwargs", "offer", "error"), [
    ({"min_protocol_version": "3.2"}, (3 << 16), exc.UnsupportedServerFeatureError),
    ({}, (3 << 16) + 2, exc.ProtocolError),  # an "upgrade" we did not ask for
    ({"max_protocol_version": "3.2"}, (3 << 16) + 2, exc.ProtocolError),  # same version
    ({"max_protocol_version": "3.2"}, (4 << 16), exc.ProtocolError),
])
async def test_negotiate_refusals(kwargs: dict[str, str], offer: int, error: type) -> None:
    script = [expect(StartupMessage), send(NegotiateProtocolVersion(offer)), wait_closed()]
    async with FakeServer(script) as server:
        with pytest.raises(error):
            await fconnect(server, **kwargs)


async def test_negotiate_with_unknown_options_is_refused() -> None:
    script = [expect(StartupMessage),
              send(NegotiateProtocolVersion(3 << 16, ("_pq_.bogus",))), wait_closed()]
    async with FakeServer(script) as server:
        with pytest.raises(exc.ProtocolError):
            await fconnect(server, max_protocol_version="3.2")


# -- W1: unexpected messages during startup -----------------------------------------------


OK = AuthenticationOk().encode()
REST = (ParameterStatus("server_version", "18.0").encode() + BackendKeyData(1, b"1234").encode()
        + ReadyForQuery("I").encode())


@pytest.mark.parametrize(("name", "reply"), [
    ("ReadyForQuery before authentication", ReadyForQuery("I").encode()),
    ("RowDescription", OK + RowDescription((FieldDescription("x"),)).encode() + REST),
    ("DataRow", OK + DataRow((b"1",)).encode() + REST),
    ("AuthenticationOk twice", OK + OK + REST),
    ("password request after Ok", OK + CLEARTEXT.encode() + REST),
    ("BackendKeyData before Ok", BackendKeyData(1, b"1234").encode() + OK + REST),
    ("BackendKeyData twice", OK + BackendKeyData(1, b"1234").encode() + REST),
    ("unknown type byte", OK + b"\x01\x00\x00\x00\x04" + REST),
    ("negotiation after auth", CLEARTEXT.encode() + NegotiateProtocolVersion(3 << 16).encode()),
    ("SASLFinal without SASL", AuthenticationSASLFinal(b"v=abc").encode() + OK + REST),
])
async def test_w1_unexpected_messages_during_startup(name: str, reply: bytes) -> None:
    async with FakeServer([expect(StartupMessage), send_raw(reply), wait_closed()]) as server:
        with pytest.raises((exc.ProtocolError, exc.InvalidAuthorizationSpecificationError)):
            await fconnect(server, password=PASSWORD)
    assert server.connections[0].client_closed


async def test_server_error_during_startup_is_raised_as_is() -> None:
    script = [expect(StartupMessage), send(CLEARTEXT), expect(PasswordMessage),
              send(error_response("28P01", 'password authentication failed for user "alice"',
                                  severity="FATAL")), wait_closed()]
    async with FakeServer(script) as server:
        with pytest.raises(exc.InvalidPasswordError, match="password authentication failed"):
            await fconnect(server, password="wrong")
