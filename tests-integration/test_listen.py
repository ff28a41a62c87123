"""LISTEN/NOTIFY: add_listener/remove_listener with notifications from another
connection."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _helpers import con, con2, unique, wait_for_condition

__all__ = ["con", "con2"]


async def _listening(c: Any) -> list[str]:
    return sorted(
        await c.fetchval("SELECT coalesce(array_agg(c), '{}') FROM pg_listening_channels() c")
    )


async def _notify(c: Any, channel: str, payload: str = "") -> None:
    await c.execute("SELECT pg_notify($1, $2)", channel, payload)


async def test_sync_callback(con: Any, con2: Any) -> None:
    channel = unique("chan")
    got: list[tuple[Any, ...]] = []
    await con.add_listener(channel, lambda *args: got.append(args))
    assert await _listening(con) == [channel]
    await con2.execute(f"NOTIFY {channel}, 'hello'")
    assert await wait_for_condition(lambda: got)
    connection, pid, chan, payload = got[0]
    assert connection is con
    assert pid == con2.get_server_pid()
    assert chan == channel
    assert payload == "hello"


async def test_async_callback(con: Any, con2: Any) -> None:
    channel = unique("achan")
    got: list[tuple[Any, ...]] = []
    done = asyncio.Event()

    async def callback(connection: Any, pid: int, chan: str, payload: str) -> None:
        await asyncio.sleep(0)
        got.append((connection, pid, chan, payload))
        done.set()

    await con.add_listener(channel, callback)
    await _notify(con2, channel, "payload ü ✓")
    await asyncio.wait_for(done.wait(), 5)
    assert got == [(con, con2.get_server_pid(), channel, "payload ü ✓")]


async def test_notification_while_idle(con: Any, con2: Any) -> None:
    """Delivered without the listening connection running any query."""
    channel = unique("idle")
    got: list[str] = []
    await con.add_listener(channel, lambda c, pid, ch, p: got.append(p))
    for i in range(5):
        await _notify(con2, channel, str(i))
    assert await wait_for_condition(lambda: len(got) == 5)
    assert got == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(
    "channel",
    ["Mixed Case", "with space", 'has"quote', "semi;colon--", "ünï©ødé", "select", "a" * 63],
)
async def test_channel_names_needing_quotes(con: Any, con2: Any, channel: str) -> None:
    got: list[tuple[str, str]] = []
    await con.add_listener(channel, lambda c, pid, ch, p: got.append((ch, p)))
    try:
        assert channel in await _listening(con)
        await _notify(con2, channel, "x")
        assert await wait_for_condition(lambda: got)
        assert got == [(channel, "x")]
    finally:
        await con.execute("UNLISTEN *")


@pytest.mark.parametrize("payload", ["", "a'b\"c", "line\nbreak", "x" * 7999])
async def test_payloads(con: Any, con2: Any, payload: str) -> None:
    channel = unique("pl")
    got: list[str] = []
    await con.add_listener(channel, lambda c, pid, ch, p: got.append(p))
    await _notify(con2, channel, payload)
    assert await wait_for_condition(lambda: got)
    assert got == [payload]


async def test_several_callbacks_and_removal(con: Any, con2: Any) -> None:
    channel = unique("multi")
    a: list[str] = []
    b: list[str] = []

    def cb_a(c: Any, pid: int, ch: str, p: str) -> None:
        a.append(p)

    def cb_b(c: Any, pid: int, ch: str, p: str) -> None:
        b.append(p)

    await con.add_listener(channel, cb_a)
    await con.add_listener(channel, cb_b)
    assert await _listening(con) == [channel]
    await _notify(con2, channel, "1")
    assert await wait_for_condition(lambda: a and b)
    assert (a, b) == (["1"], ["1"])

    await con.remove_listener(channel, cb_a)
    assert await _listening(con) == [channel]  # still one callback left
    await _notify(con2, channel, "2")
    assert await wait_for_condition(lambda: len(b) == 2)
    assert (a, b) == (["1"], ["1", "2"])

    await con.remove_listener(channel, cb_b)
    assert await _listening(con) == []  # UNLISTEN after the last removal
    await _notify(con2, channel, "3")
    await con2.fetchval("SELECT 1")
    await con.fetchval("SELECT pg_sleep(0.1)")  # give a stray notification the time to arrive
    assert (a, b) == (["1"], ["1", "2"])

    # listening again works
    await con.add_listener(channel, cb_a)
    await _notify(con2, channel, "4")
    assert await wait_for_condition(lambda: len(a) == 2)
    assert a == ["1", "4"]


async def test_remove_unknown_listener_is_harmless(con: Any) -> None:
    channel = unique("unknown")

    def cb(*args: Any) -> None:
        pass

    await con.remove_listener(channel, cb)
    await con.add_listener(channel, cb)
    await con.remove_listener(channel, lambda *args: None)  # not registered
    assert await _listening(con) == [channel]
    await con.remove_listener(channel, cb)
    assert await _listening(con) == []


async def test_other_channels_not_delivered(con: Any, con2: Any) -> None:
    mine, other = unique("mine"), unique("other")
    got: list[str] = []
    await con.add_listener(mine, lambda c, pid, ch, p: got.append(ch))
    await con2.execute(f"LISTEN {other}")  # someone else listens there
    await _notify(con2, other, "not for us")
    await _notify(con2, mine, "for us")
    assert await wait_for_condition(lambda: got)
    await con.fetchval("SELECT pg_sleep(0.05)")
    assert got == [mine]


async def test_notify_inside_transaction_delivered_on_commit(con: Any, con2: Any) -> None:
    channel = unique("tx")
    got: list[str] = []
    await con.add_listener(channel, lambda c, pid, ch, p: got.append(p))
    async with con2.transaction():
        await _notify(con2, channel, "a")
        await _notify(con2, channel, "b")
        await con.fetchval("SELECT pg_sleep(0.1)")
        assert got == []
    assert await wait_for_condition(lambda: len(got) == 2)
    assert got == ["a", "b"]


async def test_self_notify(con: Any) -> None:
    channel = unique("self")
    got: list[int] = []
    await con.add_listener(channel, lambda c, pid, ch, p: got.append(pid))
    await _notify(con, channel, "me")
    assert await wait_for_condition(lambda: got)
    assert got == [con.get_server_pid()]


async def test_callback_exception_does_not_break_connection(con: Any, con2: Any) -> None:
    channel = unique("boom")
    got: list[str] = []
    loop = asyncio.get_running_loop()
    handled: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))
    try:

        def bad(c: Any, pid: int, ch: str, p: str) -> None:
            raise RuntimeError("callback failed")

        await con.add_listener(channel, bad)
        await con.add_listener(channel, lambda c, pid, ch, p: got.append(p))
        await _notify(con2, channel, "x")
        assert await wait_for_condition(lambda: got and handled)
        assert await con.fetchval("SELECT 1") == 1
    finally:
        loop.set_exception_handler(old)
    assert any(isinstance(ctx.get("exception"), RuntimeError) for ctx in handled)
