"""Install the four built wheels into a fresh virtual environment and import
every public module of each.

This catches files missing from a wheel (a ``.pxd``, a compiled module, a
subpackage) that the editable development install would hide. Usage:
``hatch run wheel-test`` (builds into a temporary folder first) or
``python tools/wheel_test.py DIST_DIR`` to test wheels built already.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_all import build_all

IMPORT_ALL = r"""
import importlib, pkgutil, sys
names = []
for top in ("pg_codecs", "pg_wire", "pg_client", "pg_pool"):
    pkg = importlib.import_module(top)
    assert "site-packages" in pkg.__file__, pkg.__file__
    names.append(top)
    for info in pkgutil.walk_packages(pkg.__path__, top + "."):
        importlib.import_module(info.name)
        names.append(info.name)
import pg_codecs, pathlib
pxd = sorted(p.name for p in pathlib.Path(pg_codecs.__file__).parent.glob("*.pxd"))
assert "_buffer.pxd" in pxd and "_codecs.pxd" in pxd, pxd
print(len(names), "modules imported;", "pg_codecs ships", ", ".join(pxd))
"""


def check_wheels(dist: Path) -> str:
    """Install the wheels in *dist* into a new venv and import everything."""
    wheels = sorted(str(p) for p in dist.glob("*.whl"))
    if len(wheels) != 4:
        raise SystemExit(f"expected 4 wheels in {dist}, found {wheels}")
    with tempfile.TemporaryDirectory(prefix="pg-wheel-test-") as tmp:
        env = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env)
        python = env / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(dist),
             *wheels],
            check=True,
        )
        done = subprocess.run(
            [str(python), "-c", IMPORT_ALL], check=True, capture_output=True, text=True,
            cwd=tmp,
        )
        return done.stdout.strip()


def main() -> int:
    if len(sys.argv) > 1:
        print(check_wheels(Path(sys.argv[1]).resolve()))
        return 0
    with tempfile.TemporaryDirectory(prefix="pg-dist-") as tmp:
        build_all(Path(tmp))
        print(check_wheels(Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
