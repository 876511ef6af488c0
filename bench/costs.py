"""What export, audit writes and verification cost: time, and memory of the process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import Figure, RawSQL, timings

ROOT = Path(__file__).resolve().parents[1]

CSV_SQL = """
COPY (
  SELECT r.id, s.slug, r.ref, r.status, r.image_digest, u.username, r.created_at,
         r.build_started_at, r.finished_at, r.build_number, left(r.status_reason, 500)
  FROM releases_release r
  JOIN portal_service s ON s.id = r.service_id
  LEFT JOIN auth_user u ON u.id = r.requested_by_id
  ORDER BY r.id DESC
) TO STDOUT WITH CSV HEADER
"""


def run_child(*args: str) -> tuple[dict | None, float, float, int]:
    """Run a command; return its JSON output (if any), wall seconds, peak RSS (MB), exit."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    result = None
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            result = json.loads(line)
            break
    if process.returncode != 0 and result is None:
        raise SystemExit(f"{' '.join(args)} failed ({process.returncode}):\n{text[-2000:]}")
    return result, wall, usage.ru_maxrss / 1024, process.returncode


def csv_export(username: str, raw: RawSQL, runs: int = 1) -> Figure:
    """A million rows, once: what is measured is that memory stays flat (and the time)."""
    times, growth, rows = [], [], 0
    for _ in range(runs):
        result, _, _, _ = run_child(sys.executable, "-m", "bench.child", "csv", username)
        times.append(result["seconds"] * 1000)
        growth.append(result["rss_peak_mb"] - result["rss_before_mb"])
        rows = result["rows"]

    def copy_out():
        with raw.connection.cursor() as cursor, cursor.copy(CSV_SQL) as copy:
            for _ in copy:
                pass

    return Figure(
        f"CSV export of {rows:,} release history rows",
        times,
        raw_ms=timings(copy_out, runs),
        extra={"rows": rows, "peak_memory_growth_mb": round(max(growth), 1)},
        goal="streams, < 100 MB peak growth",
    )


def audit_writes(single: int = 300, writers: int = 8, each: int = 100) -> list[Figure]:
    child = (sys.executable, "-m", "bench.child", "audit-writer")
    result, _, _, _ = run_child(*child, str(single), str(time.time()))
    one = Figure(
        "audit write per event, 1 writer",
        result["latencies_ms"],
        extra={"events": single},
        goal="≤ 2 ms",
    )
    start = time.time() + 4.0  # every writer set up and waiting before the first append
    with tempfile.TemporaryDirectory() as folder:
        processes = []
        for n in range(writers):
            path = Path(folder, f"{n}.json")
            with path.open("wb") as out:  # the child keeps its own descriptor
                command = [*child, str(each), str(start)]
                processes.append(
                    (subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out), path)
                )
        results = []
        for process, path in processes:
            process.wait()
            text = path.read_text()
            line = [x for x in text.splitlines() if x.startswith("{")]
            if process.returncode != 0 or not line:
                raise SystemExit(f"audit writer failed:\n{text[-2000:]}")
            results.append(json.loads(line[-1]))
    latencies = [value for r in results for value in r["latencies_ms"]]
    wall = max(r["ended"] for r in results) - min(r["began"] for r in results)
    many = Figure(
        f"audit write per event, {writers} concurrent writers",
        latencies,
        extra={
            "events": len(latencies),
            "events_per_second": round(len(latencies) / wall),
            "wall_ms_per_event": round(wall * 1000 / len(latencies), 2),
            "p95_ms": round(statistics.quantiles(latencies, n=20)[-1], 2),
        },
    )
    return [one, many]


def verify(events: int) -> Figure:
    result, _, _, _ = run_child(sys.executable, "-m", "bench.child", "verify")
    return Figure(
        f"verify_audit over {events:,} events",
        [result["seconds"] * 1000],
        extra={"peak_rss_mb": round(result["peak_mb"], 1), "intact": result["intact"]},
        goal="≤ 60 s",
    )
