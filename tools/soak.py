"""The full reliability tier and the chaos soak, in one command.

    python tools/soak.py                 # rebuild, run every slow test, print the figure
    python tools/soak.py --ops 20000 --seed 1234
    python tools/soak.py --soak-only     # just the 10,000-operation soak (Z1)

Runs ``pytest -m slow tests-integration`` (the full tier of RELIABILITY.md:
server restarts and outages, cancel storms, the 10,000-operation Z1 soak
through the fault proxy, the Z2 server-side chaos run), then prints the
headline figure of the soak, the one quoted in the README::

    10,000 queries under 1.0% random connection faults: 0 wrong results,
    0 hangs, 0 lost acknowledged writes, pool recovered in 0.01 s, 0 leaks

The server is a throwaway cluster like for ``hatch run test``
(``PGTEST_PG`` / ``PGTEST_DSN`` choose another). Extra arguments after
``--`` go to pytest. The exit status is pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC_DIRS = [ROOT / "packages" / p / "src" for p in ("pg-codecs", "pg-wire", "pg-client", "pg-pool")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=10_000, help="operations in the Z1 soak")
    parser.add_argument("--seed", type=int, default=0, help="chaos seed (default: random)")
    parser.add_argument("--soak-only", action="store_true",
                        help="run only the Z1 soak, not the rest of the full tier")
    parser.add_argument("--no-rebuild", action="store_true",
                        help="skip tools/rebuild.py (the Cython extensions are up to date)")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)

    env = dict(os.environ)
    # Import the packages from the source tree (as `hatch run test` does with
    # its editable installs), whatever environment this runs in.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(p) for p in SRC_DIRS] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PG_SOAK_OPS"] = str(args.ops)
    if args.seed:
        env["PG_CHAOS_SEED"] = str(args.seed)

    if not args.no_rebuild:
        subprocess.run([sys.executable, str(ROOT / "tools" / "rebuild.py")], check=True,
                       cwd=ROOT)

    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "soak.json"
        env["PG_SOAK_REPORT"] = str(report_path)
        target = ("tests-integration/test_soak.py::test_z1_soak_10000_ops" if args.soak_only
                  else "tests-integration")
        cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-m", "slow",
               target, *args.pytest_args]
        print("$", " ".join(cmd), flush=True)
        status = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        print()
        if report_path.exists():
            report = json.loads(report_path.read_text())
            print("Soak (RELIABILITY.md Z1), reproduce with: python tools/soak.py"
                  + (" --soak-only" if args.soak_only else "")
                  + (f" --ops {args.ops}" if args.ops != 10_000 else "")
                  + f" --seed {report['seed']}")
            print(f"  {report['headline']}")
            print(f"  faults injected: {report['faults']}; outcomes: {report['outcomes']}; "
                  f"elapsed {report['elapsed']:.1f} s")
        else:
            print("The soak did not report (it failed before the end, or was deselected).")
        what = "soak" if args.soak_only else "full tier"
        print(f"{what}: {'passed' if status == 0 else f'FAILED (pytest exit {status})'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
