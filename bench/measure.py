"""Timing helpers: repeated runs as min/median/max, query counts, and the raw SQL floor."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg


@dataclass
class Figure:
    """One measured thing: its times (ms), and optionally queries and the raw SQL floor."""

    name: str
    times_ms: list[float]
    queries: int | None = None
    raw_ms: list[float] | None = None
    extra: dict = field(default_factory=dict)
    goal: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def ratio(self) -> float | None:
        if not self.raw_ms:
            return None
        return self.median / max(statistics.median(self.raw_ms), 1e-6)

    def as_dict(self) -> dict:
        out = {
            "name": self.name,
            "min_ms": round(min(self.times_ms), 2),
            "median_ms": round(self.median, 2),
            "p95_ms": round(self.p95, 2),
            "max_ms": round(max(self.times_ms), 2),
            "runs": len(self.times_ms),
        }
        if self.queries is not None:
            out["queries"] = self.queries
        if self.raw_ms:
            out["raw_sql_median_ms"] = round(statistics.median(self.raw_ms), 3)
            out["ratio"] = round(self.ratio, 1)
        if self.goal:
            out["goal"] = self.goal
        out.update(self.extra)
        return out

    def line(self) -> str:
        text = (
            f"{self.name:58} median {self.median:8.1f} ms  p95 {self.p95:.1f} ms  "
            f"(min {min(self.times_ms):.1f}, max {max(self.times_ms):.1f})"
        )
        if self.queries is not None:
            text += f"  {self.queries} queries"
        if self.raw_ms:
            text += f"  raw SQL {statistics.median(self.raw_ms):.2f} ms  ×{self.ratio:.1f}"
        for key, value in self.extra.items():
            text += f"  {key}={value}"
        return text


def timings(run: Callable[[], object], repeat: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        run()
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        out.append((time.perf_counter() - started) * 1000)
    return out


def paired_timings(
    run: Callable[[], object], floor: Callable[[], object], repeat: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Timings of `run` and of its raw-SQL `floor`, taken in turns: on a shared machine the
    CPU's pace drifts from one second to the next, and two batches timed one after the
    other drifted apart (the same page measured ×8 and ×12 of its floor in two runs)."""
    for _ in range(warmup):
        run()
        floor()
    runs, floors = [], []
    for _ in range(repeat):
        for measured, out in ((run, runs), (floor, floors)):
            started = time.perf_counter()
            measured()
            out.append((time.perf_counter() - started) * 1000)
    return runs, floors


def count_queries(run: Callable[[], object]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run()
    return len(captured.captured_queries)


class RawSQL:
    """The same rows straight from PostgreSQL (psycopg, no ORM), as the app's role."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url, autocommit=True)

    def runner(self, sql: str, params: dict | tuple = ()) -> Callable[[], list]:
        def run() -> list:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

        return run

    def rows(self, sql: str, params: dict | tuple = ()) -> list:
        return self.runner(sql, params)()

    def explain(self, sql: str, params: dict | tuple = ()) -> str:
        with self.connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())

    def close(self) -> None:
        self.connection.close()
