"""The Z1 chaos workload: pooled operations under random connection faults.

Shared by the fast tier (``test_reliability.py``, 1,000 operations) and the
soak (``test_soak.py`` / ``tools/soak.py``, 10,000 operations).

The workload (RELIABILITY.md Z1): a pg_pool pool (min = max = 10) reaches
the server through a :class:`faultproxy.FaultProxy` in chaos mode; 20
tasks run the operations, each one of

* ``fetch``: ``SELECT $1::int8, md5($2)`` with random arguments;
* ``insert``: ``INSERT INTO t VALUES ($id, ...)`` in autocommit;
* ``transaction``: two inserts and a ``count(*)`` of them, in a transaction;
* ``copy``: ``copy_records_to_table`` of three rows;
* ``cursor``: a cursor over ``generate_series`` (prefetch 7), in a transaction.

Every operation goes through the ledger (``ledger.py``): its expected result
is known in advance, its outcome is classified, and at the end every
acknowledged write must be in the table (and no write reported as never
sent). Leak probes (``probes.py``) compare descriptors, tasks and server
sessions with the baseline once the pool is closed.

:func:`run_chaos` returns a :class:`ChaosReport`; ``report.headline()`` is the
figure quoted in the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from faultproxy import FaultProxy
from ledger import Ledger, Op
from probes import LeakProbe

import pg_client
import pg_pool

__all__ = ["ChaosReport", "run_chaos"]

CANCEL_BUDGET: float = getattr(pg_client.connection, "_CANCEL_BUDGET", 5.0)

# Operation kinds and their weights.
KINDS = (("fetch", 35), ("insert", 25), ("transaction", 15), ("copy", 10), ("cursor", 15))
# Statements each kind sends (each under its own command_timeout).
STATEMENTS = {"fetch": 1, "insert": 1, "transaction": 5, "copy": 2, "cursor": 6}


@dataclass
class ChaosReport:
    ops: int
    seed: int
    elapsed: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    wrong: int = 0
    hangs: int = 0
    lost: int = 0
    phantom: int = 0
    acknowledged: int = 0
    unknown_committed: int = 0
    unknown_missing: int = 0
    recovery: float | None = None
    leaks: int = 0
    leak_details: str = ""
    faults: dict[str, int] = field(default_factory=dict)
    max_latency: float = 0.0
    examples: list[str] = field(default_factory=list)
    injected: Any = None  # what the injector returned (Z2: the faults it made)
    lent_closed: int = 0  # acquires that returned an already closed connection

    @property
    def fault_rate(self) -> float:
        return sum(self.faults.values()) / max(self.ops, 1)

    def headline(self) -> str:
        rec = "n/a" if self.recovery is None else f"{self.recovery:.2f} s"
        if self.faults:
            under = f"{self.fault_rate:.1%} random connection faults"
        else:
            under = f"{len(self.injected or ())} server-side faults"
        return (f"{self.ops:,} queries under {under}: "
                f"{self.wrong} wrong results, {self.hangs} hangs, {self.lost} lost "
                f"acknowledged writes, pool recovered in {rec}, {self.leaks} leaks")

    def details(self) -> str:
        return (f"seed={self.seed} elapsed={self.elapsed:.1f}s outcomes={self.outcomes} "
                f"faults={self.faults} acknowledged_writes={self.acknowledged} "
                f"phantom_writes={self.phantom} unknown_writes committed/missing="
                f"{self.unknown_committed}/{self.unknown_missing} "
                f"max_op_latency={self.max_latency:.2f}s lent_closed={self.lent_closed} "
                f"errors={self.errors}")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class _Workload:
    def __init__(self, pool: Any, table: str, ledger: Ledger, *, acquire_timeout: float,
                 command_timeout: float) -> None:
        self.pool = pool
        self.table = table
        self.ledger = ledger
        self.acquire_timeout = acquire_timeout
        self.command_timeout = command_timeout
        self.lent_closed = 0

    def budget(self, kind: str) -> float:
        # Acquire, then each statement under command_timeout, then a cancel
        # budget for the wait on an abandoned request; plus slack.
        return (self.acquire_timeout + STATEMENTS[kind] * self.command_timeout
                + 2 * CANCEL_BUDGET + 2)

    def make(self, rng: random.Random) -> tuple[Op, Any]:
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        ledger = self.ledger
        t = self.table
        if kind == "fetch":
            a = rng.randrange(-(2**63), 2**63)
            b = "".join(rng.choice("abcdé€ xyz'\"\\") for _ in range(rng.randrange(0, 40)))
            op = ledger.begin(kind, (a, b), expected=(a, _md5(b)))

            async def run(con: Any) -> Any:
                row = await con.fetchrow("SELECT $1::int8, md5($2)", a, b)
                return tuple(row)

        elif kind == "insert":
            key = ledger.next_id()
            op = ledger.begin(kind, (key,), expected="INSERT 0 1", writes=(key,))

            async def run(con: Any) -> Any:
                return await con.execute(f"INSERT INTO {t} VALUES ($1, $2)", key, "i")

        elif kind == "transaction":
            x, y = ledger.next_id(), ledger.next_id()
            op = ledger.begin(kind, (x, y), expected=2, writes=(x, y))

            async def run(con: Any) -> Any:
                async with con.transaction():
                    await con.execute(f"INSERT INTO {t} VALUES ($1, 't')", x)
                    await con.execute(f"INSERT INTO {t} VALUES ($1, 't')", y)
                    n = await con.fetchval(
                        f"SELECT count(*) FROM {t} WHERE id = ANY($1::int8[])", [x, y])
                return n

        elif kind == "copy":
            keys = tuple(ledger.next_id() for _ in range(3))
            op = ledger.begin(kind, keys, expected="COPY 3", writes=keys)

            async def run(con: Any) -> Any:
                return await con.copy_records_to_table(
                    t, records=[(k, "c") for k in keys], columns=["id", "payload"])

        else:
            k = rng.randrange(0, 1_000_000)
            op = ledger.begin(kind, (k,), expected=list(range(k + 1, k + 21)))

            async def run(con: Any) -> Any:
                out = []
                async with con.transaction():
                    async for r in con.cursor(
                            "SELECT g + $1::int FROM generate_series(1, 20) g", k, prefetch=7):
                        out.append(r[0])
                return out

        async def body(op: Op) -> Any:
            async with self.pool.acquire(timeout=self.acquire_timeout) as con:
                if con.is_closed():
                    # The pool lent a connection it could know was dead.
                    self.lent_closed += 1
                op.sending()
                return await run(con)

        return op, body


async def run_chaos(
    cluster: Any,
    *,
    ops: int = 1000,
    duration: float | None = None,
    use_proxy: bool = True,
    injector: Any = None,
    concurrency: int = 20,
    pool_size: int = 10,
    seed: int | None = None,
    p_fin: float = 0.00075,
    p_rst: float = 0.00045,
    p_stall: float = 0.0003,
    stall_seconds: float = 2.0,
    command_timeout: float = 2.0,
    acquire_timeout: float = 5.0,
    progress: Any = None,
) -> ChaosReport:
    """Run the Z1 workload; see the module docstring.

    :param duration: Run for this many seconds instead of *ops* operations.
    :param use_proxy: Put the fault proxy between pool and server (Z1); False
        connects directly (Z2, where *injector* makes the faults).
    :param injector: ``await injector(ctx)`` runs next to the workload until it
        ends; ``ctx`` has ``pool``, ``app``, ``cluster``, ``ledger`` and
        ``done`` (an Event set when the workload is over).

    The default fault probabilities are per chunk forwarded by the proxy
    (5:3:2 FIN : RST : 2-second stall); with ~10 chunks per operation (both
    directions, connects included) they make about 1 % of the operations
    meet a fault. ``report.fault_rate`` is
    the measured number of faults per operation.
    """
    if seed is None:
        seed = random.randrange(1 << 30)
    print(f"chaos seed={seed} " + (f"ops={ops}" if duration is None else f"duration={duration}s"))
    app = f"chaos_{uuid.uuid4().hex[:10]}"
    table = f"chaos_{uuid.uuid4().hex[:10]}"
    report = ChaosReport(ops=ops, seed=seed)
    ctl = await asyncpg.connect(cluster.dsn())
    try:
        await ctl.execute(f"CREATE TABLE {table} (id int8 PRIMARY KEY, payload text)")
        ledger = Ledger(seed)
        probe = LeakProbe(control=ctl, app=app, settle=CANCEL_BUDGET * 2 + 5,
                          raise_on_leak=False)
        started = time.monotonic()
        async with probe:
            proxy = await FaultProxy("127.0.0.1", cluster.port).start() if use_proxy else None
            pool = None
            inject_task: asyncio.Future[Any] | None = None
            try:
                dsn = (cluster.dsn(host=proxy.host, port=proxy.port) if proxy is not None
                       else cluster.dsn())
                # synchronous_commit=on: the test cluster runs with it off, and a
                # crashed backend (Z2's kill -9) may then lose commits the server
                # acknowledged, which is the server's business, not the client's.
                pool = await pg_pool.create_pool(
                    dsn, ssl=False, min_size=pool_size, max_size=pool_size,
                    command_timeout=command_timeout, timeout=acquire_timeout,
                    server_settings={"application_name": app, "synchronous_commit": "on"})
                work = _Workload(pool, table, ledger, acquire_timeout=acquire_timeout,
                                 command_timeout=command_timeout)
                if proxy is not None:
                    proxy.chaos(seed, p_fin=p_fin, p_rst=p_rst, p_stall=p_stall,
                                stall_seconds=stall_seconds)
                loop = asyncio.get_running_loop()
                end = None if duration is None else loop.time() + duration
                counter = iter(range(ops if duration is None else 1 << 62))
                latencies: list[float] = []
                ctx = _Context(pool=pool, app=app, cluster=cluster, ledger=ledger,
                               done=asyncio.Event())
                if injector is not None:
                    inject_task = asyncio.ensure_future(injector(ctx))

                async def worker() -> None:
                    for i in counter:
                        if end is not None and loop.time() >= end:
                            return
                        op, body = work.make(random.Random(seed * 1_000_003 + i))
                        await ledger.run(op, body, work.budget(op.kind))
                        latencies.append(op.elapsed)
                        if progress is not None and (i + 1) % 1000 == 0:
                            progress(i + 1, ledger)

                workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
                results = await asyncio.gather(*workers, return_exceptions=True)
                ctx.done.set()
                if inject_task is not None:
                    report.injected = await inject_task
                for r in results:
                    if isinstance(r, BaseException):
                        raise r
                report.ops = len(ledger.ops)
                report.lent_closed = work.lent_closed
                report.max_latency = max(latencies, default=0.0)
                # The last fault: chaos ends now. How long until the pool is
                # whole again (every connection idle and alive)?
                if proxy is not None:
                    proxy.passthrough()
                    report.faults = dict(proxy.chaos_events)
                healed = time.monotonic()
                report.recovery = await _wait_whole(pool, pool_size, timeout=60)
                if report.recovery is not None:
                    report.recovery = time.monotonic() - healed
                report.elapsed = time.monotonic() - started
                await asyncio.wait_for(pool.close(), 30)
            finally:
                if inject_task is not None and not inject_task.done():
                    inject_task.cancel()
                    await asyncio.gather(inject_task, return_exceptions=True)
                if pool is not None:
                    pool.terminate()
                if proxy is not None:
                    await proxy.close()
                try:
                    await asyncio.wait_for(ctl.fetchval("SELECT 1"), 5)
                except Exception:  # the server restarted under it (Z2)
                    ctl.terminate()
                    ctl = await _reconnect(cluster)
                    probe.control = ctl
        report.leaks = probe.report.get("leaks", 0)
        report.leak_details = str(probe.report)
        verified = await ledger.verify_writes(ctl, f"SELECT id FROM {table}")
        report.outcomes = dict(ledger.counts)
        report.errors = dict(ledger.errors)
        report.wrong = ledger.counts.get("wrong", 0)
        report.hangs = ledger.counts.get("hang", 0)
        report.lost = len(verified["lost"])
        report.phantom = len(verified["phantom"])
        report.acknowledged = verified["acknowledged"]
        report.unknown_committed = verified["unknown_committed"]
        report.unknown_missing = verified["unknown_missing"]
        report.examples = ([ledger.describe(op) for op in ledger.wrong()[:5]]
                           + [ledger.describe(op) for op in ledger.hangs()[:5]]
                           + [f"lost write {k}" for k in verified["lost"][:5]]
                           + [f"phantom write {k}" for k in verified["phantom"][:5]])
        print(ledger.summary())
    finally:
        with contextlib.suppress(Exception):
            await ctl.execute(f"DROP TABLE IF EXISTS {table}")
        await ctl.close()
    return report


@dataclass
class _Context:
    pool: Any
    app: str
    cluster: Any
    ledger: Ledger
    done: asyncio.Event


async def _reconnect(cluster: Any, timeout: float = 30.0) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            return await asyncpg.connect(cluster.dsn())
        except Exception:
            if loop.time() > end:
                raise
            await asyncio.sleep(0.1)


async def _wait_whole(pool: Any, size: int, timeout: float) -> float | None:
    """Seconds until *size* connections are idle and each answers a query."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout:
        if pool.get_idle_size() == size and pool.get_size() == size:
            # Check they are alive (a dead idle one would be replaced here).
            held = []
            try:
                for _ in range(size):
                    held.append(await pool.acquire(timeout=5))
                values = await asyncio.gather(
                    *[c.fetchval("SELECT $1::int", i) for i, c in enumerate(held)],
                    return_exceptions=True)
            finally:
                for c in held:
                    await pool.release(c)
            if values == list(range(size)):
                return loop.time() - start
        await asyncio.sleep(0.01)
    return None
