"""pg_pool offers asyncpg's Pool API: names, parameters and defaults.

asyncpg's pool is the specification. Each public method of asyncpg.Pool must
exist on pg_pool.Pool with the same parameters; create_pool() must accept
every parameter asyncpg's does, with the same defaults.
"""

from __future__ import annotations

import inspect

import pytest

asyncpg = pytest.importorskip("asyncpg", reason="asyncpg is the reference to compare with")

import pg_pool  # noqa: E402


def _params(fn: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default if not inspect.isclass(p.default) else p.default.__name__)
            for p in sig.parameters.values() if p.name != "self"]


POOL_METHODS = [name for name, member in vars(asyncpg.Pool).items()
                if not name.startswith("_") and callable(member)]


@pytest.mark.parametrize("name", POOL_METHODS)
def test_pool_method_signatures(name: str) -> None:
    ours = getattr(pg_pool.Pool, name, None)
    assert ours is not None, f"Pool.{name} is missing"
    assert _params(ours) == _params(getattr(asyncpg.Pool, name))


def test_create_pool_accepts_asyncpg_parameters() -> None:
    ours = {n: (k, d) for n, k, d in _params(pg_pool.create_pool)}
    for name, kind, default in _params(asyncpg.create_pool):
        assert name in ours, f"create_pool() lacks {name}"
        assert ours[name] == (kind, default), f"create_pool({name}) differs"
