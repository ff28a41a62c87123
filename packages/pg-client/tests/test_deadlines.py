"""Request deadlines: StreamProtocol.set_deadline() and its one timer per connection.

A request with a timeout gets a deadline in the loop's time; one loop timer
per connection serves them all (set for the earliest, moved only earlier).
These tests queue operations on a protocol over a do-nothing transport and
let the loop's clock run; the server never answers unless a test feeds bytes.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from pg_client import _protocol, _transport

# ReadyForQuery (idle): the end of any request's reply.
_READY = b"Z" + struct.pack("!i", 5) + b"I"


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


def _protocol_on(loop: asyncio.AbstractEventLoop) -> Any:
    proto = _transport.new_client_protocol(loop, _protocol.ProtocolCore())
    proto.connection_made(_Transport())
    return proto


def _queue(proto: Any) -> Any:
    op = _protocol.SimpleQueryOp(proto.new_waiter(), "SELECT 1")
    proto.send(op)
    return op


async def _outcome(waiter: Any) -> str:
    try:
        await waiter
    except asyncio.TimeoutError:
        return "timeout"
    return "done"


async def test_a_deadline_times_the_wait_out() -> None:
    loop = asyncio.get_running_loop()
    proto = _protocol_on(loop)
    op = _queue(proto)
    started = loop.time()
    proto.set_timeout(op, 0.05)
    assert await asyncio.wait_for(_outcome(op.waiter), 5) == "timeout"
    assert loop.time() - started >= 0.04
    # The request stays queued until its ReadyForQuery, as an abandoned one.
    assert list(proto.core.pending) == [op]
    proto.data_received(_READY)
    assert not proto.core.pending


async def test_a_reply_before_the_deadline_wins() -> None:
    loop = asyncio.get_running_loop()
    proto = _protocol_on(loop)
    op = _queue(proto)
    proto.set_timeout(op, 0.05)
    proto.data_received(_READY)
    assert await _outcome(op.waiter) == "done"
    await asyncio.sleep(0.1)  # the timer fires, finds nothing queued
    assert op.waiter.exception() is None


async def test_an_earlier_deadline_moves_the_timer() -> None:
    loop = asyncio.get_running_loop()
    proto = _protocol_on(loop)
    first = _queue(proto)
    proto.set_timeout(first, 30)
    proto.data_received(_READY)  # done long before its deadline
    second = _queue(proto)
    started = loop.time()
    proto.set_timeout(second, 0.05)
    assert await asyncio.wait_for(_outcome(second.waiter), 5) == "timeout"
    assert loop.time() - started < 5


async def test_a_later_deadline_is_kept_when_the_timer_fires_early() -> None:
    loop = asyncio.get_running_loop()
    proto = _protocol_on(loop)
    first = _queue(proto)
    proto.set_timeout(first, 0.05)  # the timer: in 0.05 s
    proto.data_received(_READY)
    second = _queue(proto)
    started = loop.time()
    proto.set_timeout(second, 0.3)
    await asyncio.sleep(0.15)
    # The timer fired for the first deadline; the second is still ahead.
    assert not second.waiter.done()
    assert await asyncio.wait_for(_outcome(second.waiter), 5) == "timeout"
    assert loop.time() - started >= 0.28


async def test_each_queued_request_times_out_at_its_own_deadline() -> None:
    loop = asyncio.get_running_loop()
    proto = _protocol_on(loop)
    ops = [_queue(proto) for _ in range(3)]
    for op, seconds in zip(ops, (0.2, 0.05, 0.1), strict=True):
        proto.set_timeout(op, seconds)
    order: list[int] = []
    for i, op in enumerate(ops):
        op.waiter.add_done_callback(lambda _w, i=i: order.append(i))
    results = await asyncio.wait_for(
        asyncio.gather(*(_outcome(op.waiter) for op in ops)), 5)
    assert results == ["timeout"] * 3
    assert order == [1, 2, 0]


async def test_abandoned_and_finished_requests_are_left_alone() -> None:
    loop = asyncio.get_running_loop()
    proto = _protocol_on(loop)
    abandoned, finished = _queue(proto), _queue(proto)
    proto.set_timeout(abandoned, 0.02)
    proto.set_timeout(finished, 0.02)
    abandoned.abandoned = True
    finished.waiter.set_result(None)  # settled some other way
    await asyncio.sleep(0.1)
    assert not abandoned.waiter.done()
    assert finished.waiter.result() is None


async def test_the_loss_of_the_connection_stops_the_timer() -> None:
    loop = asyncio.get_running_loop()
    proto = _protocol_on(loop)
    op = _queue(proto)
    proto.set_timeout(op, 0.05)
    proto.connection_lost(None)
    # The request failed with the loss, not with a timeout later.
    with pytest.raises(Exception) as info:
        await op.waiter
    assert not isinstance(info.value, asyncio.TimeoutError)
    await asyncio.sleep(0.1)


async def test_simple_query_messages_are_consumed_in_order() -> None:
    """The compiled reading of a simple Query: rows dropped, last status kept,
    other messages (a notice, a parameter change) still handled."""
    loop = asyncio.get_running_loop()
    proto = _protocol_on(loop)
    notices: list[Any] = []
    params: list[tuple[str, str]] = []
    proto.core.on_notice = notices.append
    proto.core.on_parameter = lambda name, value: params.append((name, value))
    op = _queue(proto)

    def msg(tag: bytes, body: bytes) -> bytes:
        return tag + struct.pack("!i", len(body) + 4) + body

    reply = (
        msg(b"T", struct.pack("!h", 1) + b"x\0" + struct.pack("!ihihih", 0, 0, 23, 4, -1, 0))
        + msg(b"D", struct.pack("!hi", 1, 1) + b"1")
        + msg(b"C", b"SELECT 1\0")
        + msg(b"N", b"SNOTICE\0Chi000\0Mhello\0\0")
        + msg(b"S", b"application_name\0x\0")
        + msg(b"I", b"")
        + msg(b"C", b"SET\0")
        + _READY
    )
    # Byte by byte: every message split across reads.
    for i in range(len(reply)):
        proto.data_received(reply[i:i + 1])
    assert await op.waiter == "SET"
    assert [n.message for n in notices] == ["hello"]
    assert params == [("application_name", "x")]
    assert not proto.core.pending
