"""Build an sdist and a wheel of every package into one folder.

Usage: ``hatch run build-all [DEST]`` (default ``dist/``). Uses hatchling from
the current environment (no build isolation), so the Cython build hook runs
with the Cython and setuptools the dev environment pins.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["pg-codecs", "pg-wire", "pg-client", "pg-pool"]


def build_all(dest: Path) -> list[Path]:
    """Build every package into *dest*; return the files written."""
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.iterdir())
    for dist in PACKAGES:
        subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-d", str(dest)],
            cwd=REPO / "packages" / dist,
            check=True,
        )
    return sorted(set(dest.iterdir()) - before)


def main() -> int:
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "dist"
    for path in build_all(dest.resolve()):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
