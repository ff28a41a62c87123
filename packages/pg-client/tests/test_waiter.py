"""Waiter: asyncio's Future protocol, and the wake-up at the end of data_received()."""

from __future__ import annotations

import asyncio
import contextvars
import struct
from typing import Any

import pytest

from pg_client import _protocol
from pg_client._core import StreamProtocol, Waiter

# CommandComplete "SELECT 1", then ReadyForQuery (idle): the end of a reply.
_REPLY = (b"C" + struct.pack("!i", 4 + 9) + b"SELECT 1\0"
          + b"Z" + struct.pack("!i", 5) + b"I")


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        pass


class _Stream(StreamProtocol):
    """A StreamProtocol without a socket: the test calls data_received()."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(_protocol.ProtocolCore(), loop)
        self.transport = _Transport()
        self.failures: list[BaseException] = []

    def _protocol_failure(self, exc: BaseException) -> None:
        self.failures.append(exc)
        for op in list(self.core.pending):
            op.fail(exc)
        self.core.pending.clear()


def _request(stream: _Stream) -> Any:
    op = _protocol.Operation(stream.new_waiter(), "SELECT 1")
    return stream.send(op)


# -- the Future protocol -------------------------------------------------------
async def test_states_and_results() -> None:
    loop = asyncio.get_running_loop()
    w = Waiter(loop)
    assert asyncio.isfuture(w) and w.get_loop() is loop
    assert not w.done() and not w.cancelled()
    with pytest.raises(asyncio.InvalidStateError):
        w.result()
    with pytest.raises(asyncio.InvalidStateError):
        w.exception()
    w.set_result(42)
    assert w.done() and not w.cancelled()
    assert w.result() == 42 and w.exception() is None
    with pytest.raises(asyncio.InvalidStateError):
        w.set_result(1)
    with pytest.raises(asyncio.InvalidStateError):
        w.set_exception(ValueError())
    assert not w.cancel()
    assert "result=42" in repr(w)
    assert await w == 42


async def test_exception_keeps_its_traceback() -> None:
    w = Waiter(asyncio.get_running_loop())
    w.set_exception(KeyError)  # a class is instantiated, as Future does
    exc = w.exception()
    assert isinstance(exc, KeyError)
    depths = []
    for _ in range(3):
        with pytest.raises(KeyError) as info:
            w.result()
        assert info.value is exc
        depths.append(len(info.traceback))
    # Raising it again does not pile up frames.
    assert depths[0] == depths[1] == depths[2]
    with pytest.raises(TypeError):
        Waiter(asyncio.get_running_loop()).set_exception(StopIteration())


async def test_await_suspends_until_settled() -> None:
    loop = asyncio.get_running_loop()
    w = Waiter(loop)
    loop.call_later(0.01, w.set_result, "done")
    assert await w == "done"
    w = Waiter(loop)
    loop.call_later(0.01, w.set_exception, ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        await w


async def test_cancel_with_message() -> None:
    loop = asyncio.get_running_loop()
    w = Waiter(loop)
    assert w.cancel("stop")
    assert w.cancelled() and w.done()
    assert not w.cancel()
    with pytest.raises(asyncio.CancelledError, match="stop"):
        w.result()
    with pytest.raises(asyncio.CancelledError):
        w.exception()
    with pytest.raises(asyncio.CancelledError):
        await w


async def test_task_cancel_cancels_the_waiter() -> None:
    loop = asyncio.get_running_loop()
    w = Waiter(loop)
    task = asyncio.ensure_future(_await(w))
    await asyncio.sleep(0)
    task.cancel("by test")
    with pytest.raises(asyncio.CancelledError):
        await task
    assert w.cancelled()


async def _await(w: Waiter) -> Any:
    return await w


async def test_wait_for_shield_gather() -> None:
    loop = asyncio.get_running_loop()
    w = Waiter(loop)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(w, 0.01)
    assert w.cancelled()

    w = Waiter(loop)
    loop.call_later(0.01, w.set_result, 7)
    assert await asyncio.wait_for(w, 5) == 7

    w = Waiter(loop)
    outer = asyncio.shield(w)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert not w.done()
    w.set_result(1)

    a, b = Waiter(loop), Waiter(loop)
    loop.call_soon(a.set_result, 1)
    loop.call_soon(b.set_result, 2)
    assert await asyncio.gather(a, b) == [1, 2]

    c = Waiter(loop)
    loop.call_soon(c.set_exception, ValueError("x"))
    done, _ = await asyncio.wait([c])
    assert done == {c}


async def test_callbacks_contexts_and_removal() -> None:
    loop = asyncio.get_running_loop()
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="none")
    seen: list[tuple[str, str]] = []

    def cb(name: str) -> Any:
        return lambda fut: seen.append((name, var.get()))

    ctx = contextvars.copy_context()
    ctx.run(var.set, "ctx")
    w = Waiter(loop)
    first, second, third = cb("first"), cb("second"), cb("third")
    w.add_done_callback(first, context=ctx)
    var.set("copied")
    w.add_done_callback(second)  # runs in a copy of the context of this call
    w.add_done_callback(third)
    var.set("later")
    assert w.remove_done_callback(third) == 1
    assert w.remove_done_callback(third) == 0
    w.set_result(None)
    assert seen == []  # not settled inside a stream's data_received: the loop runs them
    await asyncio.sleep(0)
    assert seen == [("first", "ctx"), ("second", "copied")]
    w.add_done_callback(cb("after"))  # already settled: scheduled
    assert len(seen) == 2
    await asyncio.sleep(0)
    assert seen[-1] == ("after", "later")


# -- the wake-up ---------------------------------------------------------------
async def test_stream_makes_waiters_on_the_standard_loop() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(_Stream(loop).new_waiter(), Waiter)

    class OtherLoop:
        def create_future(self) -> str:
            return "a future"

    stream = StreamProtocol(_protocol.ProtocolCore(), OtherLoop())
    assert not stream.eager
    assert stream.new_waiter() == "a future"


async def test_task_resumes_when_data_received_returns() -> None:
    loop = asyncio.get_running_loop()
    stream = _Stream(loop)
    order: list[str] = []

    async def query() -> None:
        result = await _request(stream)
        order.append(f"resumed {result}")

    task = asyncio.ensure_future(query())
    await asyncio.sleep(0)
    assert stream.transport.written

    def from_the_loop() -> None:
        stream.data_received(_REPLY)
        order.append("data_received returned")

    loop.call_soon(from_the_loop)
    await task
    # The task ran inside the loop's callback, right after data_received.
    assert order == ["resumed SELECT 1", "data_received returned"]


async def test_inside_a_task_the_wake_up_goes_through_the_loop() -> None:
    loop = asyncio.get_running_loop()
    stream = _Stream(loop)
    order: list[str] = []

    async def query() -> None:
        await _request(stream)
        order.append("resumed")

    task = asyncio.ensure_future(query())
    await asyncio.sleep(0)
    stream.data_received(_REPLY)  # this test's task is running
    order.append("data_received returned")
    await task
    assert order == ["data_received returned", "resumed"]


async def test_a_failing_callback_goes_to_the_exception_handler() -> None:
    loop = asyncio.get_running_loop()
    stream = _Stream(loop)
    reported: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        waiter = _request(stream)
        calls: list[str] = []

        def bad(fut: Any) -> None:
            raise RuntimeError("callback failed")

        waiter.add_done_callback(bad)
        waiter.add_done_callback(lambda fut: calls.append("second"))
        done = asyncio.Event()
        loop.call_soon(lambda: (stream.data_received(_REPLY), done.set()))
        await done.wait()
    finally:
        loop.set_exception_handler(old)
    assert calls == ["second"]
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], RuntimeError)
    assert reported[0]["future"] is waiter


async def test_a_protocol_failure_wakes_the_waiters() -> None:
    loop = asyncio.get_running_loop()
    stream = _Stream(loop)
    waiter = _request(stream)
    loop.call_soon(stream.data_received, b"\x00garbage that is no message")
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(waiter, 5)
    assert stream.failures and info.value is stream.failures[0]


async def test_keyboard_interrupt_leaves_the_other_waiters_scheduled() -> None:
    loop = asyncio.get_running_loop()
    stream = _Stream(loop)
    first, second = _request(stream), _request(stream)
    resumed: list[str] = []

    def interrupt(fut: Any) -> None:
        raise KeyboardInterrupt

    first.add_done_callback(interrupt)
    second.add_done_callback(lambda fut: resumed.append("second"))
    with pytest.raises(KeyboardInterrupt):
        _call_outside_task(stream, _REPLY + _REPLY)
    assert resumed == []
    await asyncio.sleep(0)
    assert resumed == ["second"]


def _call_outside_task(stream: _Stream, data: bytes) -> None:
    # As the loop calls it: asyncio.current_task() is None only outside a
    # task, so take this test's task out for the call.
    loop = stream.loop
    task = asyncio.current_task(loop)
    asyncio.tasks._leave_task(loop, task)
    try:
        stream.data_received(data)
    finally:
        asyncio.tasks._enter_task(loop, task)
