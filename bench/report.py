"""bench/results.json, bench/RESULTS.md, and the table in the README."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import Figure

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def machine() -> dict:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found.group(1).strip() if found else ""
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        found = re.search(r"MemTotal:\s*(\d+)", meminfo.read_text())
        memory = f"{int(found.group(1)) / 1024 / 1024:.0f} GiB" if found else ""
    postgres = ""
    with contextlib.suppress(OSError):
        postgres = subprocess.run(
            ["psql", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": postgres,
    }


def _cell(figure: dict) -> str:
    return (
        f"{figure['median_ms']:.1f} ms"
        if figure["median_ms"] < 10_000
        else (f"{figure['median_ms'] / 1000:.1f} s")
    )


def _detail(figure: dict) -> str:
    skip = {"name", "min_ms", "median_ms", "max_ms", "runs", "queries", "raw_sql_median_ms",
            "ratio", "goal", "not_done"}  # fmt: skip
    parts = [f"{k.replace('_', ' ')} {v}" for k, v in figure.items() if k not in skip]
    return ", ".join(parts)


def table(figures: list[dict]) -> str:
    lines = [
        "| measured | median (min–max) | queries | raw SQL | ratio | goal | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        raw = f"{f['raw_sql_median_ms']:.2f} ms" if "raw_sql_median_ms" in f else ""
        ratio = f"×{f['ratio']}" if "ratio" in f else ""
        low, high = f["min_ms"], f["max_ms"]
        span = (
            f"{_cell(f)} ({low:.0f}–{high:.0f})"
            if f["median_ms"] < 10_000
            else f"{_cell(f)} ({low / 1000:.1f}–{high / 1000:.1f})"
        )
        lines.append(
            f"| {f['name']} | {span} | {f.get('queries', '')} | {raw} | {ratio} | "
            f"{f.get('goal', '')} | {_detail(f)} |"
        )
    return "\n".join(lines)


def write(
    figures: list[Figure],
    scale: dict,
    seconds: float,
    seeding: dict,
    *,
    readme: bool = True,
    merge: bool = False,
) -> dict:
    data = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "scale": scale,
        "seeding": seeding,
        "bench_seconds": round(seconds, 1),
        "figures": [f.as_dict() for f in figures],
    }
    if merge:
        # `--reuse`: the figures measured again replace theirs; the rest stand as the full
        # run measured them (its time and seeding too).
        earlier = json.loads((ROOT / "bench" / "results.json").read_text())
        again = {f["name"]: f for f in data["figures"]}
        names = [f["name"] for f in earlier["figures"]]
        merged = [again.get(f["name"], f) for f in earlier["figures"]]
        merged += [f for f in data["figures"] if f["name"] not in names]
        data = {**earlier, "figures": merged, "remeasured": {"when": data["when"],
                "figures": sorted(again)}}  # fmt: skip
    (ROOT / "bench" / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    m = data["machine"]
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"`make bench`, {data['when']}, in {data['bench_seconds']:.0f} s. Machine: "
            f"{m['cpu']}, {m['cores']} cores, {m['memory']}; {m['postgresql']}; "
            f"Python {m['python']}."
            + (
                f" Measured again over the same seed on {data['remeasured']['when']} "
                "(`--reuse`, after a fix): " + "; ".join(data["remeasured"]["figures"]) + "."
                if data.get("remeasured")
                else ""
            ),
            "",
            f"Scale: {scale['services']:,} services × 3 environments (Prod on two clusters), "
            f"{scale['releases']:,} releases, {scale['deployments']:,} deployments, "
            f"{scale['audit_events']:,} audit events"
            f" (seeded in {data['seeding'].get('seconds', 0):.0f} s).",
            "",
            "Each page or API figure is the median of repeated runs through Django's test "
            "client as a lead of every team, with the web's pool of database connections, "
            "beside the raw SQL (psycopg, no ORM, same role, one connection kept open) that "
            "returns the same rows, and their ratio.",
            "",
            table(data["figures"]),
            "",
        ]
    )
    (ROOT / "bench" / "RESULTS.md").write_text(text)
    # A smoke run (--quick) leaves the README's figures, which are the full run's.
    front = ROOT / "README.md"
    content = front.read_text()
    if readme and START in content and END in content:
        head, rest = content.split(START, 1)
        _, tail = rest.split(END, 1)
        block = (
            f"{START}\n_{data['when']}, {m['cores']} cores, {m['cpu']}; "
            f"{scale['services']:,} services × 3, {scale['releases']:,} releases, "
            f"{scale['deployments']:,} deployments, {scale['audit_events']:,} audit events._\n\n"
            f"{table(data['figures'])}\n{END}"
        )
        front.write_text(head + block + tail)
    return data
