"""Benchmark pg_client against asyncpg, psycopg 3 and psqlpy on one throwaway server.

Run it as ``hatch run bench`` (or ``python tools/bench.py`` after
``python tools/rebuild.py``)::

    hatch run bench -- --short                 # about a minute, for quick checks
    hatch run bench                            # everything, < 15 min on 2 cores
    hatch run bench -- --workloads one_plus_one,copy --clients pg_client,asyncpg

What one run does:

1. Makes (once) ``<repo>/.cache/bench-venv`` with the pinned peers and uvloop
   from ``tools/bench/requirements.txt`` (``tools/bench/peers.py``). Our four
   packages are not installed there: the worker gets a copy of their ``src``
   dirs on PYTHONPATH (``.cache/bench-src``: the ``.so`` files
   ``tools/rebuild.py`` built, and bytecode compiled as pip would).
2. Starts a throwaway server with ``tools/pgcluster.py`` (``--pg`` or
   ``PGTEST_PG`` picks the version) and creates the workloads' tables
   (``tools/bench/workloads.py``).
3. For every workload x loop x concurrency x client, starts one worker process
   (``tools/bench/worker.py``), which connects N times over TCP to 127.0.0.1
   without TLS, checks the result, warms up, and measures for a fixed time.
   Clients take turns on each row of the matrix, so a drift of the machine
   hits them alike. A worker that fails or hangs is reported, never fatal.
4. Runs ``pgbench`` (the C client, ``-M prepared``) on the same SQL, as the
   ceiling the server allows.
5. Memory checks: peak RSS of fetching 1,000,000 rows (every client); in full
   mode also a cursor over 1,000,000 and 10,000,000 rows (pg_client, asyncpg).
6. Prints the tables and writes ``bench-results/<timestamp>.json`` and
   ``bench-results/latest.json``.

docs/performance.rst says how to read the output.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS / "bench"))
sys.path.insert(0, str(TOOLS))

import peers  # noqa: E402
import report  # noqa: E402
import workloads as wl  # noqa: E402

import pgcluster  # noqa: E402

WORKER = TOOLS / "bench" / "worker.py"
SRC_DIRS = [REPO / "packages" / p / "src" for p in ("pg-codecs", "pg-wire", "pg-client", "pg-pool")]
CLIENTS = ["pg_client", "asyncpg", "psycopg", "psqlpy"]
#: Which requirement provides each peer (pg_client comes from the source tree).
CLIENT_DIST = {"asyncpg": "asyncpg", "psycopg": "psycopg-binary", "psqlpy": "psqlpy"}
LOOPS = ["asyncio", "uvloop"]

# duration: seconds of one measured segment; each client gets `rounds` segments
# per row of the matrix, taking turns with the others, each after `rewarm`
# seconds of unmeasured queries; warmup: once, after connecting.
# Full mode: 8 short segments rather than 4 long ones, for the same time
# measured: a median of 8 turns is not moved by a slow spell of the machine
# that happens to cover two of one client's four segments.
FULL = {
    "duration": 0.25, "rounds": 8, "warmup": 0.5, "rewarm": 0.1,
    "loops": LOOPS, "concurrency": [1, 10],
}  # fmt: skip
SHORT = {
    "duration": 0.15, "rounds": 3, "warmup": 0.15, "rewarm": 0.05,
    "loops": ["uvloop"], "concurrency": [1, 10],
}  # fmt: skip
#: pgbench in short mode: about this many seconds, counted in transactions.
SHORT_PGBENCH_S = 0.3
#: A worker that makes no progress for this long exits with a traceback (its
#: watchdog); the orchestrator gives up on it a little later.
SETUP_TIMEOUT = 45.0
SEGMENT_SLACK = 20.0
MEMORY_TIMEOUT = 240.0
MEMORY_ROWS = 1_000_000
CURSOR_ROWS = (1_000_000, 10_000_000)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark pg_client against asyncpg, psycopg 3 and psqlpy (issue #8).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: " + ", ".join(wl.WORKLOADS),
    )
    p.add_argument("--short", action="store_true", help="about a minute: one loop, short runs")
    p.add_argument("--clients", type=_csv, default=None, help=f"default: {','.join(CLIENTS)}")
    p.add_argument("--workloads", type=_csv, default=None, help="default: all")
    p.add_argument("--loops", type=_csv, default=None, help="asyncio,uvloop (short: uvloop)")
    p.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in _csv(s)],
        default=None,
        help="connections, each driven by its own task; default 1,10",
    )
    p.add_argument(
        "--duration", type=float, default=None, help="seconds per measured segment (full: 0.25)"
    )
    p.add_argument("--rounds", type=int, default=None, help="segments per client and row (full: 8)")
    p.add_argument("--warmup", type=float, default=None, help="seconds of warm-up after connecting")
    p.add_argument(
        "--pg", default=None, help="14..18, system, or a bin dir (default: $PGTEST_PG, else system)"
    )
    p.add_argument("--json", type=Path, default=None, help="write the JSON here instead")
    p.add_argument("--no-pgbench", action="store_true", help="skip the pgbench ceiling")
    p.add_argument("--no-memory", action="store_true", help="skip the memory checks")
    p.add_argument("--cursor", action="store_true", help="run the cursor check in short mode too")
    p.add_argument("--no-rebuild", action="store_true", help="don't run tools/rebuild.py first")
    p.add_argument("--show", type=Path, default=None, help="print the tables of a saved JSON")
    args = p.parse_args(argv)
    preset = SHORT if args.short else FULL
    args.mode = "short" if args.short else "full"
    args.clients = args.clients or CLIENTS
    args.workloads = args.workloads or list(wl.WORKLOADS)
    args.loops = args.loops or preset["loops"]
    args.concurrency = args.concurrency or preset["concurrency"]
    args.duration = args.duration if args.duration is not None else preset["duration"]
    args.warmup = args.warmup if args.warmup is not None else preset["warmup"]
    args.rounds = args.rounds if args.rounds is not None else preset["rounds"]
    args.rewarm = preset["rewarm"]
    for name, given, known in (
        ("client", args.clients, CLIENTS),
        ("workload", args.workloads, list(wl.WORKLOADS)),
        ("loop", args.loops, LOOPS),
    ):
        bad = [g for g in given if g not in known]
        if bad:
            p.error(f"unknown {name} {', '.join(bad)}; known: {', '.join(known)}")
    return args


# --------------------------------------------------------------------------
# Facts about the machine and the code


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {
        "cpu": re.sub(r"\s+", " ", cpu),
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def machine_busy(seconds: float = 1.0) -> float | None:
    """Fraction of the machine's CPU that others use while we sit idle (noise warning)."""
    b0, t0 = _cpu_times()
    time.sleep(seconds)
    b1, t1 = _cpu_times()
    return (b1 - b0) / (t1 - t0) if t1 > t0 else None


def git_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        try:
            return subprocess.run(
                ["git", *a], cwd=REPO, capture_output=True, text=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "packages_modified": bool(git("status", "--porcelain", "--", "packages")),
    }


# --------------------------------------------------------------------------
# Running things


#: Where stage_sources() puts the copy of our packages the workers import.
STAGED = REPO / ".cache" / "bench-src"
_worker_path: list[Path] = list(SRC_DIRS)


def stage_sources(python: Path) -> None:
    """Give the workers our packages as an install would: with bytecode.

    The peers come from wheels, whose modules pip byte-compiles at install
    time. Importing our src trees with PYTHONDONTWRITEBYTECODE would instead
    compile every module in every worker, which costs time and leaves the
    compiler's memory in the heap (about 3 MB of RSS in the memory checks).
    So the four src trees (with the extension modules rebuild() made) are
    copied to .cache/bench-src and byte-compiled there by the bench venv's
    interpreter; the source tree itself stays free of __pycache__.
    """
    global _worker_path
    if STAGED.exists():
        shutil.rmtree(STAGED)
    staged = []
    for src in SRC_DIRS:
        dest = STAGED / src.parent.name
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.c", "*.html"))
        staged.append(dest)
    subprocess.run([str(python), "-m", "compileall", "-q", *map(str, staged)], check=True,
                   stdout=subprocess.DEVNULL)
    _worker_path = staged


def worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = os.pathsep.join(str(s) for s in _worker_path)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the staged bytecode is already there
    return env


class WorkerProc:
    """One live worker process, spoken to with lines on its stdin and ``BENCH-*`` lines back."""

    def __init__(self, python: Path, cfg: dict[str, Any]) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [str(python), str(WORKER), json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=worker_env(),
            cwd=WORKER.parent,
        )
        self._buf = b""
        self.dead: dict[str, Any] | None = None

    def read(self, timeout: float) -> tuple[str, dict[str, Any]]:
        """The next ``BENCH-<TAG> {json}`` line as (TAG, payload); an error payload on failure."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text.startswith("BENCH-"):
                    tag, _, payload = text[len("BENCH-") :].partition(" ")
                    return tag, dict(json.loads(payload))
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return "RESULT", {
                    "status": "error",
                    "stage": "timeout",
                    "error": f"no answer after {timeout:.0f} s",
                }
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return "RESULT", self._crash()
                self._buf += chunk

    def _crash(self) -> dict[str, Any]:
        """What the dead worker's stderr says: a watchdog's traceback, or the last lines."""
        code = self.proc.wait()
        self.stderr.seek(0)
        err = self.stderr.read().decode(errors="replace")
        hung = re.search(r"Timeout \((\d+):(\d+):(\d+)(?:\.\d+)?\)!", err)
        if hung:
            h, m, s = (int(x) for x in hung.groups())
            frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', err[hung.end() :])
            where = ", ".join(f"{fn} ({Path(f).name}:{ln})" for f, ln, fn in frames[:3])
            return {
                "status": "error",
                "stage": "hang",
                "error": f"no progress for {h * 3600 + m * 60 + s} s, stuck in {where}",
            }
        tail = err.strip().splitlines()[-3:]
        return {
            "status": "error",
            "stage": "crash",
            "error": f"worker exited {code}: {' | '.join(tail)[-400:]}",
        }

    def send(self, line: str) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.kill()
        for f in (self.proc.stdin, self.proc.stdout, self.stderr):
            if f is not None:
                f.close()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from a client's segments: medians per segment, totals summed."""
    out: dict[str, Any] = {"status": "ok"}
    for k in ("qps", "rows_per_s", "p50_us", "p99_us", "cpu_us_per_query"):
        out[k] = _median([s[k] for s in segments])
    for k in ("queries", "rows", "seconds", "cpu_s"):
        out[k] = sum(s[k] for s in segments)
    out["qps_segments"] = [round(s["qps"], 2) for s in segments]
    med = out["qps"]
    out["qps_spread"] = (max(out["qps_segments"]) - min(out["qps_segments"])) / med if med else None
    return out


def run_row(
    python: Path, cfgs: dict[str, dict[str, Any]], args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Measure one row of the matrix: every client in *cfgs*, in turns.

    All workers start at once (imports, connections, the check and the
    warm-up overlap, since none of that is measured); then each round asks
    every live worker for one segment, one worker at a time, the order turned
    by one each round.
    """
    results: dict[str, dict[str, Any]] = {}
    workers = {c: WorkerProc(python, cfg) for c, cfg in cfgs.items()}
    try:
        live: list[str] = []
        for c, wp in workers.items():
            tag, payload = wp.read(timeout=args.warmup + SETUP_TIMEOUT + 15)
            if tag == "READY":
                live.append(c)
                results[c] = {"client_version": payload.get("client_version"), "segments": []}
            else:
                results[c] = payload
        seg_timeout = args.duration + args.rewarm + SEGMENT_SLACK + 15
        for rnd in range(args.rounds):
            order = live[rnd % len(live) :] + live[: rnd % len(live)] if live else []
            for c in order:
                if "segments" not in results[c]:
                    continue  # failed in an earlier round
                wp = workers[c]
                wp.send(f"run {args.duration} {args.rewarm}")
                tag, payload = wp.read(timeout=seg_timeout)
                if tag == "SEGMENT":
                    results[c]["segments"].append(payload)
                else:
                    version = results[c].get("client_version")
                    results[c] = {**payload, "client_version": version}
        for c in live:
            if "segments" not in results[c]:
                continue
            wp = workers[c]
            wp.send("quit")
            tag, payload = wp.read(timeout=30)
            segments = results[c].pop("segments")
            results[c].update(summarize(segments))
            if tag == "DONE":
                results[c]["rows_all_phases"] = payload.get("rows_all_phases")
            else:
                results[c].update(payload)
    finally:
        for wp in workers.values():
            wp.close()
    return results


def run_once(python: Path, cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    """A one-shot worker (the memory checks): its single ``BENCH-RESULT``."""
    wp = WorkerProc(python, cfg)
    try:
        _, payload = wp.read(timeout)
        return payload
    finally:
        wp.close()


def _pgbench_length(
    args: argparse.Namespace, results: list[dict[str, Any]], workload: str, conc: int
) -> list[str]:
    """``-T <s>`` as long as one client's measured time; in short mode a count (-T is >= 1 s)."""
    if args.mode == "short":
        rates = [
            r["qps"] for r in results
            if (r["workload"], r["concurrency"], r["status"]) == (workload, conc, "ok")
        ]  # fmt: skip
        if rates:
            per_client = max(1, math.ceil(max(rates) * SHORT_PGBENCH_S / conc))
            return ["-t", str(per_client)]
    return ["-T", str(max(1, round(args.duration * args.rounds)))]


def run_pgbench(
    cluster: pgcluster.Cluster, w: wl.Workload, conc: int, length: list[str], tmp: Path
) -> dict[str, Any]:
    out: dict[str, Any] = {"workload": w.name, "concurrency": conc, "length": " ".join(length)}
    if not w.pgbench_script:
        return {**out, "status": "n/a", "error": w.pgbench_note}
    pgbench = cluster.bin_dir / "pgbench" if cluster.bin_dir else None
    if pgbench is None or not os.access(pgbench, os.X_OK):
        found = shutil.which("pgbench")
        if not found:
            return {**out, "status": "n/a", "error": "no pgbench binary"}
        pgbench = Path(found)
    script = tmp / f"{w.name}.sql"
    script.write_text(w.pgbench_script)
    cmd = [
        str(pgbench), "-n", "-M", "prepared", *length, "-c", str(conc),
        "-j", str(min(conc, os.cpu_count() or 1)), "-f", str(script),
        "-h", "127.0.0.1", "-p", str(cluster.port), "-U", pgcluster.SUPERUSER, "postgres",
    ]  # fmt: skip
    env = {**os.environ, "PGSSLMODE": "disable"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        return {**out, "status": "error", "error": "pgbench timed out"}
    m = re.search(r"^tps = ([\d.]+)", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        err = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
        return {**out, "status": "error", "error": " | ".join(err)[-300:]}
    lat = re.search(r"^latency average = ([\d.]+) ms", proc.stdout, re.M)
    return {
        **out,
        "status": "ok",
        "tps": float(m.group(1)),
        "latency_avg_us": float(lat.group(1)) * 1000 if lat else None,
    }


def rebuild() -> None:
    log("bench: python tools/rebuild.py")
    try:
        proc = subprocess.run(
            [sys.executable, str(TOOLS / "rebuild.py")], capture_output=True, text=True, timeout=900
        )
    except (OSError, subprocess.SubprocessError) as e:
        log(f"bench: rebuild failed ({e}); pg_client may fail to import")
        return
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-800:]
        log(f"bench: rebuild failed; pg_client may fail to import:\n{tail}")


def _progress(i: int, n: int, what: str, r: dict[str, Any]) -> None:
    if r["status"] == "ok":
        text = (
            f"{r['qps']:>10,.1f} q/s  p50 {r['p50_us']:>9,.1f} us  "
            f"cpu {r['cpu_us_per_query']:>9,.1f} us/q"
        )
    else:
        text = f"{r['status']}: {r.get('stage', '')} {r.get('error', '')}"[:140]
    log(f"[{i:>3}/{n}] {what}  {text}")


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    if not args.no_rebuild:
        rebuild()
    python, venv_info = peers.ensure_venv(REPO)
    if python is None:
        raise SystemExit(f"bench: cannot make the bench venv: {venv_info.get('error')}")
    versions: dict[str, str | None] = dict(venv_info.get("versions", {}))
    missing = {c for c, dist in CLIENT_DIST.items() if not versions.get(dist)}
    problem = peers.ext_suffix_mismatch(python, SRC_DIRS[0] / "pg_codecs")
    if problem:
        log(f"bench: warning: {problem}")
    stage_sources(python)

    busy = machine_busy()
    if busy is not None and busy > 0.1:
        log(f"bench: warning: other processes use {busy:.0%} of the CPU; numbers will be noisy")
    args.busy_before = busy
    bin_dir = pgcluster.resolve_bindir(args.pg)
    cluster = pgcluster.Cluster(bin_dir)
    log(f"bench: starting PostgreSQL {cluster.version_string} from {bin_dir}")
    cluster.start()
    try:
        return _run_all(args, python, versions, missing, cluster, started)
    finally:
        cluster.stop()


def _run_all(
    args: argparse.Namespace,
    python: Path,
    versions: dict[str, str | None],
    missing: set[str],
    cluster: pgcluster.Cluster,
    started: float,
) -> dict[str, Any]:
    cluster.psql(wl.setup_sql(args.clients))
    expected = {name: w.expected_rows for name, w in wl.WORKLOADS.items()}
    for name, w in wl.WORKLOADS.items():
        if w.expected_rows is None and w.count_sql:
            expected[name] = int(cluster.psql(w.count_sql).strip())
    base_cfg = {
        "dsn": cluster.dsn(),
        "host": cluster.host,
        "port": cluster.port,
        "user": pgcluster.SUPERUSER,
        "database": "postgres",
    }

    results: list[dict[str, Any]] = []
    client_versions: dict[str, str | None] = {
        "uvloop": versions.get("uvloop"),
        "asyncpg": versions.get("asyncpg"),
        "psycopg": versions.get("psycopg"),
        "psqlpy": versions.get("psqlpy"),
    }
    marks = [time.monotonic()]  # the setup is done
    rows = [
        (w, loop, conc) for w in args.workloads for loop in args.loops for conc in args.concurrency
    ]
    for i, (name, loop, conc) in enumerate(rows, 1):
        w = wl.WORKLOADS[name]
        row_results: dict[str, dict[str, Any]] = {}
        cfgs: dict[str, dict[str, Any]] = {}
        for client in args.clients:
            if client in missing:
                row_results[client] = {
                    "status": "missing",
                    "error": f"{CLIENT_DIST[client]} is not installed",
                }
            elif loop == "uvloop" and not versions.get("uvloop"):
                row_results[client] = {"status": "missing", "error": "uvloop is not installed"}
            else:
                table = wl.client_table(w, client) if w.truncate else ""
                if table:
                    cluster.psql(f"TRUNCATE {table}")
                cfgs[client] = {
                    **base_cfg,
                    "mode": "throughput",
                    "client": client,
                    "workload": name,
                    "table": table,
                    "loop": loop,
                    "concurrency": conc,
                    "warmup": args.warmup,
                    "expected_rows": expected[name],
                    "setup_timeout": args.warmup + SETUP_TIMEOUT,
                    "segment_timeout": SEGMENT_SLACK,
                }
        t_row = time.monotonic()
        row_results.update(run_row(python, cfgs, args))
        row_wall = round(time.monotonic() - t_row, 2)
        for client in args.clients:
            r: dict[str, Any] = {
                "workload": name,
                "loop": loop,
                "concurrency": conc,
                "client": client,
                **row_results[client],
                "row_wall_s": row_wall,
            }
            if r["status"] == "ok" and w.truncate:
                # Everything the worker says it inserted must be in its table.
                table = wl.client_table(w, client)
                have = int(cluster.psql(f"SELECT count(*) FROM {table}").strip())
                if have != r.get("rows_all_phases"):
                    r.update(
                        status="error",
                        stage="verify",
                        error=f"{have} rows in {table}, the client reported "
                        f"{r.get('rows_all_phases')}",
                    )
            if r.get("client_version") and client in ("pg_client", "psycopg"):
                # pg_client's comes from the source tree; psycopg's says which implementation.
                client_versions[client] = r["client_version"]
            results.append(r)
            _progress(i, len(rows), f"{name:<15} {loop:<7} c={conc:<2} {client:<9}", r)

    marks.append(time.monotonic())  # the matrix is done
    pgbench: list[dict[str, Any]] = []
    if not args.no_pgbench:
        with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
            for name in args.workloads:
                w = wl.WORKLOADS[name]
                for conc in args.concurrency:
                    if w.truncate:
                        cluster.psql(f"TRUNCATE {w.table}")
                    p = run_pgbench(
                        cluster, w, conc, _pgbench_length(args, results, name, conc), Path(tmp)
                    )
                    n_rows = expected[name]
                    if p["status"] == "ok" and n_rows:
                        p["rows_per_s"] = p["tps"] * n_rows
                    pgbench.append(p)
                    if p["status"] != "n/a":
                        text = f"{p['tps']:,.1f} q/s" if p["status"] == "ok" else p.get("error")
                        log(f"[pgbench] {name:<15} c={conc:<2} {text}")

    marks.append(time.monotonic())  # pgbench is done
    memory: list[dict[str, Any]] = []
    if not args.no_memory:
        checks = [("fetch_memory", MEMORY_ROWS, c) for c in args.clients]
        if args.mode == "full" or args.cursor:
            checks += [
                ("cursor_memory", n, c)
                for n in CURSOR_ROWS
                for c in args.clients
                if c in ("pg_client", "asyncpg")
            ]
        for check, n, client in checks:
            m: dict[str, Any] = {"check": check, "rows": n, "client": client, "loop": "asyncio"}
            if client in missing:
                m.update(status="missing", error=f"{CLIENT_DIST[client]} is not installed")
            else:
                cfg = {
                    **base_cfg,
                    "mode": check,
                    "client": client,
                    "rows": n,
                    "loop": "asyncio",
                    "timeout": MEMORY_TIMEOUT,
                }
                m.update(run_once(python, cfg, timeout=MEMORY_TIMEOUT + 20))
            memory.append(m)
            text = (
                f"peak {m['peak_rss_mb']:.0f} MB (+{m['growth_mb']:.0f} MB) in {m['seconds']:.1f} s"
                if m["status"] == "ok"
                else f"{m['status']}: {m.get('error')}"
            )
            log(f"[memory] {check} {n:,} {client:<9} {text}")

    marks.append(time.monotonic())  # the memory checks are done
    report.add_ratios(results)
    data: dict[str, Any] = {
        "meta": {
            "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "mode": args.mode,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "rewarm_s": args.rewarm,
            "warmup_s": args.warmup,
            "loops": args.loops,
            "concurrency": args.concurrency,
            "clients_run": args.clients,
            "workloads_run": args.workloads,
            "transport": "TCP 127.0.0.1, no TLS",
            "server": {"version": cluster.version_string, "bin_dir": str(cluster.bin_dir)},
            "machine": {
                **machine(),
                "busy_before": args.busy_before,
                "loadavg_after": os.getloadavg(),
            },
            "git": git_state(),
            "client_versions": client_versions,
            "pins": peers._requirements(),
            "workloads": {
                n: {"description": w.description, "sql": w.sql, "rows_per_query": expected[n]}
                for n, w in wl.WORKLOADS.items()
                if n in args.workloads
            },
        },
        "results": results,
        "pgbench": pgbench,
        "memory": memory,
    }
    data["geomean"] = report.geomeans(results, args.clients)
    data["targets"] = report.targets(data)
    data["meta"]["wall_s"] = round(time.monotonic() - started, 1)
    # Seconds per phase; "setup" is the rebuild, the venv, the server and its tables.
    names = ("setup_s", "matrix_s", "pgbench_s", "memory_s")
    data["meta"]["phases"] = {
        name: round(end - start, 1)
        for name, start, end in zip(names, [started, *marks[:-1]], marks, strict=True)
    }
    return data


def write_json(data: dict[str, Any], path: Path | None) -> list[Path]:
    text = json.dumps(data, indent=1, sort_keys=False) + "\n"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return [path]
    folder = REPO / "bench-results"
    folder.mkdir(exist_ok=True)
    stamp = data["meta"]["timestamp"].replace(":", "").replace("-", "")
    paths = [folder / f"{stamp}-{data['meta']['mode']}.json", folder / "latest.json"]
    for p in paths:
        p.write_text(text)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show is not None:
        saved = json.loads(args.show.read_text())
        # Checked again: a JSON of an older run gets the current criteria.
        saved["targets"] = report.targets(saved)
        print(report.render(saved))
        return 0
    try:
        data = benchmark(args)
    except pgcluster.PgClusterError as e:
        log(f"bench: {e}")
        return 1
    print(report.render(data))
    paths = write_json(data, args.json)
    print(
        f"\nJSON: {', '.join(str(p) for p in paths)}   (wall time {data['meta']['wall_s']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
