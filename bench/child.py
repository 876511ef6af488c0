"""Work the bench runs in a fresh process, so its memory is measured alone.

    python -m bench.child csv USERNAME          stream the releases history as CSV
    python -m bench.child audit-writer N START  append N audit events from START (epoch)
    python -m bench.child verify                 verify_audit over the whole chain

Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux folds the forking
    parent's high-water mark into ru_maxrss at exec, so a child of a bench that has just
    seeded a million rows would report the parent's peak."""
    return _status_mb("VmHWM")


def _rss_mb() -> float:
    """Its resident memory now."""
    return _status_mb("VmRSS")


def csv_export(username: str) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    before = _rss_mb()
    started = time.perf_counter()
    response = client.get("/history/?view=releases&format=csv")
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    return {
        "seconds": time.perf_counter() - started,
        "rows": lines - 1,
        "bytes": size,
        "rss_before_mb": before,
        "rss_peak_mb": _peak_mb(),
    }


def verify() -> dict:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    started = time.perf_counter()
    try:
        call_command("verify_audit", verbosity=0)
        intact = True
    except (CommandError, SystemExit):
        intact = False
    return {"seconds": time.perf_counter() - started, "intact": intact, "peak_mb": _peak_mb()}


def audit_writer(count: int, start: float) -> dict:
    from portal.audit.chain import Actor, audit_record

    actor = Actor.system("bench")
    audit_record(actor=actor, action="bench.warmup")  # connection and caches ready
    time.sleep(max(0.0, start - time.time()))
    latencies = []
    began = time.time()
    for n in range(count):
        t0 = time.perf_counter()
        audit_record(actor=actor, action="bench.write", after={"n": n, "pid": os.getpid()})
        latencies.append((time.perf_counter() - t0) * 1000)
    return {"latencies_ms": latencies, "began": began, "ended": time.time()}


def main() -> None:
    import django

    django.setup()
    mode, *args = sys.argv[1:]
    if mode == "csv":
        result = csv_export(args[0])
    elif mode == "verify":
        result = verify()
    elif mode == "audit-writer":
        result = audit_writer(int(args[0]), float(args[1]))
    else:
        sys.exit(f"unknown mode {mode!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
