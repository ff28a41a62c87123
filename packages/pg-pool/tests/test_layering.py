"""pg_pool may use pg_client's public API only (STYLE.md, "the one rule").

Scans the source with ``ast`` (nothing is imported):

* imports are stdlib, ``pg_pool`` itself, or public ``pg_client`` modules
  and names: no ``pg_wire``, no ``pg_codecs``, no ``pg_client._anything``;
* no attribute starting with ``_`` is read off ``pg_client`` modules;
* every ``obj._name`` access uses a private name pg_pool defines itself, so
  the pool never reaches into a connection's privates (``con._protocol``).
  If pg_pool needs more from a connection, pg_client gets a documented
  public method for it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / 'src' / 'pg_pool'
FILES = sorted(SRC.rglob('*.py'))
STDLIB = set(sys.stdlib_module_names) | {'__future__'}
ALLOWED_PG_CLIENT = {'pg_client', 'pg_client.connection', 'pg_client.exceptions'}


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding='utf-8'), filename=str(path))


def _check_module_name(name: str, where: str) -> None:
    top = name.split('.')[0]
    if top in STDLIB or top == 'pg_pool':
        return
    assert top not in ('pg_wire', 'pg_codecs'), f'{where}: imports {name}'
    assert top == 'pg_client', f'{where}: imports third-party {name}'
    assert not any(part.startswith('_') for part in name.split('.')), (
        f'{where}: imports private module {name}')
    assert name in ALLOWED_PG_CLIENT, f'{where}: imports {name}'


def test_files_found() -> None:
    assert SRC / 'pool.py' in FILES
    assert SRC / '__init__.py' in FILES


@pytest.mark.parametrize('path', FILES, ids=lambda p: p.name)
def test_imports(path: Path) -> None:
    for node in ast.walk(_parse(path)):
        where = f'{path.name}:{getattr(node, "lineno", "?")}'
        if isinstance(node, ast.Import):
            for alias in node.names:
                _check_module_name(alias.name, where)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside pg_pool
                continue
            assert node.module is not None
            _check_module_name(node.module, where)
            if node.module.split('.')[0] == 'pg_client':
                for alias in node.names:
                    assert not alias.name.startswith('_'), (
                        f'{where}: imports private {node.module}.{alias.name}')


def _own_private_names() -> set[str]:
    """Private names pg_pool defines: functions, classes, attributes it
    assigns, slots, class-level names."""
    names: set[str] = set()
    for path in FILES:
        for node in ast.walk(_parse(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                 ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(
                    node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(
                    node.target, ast.Name):
                names.add(node.target.id)
            elif (isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == '__slots__'
                    for t in node.targets)):
                for const in ast.walk(node.value):
                    if isinstance(const, ast.Constant) and isinstance(
                            const.value, str):
                        names.add(const.value)
    return {n for n in names if n.startswith('_')}


@pytest.mark.parametrize('path', FILES, ids=lambda p: p.name)
def test_no_foreign_private_attributes(path: Path) -> None:
    own = _own_private_names()
    for node in ast.walk(_parse(path)):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith('_') or (attr.startswith('__')
                                        and attr.endswith('__')):
            continue
        where = f'{path.name}:{node.lineno}'
        if isinstance(node.value, ast.Name) and node.value.id in (
                'pg_client', 'exceptions', 'ConnectionProxy', 'Connection'):
            raise AssertionError(f'{where}: {node.value.id}.{attr} is private')
        assert attr in own, (
            f'{where}: .{attr} is not a name pg_pool defines; reaching into '
            f"another package's privates?")


def test_scanner_catches_violations(tmp_path: Path) -> None:
    # The checks above are only useful if they fail on bad code.
    with pytest.raises(AssertionError):
        _check_module_name('pg_wire.messages', 'x')
    with pytest.raises(AssertionError):
        _check_module_name('pg_client._protocol', 'x')
    with pytest.raises(AssertionError):
        _check_module_name('pg_codecs', 'x')
    assert '_protocol' not in _own_private_names()
    assert '_con' in _own_private_names()
