"""Sphinx configuration for the pg-client documentation.

Build with ``hatch run docs`` (warnings are errors). The API pages import
the packages from ``packages/*/src``; their Cython modules must be compiled
first (``python tools/rebuild.py``, which the hatch scripts run). The build
never touches the network: intersphinx is not used.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for package in ("pg-codecs", "pg-wire", "pg-client", "pg-pool"):
    sys.path.insert(0, str(REPO / "packages" / package / "src"))

project = "pg-client"
author = "The pg-client authors"
copyright = "2026, The pg-client authors"
release = "0.1.0"
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]

# Cython modules carry their signatures in the first docstring line
# (``embedsignature``); autodoc reads them from there.
autodoc_docstring_signature = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Show defaults as written in the source (``Connection``, not "<class ...>").
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"

# No intersphinx: the build must work offline. Names of the standard library
# in docstrings stay plain text.
nitpicky = False

html_theme = "alabaster"
html_theme_options = {
    "description": "asyncio PostgreSQL client with asyncpg's API",
    "fixed_sidebar": True,
}
html_title = "pg-client documentation"
exclude_patterns = ["_build"]
templates_path: list[str] = []


def _sqlstate_classes() -> str:
    """reST for every SQLSTATE class, in the order of _sqlstate.py (by SQLSTATE)."""
    from pg_client.exceptions import _sqlstate

    exported = set(_sqlstate.__all__)
    lines = []
    for name, obj in vars(_sqlstate).items():
        if name in exported and isinstance(obj, type):
            directive = "autoexception" if issubclass(obj, BaseException) else "autoclass"
            lines += [f".. {directive}:: pg_client.exceptions.{name}", "   :show-inheritance:", ""]
    return "\n".join(lines)


def _expand_sqlstate_list(app: Any, docname: str, source: list[str]) -> None:
    marker = ".. sqlstate-classes::\n"
    if docname == "api/exceptions" and marker in source[0]:
        source[0] = source[0].replace(marker, _sqlstate_classes() + "\n")


def _prefer_own_package(find_obj: Any) -> Any:
    """Resolve a bare name to the class of the package being documented.

    ``ProtocolError`` exists in pg_wire and in pg_client.exceptions. In a
    pg_wire docstring, ``:raises ProtocolError:`` means pg_wire's; without
    this, Sphinx finds both and warns that the reference is ambiguous.
    """

    def wrapper(self: Any, env: Any, modname: str | None, classname: str | None,
                name: str, type: str | None, searchmode: int = 0) -> Any:
        matches = find_obj(self, env, modname, classname, name, type, searchmode)
        if len(matches) > 1 and modname:
            package = modname.split(".")[0] + "."
            own = [m for m in matches
                   if m[0].startswith(package) and not getattr(m[1], "aliased", False)]
            if len(own) == 1:
                return own
        return matches

    return wrapper


def _drop_self(app: Any, what: str, name: str, obj: Any, options: Any,
               signature: str | None, return_annotation: str | None) -> Any:
    """Cython's embedded signatures name ``self``; Python ones don't show it."""
    if signature and what in ("method", "class"):
        if signature.startswith("(self, "):
            signature = "(" + signature[len("(self, "):]
        elif signature == "(self)":
            signature = "()"
    return signature, return_annotation


def setup(app: Any) -> None:
    from sphinx.domains.python import PythonDomain

    PythonDomain.find_obj = _prefer_own_package(PythonDomain.find_obj)  # type: ignore[method-assign]
    app.connect("source-read", _expand_sqlstate_list)
    app.connect("autodoc-process-signature", _drop_self)
