"""Type-check the public Python API of the four packages with mypy.

Runs mypy --strict over each package's ``src`` (stubs of compiled modules
included), with every package's ``src`` on the path so sibling imports
resolve to the monorepo sources.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["pg-codecs", "pg-wire", "pg-client", "pg-pool"]


def main() -> int:
    srcs = [REPO / "packages" / p / "src" for p in PACKAGES]
    env = dict(os.environ, MYPYPATH=os.pathsep.join(str(s) for s in srcs))
    targets = []
    for src in srcs:
        targets += ["-p", next(p.name for p in src.iterdir() if p.is_dir() and
                               not p.name.startswith((".", "_")))]
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), *targets]
    return subprocess.run(cmd, env=env, cwd=REPO).returncode


if __name__ == "__main__":
    sys.exit(main())
