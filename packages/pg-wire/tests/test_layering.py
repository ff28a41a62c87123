"""pg_wire imports only downward (pg_codecs' buffers and RowDecoder) and no I/O.

Every source file is scanned: ``.py`` with the ast module, ``.pyx`` /
``.pxd`` / ``.pyi`` with a line scan of their import and cimport
statements. A subprocess then checks what importing pg_wire actually loads.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "pg_wire"
# No I/O, no event loop, and nothing above us in the stack.
FORBIDDEN = {"asyncio", "socket", "ssl", "selectors", "uvloop", "pg_client", "pg_pool"}
# From pg_codecs only the buffers, the big-endian helpers and the RowDecoder /
# ParamEncoder interface.
ALLOWED_CODECS = {"pg_codecs", "pg_codecs._buffer", "pg_codecs._codecs", "pg_codecs._hton"}
CYTHON_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import\b|c?import\s+([\w., ]+))")


def _modules_imported(path: Path) -> set[str]:
    text = path.read_text()
    found: set[str] = set()
    if path.suffix == ".py":
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
        return found
    for line in text.splitlines():
        match = CYTHON_IMPORT.match(line)
        if match:
            names = match.group(1) or match.group(2)
            found.update(name.strip().split(" as ")[0] for name in names.split(","))
    return found


SOURCES = sorted(p for p in SRC.iterdir() if p.suffix in {".py", ".pyx", ".pxd", ".pyi"})


def test_sources_found() -> None:
    names = {p.name for p in SOURCES}
    assert {"_reader.pyx", "_writer.pyx", "messages.py", "backend.py", "tags.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_forbidden_imports(path: Path) -> None:
    for module in _modules_imported(path):
        root = module.split(".")[0]
        assert root not in FORBIDDEN, f"{path.name} imports {module}"
        if root == "pg_codecs":
            assert module in ALLOWED_CODECS, f"{path.name} imports {module}"


def test_importing_pg_wire_loads_no_io_modules() -> None:
    code = (
        "import sys\n"
        "import pg_wire, pg_wire.tags, pg_wire.errors, pg_wire.messages, pg_wire.backend\n"
        "import pg_wire._reader, pg_wire._writer\n"
        f"print(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
