"""The buffered read path of the stdlib loops: get_buffer() / buffer_updated()."""

from __future__ import annotations

import asyncio
import struct

import pytest

from pg_client import _protocol, _transport

# CommandComplete "SELECT 1", then ReadyForQuery (idle).
_REPLY = (b"C" + struct.pack("!i", 4 + 9) + b"SELECT 1\0"
          + b"Z" + struct.pack("!i", 5) + b"I")


class _OtherLoop:
    """Stands for a loop that is not the standard library's (uvloop)."""

    def create_future(self) -> asyncio.Future[object]:
        return asyncio.get_running_loop().create_future()


async def test_the_standard_loops_get_the_buffered_protocol() -> None:
    proto = _transport.new_client_protocol(asyncio.get_running_loop(), _protocol.ProtocolCore())
    assert isinstance(proto, _transport.BufferedClientProtocol)
    assert isinstance(proto, asyncio.BufferedProtocol)
    other = _transport.new_client_protocol(_OtherLoop(), _protocol.ProtocolCore())  # type: ignore[arg-type]
    assert not isinstance(other, asyncio.BufferedProtocol)


async def test_bytes_read_into_the_buffer_reach_the_core() -> None:
    loop = asyncio.get_running_loop()
    proto = _transport.new_client_protocol(loop, _protocol.ProtocolCore())
    op = _protocol.Operation(proto.new_waiter(), "SELECT 1")
    proto.core.push(op)
    buf = proto.get_buffer(-1)
    assert len(buf) >= 16 * 1024 and not buf.readonly
    assert proto.get_buffer(-1) is buf  # one buffer per connection
    # A reply split over two reads, the second one the start of the buffer again.
    buf[:7] = _REPLY[:7]
    proto.buffer_updated(7)
    assert not op.waiter.done()
    rest = _REPLY[7:]
    buf[:len(rest)] = rest
    proto.buffer_updated(len(rest))
    assert await op.waiter == "SELECT 1"
    assert proto.data_events == 2


async def test_buffer_updated_refuses_counts_outside_the_buffer() -> None:
    proto = _transport.new_client_protocol(asyncio.get_running_loop(), _protocol.ProtocolCore())
    with pytest.raises(ValueError):
        proto.buffer_updated(1)  # before get_buffer()
    buf = proto.get_buffer(-1)
    for bad in (-1, len(buf) + 1):
        with pytest.raises(ValueError):
            proto.buffer_updated(bad)
