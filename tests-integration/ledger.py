"""A ledger for chaos runs (RELIABILITY.md H5).

Every operation of a chaos workload is entered in the ledger with an id, its
arguments and the result it must give. When it ends, its outcome is
classified:

``ok``
    returned, and the result is the expected one;
``wrong``
    returned something else (or raised an error no fault explains): the one
    outcome a client must never produce;
``before_send``
    failed before the request could reach the server: the pool could not
    give a connection, the connection was known closed, or the error says
    ``request_sent=False``;
``unknown``
    failed after the request was sent (connection lost mid-way, timeout,
    cancellation): it may or may not have run on the server;
``hang``
    did not finish within its time budget.

Writes are tracked by key (an integer id inserted into a table): at the end,
:meth:`Ledger.verify_writes` reads the table and checks that every
*acknowledged* write is there and every *before_send* write is not. Writes
with an unknown outcome may be either (a transaction cut during COMMIT).

Typical use::

    ledger = Ledger(seed=1234)
    op = ledger.begin("fetch", (a, b), expected=(a, md5(b)), writes=())
    try:
        con = await pool.acquire()          # failure here: before_send
        op.sending()                        # from here on: unknown
        result = await con.fetchrow(...)
    except BaseException as exc:
        ledger.fail(op, exc)
    else:
        ledger.succeed(op, tuple(result))
    ...
    problems = await ledger.verify_writes(control, "SELECT id FROM t")
    print(ledger.summary())

The classification of exceptions is in :func:`classify_error`; a test can
pass its own.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pg_client

__all__ = ["OUTCOMES", "Ledger", "Op", "classify_error"]

OUTCOMES = ("ok", "wrong", "before_send", "unknown", "hang")


@dataclass
class Op:
    """One operation of the workload."""

    id: int
    kind: str
    args: Any
    expected: Any
    writes: tuple[Hashable, ...] = ()
    sent: bool = False  # the code under test was called (the request may be out)
    outcome: str | None = None
    result: Any = None
    error: BaseException | None = None
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    def sending(self) -> None:
        """Mark that the request is being handed to the client now."""
        self.sent = True

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started


def classify_error(op: Op, exc: BaseException) -> str:
    """``before_send``, ``unknown``, ``hang`` or ``wrong`` for an op that raised *exc*."""
    if isinstance(exc, _Hang):
        return "hang"
    if not op.sent:
        # The pool could not lend a connection: nothing reached the server.
        return "before_send"
    request_sent = getattr(exc, "request_sent", None)
    if isinstance(exc, pg_client.ConnectionDoesNotExistError) and request_sent is False:
        return "before_send"
    if isinstance(exc, pg_client.InterfaceError):
        text = str(exc)
        if "connection is closed" in text or "released back to the pool" in text:
            return "before_send"
        return "wrong"  # misuse errors have no place in a correct workload
    if isinstance(exc, (pg_client.PostgresConnectionError, OSError, asyncio.TimeoutError,
                        asyncio.CancelledError)):
        return "unknown"
    if isinstance(exc, pg_client.PostgresError) and exc.sqlstate in _FAULT_SQLSTATES:
        return "unknown"
    return "wrong"


# Server errors a fault can explain: the server shutting the session or
# itself down. Not 57014 (a QueryCanceledError seen by an operation that did
# not time out is a spurious cancel) nor 25P02 (a connection handed out in a
# failed transaction): those are "wrong".
_FAULT_SQLSTATES = {"57P01", "57P02", "57P03", "08006", "08003", "08000", "08001"}


class _Hang(Exception):
    pass


class Ledger:
    """See the module docstring.

    :param seed: Printed with the summary, so a failing run can be replayed.
    :param classify: ``classify(op, exc) -> outcome`` for failed ops.
    """

    def __init__(self, seed: int | None = None,
                 classify: Callable[[Op, BaseException], str] = classify_error) -> None:
        self.seed = seed
        self.classify = classify
        self.ops: list[Op] = []
        self._ids = itertools.count(1)
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()

    # -- recording -------------------------------------------------------------
    def begin(self, kind: str, args: Any = (), *, expected: Any = None,
              writes: Iterable[Hashable] = ()) -> Op:
        op = Op(next(self._ids), kind, args, expected, tuple(writes))
        self.ops.append(op)
        return op

    def next_id(self) -> int:
        """A fresh integer (for write keys that must be unique in the run)."""
        return next(self._ids)

    def succeed(self, op: Op, result: Any) -> str:
        op.result = result
        op.ended = time.monotonic()
        op.outcome = "ok" if result == op.expected else "wrong"
        self.counts[op.outcome] += 1
        return op.outcome

    def fail(self, op: Op, exc: BaseException) -> str:
        op.error = exc
        op.ended = time.monotonic()
        op.outcome = self.classify(op, exc)
        self.counts[op.outcome] += 1
        self.errors[f"{op.outcome}:{type(exc).__name__}"] += 1
        return op.outcome

    def hang(self, op: Op) -> str:
        return self.fail(op, _Hang(f"op {op.id} ({op.kind}) did not finish in time"))

    async def run(self, op: Op, coro_fn: Callable[[Op], Any], budget: float) -> str:
        """Await ``coro_fn(op)`` under *budget* seconds and record the outcome.

        ``coro_fn`` must call ``op.sending()`` right before it hands the
        request to the client, and return the result to compare.
        """
        task = asyncio.ensure_future(coro_fn(op))
        try:
            done, _ = await asyncio.wait({task}, timeout=budget)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return self.hang(op)
        if task.cancelled():
            return self.fail(op, asyncio.CancelledError())
        exc = task.exception()
        if exc is not None:
            return self.fail(op, exc)
        return self.succeed(op, task.result())

    # -- checking ------------------------------------------------------------------
    def writes_by_outcome(self) -> dict[str, set[Hashable]]:
        result: dict[str, set[Hashable]] = {o: set() for o in OUTCOMES}
        for op in self.ops:
            if op.outcome is not None:
                result[op.outcome].update(op.writes)
        return result

    async def verify_writes(self, control: Any, query: str) -> dict[str, Any]:
        """Compare the writes with what *query* (returning one key column) finds.

        :return: ``{"lost": [...], "phantom": [...], "unknown_committed": n,
            "unknown_missing": n}``: *lost* are acknowledged writes that are
            missing, *phantom* are writes reported as never sent that exist.
        """
        present = {r[0] for r in await control.fetch(query)}
        by = self.writes_by_outcome()
        acked = by["ok"] | by["wrong"]
        unknown = by["unknown"] | by["hang"]
        result = {
            "lost": sorted(acked - present),  # type: ignore[type-var]
            "phantom": sorted(by["before_send"] & present),  # type: ignore[type-var]
            "unknown_committed": len(unknown & present),
            "unknown_missing": len(unknown - present),
            "acknowledged": len(acked),
        }
        self.verified = result
        return result

    # -- reporting ----------------------------------------------------------------
    def wrong(self) -> list[Op]:
        return [op for op in self.ops if op.outcome == "wrong"]

    def hangs(self) -> list[Op]:
        return [op for op in self.ops if op.outcome == "hang"]

    def describe(self, op: Op) -> str:
        what = f"error {op.error!r}" if op.error is not None else f"result {op.result!r:.200}"
        return (f"op {op.id} {op.kind} args={op.args!r:.100} expected={op.expected!r:.100}: "
                f"{what}")

    def summary(self) -> str:
        parts = [f"{k}={self.counts.get(k, 0)}" for k in OUTCOMES]
        text = f"ledger seed={self.seed} ops={len(self.ops)} " + " ".join(parts)
        if self.errors:
            text += " errors: " + ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items()))
        verified = getattr(self, "verified", None)
        if verified is not None:
            text += (f" | writes: acknowledged={verified['acknowledged']} "
                     f"lost={len(verified['lost'])} phantom={len(verified['phantom'])} "
                     f"unknown committed/missing={verified['unknown_committed']}/"
                     f"{verified['unknown_missing']}")
        return text
