"""pg_client offers the public names of asyncpg's modules that programs import.

asyncpg's API is the specification: for each module users import from
asyncpg, the pg_client module of the same name must have every public name,
and functions and methods must take the same parameters (names, kinds and
defaults), so that code written for asyncpg runs unchanged.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

asyncpg = pytest.importorskip("asyncpg", reason="asyncpg is the reference to compare with")

MODULE_NAMES = {
    "connection": ["Connection", "connect", "LoggedQuery"],
    "prepared_stmt": ["PreparedStatement"],
    "cursor": ["CursorFactory", "Cursor"],
    "transaction": ["Transaction", "TransactionState"],
    "types": None,  # all of asyncpg.types.__all__
    "exceptions": None,
    "protocol": ["Record"],
    "connect_utils": ["SSLMode", "SessionAttribute"],
}


@pytest.mark.parametrize("module", sorted(MODULE_NAMES))
def test_module_names(module: str) -> None:
    ref = importlib.import_module(f"asyncpg.{module}")
    ours = importlib.import_module(f"pg_client.{module}")
    names = MODULE_NAMES[module] or list(ref.__all__)
    missing = [n for n in names if not hasattr(ours, n)]
    assert not missing, f"pg_client.{module} lacks {missing}"


def test_top_level_names() -> None:
    import pg_client

    expected = set(asyncpg.__all__) - {"create_pool", "Pool"}  # those are pg_pool's
    assert not expected - set(pg_client.__all__)


def _params(fn: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()
            if p.name != "self"]


def _comparable(params: list[tuple[str, object, object]]) -> list[tuple[str, object, object]]:
    # Defaults that are classes of the library itself differ by identity.
    return [(n, k, d if not inspect.isclass(d) else d.__name__) for n, k, d in params]


CONNECTION_METHODS = [
    name for name, member in vars(asyncpg.Connection).items()
    if not name.startswith("_") and callable(member)
]


@pytest.mark.parametrize("name", CONNECTION_METHODS)
def test_connection_method_signatures(name: str) -> None:
    import pg_client

    ours = getattr(pg_client.Connection, name, None)
    assert ours is not None, f"Connection.{name} is missing"
    assert _comparable(_params(ours)) == _comparable(_params(getattr(asyncpg.Connection, name)))


def test_connect_signature_is_a_superset() -> None:
    import pg_client

    ref = _comparable(_params(asyncpg.connect))
    ours = {n: (k, d) for n, k, d in _comparable(_params(pg_client.connect))}
    for name, kind, default in ref:
        assert name in ours, f"connect() lacks {name}"
        assert ours[name] == (kind, default), f"connect({name}) differs"


RESOURCE_CLASSES = [
    ("prepared_stmt", "PreparedStatement"),
    ("cursor", "Cursor"),
    ("cursor", "CursorFactory"),
    ("transaction", "Transaction"),
]


@pytest.mark.parametrize("module, cls", RESOURCE_CLASSES)
def test_resource_method_signatures(module: str, cls: str) -> None:
    ref_cls = getattr(importlib.import_module(f"asyncpg.{module}"), cls)
    our_cls = getattr(importlib.import_module(f"pg_client.{module}"), cls)
    for name, member in vars(ref_cls).items():
        if name.startswith("_") or not callable(member):
            continue
        ours = getattr(our_cls, name, None)
        assert ours is not None, f"{cls}.{name} is missing"
        assert _comparable(_params(ours)) == _comparable(_params(member)), f"{cls}.{name}"
        assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(
            inspect.unwrap(member)), f"{cls}.{name}: coroutine or not"
