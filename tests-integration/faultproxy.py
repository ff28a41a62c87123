"""A fault-injecting TCP proxy for PostgreSQL client tests (pure asyncio).

Put it between the client and a real server, then switch faults on and off
while the client works. It knows PostgreSQL's framing, so faults can be
aimed at a message ("cut after the client's 3rd ``Q``").

Quick start (in the test's own event loop)::

    async with FaultProxy("127.0.0.1", cluster.port) as proxy:
        con = await pg_client.connect(cluster.dsn(host=proxy.host, port=proxy.port),
                                      ssl=False)
        proxy.cut_at_message(b"D", S2C, nth=100, how="rst")
        with pytest.raises(pg_client.ConnectionDoesNotExistError):
            await con.fetch("SELECT generate_series(1, 10000)")

Or in its own thread and loop (e.g. when the test blocks its loop, or for
sync code)::

    proxy = FaultProxy("127.0.0.1", port).start_in_thread()
    ...
    proxy.stop_thread()

In thread mode every public method below may be called from any thread.

API
---

``FaultProxy(upstream_host, upstream_port, *, host="127.0.0.1", port=0, seed=None,
record=False)``
    ``await start()`` / ``await close()`` or ``async with``; ``start_in_thread()``
    / ``stop_thread()``. ``host``/``port``/``address`` is where clients connect.

Faults (delay, fragment, blackhole and chaos stay on until ``passthrough()``;
cut rules add up until ``passthrough()`` or ``clear_rules()``; every fault
applies to the connections already open and to new ones):

``passthrough()``
    Forward everything unchanged; clear every mode and rule; resume a blackhole.
``delay(seconds, direction=BOTH)``
    Hold each chunk for *seconds* before forwarding it.
``fragment(size=1, direction=BOTH)``
    Forward in writes of *size* bytes (each one flushed on its own).
``blackhole(which="all")``
    Stop forwarding both ways on every connection, old and new; sockets stay
    open (like a network partition: TCP keeps the bytes, nothing is lost;
    ``passthrough()`` heals it and the held bytes flow on). ``which="existing"``
    holds only the connections open now (new ones pass: a silently dead
    pooled connection); ``which="new"`` holds only connections accepted from
    now on (the side connection of a CancelRequest, a reconnect).
``delay_message(tag, seconds, direction, count=None)``
    Hold the chunk that carries a message with type byte *tag* in *direction*
    for *seconds* (the next *count* such messages, or all of them).
``cut_after_bytes(n, direction, how="rst")``
    After *n* bytes of a connection's stream in *direction* have been forwarded,
    close both sides: ``how="fin"`` orderly (FIN), ``"rst"`` with SO_LINGER 0.
    ``n=0`` cuts before the first byte of that direction.
``cut_at_message(tag, direction, nth=1, how="rst", where="before")``
    Cut at the *nth* message with type byte *tag* (``b"Q"``, ``b"D"``...) in
    *direction*, counted per connection from when the rule is set; *where*
    is ``"before"`` (none of its bytes forwarded), ``"middle"`` (about half)
    or ``"after"`` (all of it forwarded, nothing after it). The untagged
    first client message (StartupMessage, SSLRequest, CancelRequest) has tag
    ``b""``; the one-byte answer to SSLRequest is tag ``b"ssl"``. After TLS
    starts, framing is not followed.
``cut_all(how="rst")``
    Cut every open connection now.
``chaos(seed, *, p_fin=0.0, p_rst=0.0, p_stall=0.0, stall_seconds=2.0, p_delay=0.0,
max_delay=0.01, p_fragment=0.0)``
    For each chunk forwarded, with the given probabilities (from a
    ``random.Random(seed)``): cut with FIN, cut with RST at a random offset in
    the chunk, stall that connection for *stall_seconds*, delay the chunk, or
    forward it in 1-byte writes. Reproducible for a given seed and chunking.

Counters and records:

``chaos_events``
    ``{"fin": n, "rst": n, "stall": n}``: faults the chaos mode injected.

``connections``
    Every connection seen, oldest first: ``Conn`` objects with ``c2s`` and
    ``s2c`` (``Stream``: ``.forwarded`` bytes, ``.data`` when ``record=True``,
    ``.messages`` list of ``(tag, start, end)`` offsets), ``.closed``,
    ``.cut_how`` (``"fin"``/``"rst"``/``None``).
``accepted``
    Number of accepted connections.
``await wait_closed_all(timeout)``
    Wait until every proxied connection is closed (in-loop mode only).

``deaf_listen(host="127.0.0.1")``
    Context manager: a listening socket that never accepts; yields
    ``(host, port)``. TCP handshakes complete (backlog), nothing is ever read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BOTH", "C2S", "S2C", "Conn", "FaultProxy", "Stream", "deaf_listen"]

C2S = "c2s"  # client -> server
S2C = "s2c"  # server -> client
BOTH = "both"

_SSL_REQUEST_CODE = 80877103
_GSSENC_REQUEST_CODE = 80877104
_READ_SIZE = 64 * 1024


def _directions(direction: str) -> tuple[str, ...]:
    if direction == BOTH:
        return (C2S, S2C)
    if direction not in (C2S, S2C):
        raise ValueError(f"direction must be C2S, S2C or BOTH, not {direction!r}")
    return (direction,)


@dataclass
class _CutRule:
    direction: str
    how: str
    after_bytes: int | None = None
    tag: bytes | None = None
    nth: int = 1
    where: str = "before"
    # per connection: count of *tag* already seen when the rule was set
    baseline: dict[int, int] = field(default_factory=dict)


@dataclass
class _DelayRule:
    direction: str
    tag: bytes
    seconds: float
    count: int | None  # None: every such message


@dataclass
class Stream:
    """One direction of a proxied connection."""

    direction: str
    forwarded: int = 0  # bytes written to the far side so far
    parsed: int = 0  # bytes seen by the framer
    data: bytearray | None = None
    messages: list[tuple[bytes, int, int]] = field(default_factory=list)
    tag_counts: dict[bytes, int] = field(default_factory=dict)
    cut_at: int | None = None  # stream offset at which the connection is cut
    cut_how: str = "rst"
    # framer state
    held: bytearray = field(default_factory=bytearray)  # received, not yet forwarded
    _header: bytearray = field(default_factory=bytearray)
    _body_left: int = 0
    _untagged: bool = False
    _ssl_replies_expected: int = 0
    _tls: bool = False


class Conn:
    """One client connection and its upstream twin."""

    def __init__(self, proxy: FaultProxy, index: int) -> None:
        self.proxy = proxy
        self.index = index
        self.c2s = Stream(C2S, _untagged=True)
        self.s2c = Stream(S2C)
        if proxy.record:
            self.c2s.data = bytearray()
            self.s2c.data = bytearray()
        self.closed = False
        self.cut_how: str | None = None
        self.stalled_until = 0.0
        self.flowing = asyncio.Event()  # per-connection blackhole when clear
        self.flowing.set()
        self.client_writer: asyncio.StreamWriter | None = None
        self.server_writer: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.done = asyncio.Event()

    def stream(self, direction: str) -> Stream:
        return self.c2s if direction == C2S else self.s2c

    def __repr__(self) -> str:
        return (f"<Conn #{self.index} c2s={self.c2s.forwarded} s2c={self.s2c.forwarded} "
                f"closed={self.closed} cut={self.cut_how}>")


def _frame(conn: Conn, stream: Stream, data: bytes) -> list[tuple[bytes, int, int]]:
    """Feed *data* to *stream*'s framer; return the messages whose header completed."""
    new: list[tuple[bytes, int, int]] = []
    pos = 0
    n = len(data)
    while pos < n:
        if stream._tls:
            stream.parsed += n - pos
            break
        if stream._body_left:
            take = min(stream._body_left, n - pos)
            stream._body_left -= take
            stream.parsed += take
            pos += take
            continue
        if stream.direction == S2C and stream._ssl_replies_expected:
            byte = data[pos : pos + 1]
            start = stream.parsed
            stream.parsed += 1
            pos += 1
            stream._ssl_replies_expected -= 1
            new.append((b"ssl", start, start + 1))
            if byte == b"S":
                stream._tls = True
                conn.c2s._tls = True
            continue
        need = 4 if stream._untagged else 5
        take = min(need - len(stream._header), n - pos)
        stream._header += data[pos : pos + take]
        pos += take
        stream.parsed += take
        if len(stream._header) < need:
            break
        start = stream.parsed - need
        if stream._untagged:
            tag = b""
            (length,) = struct.unpack("!i", stream._header)
            end = start + max(length, 4)
        else:
            tag = bytes(stream._header[:1])
            (length,) = struct.unpack("!i", stream._header[1:])
            end = start + 1 + max(length, 4)
        stream._body_left = end - stream.parsed
        stream._header.clear()
        if stream._untagged:
            # The code follows the length; SSLRequest/GSSENCRequest keep the
            # next client message untagged, and expect a one-byte answer.
            code_bytes = data[pos : pos + 4]
            if len(code_bytes) == 4:
                (code,) = struct.unpack("!i", code_bytes)
            else:
                code = None  # split: treat as a startup message (rare, tests only)
            if code in (_SSL_REQUEST_CODE, _GSSENC_REQUEST_CODE):
                conn.s2c._ssl_replies_expected += 1
            else:
                stream._untagged = False
        new.append((tag, start, end))
    return new


class FaultProxy:
    """See the module docstring."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        record: bool = False,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = port
        self.record = record
        self.connections: list[Conn] = []
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._flowing: asyncio.Event | None = None
        self._delay: dict[str, float] = {C2S: 0.0, S2C: 0.0}
        self._fragment: dict[str, int] = {C2S: 0, S2C: 0}
        self._rules: list[_CutRule] = []
        self._chaos: dict[str, float] | None = None
        self._rng = random.Random(seed)
        self._hold_new = False
        self._delay_rules: list[_DelayRule] = []
        self.chaos_events: dict[str, int] = {"fin": 0, "rst": 0, "stall": 0}

    # -- life cycle ---------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    async def start(self) -> FaultProxy:
        self._loop = asyncio.get_running_loop()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for conn in list(self.connections):
            self._close_conn(conn, "rst")
        tasks = [t for c in self.connections for t in c.tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self) -> FaultProxy:
        """Run the proxy in a daemon thread with its own event loop."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                started.set_exception(exc)
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        started.result(10)
        return self

    def stop_thread(self, timeout: float = 10.0) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._thread = None

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run *fn* in the proxy's loop (now if we are in it)."""
        loop = self._loop
        if loop is None or self._thread is None or threading.current_thread() is self._thread:
            return fn()
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return fut.result(10)

    # -- faults ------------------------------------------------------------------
    def passthrough(self) -> None:
        def do() -> None:
            self._delay = {C2S: 0.0, S2C: 0.0}
            self._fragment = {C2S: 0, S2C: 0}
            self._rules.clear()
            self._chaos = None
            self._hold_new = False
            self._delay_rules.clear()
            for conn in self.connections:
                conn.stalled_until = 0.0
                conn.flowing.set()
            if self._flowing is not None:
                self._flowing.set()

        self._call(do)

    def clear_rules(self) -> None:
        self._call(self._rules.clear)

    def delay(self, seconds: float, direction: str = BOTH) -> None:
        def do() -> None:
            for d in _directions(direction):
                self._delay[d] = seconds

        self._call(do)

    def fragment(self, size: int = 1, direction: str = BOTH) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")

        def do() -> None:
            for d in _directions(direction):
                self._fragment[d] = size

        self._call(do)

    def blackhole(self, which: str = "all") -> None:
        if which not in ("all", "existing", "new"):
            raise ValueError("which must be 'all', 'existing' or 'new'")

        def do() -> None:
            assert self._flowing is not None
            if which == "all":
                self._flowing.clear()
            elif which == "existing":
                for conn in self.connections:
                    conn.flowing.clear()
            else:
                self._hold_new = True

        self._call(do)

    def delay_message(self, tag: bytes, seconds: float, direction: str = S2C,
                      count: int | None = None) -> None:
        if isinstance(tag, str):
            tag = tag.encode()
        rules = [_DelayRule(d, tag, seconds, count) for d in _directions(direction)]
        self._call(lambda: self._delay_rules.extend(rules))

    def cut_after_bytes(self, n: int, direction: str, how: str = "rst") -> None:
        _check_how(how)
        rules = [_CutRule(d, how, after_bytes=n) for d in _directions(direction)]
        self._call(lambda: self._add_rules(rules))

    def cut_at_message(
        self, tag: bytes, direction: str, nth: int = 1, how: str = "rst", where: str = "before"
    ) -> None:
        _check_how(how)
        if where not in ("before", "middle", "after"):
            raise ValueError("where must be 'before', 'middle' or 'after'")
        if isinstance(tag, str):
            tag = tag.encode()
        rules = [_CutRule(d, how, tag=tag, nth=nth, where=where) for d in _directions(direction)]
        self._call(lambda: self._add_rules(rules))

    def _add_rules(self, rules: list[_CutRule]) -> None:
        self._rules.extend(rules)
        for conn in self.connections:
            for rule in rules:
                if rule.tag is not None:
                    counts = conn.stream(rule.direction).tag_counts
                    rule.baseline[conn.index] = counts.get(rule.tag, 0)
        # A byte rule may already be due on open connections.
        for conn in self.connections:
            if conn.closed:
                continue
            for rule in rules:
                if rule.after_bytes is not None:
                    stream = conn.stream(rule.direction)
                    self._set_cut(stream, max(rule.after_bytes, stream.forwarded), rule.how)
                    if stream.cut_at is not None and stream.forwarded >= stream.cut_at:
                        self._close_conn(conn, stream.cut_how)

    def cut_all(self, how: str = "rst") -> None:
        _check_how(how)

        def do() -> None:
            for conn in list(self.connections):
                if not conn.closed:
                    self._close_conn(conn, how)

        self._call(do)

    def chaos(
        self,
        seed: int,
        *,
        p_fin: float = 0.0,
        p_rst: float = 0.0,
        p_stall: float = 0.0,
        stall_seconds: float = 2.0,
        p_delay: float = 0.0,
        max_delay: float = 0.01,
        p_fragment: float = 0.0,
    ) -> None:
        def do() -> None:
            self._rng = random.Random(seed)
            self._chaos = {
                "p_fin": p_fin, "p_rst": p_rst, "p_stall": p_stall,
                "stall_seconds": stall_seconds, "p_delay": p_delay,
                "max_delay": max_delay, "p_fragment": p_fragment,
            }

        self._call(do)

    async def wait_closed_all(self, timeout: float = 10.0) -> None:
        async def wait() -> None:
            for conn in list(self.connections):
                await conn.done.wait()

        await asyncio.wait_for(wait(), timeout)

    # -- plumbing -----------------------------------------------------------------
    @staticmethod
    def _set_cut(stream: Stream, offset: int, how: str) -> None:
        if stream.cut_at is None or offset < stream.cut_at:
            stream.cut_at = offset
            stream.cut_how = how

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        conn = Conn(self, len(self.connections))
        if self._hold_new:
            conn.flowing.clear()
        conn.client_writer = writer
        self.connections.append(conn)
        _nodelay(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._close_conn(conn, "rst")
            return
        _nodelay(up_writer)
        conn.server_writer = up_writer
        if conn.closed:  # cut while connecting
            self._close_conn(conn, conn.cut_how or "rst")
            return
        for rule in self._rules:
            if rule.after_bytes is not None:
                self._set_cut(conn.stream(rule.direction), rule.after_bytes, rule.how)
        pumps = [
            asyncio.ensure_future(self._pump(conn, conn.c2s, reader, up_writer)),
            asyncio.ensure_future(self._pump(conn, conn.s2c, up_reader, writer)),
        ]
        conn.tasks = pumps
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            if not conn.closed:
                self._close_conn(conn, "fin")

    async def _pump(
        self,
        conn: Conn,
        stream: Stream,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        assert self._flowing is not None
        # Due immediately (n=0 rules).
        if stream.cut_at is not None and stream.cut_at <= 0:
            self._close_conn(conn, stream.cut_how)
            return
        try:
            while not conn.closed:
                await self._flowing.wait()
                try:
                    data = await reader.read(_READ_SIZE)
                except (ConnectionError, OSError):
                    data = b""
                if conn.closed:
                    return
                if not data:
                    # Orderly end from this side: hand on what is held, pass the FIN on.
                    if stream.held:
                        await self._write(conn, writer, bytes(stream.held), 0)
                        stream.forwarded += len(stream.held)
                        stream.held.clear()
                    with contextlib.suppress(Exception):
                        if writer.can_write_eof():
                            writer.write_eof()
                    return
                await self._forward(conn, stream, data, writer)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._close_conn(conn, "rst")

    async def _forward(
        self, conn: Conn, stream: Stream, data: bytes, writer: asyncio.StreamWriter
    ) -> None:
        assert self._flowing is not None
        base = stream.parsed
        msg_delay = 0.0
        for tag, start, end in _frame(conn, stream, data):
            for drule in self._delay_rules:
                if (drule.direction == stream.direction and drule.tag == tag
                        and drule.count != 0):
                    msg_delay = max(msg_delay, drule.seconds)
                    if drule.count is not None:
                        drule.count -= 1
            stream.messages.append((tag, start, end))
            count = stream.tag_counts.get(tag, 0) + 1
            stream.tag_counts[tag] = count
            for rule in self._rules:
                if rule.direction != stream.direction or rule.tag is None:
                    continue
                if rule.tag == tag and rule.nth == count - rule.baseline.get(conn.index, 0):
                    offset = {"before": start, "middle": (start + end) // 2, "after": end}[
                        rule.where]
                    self._set_cut(stream, max(offset, stream.forwarded), rule.how)
        if stream.data is not None:
            stream.data += data
        stream.held += data

        chaos = self._chaos
        frag = self._fragment[stream.direction]
        delay = max(self._delay[stream.direction], msg_delay)
        if chaos is not None:
            rng = self._rng
            r = rng.random()
            if r < chaos["p_fin"]:
                self._set_cut(stream, base + rng.randrange(len(data) + 1), "fin")
                self.chaos_events["fin"] += 1
            elif r < chaos["p_fin"] + chaos["p_rst"]:
                self._set_cut(stream, base + rng.randrange(len(data) + 1), "rst")
                self.chaos_events["rst"] += 1
            elif r < chaos["p_fin"] + chaos["p_rst"] + chaos["p_stall"]:
                conn.stalled_until = asyncio.get_running_loop().time() + chaos["stall_seconds"]
                self.chaos_events["stall"] += 1
            if rng.random() < chaos["p_delay"]:
                delay = max(delay, rng.uniform(0, chaos["max_delay"]))
            if rng.random() < chaos["p_fragment"]:
                frag = 1

        if delay:
            await asyncio.sleep(delay)
        while True:
            stall = conn.stalled_until - asyncio.get_running_loop().time()
            if stall > 0:
                await asyncio.sleep(stall)
            if not self._flowing.is_set():
                await self._flowing.wait()
                continue
            if not conn.flowing.is_set():
                await conn.flowing.wait()
                continue
            break
        if conn.closed:
            return

        # Never hand on a partial header: a message rule may still want to cut
        # before it. Those few bytes go out with the next chunk.
        limit = stream.parsed
        if stream._header and not stream._tls:
            limit -= len(stream._header)
        if stream.cut_at is not None:
            limit = min(limit, stream.cut_at)
        count = limit - stream.forwarded
        if count > 0:
            chunk = bytes(stream.held[:count])
            del stream.held[:count]
            await self._write(conn, writer, chunk, frag)
            stream.forwarded = limit
        if stream.cut_at is not None and stream.forwarded >= stream.cut_at:
            await self._flush(writer)
            self._close_conn(conn, stream.cut_how)

    async def _write(
        self, conn: Conn, writer: asyncio.StreamWriter, chunk: bytes, frag: int
    ) -> None:
        if conn.closed:
            return
        if frag:
            for i in range(0, len(chunk), frag):
                if conn.closed:
                    return
                writer.write(chunk[i : i + frag])
                await self._flush(writer)
                await asyncio.sleep(0)
        else:
            writer.write(chunk)
            await writer.drain()

    @staticmethod
    async def _flush(writer: asyncio.StreamWriter) -> None:
        """Wait until asyncio has handed every byte to the kernel."""
        transport = writer.transport
        for _ in range(1000):
            if transport.is_closing() or transport.get_write_buffer_size() == 0:
                return
            await asyncio.sleep(0.001)

    def _close_conn(self, conn: Conn, how: str) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.cut_how = how
        for w in (conn.client_writer, conn.server_writer):
            if w is None:
                continue
            transport = w.transport
            if how == "rst":
                with contextlib.suppress(Exception):
                    sock = transport.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()
        current = asyncio.current_task()
        for t in conn.tasks:
            if t is not current and not t.done():
                t.cancel()
        conn.done.set()


def _check_how(how: str) -> None:
    if how not in ("fin", "rst"):
        raise ValueError("how must be 'fin' or 'rst'")


def _nodelay(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        sock = writer.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextlib.contextmanager
def deaf_listen(host: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """A listening socket that never accepts; yields ``(host, port)``."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.bind((host, 0))
        sock.listen(16)
        yield host, sock.getsockname()[1]
    finally:
        sock.close()
