"""The short wait for the next chunk of a long reply.

``StreamProtocol`` polls its socket for some microseconds after a full chunk
of a reply (rows or COPY data), instead of letting the loop sleep, when it is
the only connection of the process awaiting a reply. These tests drive it
with a socketpair: bytes waiting on the socket stand for the server's next
chunk.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from pg_client import _core, _protocol, _transport, _wire
from pg_client.exceptions import ConnectionDoesNotExistError, ProtocolError

# CommandComplete "SELECT 9", then ReadyForQuery (idle).
_END = (b"C" + struct.pack("!i", 4 + 9) + b"SELECT 9\0"
        + b"Z" + struct.pack("!i", 5) + b"I")


def _rows(count: int, size: int = 1000) -> bytes:
    """*count* DataRows of one *size*-byte value."""
    row = b"D" + struct.pack("!ihi", 4 + 2 + 4 + size, 1, size) + b"a" * size
    return row * count


_FULL = _rows(9)  # 9,099 bytes: a full chunk of a long reply
_SMALL = _rows(2)


class _OtherLoop:
    """Stands for a loop that is not the standard library's (uvloop)."""

    def create_future(self) -> asyncio.Future[object]:
        return asyncio.get_running_loop().create_future()


class _SocketTransport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


class _Stream:
    """A connection's protocol over one end of a socketpair."""

    def __init__(self, loop: Any = None) -> None:
        self.sock, self.peer = socket.socketpair()
        self.proto = _transport.new_client_protocol(
            loop or _OtherLoop(), _protocol.ProtocolCore())
        self.proto.connection_made(_SocketTransport(self.sock))  # type: ignore[arg-type]

    def query(self) -> Any:
        op = _protocol.ExecuteOp(self.proto.new_waiter(), "SELECT b FROM t",
                                 _wire.skip_rows_decoder())
        self.proto.send(op)
        return op

    def next_chunk_waiting(self) -> None:
        self.peer.send(b"x")  # the socket reads as readable

    def close(self) -> None:
        self.proto.connection_lost(None)
        self.sock.close()
        self.peer.close()


@pytest.fixture
def streams() -> Iterator[list[_Stream]]:
    assert _core._busy_count() == 0
    made: list[_Stream] = []
    yield made
    for stream in made:
        stream.close()
    assert _core._busy_count() == 0


def _waits(stream: _Stream) -> tuple[int, int]:
    return stream.proto.spin_hits, stream.proto.spin_misses


async def test_a_long_reply_waits_for_its_next_chunk(streams: list[_Stream]) -> None:
    s = _Stream()
    streams.append(s)
    op = s.query()
    s.next_chunk_waiting()
    s.proto.data_received(_FULL)
    assert _waits(s) == (1, 0)
    assert _core._busy_count() == 1
    s.proto.data_received(_FULL)
    assert _waits(s) == (2, 0)
    # The end of the reply: no wait, and the connection is no longer counted.
    s.proto.data_received(_FULL + _END)
    assert _waits(s) == (2, 0)
    assert _core._busy_count() == 0
    reply = await op.waiter
    assert reply.status == "SELECT 9"
    assert len(reply.rows) == 27


async def test_a_wait_that_sees_nothing_backs_off(streams: list[_Stream]) -> None:
    s = _Stream()
    streams.append(s)
    s.query()
    s.proto.data_received(_FULL)   # nothing comes: a miss, skip the next chunk
    assert _waits(s) == (0, 1)
    s.proto.data_received(_FULL)   # skipped
    assert _waits(s) == (0, 1)
    s.proto.data_received(_FULL)   # a second miss: skip two
    assert _waits(s) == (0, 2)
    s.next_chunk_waiting()
    s.proto.data_received(_FULL)
    s.proto.data_received(_FULL)
    assert _waits(s) == (0, 2)
    s.proto.data_received(_FULL)   # polls again, and sees data
    assert _waits(s) == (1, 2)
    s.proto.data_received(_FULL)   # a hit resets the backoff
    assert _waits(s) == (2, 2)


async def test_no_wait_for_a_small_read(streams: list[_Stream]) -> None:
    # A read shorter than the server's output buffer: the server is not
    # streaming a result (a slow query between two messages, say).
    s = _Stream()
    streams.append(s)
    s.query()
    s.next_chunk_waiting()
    s.proto.data_received(_SMALL)
    assert _waits(s) == (0, 0)
    assert _core._busy_count() == 1


async def test_no_wait_while_another_connection_awaits_a_reply(streams: list[_Stream]) -> None:
    one, two = _Stream(), _Stream()
    streams += [one, two]
    one.query()
    assert _core._busy_count() == 1
    two.query()  # sent, nothing received yet
    assert _core._busy_count() == 2
    one.next_chunk_waiting()
    two.next_chunk_waiting()
    # The loop may have another socket to read: neither waits.
    one.proto.data_received(_FULL)
    two.proto.data_received(_FULL)
    assert _waits(one) == _waits(two) == (0, 0)
    two.proto.data_received(_END)
    assert _core._busy_count() == 1
    one.proto.data_received(_FULL)
    assert _waits(one) == (1, 0)


async def test_a_connection_lost_mid_reply_is_no_longer_counted(streams: list[_Stream]) -> None:
    s = _Stream()
    op = s.query()
    assert _core._busy_count() == 1
    s.proto.data_received(_SMALL)
    assert _core._busy_count() == 1
    s.close()
    assert _core._busy_count() == 0
    with pytest.raises(ConnectionDoesNotExistError, match="closed"):
        await op.waiter


async def test_a_bad_reply_is_no_longer_counted(streams: list[_Stream]) -> None:
    s = _Stream()
    streams.append(s)
    op = s.query()
    s.proto.data_received(_SMALL)
    assert _core._busy_count() == 1
    s.next_chunk_waiting()
    s.proto.data_received(b"D" + struct.pack("!i", 2) + _FULL)  # a length below 4
    assert _core._busy_count() == 0
    assert _waits(s) == (0, 0)
    with pytest.raises(ProtocolError):
        await op.waiter


async def test_copy_out_waits_too(streams: list[_Stream]) -> None:
    s = _Stream()
    streams.append(s)
    op = _protocol.CopyOutOp(s.proto.new_waiter(), "COPY t TO STDOUT", lambda: None)
    s.proto.send(op)
    data = b"d" + struct.pack("!i", 4 + 9000) + b"x" * 9000
    s.next_chunk_waiting()
    s.proto.data_received(b"H" + struct.pack("!ibh", 4 + 3, 0, 0) + data)
    s.proto.data_received(data)
    assert _waits(s) == (2, 0)
    assert _core._busy_count() == 1


async def test_the_standard_loops_wait_too(streams: list[_Stream]) -> None:
    s = _Stream(asyncio.get_running_loop())
    streams.append(s)
    op = s.query()
    assert _core._busy_count() == 1
    s.next_chunk_waiting()
    s.proto.data_received(_FULL)
    assert _waits(s) == (1, 0)
    s.proto.data_received(_FULL + _END)
    assert _core._busy_count() == 0
    reply = await op.waiter
    assert len(reply.rows) == 18
    assert _waits(s) == (1, 0)


async def test_no_wait_for_the_request_sent_as_a_reply_ends(streams: list[_Stream]) -> None:
    # On asyncio's loop a task woken by the end of a reply runs inside
    # data_received() and may send its next request at once: the chunk that
    # ended the first reply says nothing of when the second one's comes.
    s = _Stream(asyncio.get_running_loop())
    streams.append(s)
    sent: list[Any] = []

    async def two_queries() -> None:
        await s.query().waiter
        sent.append(s.query())
        await sent[0].waiter

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(two_queries())
    await asyncio.sleep(0)
    s.next_chunk_waiting()
    # Called by the loop, as the transport calls it (no task running).
    loop.call_soon(s.proto.data_received, _FULL + _END)
    await asyncio.sleep(0)
    assert sent, "the task ran inside data_received()"
    assert _core._busy_count() == 1
    assert _waits(s) == (0, 0)
    s.proto.data_received(_END)
    await task
    assert _core._busy_count() == 0


async def test_a_transport_without_a_socket_never_waits(streams: list[_Stream]) -> None:
    s = _Stream()
    streams.append(s)
    s.proto.transport = None
    s.proto.connection_made(_SocketTransport(None))  # type: ignore[arg-type]
    s.query()
    s.proto.data_received(_FULL)
    assert _waits(s) == (0, 0)
    assert _core._busy_count() == 1
