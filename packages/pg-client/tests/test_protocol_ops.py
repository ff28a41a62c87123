"""The protocol core's operations, without a server."""

from __future__ import annotations

from pg_client import _protocol

# Every field of Operation, with the value a new operation starts with.
_DEFAULTS = {
    "waiter": "w", "error": None, "abandoned": False, "query": "q", "reply": None,
    "status": None, "sent": False, "on_done": None, "copy_chunks": None,
}


def test_operation_starts_with_its_defaults() -> None:
    base = _protocol.Operation("w", "q")
    for name, value in _DEFAULTS.items():
        assert getattr(base, name) == value, name


def test_execute_ops_start_as_operation_does() -> None:
    # ExecuteOp sets only the fields that differ from the C defaults (it runs
    # once per query): every other field must still read as Operation's.
    for op in (_protocol.ExecuteOp("w", "q", None), _protocol.ExecuteManyOp("w", "q")):
        for name, value in _DEFAULTS.items():
            if name != "reply":
                assert getattr(op, name) == value, name
        assert op.reply is not None and op.reply.rows == []
    assert _protocol.ExecuteManyOp("w", "q").reply.multi
    assert not _protocol.ExecuteOp("w", "q", None).reply.multi


def test_python_operations_subclass_the_compiled_base() -> None:
    op = _protocol.PrepareOp("w", "SELECT 1")
    assert isinstance(op, _protocol.Operation)
    assert op.param_oids == [] and op.fields is None and op.reply is None
    op.status = "SELECT 1"
    assert op.result() == ([], None)
