"""The full-tier chaos runs (RELIABILITY.md Z1 at 10,000 operations, Z2).

Marked ``slow``: ``python tools/soak.py`` runs them with the rest of the
full tier and prints the headline figure. Each prints its seed; set
``PG_CHAOS_SEED`` to replay one. ``PG_SOAK_OPS`` changes the operation count
of the Z1 soak; ``PG_SOAK_REPORT`` names a JSON file the Z1 soak writes its
report to (``tools/soak.py`` reads it).

Z1 (client side): a pool of 10, 20 tasks, 10,000 operations of five kinds
through the fault proxy in chaos mode (FIN, RST, 2-second stalls; about 1 %
of the operations meet a fault), command_timeout 2 s. Checked with the
ledger: 0 wrong results, 0 hangs, 0 acknowledged writes lost, the pool whole
again within 1 s of the last fault, 0 leaked descriptors, tasks or server
sessions.

Z2 (server side): the same workload straight to the server for 20 s; every
2 s one of: ``pg_terminate_backend`` of one of our sessions, a fast restart
of the server, ``kill -STOP`` / ``-CONT`` (1.5 s) of one of our backends,
``kill -9`` of one of our backends (a crash and recovery). Same invariants.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from typing import Any

import asyncpg
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chaosload

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _seed() -> int:
    return int(os.environ.get("PG_CHAOS_SEED", "0")) or random.randrange(1 << 30)


def _check(report: chaosload.ChaosReport, *, recovery_bound: float | None = 1.0) -> None:
    print(report.headline())
    print(report.details())
    problems = []
    if report.wrong:
        problems.append(f"{report.wrong} wrong results")
    if report.hangs:
        problems.append(f"{report.hangs} hangs")
    if report.lost or report.phantom:
        problems.append(f"{report.lost} lost acknowledged writes, {report.phantom} phantom")
    if report.recovery is None or (recovery_bound is not None
                                   and report.recovery >= recovery_bound):
        problems.append(f"pool whole again after {report.recovery} s")
    if report.leaks:
        problems.append(f"leaks: {report.leak_details}")
    assert not problems, (f"seed {report.seed}: " + "; ".join(problems)
                          + "\n" + "\n".join(report.examples))


async def test_z1_soak_10000_ops(cluster: Any) -> None:
    ops = int(os.environ.get("PG_SOAK_OPS", "10000"))
    report = await chaosload.run_chaos(
        cluster, ops=ops, seed=_seed(),
        progress=lambda n, ledger: print(f"  {n} ops: {dict(ledger.counts)}", flush=True))
    path = os.environ.get("PG_SOAK_REPORT")
    if path:
        data = {k: v for k, v in vars(report).items()}
        data["headline"] = report.headline()
        data["fault_rate"] = report.fault_rate
        with open(path, "w") as f:
            json.dump(data, f, indent=2, default=str)
    _check(report)
    assert sum(report.faults.values()) > 0


async def _our_backends(cluster: Any, app: str) -> list[int]:
    try:
        con = await asyncpg.connect(cluster.dsn(), timeout=2)
    except Exception:
        return []
    try:
        rows = await con.fetch("SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                               app)
        return [r[0] for r in rows]
    finally:
        await con.close()


async def _server_chaos(ctx: Any, *, every: float = 2.0, seed: int = 0) -> list[dict[str, Any]]:
    """Z2's injector: one server-side fault every *every* seconds."""
    rng = random.Random(seed)
    cluster = ctx.cluster
    kinds = ["terminate", "restart", "stop_cont", "kill9"]
    faults: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    turn = 0
    while not ctx.done.is_set():
        try:
            await asyncio.wait_for(ctx.done.wait(), every)
            break
        except asyncio.TimeoutError:
            pass
        kind = kinds[turn % len(kinds)] if turn < len(kinds) else rng.choice(kinds)
        turn += 1
        ops_before = len(ctx.ledger.ops)
        errors_before = sum(v for k, v in ctx.ledger.counts.items() if k != "ok")
        pids = await _our_backends(cluster, ctx.app)
        if kind == "restart":
            await asyncio.to_thread(cluster.restart, "fast")
        elif not pids:
            continue
        elif kind == "terminate":
            con = await asyncpg.connect(cluster.dsn())
            try:
                await con.execute("SELECT pg_terminate_backend($1)", rng.choice(pids))
            finally:
                await con.close()
        elif kind == "stop_cont":
            pid = rng.choice(pids)
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(1.5)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(rng.choice(pids), signal.SIGKILL)
        # Recovery: from the end of the fault (server back, backend resumed)
        # until an operation started after it succeeds.
        injected_at = time.monotonic()
        first_ok = None
        deadline = loop.time() + 30
        while first_ok is None and loop.time() < deadline and not ctx.done.is_set():
            oks = [op.ended for op in ctx.ledger.ops[ops_before:]
                   if op.outcome == "ok" and op.started >= injected_at and op.ended]
            if oks:
                first_ok = min(oks) - injected_at
            await asyncio.sleep(0.02)
        faults.append({
            "kind": kind,
            "errors": sum(v for k, v in ctx.ledger.counts.items() if k != "ok") - errors_before,
            "recovered_s": None if first_ok is None else round(max(first_ok, 0.0), 3),
        })
    return faults


async def test_z2_server_side_chaos(cluster: Any) -> None:
    if not getattr(cluster, "managed", False):
        pytest.skip("needs a cluster we manage (restarts and signals it)")
    try:
        os.kill(cluster.postmaster_pid, 0)
    except (PermissionError, TypeError):
        pytest.skip("not allowed to signal the server's processes")
    seed = _seed()
    report = await chaosload.run_chaos(
        cluster, duration=20.0, use_proxy=False, seed=seed, acquire_timeout=10.0,
        injector=lambda ctx: _server_chaos(ctx, seed=seed))
    faults = report.injected or []
    by_kind: dict[str, list[Any]] = {}
    for f in faults:
        by_kind.setdefault(f["kind"], []).append(f)
    for kind, items in sorted(by_kind.items()):
        errors = [f["errors"] for f in items]
        rec = [f["recovered_s"] for f in items if f["recovered_s"] is not None]
        print(f"FIGURE z2 {kind}: {len(items)} faults, app-visible errors per fault "
              f"{errors}, recovery s {rec}")
    assert len(faults) >= 4, faults
    _check(report, recovery_bound=None)
