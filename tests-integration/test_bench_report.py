"""The benchmark's verdict against the best peer (tools/bench/report.py).

No server: the report works on the dicts the benchmark collects.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools" / "bench"))
import report


def _row(ours: list[float], peer: list[float]) -> dict[str, dict[str, Any]]:
    def result(client: str, segments: list[float]) -> dict[str, Any]:
        ordered = sorted(segments)
        return {"client": client, "status": "ok", "qps": ordered[len(ordered) // 2],
                "qps_segments": segments}

    return {"pg_client": result("pg_client", ours), "psycopg": result("psycopg", peer),
            "asyncpg": result("asyncpg", [x * 0.5 for x in peer])}


def test_verdicts() -> None:
    above = report.versus_best_peer(_row([105, 104, 106, 105], [100, 100, 100, 100]))
    assert above is not None and above["peer"] == "psycopg"
    assert above["verdict"] == "above" and above["low"] > 1
    # Round 2 was slow for both: pairing keeps the interval narrow.
    below = report.versus_best_peer(_row([95, 48, 94, 96, 95], [100, 50, 100, 100, 100]))
    assert below is not None and below["verdict"] == "below" and below["high"] < 1
    noise = report.versus_best_peer(_row([99, 110, 90, 99], [100, 100, 100, 100]))
    assert noise is not None and noise["verdict"] == "noise"
    assert noise["low"] < 1 < noise["high"]
    # Unpaired segment lists: no interval, so below is below.
    short = report.versus_best_peer(_row([99, 99, 99], [100, 100, 100, 100]))
    assert short is not None and short["low"] is None and short["verdict"] == "below"


def test_target_counts_each_verdict() -> None:
    results = []
    for workload, ours in (("a", [105, 104, 106, 105]), ("b", [99, 110, 90, 99])):
        for r in _row(ours, [100, 100, 100, 100]).values():
            results.append({**r, "workload": workload, "loop": "uvloop", "concurrency": 1})
    data = {"results": results, "geomean": {}, "memory": []}
    first = report.targets(data)[0]
    assert first["met"] is False
    assert first["measured"].startswith("1 of 2 rows; 1 below by less than the run's noise")
    assert "b uvloop c=1 vs psycopg" in first["measured"]
    assert results[0]["vs_best_peer"]["verdict"] == "above"
