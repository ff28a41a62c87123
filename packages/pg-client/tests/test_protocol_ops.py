"""The protocol core's operations, without a server."""

from __future__ import annotations

from pg_client import _protocol


def test_execute_ops_set_every_operation_slot_as_operation_does() -> None:
    # ExecuteOp inlines Operation.__init__ (it runs once per query): a slot
    # added to Operation and forgotten there would raise AttributeError later.
    base = _protocol.Operation("w", "q")
    for op in (_protocol.ExecuteOp("w", "q", None), _protocol.ExecuteManyOp("w", "q")):
        for name in _protocol.Operation.__slots__:
            if name != "reply":
                assert getattr(op, name) == getattr(base, name), name
        assert op.reply is not None and op.reply.rows == []
    assert _protocol.ExecuteManyOp("w", "q").reply.multi
    assert base.reply is None
