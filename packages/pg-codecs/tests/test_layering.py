"""pg-codecs imports nothing above it and no I/O (STYLE.md section 1).

Every source file of the package is scanned: Python files with ``ast``,
Cython files (.pyx/.pxd/.pxi) by their ``import``/``cimport`` statements.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "pg_codecs"

FORBIDDEN = {
    # higher layers
    "pg_wire",
    "pg_client",
    "pg_pool",
    # I/O and event loops: pg-codecs is pure computation
    "asyncio",
    "socket",
    "ssl",
    "selectors",
    "select",
    "subprocess",
    "threading",
    # the drivers we are compatible with, read for facts only
    "asyncpg",
    "psycopg",
    "psycopg2",
}

_CYTHON_IMPORT = re.compile(
    r"^\s*(?:from\s+([\w.]+)\s+c?import\b|c?import\s+([\w.]+(?:\s*,\s*[\w.]+)*))", re.MULTILINE
)


def _python_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
    return names


def _cython_imports(path: Path) -> set[str]:
    names = set()
    for m in _CYTHON_IMPORT.finditer(path.read_text()):
        if m.group(1):
            names.add(m.group(1))
        else:
            names.update(n.strip() for n in m.group(2).split(","))
    return names


def _sources():
    files = sorted(p for p in SRC.rglob("*") if p.suffix in {".py", ".pyi", ".pyx", ".pxd", ".pxi"})
    assert files, SRC
    return files


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_no_forbidden_imports(path):
    names = _python_imports(path) if path.suffix in {".py", ".pyi"} else _cython_imports(path)
    bad = sorted(n for n in names if n.split(".")[0] in FORBIDDEN)
    assert not bad, f"{path.name} imports {bad}"


def test_scanner_sees_imports(tmp_path):
    pyx = tmp_path / "x.pyx"
    pyx.write_text("from asyncio import sleep\ncimport socket\nimport os, ssl\n")
    assert {"asyncio", "socket", "ssl", "os"} <= _cython_imports(pyx)
    py = tmp_path / "x.py"
    py.write_text("def f():\n    import pg_wire.messages\n    __import__('selectors')\n")
    assert {"pg_wire.messages", "selectors"} <= _python_imports(py)
