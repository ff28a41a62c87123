"""Recompile the Cython extensions of every package in place.

Editable installs do not recompile when a ``.pyx``/``.pxd``/``.pxi`` changes;
run ``hatch run rebuild`` (the test commands do it first). Unchanged modules
are skipped, so this is quick when nothing changed. It uses the same
``compile_extensions`` as the packages' build hooks.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
# Lower packages first: pg-wire's modules cimport pg-codecs' .pxd files.
ORDER = ["pg-codecs", "pg-wire", "pg-client", "pg-pool"]


def main() -> int:
    wanted = sys.argv[1:] or ORDER  # e.g. `python tools/rebuild.py pg-wire`
    for dist in [d for d in ORDER if d in wanted]:
        root = REPO / "packages" / dist
        hook_file = root / "hatch_build.py"
        if not hook_file.exists():
            continue
        config = tomllib.loads((root / "pyproject.toml").read_text())
        hook = config["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["custom"]
        spec = importlib.util.spec_from_file_location(f"_hook_{dist.replace('-', '_')}", hook_file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.compile_extensions(root, hook.get("extensions", []), hook.get("cimports-from", []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
