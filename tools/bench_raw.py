"""The raw replay client: the floor a Python asyncio client cannot go below.

It connects with a hand-written StartupMessage (trust authentication only, no
TLS) and prepares ``SELECT 1+1`` once. Then, per query, it writes
:data:`REQUEST`, a pre-built Bind, Execute, Sync: the bytes pg_client sends
for a cached statement (no parameters, one binary result column, at most one
row). It reads into one buffer of its own (``asyncio.BufferedProtocol``: no
allocation per read; a plain protocol on the default loop would get a new
256 KiB ``bytes`` per read, which glibc maps and unmaps) and only looks for
ReadyForQuery in what arrives, parsing and decoding nothing, so what a query
costs here is the event loop and the kernel alone.

``tools/bench_floor.py`` times it against pg_client and asyncpg (CPU time);
``tools/bench_instructions.py`` counts its user-space instructions. Standard
library only, and it knows nothing about our packages: the bench venv runs
it without them.
"""

from __future__ import annotations

import asyncio
import struct
from typing import cast
from urllib.parse import unquote, urlsplit

__all__ = ["REQUEST", "RawClient", "connect"]

# Message Formats: ReadyForQuery is 'Z', length 5, then the status byte. In
# the timed loop a reply is one small chunk, so looking for it in each chunk
# is enough.
_READY_FOR_QUERY = b"Z\x00\x00\x00\x05"


def _message(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!i", len(body) + 4) + body


#: Bind (unnamed portal, statement "s1", no parameter formats, no parameters,
#: one result format: binary), Execute (unnamed portal, at most 1 row), Sync.
REQUEST = (
    _message(b"B", b"\0s1\0" + struct.pack("!hhhh", 0, 0, 1, 1))
    + _message(b"E", b"\0" + struct.pack("!i", 1))
    + _message(b"S", b"")
)


class RawClient(asyncio.BufferedProtocol):
    """One connection; :meth:`run` replays :data:`REQUEST`. Made by :func:`connect`."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._buffer = bytearray(64 * 1024)
        self._view = memoryview(self._buffer)
        # What arrived since the last request, kept only while connecting
        # (None in the timed loop), to report an error instead of hanging.
        self._setup_replies: bytearray | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not isinstance(): uvloop's transports don't subclass asyncio's.
        self._transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        waiter = self._waiter
        if self._setup_replies is not None:
            self._setup_replies += self._view[:nbytes]
            error = _setup_error(self._setup_replies)
            if error is not None:
                if waiter is not None and not waiter.done():
                    waiter.set_exception(RuntimeError(f"raw client: {error}"))
                return
            ready = _READY_FOR_QUERY in self._setup_replies
        else:
            ready = self._buffer.find(_READY_FOR_QUERY, 0, nbytes) >= 0
        if ready and waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("raw client: server closed the connection"))

    async def _setup(self, message: bytes) -> None:
        assert self._transport is not None
        self._setup_replies = bytearray()
        self._waiter = self._loop.create_future()
        self._transport.write(message)
        try:
            await self._waiter
        finally:
            self._setup_replies = None

    async def run(self, n: int) -> None:
        """Send :data:`REQUEST` *n* times, each after the previous one's ReadyForQuery.

        Every coroutine between this one and its task adds its own resumption
        to each query; ``tools/bench_instructions.py`` runs it as the task itself.
        """
        loop = self._loop
        transport = self._transport
        assert transport is not None
        for _ in range(n):
            self._waiter = waiter = loop.create_future()
            transport.write(REQUEST)
            await waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _setup_error(replies: bytearray) -> str | None:
    """Describe an ErrorResponse or a password request among the complete messages."""
    pos = 0
    while pos + 5 <= len(replies):
        tag = replies[pos : pos + 1]
        end = pos + 1 + int.from_bytes(replies[pos + 1 : pos + 5], "big")
        if end > len(replies):
            break
        body = bytes(replies[pos + 5 : end])
        if tag == b"E":
            fields = {f[:1]: f[1:].decode(errors="replace") for f in body.split(b"\0") if f}
            return f"server error {fields.get(b'C', '?')}: {fields.get(b'M', '?')}"
        if tag == b"R" and body[:4] != b"\0\0\0\0":
            code = int.from_bytes(body[:4], "big")
            return f"the server asks for authentication (request {code}); only trust is supported"
        pos = end
    return None


async def connect(dsn: str) -> RawClient:
    """Connect to the ``postgresql://`` URI *dsn* over TCP and prepare ``SELECT 1+1``.

    :param dsn: Host, port, user and database are used; anything else is ignored.
    :raises RuntimeError: when the server wants a password or reports an error.
    """
    url = urlsplit(dsn)
    user = unquote(url.username or "postgres")
    database = unquote(url.path.lstrip("/")) or user
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        RawClient, url.hostname or "localhost", url.port or 5432
    )
    # StartupMessage: protocol 3.0, then name/value pairs and a final NUL.
    body = struct.pack("!i", 196608) + f"user\0{user}\0database\0{database}\0\0".encode()
    await client._setup(struct.pack("!i", len(body) + 4) + body)
    await client._setup(_message(b"P", b"s1\0SELECT 1+1\0\0\0") + _message(b"S", b""))
    return client
