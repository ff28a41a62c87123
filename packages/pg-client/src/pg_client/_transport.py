"""asyncio glue: sockets, TLS negotiation and flow control around ProtocolCore.

``ClientProtocol`` is the ``asyncio.Protocol`` of an established connection:
it feeds received bytes to the sans-I/O core, writes what the core queued,
and turns a lost connection into errors for the operations in flight.

``open_stream`` makes the socket for one address and runs the TLS
negotiation that precedes the startup message:

* SSLRequest, then exactly one byte: ``S`` (TLS follows) or ``N`` (no TLS).
  Anything else, or any byte after the ``S`` before the handshake, is refused
  without being interpreted (CVE-2021-23222: bytes a man in the middle slips
  in after the ``S`` must never be read as if they came over TLS). An
  ErrorResponse to SSLRequest is not shown: it comes from an unauthenticated
  peer (CVE-2024-10977).
* ``N`` continues in plaintext on the same socket only when the caller
  allows it (sslmode allow/prefer); otherwise the socket is closed at once,
  so not even the StartupMessage (the user name) is sent.
* Direct TLS (PostgreSQL 17+) starts the handshake at once with the
  ``postgresql`` ALPN protocol, and requires the server to agree to it.

The negotiation reads through its own small protocol object, so nothing the
server sends before the handshake can reach the stream the client parses
afterwards.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
import struct
from collections.abc import Callable
from typing import Any

from ._core import StreamProtocol
from ._protocol import ProtocolCore
from .exceptions import ConnectionDoesNotExistError, InterfaceError, PostgresError, ProtocolError

SSL_REQUEST = struct.pack("!ii", 8, 80877103)

# Pause reading when this much decoded COPY OUT data waits for its consumer.
_COPY_HIGH_WATER = 4 * 1024 * 1024
_COPY_LOW_WATER = 1024 * 1024


class ClientProtocol(StreamProtocol, asyncio.Protocol):
    """The asyncio side of one connection: bytes in and out of ``core``.

    Receiving, sending and flushing are StreamProtocol's (compiled, in
    ``_core``); the rest is here.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, core: ProtocolCore) -> None:
        super().__init__(core, loop)
        self.on_lost: Callable[[BaseException | None], None] | None = None
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._read_paused = False

    # -- asyncio.Protocol -----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def _protocol_failure(self, exc: BaseException) -> None:
        # The stream can no longer be trusted: fail everything, close.
        # Errors the client raised on purpose while reading (an
        # authentication request require_auth refuses, say) keep their
        # class; anything else means the server sent what we can't read.
        if not isinstance(exc, (ProtocolError, InterfaceError, PostgresError)):
            err: BaseException = ProtocolError(f"invalid data from the server: {exc}")
            err.__cause__ = exc
        else:
            err = exc
        pending = list(self.core.pending)
        self.core.pending.clear()
        self.core.closed = True
        for op in pending:
            op.fail(err)
        if self.core.fatal_error is None:
            self.core.fatal_error = err
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        # Let go of the transport: asyncio's TLS protocol keeps bound methods
        # of a buffered protocol after the loss, so protocol -> TLS
        # transport -> TLS protocol -> protocol would be a cycle only the
        # garbage collector frees (test_reliability T10).
        self.transport = None
        self.core.connection_lost(exc)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(self.core.lost_error(exc, request_sent=True))
        self._drain_waiters.clear()
        if self.on_lost is not None:
            self.on_lost(exc)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # -- used by the connection ----------------------------------------------
    @property
    def writable(self) -> bool:
        """drain() would return at once: writing is not paused, the transport is open."""
        return (not self._write_paused and not self.lost and self.transport is not None
                and not self.transport.is_closing())

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high mark."""
        if self.lost or self.transport is None or self.transport.is_closing():
            raise self.core.lost_error(None, request_sent=True)
        if not self._write_paused:
            return
        waiter = self.loop.create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None and not self.lost:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and self.transport is not None and not self.lost:
            self._read_paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class BufferedClientProtocol(ClientProtocol, asyncio.BufferedProtocol):
    """ClientProtocol reading into one buffer per connection.

    For the standard library's loops. Their transports give a plain
    protocol each read as a new ``bytes`` of up to 256 KiB, resized to what
    arrived: glibc maps, remaps and unmaps that memory, and faults its pages
    in, on every read (measured: 32k more kernel instructions and 2 page
    faults per ``SELECT 1+1``). Here the socket is read into
    ``StreamProtocol.get_buffer()``'s buffer and copied out at the size
    that arrived. uvloop already hands over bytes of that size.
    """


def new_client_protocol(loop: asyncio.AbstractEventLoop, core: ProtocolCore) -> ClientProtocol:
    """The protocol of a new connection: buffered on the standard library's loops."""
    if isinstance(loop, asyncio.BaseEventLoop):
        return BufferedClientProtocol(loop, core)
    return ClientProtocol(loop, core)


class _Negotiator(asyncio.Protocol):
    """Reads the one-byte answer to SSLRequest, and nothing else."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answer: asyncio.Future[bytes] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.extra_data = False  # bytes arrived after the answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.answer.done():
            # The whole chunk is the answer: a valid one is exactly b"S" or
            # b"N", so a chunk with more in it is refused as a whole.
            self.answer.set_result(bytes(data))
        else:
            # Bytes after the answer, before the handshake: refuse, never
            # keep them.
            self.extra_data = True
            if self.transport is not None:
                self.transport.abort()

    def _fail(self, exc: BaseException) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)
            # Mark it retrieved: a connect cancelled before it awaited the
            # answer must not log "exception was never retrieved".
            self.answer.exception()

    def eof_received(self) -> bool | None:
        self._fail(ConnectionResetError("server closed the connection"))
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._fail(exc or ConnectionResetError("server closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)


class SSLNegotiationError(ConnectionError):
    """The server refused TLS, or answered SSLRequest with something else."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused  # True when the server plainly said "no TLS"


_UNENCRYPTED_AFTER_S = "received unencrypted data after SSL response"
_DIRECT_TLS_CLOSED = (
    "the server closed the connection during the direct TLS handshake "
    "(sslnegotiation=direct needs PostgreSQL 17 or later)")


async def open_stream(
    loop: asyncio.AbstractEventLoop,
    address: Any,
    *,
    ssl_context: ssl_module.SSLContext | None,
    server_hostname: str | None,
    direct_tls: bool,
    protocol_factory: Callable[[], asyncio.Protocol],
    plaintext_on_refusal: bool = False,
) -> tuple[asyncio.Transport, asyncio.Protocol, bool]:
    """Connect to *address* (``(host, port)`` or a Unix socket path).

    :param ssl_context: None for plaintext; else TLS is negotiated (over TCP
        only: Unix sockets never use TLS).
    :param plaintext_on_refusal: When the server answers ``N`` to
        SSLRequest, go on in plaintext on the same socket (sslmode
        ``prefer``) instead of raising :class:`SSLNegotiationError`.
    :return: The transport, the protocol made by *protocol_factory* and
        attached to it, and whether TLS is in use.
    """
    is_unix = isinstance(address, str)
    if ssl_context is not None and direct_tls and not is_unix:
        return await _open_direct_tls(loop, address, ssl_context, server_hostname,
                                      protocol_factory)

    if is_unix:
        raw, negotiator = await loop.create_unix_connection(
            lambda: _Negotiator(loop), address)
    else:
        raw, negotiator = await loop.create_connection(
            lambda: _Negotiator(loop), address[0], address[1])
    use_tls = ssl_context is not None and not is_unix
    try:
        if use_tls:
            raw.write(SSL_REQUEST)
            answer = await negotiator.answer
            if answer not in (b"S", b"N"):
                raise SSLNegotiationError(_bad_answer_text(answer))
            if negotiator.extra_data:
                # More bytes came after a valid answer, in a later segment.
                raise SSLNegotiationError(_bad_answer_text(answer + b"?"))
            if answer == b"N":
                if not plaintext_on_refusal:
                    raise SSLNegotiationError("the server does not support TLS", refused=True)
                use_tls = False
        if use_tls:
            try:
                tls = await loop.start_tls(
                    raw, negotiator, ssl_context,  # type: ignore[arg-type]
                    server_hostname=server_hostname or address[0])
            except (OSError, EOFError):
                if negotiator.extra_data:
                    raise SSLNegotiationError(_UNENCRYPTED_AFTER_S) from None
                raise
            if tls is None:
                raise SSLNegotiationError("TLS handshake did not complete")
            transport = tls
        else:
            transport = raw
        protocol = protocol_factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        return transport, protocol, use_tls  # type: ignore[return-value]
    except BaseException:
        if not negotiator.answer.done():
            negotiator.answer.cancel()  # nobody will read it any more
        raw.abort()
        raise


def _bad_answer_text(answer: bytes) -> str:
    # Nothing of what the server sent is quoted: it is unauthenticated.
    if answer[:1] == b"S":
        return _UNENCRYPTED_AFTER_S
    if answer[:1] == b"N":
        return "received unencrypted data after the server refused TLS"
    if answer[:1] == b"E":
        # CVE-2024-10977: the error text could come from anyone on the path.
        return "server sent an error response during SSL exchange"
    return "received invalid response to SSL negotiation"


async def _open_direct_tls(
    loop: asyncio.AbstractEventLoop,
    address: tuple[str, int],
    ssl_context: ssl_module.SSLContext,
    server_hostname: str | None,
    protocol_factory: Callable[[], asyncio.Protocol],
) -> tuple[asyncio.Transport, asyncio.Protocol, bool]:
    """TLS from the first byte (sslnegotiation=direct), ALPN required."""
    try:
        transport, protocol = await loop.create_connection(
            protocol_factory, address[0], address[1], ssl=ssl_context,
            server_hostname=server_hostname or address[0])
    except (ConnectionResetError, ssl_module.SSLEOFError, ssl_module.SSLZeroReturnError) as exc:
        # A server older than 17 reads the ClientHello as a broken startup
        # packet and hangs up: say so rather than "connection reset".
        raise ConnectionResetError(_DIRECT_TLS_CLOSED) from exc
    _check_alpn(transport)
    return transport, protocol, True  # type: ignore[return-value]


def _check_alpn(transport: Any) -> None:
    sslobj = transport.get_extra_info("ssl_object")
    if sslobj is None or sslobj.selected_alpn_protocol() != "postgresql":
        transport.abort()
        raise SSLNegotiationError(
            "the server did not accept the 'postgresql' ALPN protocol for direct TLS")


def peer_certificate(transport: asyncio.BaseTransport) -> bytes | None:
    """The server's certificate (DER), for SCRAM channel binding."""
    sslobj = transport.get_extra_info("ssl_object")
    if sslobj is None:
        return None
    return sslobj.getpeercert(binary_form=True)


async def send_cancel_request(
    loop: asyncio.AbstractEventLoop,
    address: Any,
    request: bytes,
    *,
    ssl_context: ssl_module.SSLContext | None,
    server_hostname: str | None,
    direct_tls: bool,
    timeout: float,
) -> None:
    """Open a side connection, send *request* (a CancelRequest), wait for EOF.

    Uses the same TLS settings as the main connection (CVE-2020-25694). The
    server closes the side connection once it has passed the cancel on, so
    waiting for the close bounds the race with whatever the client sends
    next.
    """

    class _CancelProto(asyncio.Protocol):
        def __init__(self) -> None:
            self.done: asyncio.Future[None] = loop.create_future()

        def data_received(self, data: bytes) -> None:
            pass

        def connection_lost(self, exc: BaseException | None) -> None:
            if not self.done.done():
                self.done.set_result(None)

    async def run() -> None:
        transport, proto, _tls = await open_stream(
            loop, address, ssl_context=ssl_context, server_hostname=server_hostname,
            direct_tls=direct_tls, protocol_factory=_CancelProto)
        try:
            transport.write(request)
            await proto.done  # type: ignore[attr-defined]
        finally:
            # Not when the loop was closed under us (see upkeep_task): its
            # transports can no longer schedule their close; the socket is
            # closed when the transport is collected.
            if not loop.is_closed():
                transport.close()

    await asyncio.wait_for(upkeep_task(loop, run()), timeout)


def upkeep_task(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
    """A task of the driver's own that nobody awaits to the end: the drain of
    an abandoned request, the CancelRequest sent for it, the ROLLBACK of an
    orphaned BEGIN.

    Such a task may still be running when the event loop is shut down: a
    program that stops with queries in flight (``asyncio.run()`` cancelling
    its tasks) abandons them, and each abandoned query starts one. The loop
    then drops it unfinished, and the connection goes with the loop, so
    asyncio's "Task was destroyed but it is pending!" report (meant for a
    task the program forgot) is turned off for these.
    """
    task = loop.create_task(coro)
    try:
        task._log_destroy_pending = False  # type: ignore[attr-defined]
    except AttributeError:
        pass  # a task factory's own kind of task, without that report
    return task


def closed_error() -> InterfaceError:
    return InterfaceError("connection is closed")


def lost_before_send() -> ConnectionDoesNotExistError:
    return ConnectionDoesNotExistError("connection was closed", request_sent=False)
