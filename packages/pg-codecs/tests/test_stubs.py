"""Each compiled module's public names are exactly those its .pyi declares (STYLE.md section 9)."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
from pathlib import Path

import pytest

import pg_codecs

SRC = Path(pg_codecs.__file__).resolve().parent


def _compiled_modules():
    names = set()
    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
    for path in SRC.iterdir():
        for suffix in suffixes:
            if path.name.endswith(suffix):
                names.add(path.name[: -len(suffix)])
                break
    return sorted(names)


def _stub_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def test_there_are_compiled_modules():
    assert {"_buffer", "_record", "_codecs", "_basic"} <= set(_compiled_modules())


@pytest.mark.parametrize("name", _compiled_modules())
def test_stub_matches_module(name):
    stub = SRC / f"{name}.pyi"
    assert stub.exists(), f"{name} has no .pyi"
    module = importlib.import_module(f"pg_codecs.{name}")
    public = {n for n in vars(module) if not n.startswith("_")}
    declared = _stub_names(stub)
    assert public == declared, (
        f"only in the module: {sorted(public - declared)}; "
        f"only in the stub: {sorted(declared - public)}"
    )


@pytest.mark.parametrize("name", _compiled_modules())
def test_module_has_docstring(name):
    module = importlib.import_module(f"pg_codecs.{name}")
    assert module.__doc__ and module.__doc__.strip(), f"pg_codecs.{name} has no module docstring"
