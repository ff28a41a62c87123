"""A scripted fake PostgreSQL server for client tests (H3 in RELIABILITY.md).

Plays the server side of the v3 protocol from a script, on a real TCP socket
on 127.0.0.1, in the test's own event loop, and records every byte the
client sends. Built on ``pg_wire.backend`` (reading frontend messages) and
``pg_wire.messages`` (building backend messages). Use it for what no real
server does: downgrade attacks, bytes injected after ``S``, hostile SCRAM
messages, malformed startup replies, servers that hang at a chosen step.

Quick start::

    from fakeserver import FakeServer, accept_startup, expect, send_raw, serve
    from pg_wire.messages import SSLRequest

    script = [expect(SSLRequest), send_raw(b"N"), accept_startup(), serve()]
    async with FakeServer(script) as server:
        con = await pg_client.connect(host=server.host, port=server.port,
                                      user="u", database="d", ssl="prefer")
        await con.close()
    assert server.connections[0].messages[0] == SSLRequest()

A script runs once per accepted connection. It is a list of steps, or an
``async def script(conn: FakeConn)`` that calls the same operations as
methods (for branching, loops, assertions). ``FakeServer(s0, s1, ...)``:
connection *i* runs script *i*; connections beyond the last script run the
last one (so one script serves every connection, side connections for
CancelRequest included).

Steps (each is also a ``FakeConn`` method, awaited in function scripts)
---------------------------------------------------------------------

``expect(kind=None, *, timeout=5.0)``
    Read the next frontend message (SSLRequest, StartupMessage, Query,
    PasswordMessage, ...; see ``pg_wire.messages``); fail the script unless
    it is an instance of *kind* (a class or a tuple of classes). The method
    returns the message. Raises :class:`ClientClosed` if the client hangs up
    first. How a ``p`` message is read (password, SASLInitialResponse,
    SASLResponse) follows the last Authentication request sent.
``send(*messages)``
    Send backend messages (``pg_wire.messages`` objects; bytes are sent as
    they are).
``send_raw(data)``
    Send *data* as it is, in one write.
``send_split(data, sizes, delay=0.0)``
    Send *data* in writes of the given sizes (the last one repeats), with
    *delay* seconds between writes.
``tls(context=None, *, may_fail=False)``
    Run the server side of a TLS handshake on the connection (after
    answering ``S``, or as the first step for direct TLS). *context* defaults
    to :func:`server_tls_context`. With *may_fail*, a failed handshake ends
    the script quietly (the client refused us) instead of failing it.
``sleep(seconds)``
    Do nothing for a while (the connection stays open, unread).
``close(rst=False)``
    Close the connection: orderly (FIN), or with RST (``SO_LINGER`` 0).
``wait_closed(timeout=5.0)``
    Read and record whatever the client sends, without parsing it, until it
    hangs up. Fails the script on timeout.
``accept_startup(**startup_response_kwargs)``
    ``expect(StartupMessage)``, then send ``pg_wire.backend.startup_response``
    with those arguments (AuthenticationOk, ParameterStatus...,
    BackendKeyData, ReadyForQuery).
``serve(handler=None)``
    Answer queries until ``Terminate`` or the client hangs up: every simple
    ``Query`` and every extended-protocol statement (Parse, Describe, Bind,
    Execute, Close, Sync) returns one int4 column ``?column?`` with the
    value 1 (so ``fetchval("SELECT 1")`` works). *handler(message)* may
    return the bytes to send for a message instead (None: the default).

Records (``server.connections[i]`` is the :class:`FakeConn` of the *i*-th
connection):

``received``
    Every byte the client sent, in order: plaintext before TLS, decrypted
    after (what a server would read). ``received_before_tls`` is the part
    before the handshake.
``messages``
    The frontend messages ``expect()`` parsed, in order.
``startup``
    The StartupMessage, once read.
``client_closed``
    True once the client has hung up.

Other helpers: :class:`ScramServer` (a correct SCRAM-SHA-256(-PLUS) server
side to script successful or subtly broken exchanges), :func:`fake_ca`,
:func:`server_tls_context` and :func:`ca_file` (a trustme CA and contexts
signed by it).

``server.accepted`` counts connections; ``await server.wait_idle()`` waits
for every script started so far. ``start()``/``close()`` work without
``async with`` (e.g. several servers for load balancing).

When the server closes (end of ``async with``), unfinished scripts are
cancelled; the first script that failed makes ``__aexit__`` raise
:class:`ScriptError` (unless the block already raised, or the server was
built with ``check=False``). ``server.errors`` lists every failure.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import functools
import hashlib
import hmac
import os
import socket
import ssl
import struct
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from pg_wire import auth as wire_auth
from pg_wire.backend import BackendReader, encode_messages, query_result, startup_response
from pg_wire.messages import (
    AuthenticationCleartextPassword,
    AuthenticationGSS,
    AuthenticationMD5Password,
    AuthenticationRequest,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSSPI,
    BackendMessage,
    Bind,
    BindComplete,
    Close,
    CloseComplete,
    CommandComplete,
    DataRow,
    Describe,
    Execute,
    FieldDescription,
    FrontendMessage,
    ParameterDescription,
    Parse,
    ParseComplete,
    Query,
    ReadyForQuery,
    RowDescription,
    StartupMessage,
    Sync,
    Terminate,
)

__all__ = [
    "ClientClosed",
    "FakeConn",
    "FakeServer",
    "ScramServer",
    "ScriptError",
    "accept_startup",
    "ca_file",
    "close",
    "expect",
    "send",
    "send_raw",
    "send_split",
    "serve",
    "server_tls_context",
    "sleep",
    "fake_ca",
    "tls",
    "wait_closed",
]

Step = Callable[["FakeConn"], Awaitable[Any]]
Script = Sequence[Step] | Callable[["FakeConn"], Awaitable[Any]]


class ClientClosed(Exception):
    """The client hung up while the script was waiting for a message."""


class ScriptError(AssertionError):
    """A fake server script failed (wrong message, timeout, exception)."""


# -- one connection ------------------------------------------------------------


class _Proto(asyncio.Protocol):
    def __init__(self, conn: FakeConn) -> None:
        self.conn = conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Read nothing until the script asks. (uvloop starts reading when
        # this returns all the same; what arrives waits in _pending.)
        transport.pause_reading()  # type: ignore[attr-defined]
        self.conn._made(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.conn._data(data)

    def eof_received(self) -> bool:
        self.conn._eof()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.conn._eof()


class FakeConn:
    """One accepted connection and its records (see the module docstring)."""

    def __init__(self, server: FakeServer, index: int) -> None:
        self.server = server
        self.index = index
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.proto = _Proto(self)
        self.reader = BackendReader()
        self.received = bytearray()
        self.received_before_tls: bytes | None = None
        self.messages: list[FrontendMessage] = []
        self.startup: StartupMessage | None = None
        self.client_closed = False
        self.tls_active = False
        self._pending = bytearray()  # received, not yet given to the reader
        self._sock: socket.socket | None = None
        self._wake = asyncio.Event()

    def __repr__(self) -> str:
        return f"<FakeConn #{self.index} received={len(self.received)} bytes>"

    async def _open(self, context: ssl.SSLContext | None = None) -> None:
        """Give the accepted socket its transport: at the script's first
        awaited operation, TLS from the first byte when that is tls()."""
        if self.transport is not None or self._sock is None:
            return
        sock, self._sock = self._sock, None
        try:
            await self.loop.connect_accepted_socket(lambda: self.proto, sock, ssl=context)
        except BaseException:
            sock.close()
            raise

    def _opened(self) -> None:
        if self.transport is None:
            raise ScriptError(
                f"connection #{self.index}: a script must start with an awaited step "
                "(expect, tls, ...), not a write")

    def _close_socket(self) -> None:
        # The accepted socket, while no transport owns it yet.
        if self.transport is None and self._sock is not None:
            self._sock.close()

    # -- protocol callbacks --
    def _made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def _data(self, data: bytes) -> None:
        self.received += data
        self._pending += data
        self._wake.set()

    def _eof(self) -> None:
        self.client_closed = True
        self._wake.set()

    def _reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self.transport.resume_reading()

    async def _wait(self, timeout: float, what: str) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            raise ScriptError(f"connection #{self.index}: timed out waiting for {what}") from None

    # -- the operations --
    async def expect(self, kind: Any = None, *, timeout: float = 5.0) -> FrontendMessage:
        """Read the next frontend message; check it is a *kind*."""
        await self._open()
        self._reading()
        while True:
            if self._pending:
                self.reader.feed(bytes(self._pending))
                self._pending.clear()
            message = self.reader.read_message()
            if message is not None:
                self.messages.append(message)
                if isinstance(message, StartupMessage):
                    self.startup = message
                if kind is not None and not isinstance(message, kind):
                    raise ScriptError(
                        f"connection #{self.index}: expected {_kind_name(kind)}, "
                        f"got {message!r}")
                return message
            if self.client_closed:
                raise ClientClosed(
                    f"connection #{self.index}: the client hung up while the server "
                    f"expected {_kind_name(kind)}")
            await self._wait(timeout, _kind_name(kind))

    def send(self, *messages: BackendMessage | bytes) -> None:
        """Send backend messages (bytes as they are)."""
        for message in messages:
            if isinstance(message, AuthenticationRequest):
                self._auth_sent(message)
        self.send_raw(encode_messages(*messages))

    def _auth_sent(self, message: AuthenticationRequest) -> None:
        if isinstance(message, AuthenticationSASL):
            self.reader.auth = "sasl_initial"
        elif isinstance(message, AuthenticationSASLContinue):
            self.reader.auth = "sasl"
        elif isinstance(message, (AuthenticationCleartextPassword, AuthenticationMD5Password)):
            self.reader.auth = "password"
        elif isinstance(message, (AuthenticationGSS, AuthenticationSSPI)):
            self.reader.auth = "gss"

    def send_raw(self, data: bytes) -> None:
        """Send *data* as it is."""
        if self.transport is None and self._sock is not None:
            self._opened()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def send_split(self, data: bytes, sizes: Sequence[int], delay: float = 0.0) -> None:
        """Send *data* in writes of *sizes* bytes (the last size repeats)."""
        await self._open()
        pos, i = 0, 0
        while pos < len(data):
            size = sizes[min(i, len(sizes) - 1)]
            self.send_raw(data[pos:pos + size])
            pos += size
            i += 1
            if pos < len(data):
                await asyncio.sleep(delay)

    async def tls(self, context: ssl.SSLContext | None = None, *,
                  may_fail: bool = False) -> bool:
        """The server side of a TLS handshake; True when it succeeded."""
        if context is None:
            context = server_tls_context()
        # The script's first step: TLS from the first byte (direct TLS).
        direct = self.transport is None and self._sock is not None
        if not direct:
            assert self.transport is not None
            if self._pending or self.reader.buffered:
                raise ScriptError(
                    f"connection #{self.index}: the client sent bytes before the TLS handshake")
        self.received_before_tls = bytes(self.received)
        try:
            if direct:
                await self._open(context)
                new = self.transport
            else:
                new = await self.loop.start_tls(self.transport, self.proto, context,
                                                server_side=True)
        except (OSError, EOFError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) or not may_fail:
                raise
            self.client_closed = True
            return False
        if new is None:
            if may_fail:
                self.client_closed = True
                return False
            raise ScriptError(f"connection #{self.index}: TLS handshake did not complete")
        self.transport = new
        self.tls_active = True
        return True

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def close(self, rst: bool = False) -> None:
        """Close the connection, orderly or with RST."""
        transport = self.transport
        if transport is None:
            self._close_socket()
            return
        if transport.is_closing():
            return
        if rst:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Record (without parsing) what the client sends until it hangs up."""
        await self._open()
        self._reading()
        while not self.client_closed:
            await self._wait(timeout, "the client to hang up")
        self._pending.clear()

    async def accept_startup(self, **kwargs: Any) -> StartupMessage:
        """expect(StartupMessage), then the usual successful startup reply."""
        message = await self.expect(StartupMessage)
        self.send(startup_response(**kwargs))
        return message  # type: ignore[return-value]

    async def serve(self, handler: Callable[[FrontendMessage], bytes | None] | None = None
                    ) -> None:
        """Answer queries until Terminate or the client hangs up."""
        binary = False
        while True:
            try:
                message = await self.expect(timeout=3600)
            except ClientClosed:
                return
            if isinstance(message, Terminate):
                return
            reply = handler(message) if handler is not None else None
            if reply is None:
                if isinstance(message, Bind):
                    binary = bool(message.result_formats) and message.result_formats[0] == 1
                reply = _default_reply(message, binary)
            if reply:
                self.send_raw(reply)


_ONE_COLUMN = RowDescription((FieldDescription("?column?", type_oid=23, type_size=4),))


def _default_reply(message: FrontendMessage, binary: bool) -> bytes:
    """serve()'s answers: one int4 column, one row with 1."""
    if isinstance(message, Query):
        return query_result([("?column?", 23)], [[b"1"]])
    if isinstance(message, Parse):
        return ParseComplete().encode()
    if isinstance(message, Describe):
        if message.kind == "S":
            return encode_messages(ParameterDescription(()), _ONE_COLUMN)
        return _ONE_COLUMN.encode()
    if isinstance(message, Bind):
        return BindComplete().encode()
    if isinstance(message, Execute):
        value = b"\x00\x00\x00\x01" if binary else b"1"
        return encode_messages(DataRow((value,)), CommandComplete("SELECT 1"))
    if isinstance(message, Close):
        return CloseComplete().encode()
    if isinstance(message, Sync):
        return ReadyForQuery("I").encode()
    return b""


def _kind_name(kind: Any) -> str:
    if kind is None:
        return "a message"
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


# -- steps ---------------------------------------------------------------------


def expect(kind: Any = None, *, timeout: float = 5.0) -> Step:
    return lambda conn: conn.expect(kind, timeout=timeout)


def send(*messages: BackendMessage | bytes) -> Step:
    async def step(conn: FakeConn) -> None:
        conn.send(*messages)
    return step


def send_raw(data: bytes) -> Step:
    async def step(conn: FakeConn) -> None:
        conn.send_raw(data)
    return step


def send_split(data: bytes, sizes: Sequence[int], delay: float = 0.0) -> Step:
    return lambda conn: conn.send_split(data, sizes, delay)


def tls(context: ssl.SSLContext | None = None, *, may_fail: bool = False) -> Step:
    return lambda conn: conn.tls(context, may_fail=may_fail)


def sleep(seconds: float) -> Step:
    return lambda conn: conn.sleep(seconds)


def close(rst: bool = False) -> Step:
    async def step(conn: FakeConn) -> None:
        conn.close(rst)
    return step


def wait_closed(timeout: float = 5.0) -> Step:
    return lambda conn: conn.wait_closed(timeout)


def accept_startup(**kwargs: Any) -> Step:
    return lambda conn: conn.accept_startup(**kwargs)


def serve(handler: Callable[[FrontendMessage], bytes | None] | None = None) -> Step:
    return lambda conn: conn.serve(handler)


# -- the server ----------------------------------------------------------------


class FakeServer:
    """Listens on 127.0.0.1 and runs a script per connection."""

    def __init__(self, *scripts: Script, host: str = "127.0.0.1", check: bool = True) -> None:
        if not scripts:
            raise ValueError("FakeServer needs at least one script")
        self.scripts = scripts
        self.host = host
        self.port = 0
        self.check = check
        self.connections: list[FakeConn] = []
        self.errors: list[BaseException] = []
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def accepted(self) -> int:
        return len(self.connections)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    async def start(self) -> FakeServer:
        # Accepted sockets get their transport when their script starts: a
        # script that begins with tls() is TLS from the first byte (direct
        # TLS), and no loop reads the ClientHello before that. (uvloop starts
        # reading when connection_made() returns, pause_reading() or not.)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((self.host, 0))
            listener.listen(16)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._acceptor = asyncio.get_running_loop().create_task(self._accept_loop(listener))
        return self

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, _ = await loop.sock_accept(listener)
            conn = FakeConn(self, len(self.connections))
            self.connections.append(conn)
            script = self.scripts[min(conn.index, len(self.scripts) - 1)]
            self._tasks.append(loop.create_task(self._run(conn, script, sock)))

    async def _run(self, conn: FakeConn, script: Script, sock: socket.socket) -> None:
        conn._sock = sock
        try:
            if callable(script):
                await script(conn)
            else:
                for step in script:
                    await step(conn)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            conn.close()

    async def close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acceptor
        if self._listener is not None:
            self._listener.close()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in self.connections:
            if conn.transport is not None:
                conn.transport.abort()
            conn._close_socket()

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every script started so far has finished."""
        if self._tasks:
            await asyncio.wait_for(
                asyncio.gather(*self._tasks, return_exceptions=True), timeout)

    async def __aenter__(self) -> FakeServer:
        return await self.start()

    async def __aexit__(self, exc_type: Any, *rest: Any) -> None:
        await self.close()
        if exc_type is None and self.check and self.errors:
            first = self.errors[0]
            raise ScriptError(f"fake server script failed: {first!r}") from first


# -- SCRAM, server side --------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class ScramServer:
    """The server half of SCRAM-SHA-256 (RFC 5802/7677), for scripts.

    ``first = scram.server_first(initial.data)`` answers the client's
    SASLInitialResponse; ``final = scram.server_final(response.data)``
    checks the client's proof (and channel binding, for -PLUS) and returns
    the server-final-message. Override fields (``nonce``, ``salt``,
    ``iterations``) or edit the returned bytes to script hostile servers.

    :param password: The password the server knows.
    :param certificate: The server certificate (DER), for -PLUS.
    """

    def __init__(self, password: str, *, iterations: int = 4096, salt: bytes | None = None,
                 certificate: bytes | None = None) -> None:
        self.password = password
        self.iterations = iterations
        self.salt = salt if salt is not None else os.urandom(16)
        self.certificate = certificate
        self.client_nonce = ""
        self.nonce = ""
        self.client_first_bare = ""
        self.gs2_header = ""
        self.server_first_message = ""
        self.proof_ok: bool | None = None

    def server_first(self, client_first: bytes, *, server_nonce: str | None = None,
                     full_nonce: str | None = None) -> bytes:
        text = client_first.decode("utf-8")
        # gs2-header "n,," / "y,," / "p=tls-server-end-point,,", then the bare message.
        head, _, rest = text.partition(",")
        authzid, _, bare = rest.partition(",")
        self.gs2_header = f"{head},{authzid},"
        self.client_first_bare = bare
        attrs = dict(part.split("=", 1) for part in bare.split(","))
        self.client_nonce = attrs["r"]
        self.nonce = full_nonce if full_nonce is not None else (
            self.client_nonce + (server_nonce or _b64(os.urandom(18))))
        self.server_first_message = (
            f"r={self.nonce},s={_b64(self.salt)},i={self.iterations}")
        return self.server_first_message.encode("ascii")

    def _keys(self) -> tuple[bytes, bytes]:
        salted = hashlib.pbkdf2_hmac("sha256", wire_auth.scram_password(self.password),
                                     self.salt, self.iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return client_key, server_key

    def server_final(self, client_final: bytes) -> bytes:
        text = client_final.decode("utf-8")
        without_proof, _, proof_b64 = text.rpartition(",p=")
        attrs = dict(part.split("=", 1) for part in without_proof.split(","))
        cbind = base64.b64decode(attrs["c"])
        expected = self.gs2_header.encode()
        if self.gs2_header.startswith("p=tls-server-end-point"):
            assert self.certificate is not None, "ScramServer needs certificate= for -PLUS"
            expected += wire_auth.tls_server_end_point(self.certificate)
        if cbind != expected:
            raise ScriptError("SCRAM channel binding data does not match")
        if attrs["r"] != self.nonce:
            raise ScriptError("SCRAM client-final nonce does not match")
        auth_message = ",".join(
            (self.client_first_bare, self.server_first_message, without_proof)).encode()
        client_key, server_key = self._keys()
        stored_key = hashlib.sha256(client_key).digest()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self.proof_ok = hmac.compare_digest(proof, base64.b64decode(proof_b64))
        server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"v={_b64(server_signature)}".encode("ascii")


# -- TLS material --------------------------------------------------------------


@functools.cache
def fake_ca() -> Any:
    """A trustme CA for fake servers (one per process)."""
    import trustme

    return trustme.CA(organization_name="fakeserver test CA")


@functools.cache
def ca_file() -> str:
    """Path of :func:`fake_ca`'s certificate (PEM), for sslrootcert."""
    fd, path = tempfile.mkstemp(prefix="fakeserver-ca-", suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(fake_ca().cert_pem.bytes())
    atexit.register(os.unlink, path)
    return path


def server_tls_context(hostnames: Iterable[str] = ("localhost", "127.0.0.1"), *,
                       alpn: Sequence[str] | None = ("postgresql",),
                       ca: Any = None,
                       minimum_version: ssl.TLSVersion | None = None,
                       maximum_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A server-side TLS context with a certificate for *hostnames*.

    :param alpn: Protocols the server accepts (None: no ALPN at all).
    :param ca: The trustme CA that signs (default :func:`fake_ca`).
    :return: The context; its ``certificate_der`` attribute holds the
        server certificate (DER), e.g. for ``ScramServer(certificate=...)``.
    """
    ca = ca or fake_ca()
    cert = ca.issue_cert(*hostnames)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    # For ScramServer(certificate=...): the DER the client will hash.
    ctx.certificate_der = ssl.PEM_cert_to_DER_cert(  # type: ignore[attr-defined]
        cert.cert_chain_pems[0].bytes().decode("ascii"))
    if alpn is not None:
        ctx.set_alpn_protocols(list(alpn))
    if minimum_version is not None:
        ctx.minimum_version = minimum_version
    if maximum_version is not None:
        ctx.maximum_version = maximum_version
    return ctx
