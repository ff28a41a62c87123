"""Each compiled module's public names are exactly the names its .pyi declares."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
    "targets"
]["wheel"]["hooks"]["custom"]["extensions"]


def _stub(name: str) -> ast.Module:
    path = ROOT / "src" / Path(*name.split(".")).with_suffix(".pyi")
    assert path.exists(), f"{path} is missing"
    return ast.parse(path.read_text(), str(path))


def _defined(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _public(names: object) -> set[str]:
    return {n for n in names if not n.startswith("_")}  # type: ignore[attr-defined]


def test_extensions_listed() -> None:
    assert EXTENSIONS == ["pg_wire._reader", "pg_wire._writer"]


@pytest.mark.parametrize("name", EXTENSIONS)
def test_module_names_match_stub(name: str) -> None:
    module = importlib.import_module(name)
    assert _public(dir(module)) == _public(_defined(_stub(name).body))


@pytest.mark.parametrize("name", EXTENSIONS)
def test_class_members_match_stub(name: str) -> None:
    module = importlib.import_module(name)
    for node in _stub(name).body:
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(module, node.name)
        declared = _defined(node.body)
        assert _public(vars(cls)) == _public(declared), node.name
        for dunder in declared - _public(declared):
            assert hasattr(cls, dunder), f"{node.name}.{dunder}"
