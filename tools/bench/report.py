"""Ratios, geometric means, target checks and the text tables of a benchmark run.

Works on the plain dicts the orchestrator collects (the same ones that go
into the JSON file), so a saved JSON can be printed again:
``python tools/bench.py --show bench-results/latest.json``.
"""

from __future__ import annotations

import math
from typing import Any

BASELINE = "asyncpg"


def _key(r: dict[str, Any]) -> tuple[str, str, int]:
    return (r["workload"], r["loop"], r["concurrency"])


def add_ratios(results: list[dict[str, Any]]) -> None:
    """Give each ok result its ratios to asyncpg's result on the same row of the matrix.

    ``qps_ratio`` > 1 and ``cpu_ratio``/``p50_ratio``/``p99_ratio`` < 1 are better.
    """
    base = {_key(r): r for r in results if r["client"] == BASELINE and r["status"] == "ok"}
    for r in results:
        b = base.get(_key(r))
        if r["status"] != "ok" or b is None:
            continue
        r["qps_ratio"] = r["qps"] / b["qps"]
        r["rows_per_s_ratio"] = r["qps_ratio"]
        r["cpu_ratio"] = r["cpu_us_per_query"] / b["cpu_us_per_query"]
        r["p50_ratio"] = r["p50_us"] / b["p50_us"]
        r["p99_ratio"] = r["p99_us"] / b["p99_us"]


def geomean(values: list[float]) -> float | None:
    values = [v for v in values if v > 0 and math.isfinite(v)]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def geomeans(results: list[dict[str, Any]], clients: list[str]) -> dict[str, Any]:
    """Per client: geometric mean of its ratios to asyncpg over the rows both ran."""
    out: dict[str, Any] = {}
    for c in clients:
        rows = [r for r in results if r["client"] == c and "qps_ratio" in r]
        out[c] = {
            "qps_ratio": geomean([r["qps_ratio"] for r in rows]),
            "cpu_ratio": geomean([r["cpu_ratio"] for r in rows]),
            "p99_ratio": geomean([r["p99_ratio"] for r in rows]),
            "rows_compared": len(rows),
            "errors": sum(1 for r in results if r["client"] == c and r["status"] == "error"),
        }
    return out


# Student's t, two-sided 95 %, by degrees of freedom (the paired intervals below).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365,
         8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145,
         15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086}


def versus_best_peer(
    row: dict[str, dict[str, Any]], ours: str = "pg_client"
) -> dict[str, Any] | None:
    """*ours* against the fastest peer of one row of the matrix (None: nothing to compare).

    ``ratio`` is the ratio of the two medians (what the tables show).
    ``low``/``high`` bound the 95 % interval of the mean per-round ratio:
    round i of every client ran back to back, so the two segment lists pair
    up and a slow spell of the machine that hit round i hits both; the
    interval is Student's t on the logs of the paired ratios. ``verdict``:
    "above" (ratio >= 1), "noise" (below, but the interval reaches 1: the
    run cannot tell the two apart), "below" (the interval is below 1).
    """
    mine = row.get(ours)
    peers = [(r["qps"], c) for c, r in row.items() if c != ours and r["status"] == "ok"]
    if not peers:
        return None
    best_qps, best = max(peers)
    out: dict[str, Any] = {"peer": best, "ratio": None, "low": None, "high": None,
                           "verdict": "below"}
    if not mine or mine["status"] != "ok":
        return out
    out["ratio"] = mine["qps"] / best_qps
    a, b = mine.get("qps_segments") or [], row[best].get("qps_segments") or []
    paired = len(a) == len(b)
    logs = [math.log(x / y) for x, y in zip(a, b, strict=False) if x > 0 and y > 0]
    if paired and len(logs) >= 3:
        n = len(logs)
        mean = sum(logs) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
        half = _T975.get(n - 1, 1.96) * sd / math.sqrt(n)
        out["low"], out["high"] = math.exp(mean - half), math.exp(mean + half)
    if out["ratio"] >= 1:
        out["verdict"] = "above"
    elif out["high"] is not None and out["high"] >= 1:
        out["verdict"] = "noise"
    return out


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for pg_client, each with what this run measured."""
    results = data["results"]
    ours = "pg_client"
    out: list[dict[str, Any]] = []
    gm = data["geomean"].get(ours, {})

    def add(name: str, value: str, ok: bool | None) -> None:
        out.append({"target": name, "measured": value, "met": ok})

    # Every workload at/above the best peer.
    by_key: dict[tuple[str, str, int], dict[str, dict[str, Any]]] = {}
    for r in results:
        by_key.setdefault(_key(r), {})[r["client"]] = r
    total = 0
    verdicts: dict[str, list[str]] = {"above": [], "noise": [], "below": []}
    for key, row in by_key.items():
        vs = versus_best_peer(row, ours)
        if vs is None:
            continue
        total += 1
        mine = row.get(ours)
        if mine is not None:
            mine["vs_best_peer"] = vs
        w, loop, conc = key
        where = f"{w} {loop} c={conc} vs {vs['peer']}"
        if vs["ratio"] is not None:
            where += f" {vs['ratio']:.3f}x"
        if vs["low"] is not None:
            where += f" [{vs['low']:.3f}, {vs['high']:.3f}]"
        verdicts[vs["verdict"]].append(where)
    measured = f"{len(verdicts['above'])} of {total} rows"
    if verdicts["noise"]:
        measured += (f"; {len(verdicts['noise'])} below by less than the run's noise "
                     f"(paired 95% interval reaches 1x): " + "; ".join(verdicts["noise"]))
    if verdicts["below"]:
        measured += f"; {len(verdicts['below'])} below: " + "; ".join(verdicts["below"])
    add(
        "every workload at/above the best peer (q/s)",
        measured,
        total > 0 and len(verdicts["above"]) == total,
    )
    q = gm.get("qps_ratio")
    add(
        "geomean q/s >= 1.3x asyncpg",
        f"{q:.2f}x over {gm.get('rows_compared', 0)} rows" if q else "no data",
        None if q is None else q >= 1.3,
    )
    cpu = geomean(
        [
            r["cpu_ratio"]
            for r in results
            if r["client"] == ours and r["workload"] == "one_plus_one" and "cpu_ratio" in r
        ]
    )
    add(
        "client CPU per SELECT 1+1 <= 60% of asyncpg's",
        f"{cpu:.0%} (geomean over loops/concurrency)" if cpu else "no data",
        None if cpu is None else cpu <= 0.60,
    )
    mem = {m["client"]: m for m in data.get("memory", []) if m["check"] == "fetch_memory"}
    if ours in mem and BASELINE in mem and all(mem[c]["status"] == "ok" for c in (ours, BASELINE)):
        a, b = mem[ours]["peak_rss_mb"], mem[BASELINE]["peak_rss_mb"]
        add(
            "peak memory fetching 1,000,000 rows <= asyncpg's",
            f"{a:.1f} MB vs {b:.1f} MB",
            a <= b,
        )
    else:
        add("peak memory fetching 1,000,000 rows <= asyncpg's", "no data", None)
    cur = sorted(
        (
            m
            for m in data.get("memory", [])
            if m["check"] == "cursor_memory" and m["client"] == ours
        ),
        key=lambda m: m["rows"],
    )
    if len(cur) >= 2 and all(m["status"] == "ok" for m in cur):
        small, big = cur[0], cur[-1]
        grew = big["growth_mb"] - small["growth_mb"]
        add(
            f"cursor over {big['rows']:,} rows in constant memory",
            f"growth {small['growth_mb']:.1f} MB at {small['rows']:,} rows, "
            f"{big['growth_mb']:.1f} MB at {big['rows']:,}",
            grew <= max(5.0, 0.1 * max(small["growth_mb"], 1.0)),
        )
    else:
        add("cursor in constant memory", "not run (full mode only)" if not cur else "error", None)
    return out


# --------------------------------------------------------------------------
# Text tables


def _num(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    if r["status"] == "ok":
        return ""
    return {"error": "ERROR", "n/a": "n/a", "missing": "missing"}.get(r["status"], r["status"])


def _table(header: list[str], rows: list[list[str]], right_from: int) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: list[str]) -> str:
        parts = [
            c.rjust(widths[i]) if i >= right_from else c.ljust(widths[i])
            for i, c in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def render(data: dict[str, Any]) -> str:
    clients: list[str] = data["meta"]["clients_run"]
    results = data["results"]
    index = {(*_key(r), r["client"]): r for r in results}
    keys: list[tuple[str, str, int]] = []
    for r in results:
        if _key(r) not in keys:
            keys.append(_key(r))
    pgb = {(p["workload"], p["concurrency"]): p for p in data.get("pgbench", [])}
    out: list[str] = []
    meta = data["meta"]
    out.append(
        f"pg_client benchmark, {meta['mode']} mode, {meta['timestamp']}: "
        f"PostgreSQL {meta['server']['version']} over {meta['transport']}; "
        f"each client {meta.get('rounds', 1)} x {meta['duration_s']} s per row, in turns"
    )
    m = meta["machine"]
    out.append(
        f"machine: {m['cpu']} x{m['cores']}, {m['memory_gb']:.0f} GB, {m['os']}; "
        f"Python {m['python']}"
    )
    busy = m.get("busy_before")
    if busy is not None and busy > 0.1:
        out.append(
            f"WARNING: other processes used {busy:.0%} of the CPU just before the run "
            f"(load average after: {', '.join(f'{x:.1f}' for x in m.get('loadavg_after', []))}); "
            "expect noise"
        )
    vers = ", ".join(f"{c} {meta['client_versions'].get(c) or 'missing'}" for c in clients)
    out.append(f"clients: {vers}; uvloop {meta['client_versions'].get('uvloop') or 'missing'}")
    out.append("")

    # Throughput.
    header = ["workload", "loop", "conc", "rows/q"]
    header += [f"{c} q/s" + ("" if c == BASELINE else " (x asyncpg)") for c in clients]
    header.append("pgbench q/s")
    rows = []
    for k in keys:
        w, loop, conc = k
        any_ok = next(
            (index.get((*k, c)) for c in clients if index.get((*k, c), {}).get("status") == "ok"),
            None,
        )
        rpq = f"{any_ok['rows'] / any_ok['queries']:,.0f}" if any_ok else ""
        cells = [w, loop, str(conc), rpq]
        for c in clients:
            r = index.get((*k, c))
            text = _cell(r)
            if r is not None and r["status"] == "ok":
                text = _num(r["qps"])
                if c != BASELINE and "qps_ratio" in r:
                    text += f" ({r['qps_ratio']:.2f}x)"
            cells.append(text)
        p = pgb.get((w, conc))
        cells.append(_num(p["tps"]) if p and p["status"] == "ok" else (p["status"] if p else "-"))
        rows.append(cells)
    out.append("Throughput: queries/s (ratio to asyncpg in the same run; higher is better)")
    out.append(_table(header, rows, right_from=2))
    out.append("")

    # Latency and CPU.
    header = ["workload", "loop", "conc"]
    for c in clients:
        header += [f"{c} p50/p99 us", "CPU us/q" + ("" if c == BASELINE else " (x)")]
    rows = []
    for k in keys:
        w, loop, conc = k
        cells = [w, loop, str(conc)]
        for c in clients:
            r = index.get((*k, c))
            if r is not None and r["status"] == "ok":
                cells.append(f"{_num(r['p50_us'])}/{_num(r['p99_us'])}")
                cpu = _num(r["cpu_us_per_query"])
                if c != BASELINE and "cpu_ratio" in r:
                    cpu += f" ({r['cpu_ratio']:.2f}x)"
                cells.append(cpu)
            else:
                cells += [_cell(r), ""]
        rows.append(cells)
    out.append(
        "Latency per query (p50/p99, microseconds) and client CPU per query (lower is better)"
    )
    out.append(_table(header, rows, right_from=2))
    out.append("")

    # Geomean.
    gm = data["geomean"]
    out.append("Geometric mean of the ratios to asyncpg, over the rows both ran:")
    for c in clients:
        g = gm.get(c, {})
        if c == BASELINE:
            continue
        q, cpu = g.get("qps_ratio"), g.get("cpu_ratio")
        out.append(
            f"  {c:<10} q/s {q:.2f}x   CPU/query {cpu:.2f}x   ({g['rows_compared']} rows"
            f"{', ' + str(g['errors']) + ' errors' if g.get('errors') else ''})"
            if q and cpu
            else f"  {c:<10} no comparable rows ({g.get('errors', 0)} errors)"
        )
    out.append("")

    # Memory.
    mem = data.get("memory", [])
    if mem:
        out.append("Memory: peak RSS of the client process (growth over its RSS before the query)")
        checks: list[tuple[str, int]] = []
        for x in mem:
            if (x["check"], x["rows"]) not in checks:
                checks.append((x["check"], x["rows"]))
        mclients = [c for c in clients if any(x["client"] == c for x in mem)]
        header = ["check", *mclients]
        rows = []
        label = {
            "fetch_memory": "fetch {n:,} rows into a list",
            "cursor_memory": "cursor over {n:,} rows",
        }
        for check, n in checks:
            cells = [label[check].format(n=n)]
            for c in mclients:
                x = next(
                    (x for x in mem if (x["check"], x["rows"], x["client"]) == (check, n, c)), None
                )
                if x is None:
                    cells.append("-")
                elif x["status"] == "ok":
                    cells.append(
                        f"{x['peak_rss_mb']:.0f} MB (+{x['growth_mb']:.0f}) {x['seconds']:.1f}s"
                    )
                else:
                    cells.append(_cell(x))
            rows.append(cells)
        out.append(_table(header, rows, right_from=1))
        out.append("")

    # Targets.
    out.append("Targets for pg_client (issue #8):")
    for t in data.get("targets", []):
        mark = {True: "met ", False: "MISS", None: "  - "}[t["met"]]
        out.append(f"  [{mark}] {t['target']}: {t['measured']}")
    out.append("")

    # Errors.
    errors = [r for r in results + mem if r["status"] in ("error", "missing")]
    errors += [p for p in data.get("pgbench", []) if p["status"] == "error"]
    if errors:
        out.append("Errors:")
        seen: set[str] = set()
        for r in errors:
            what = r.get("client", "pgbench")
            where = r.get("workload") or f"{r['check']} {r['rows']:,}"
            msg = f"{r.get('stage', '')}: {r.get('error', '')}".strip(": ")
            line = f"  {what} {where}: {msg}"
            dedup = f"{what} {where} {msg}"
            if dedup in seen:
                continue
            seen.add(dedup)
            same = sum(
                1
                for x in errors
                if x.get("client", "pgbench") == what
                and (x.get("workload") or "") == (r.get("workload") or "")
                and x.get("error") == r.get("error")
            )
            out.append(line + (f"  [x{same}: all loops/concurrency]" if same > 1 else ""))
        out.append("")
    na = sorted(
        {
            f"{r['client']} {r['workload']}: {r.get('error', '')}"
            for r in results
            if r["status"] == "n/a"
        }
    )
    na += sorted(
        {
            f"pgbench {p['workload']}: {p.get('error', '')}"
            for p in data.get("pgbench", [])
            if p["status"] == "n/a"
        }
    )
    if na:
        out.append("Not applicable: " + "; ".join(na))
    return "\n".join(out)
