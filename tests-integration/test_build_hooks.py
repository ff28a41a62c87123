"""The Cython build hooks of pg-codecs, pg-wire and pg-client are one file in three copies.

hatchling loads a package's hook from that package's root, and each sdist is
built alone, so the three cannot share one file. This test keeps them from
drifting apart. It lives here, not in a package's ``tests/``, because those
ship in the sdist, where the siblings are absent. It needs no server.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOOKS = [REPO / "packages" / p / "hatch_build.py" for p in ("pg-codecs", "pg-wire", "pg-client")]


def test_build_hooks_are_identical() -> None:
    versions: dict[bytes, list[str]] = {}
    for hook in HOOKS:
        versions.setdefault(hook.read_bytes(), []).append(str(hook.relative_to(REPO)))
    assert len(versions) == 1, (
        "hatch_build.py must be byte-identical in all three packages; copy the edited one "
        "over the others. Differing versions: " + " vs ".join(map(", ".join, versions.values()))
    )
