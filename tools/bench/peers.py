"""The bench venv: the pinned peers (asyncpg, psycopg, psqlpy) and uvloop.

``ensure_venv()`` makes ``<repo>/.cache/bench-venv`` with the Python that runs
the benchmark (the same one that compiled our ``.so`` files with
``tools/rebuild.py``, so the worker can import pg_client from the source tree
through PYTHONPATH) and pip-installs ``requirements.txt`` beside this file. A
stamp file remembers which requirements and which Python made the venv; when
either changes the venv is made again. A requirement that won't install is
recorded as missing and the benchmark goes on without it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
#: Distribution whose version tells a client's version, per client.
DISTRIBUTIONS = {
    "asyncpg": "asyncpg",
    "psycopg": "psycopg",
    "psycopg_binary": "psycopg-binary",
    "psqlpy": "psqlpy",
    "uvloop": "uvloop",
}


def _log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _requirements() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def _stamp_key() -> dict[str, str]:
    return {
        "requirements_sha256": hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest(),
        "python": sys.version,
        "base_executable": str(Path(sys.base_prefix).resolve()),
    }


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _pip(python: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    cmd = [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def ensure_venv(repo: Path) -> tuple[Path | None, dict[str, Any]]:
    """Return (the venv's python or None, info with installed versions and failures)."""
    venv = repo / ".cache" / "bench-venv"
    stamp_path = venv / "bench-stamp.json"
    key = _stamp_key()
    info: dict[str, Any] = {"venv": str(venv), "requirements": _requirements()}
    if stamp_path.exists() and venv_python(venv).exists():
        try:
            stamp = json.loads(stamp_path.read_text())
        except ValueError:
            stamp = {}
        if all(stamp.get(k) == v for k, v in key.items()):
            info.update(stamp.get("info", {}))
            return venv_python(venv), info
    _log(f"making the bench venv {venv} (pins: {', '.join(info['requirements'])})")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300
    )
    if made.returncode != 0:
        info["error"] = f"python -m venv failed: {(made.stdout + made.stderr).strip()[-500:]}"
        return None, info
    python = venv_python(venv)
    failed: dict[str, str] = {}
    proc = _pip(python, "install", *info["requirements"])
    if proc.returncode != 0:
        # Install what can be installed; a peer that can't is reported missing.
        for req in info["requirements"]:
            one = _pip(python, "install", req)
            if one.returncode != 0:
                failed[req] = (one.stdout + one.stderr).strip()[-500:]
                _log(f"could not install {req}; it will be reported missing")
    info["failed"] = failed
    info["versions"] = installed_versions(python)
    stamp_path.write_text(json.dumps({**key, "info": info}, indent=2))
    return python, info


def installed_versions(python: Path) -> dict[str, str | None]:
    code = (
        "import json, importlib.metadata as m\n"
        f"names = {list(DISTRIBUTIONS.values())!r}\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        return {}
    return dict(json.loads(proc.stdout))


def ext_suffix_mismatch(python: Path, so_dir: Path) -> str | None:
    """Say so when the venv's Python can't load the .so files built in *so_dir*."""
    proc = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    suffix = proc.stdout.strip()
    built = sorted({p.name.split(".", 1)[1] for p in so_dir.glob("*.so")})
    if not built:
        return f"no compiled modules in {so_dir}: run tools/rebuild.py"
    if suffix and f".{suffix.lstrip('.')}" not in {f".{b}" for b in built}:
        return (
            f"the bench venv's Python wants *{suffix}, {so_dir} has {', '.join(built)}; "
            f"this Python is {sysconfig.get_config_var('EXT_SUFFIX')}"
        )
    return None
