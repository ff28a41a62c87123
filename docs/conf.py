"""Sphinx configuration for the pg-client documentation."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for package in ("pg-codecs", "pg-wire", "pg-client", "pg-pool"):
    sys.path.insert(0, str(REPO / "packages" / package / "src"))

project = "pg-client"
author = "The pg-client authors"
copyright = "2026, The pg-client authors"
release = "0.1.0"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
intersphinx_mapping = {"python": ("https://docs.python.org/3", None)}
intersphinx_disabled_reftypes = ["*"]
intersphinx_timeout = 1
html_theme = "alabaster"
exclude_patterns = ["_build"]
nitpicky = False
