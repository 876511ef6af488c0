"""`make bench`: Slipway at a large company's scale, measured against the database's own
floor.

Seeds a separate database (slipway_bench, recreated each run) with 2,000 services × 3
environments (Prod on two clusters), 1,000,000 releases, 3,000,000 deployments and
5,000,000 chained audit events, then measures pages, API pages, export, audit writes and
verification, how fast a change reaches open pages in Chromium, and 50 concurrent
releases through the Jenkins emulator, real workers, helm and a local kube-apiserver.
Writes bench/results.json and bench/RESULTS.md, and the README's table.

    make bench                       # everything (about 16 minutes on 2 cores)
    .venv/bin/python -m bench --quick --no-releases   # a small smoke run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "slipway_bench"
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def _with_database(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def prepare_environment(reuse: bool = False) -> tuple[str, str]:
    """Point this process (and its children) at a fresh bench database (or, with
    `reuse`, the one the last run seeded) and Redis db 14."""
    sys.path.insert(0, str(ROOT))
    from devtools.services import read_env_file

    services = read_env_file()
    if not services.get("MIGRATION_DATABASE_URL"):
        sys.exit("Run `make services` first (it writes .local/services.env).")
    owner = services["MIGRATION_DATABASE_URL"]
    admin = _with_database(owner, "postgres")
    fresh = (f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", f"CREATE DATABASE {DATABASE}")
    for sql in () if reuse else fresh:
        subprocess.run(["psql", admin, "-qc", sql], check=True)
    redis = urlunparse(urlparse(services["REDIS_URL"])._replace(path="/14"))
    (ROOT / ".local" / "staticfiles").mkdir(parents=True, exist_ok=True)  # whitenoise's
    os.environ.update(
        services,
        DATABASE_URL=_with_database(services["DATABASE_URL"], DATABASE),
        MIGRATION_DATABASE_URL=_with_database(owner, DATABASE),
        REDIS_URL=redis,
        SLIPWAY_CACHE_PREFIX="slipway-bench",
        DJANGO_SETTINGS_MODULE="portal.settings",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        SLIPWAY_API_RATE="1000000/min",
        LOG_LEVEL="WARNING",
        SLIPWAY_LOG_FORMAT="console",
        DEBUG="0",
        # Pages are measured as the web serves them: with its pool of connections
        # (portal.asgi), not a connection opened and authenticated per request. Workers
        # started from here never inherit it (tests/support/worker.py).
        DATABASE_POOL_MAX_SIZE="10",
        # The Jenkins emulator and the kube-apiserver listen on loopback.
        SLIPWAY_EGRESS_ALLOW="127.0.0.1,localhost",
    )
    return os.environ["MIGRATION_DATABASE_URL"], redis


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small scale, for a smoke run")
    parser.add_argument("--repeat", type=int, default=15, help="runs per page figure")
    parser.add_argument("--concurrent", type=int, default=50, help="releases at once")
    parser.add_argument("--no-releases", action="store_true", help="skip the concurrent run")
    parser.add_argument(
        "--backends",
        default="jenkins,drone",
        help="build backends of the concurrent runs, comma-separated (jenkins, drone)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure again over the database the last full run seeded (after a fix): "
        "re-measured figures replace theirs in bench/results.json",
    )
    parser.add_argument(
        "--no-pages",
        action="store_true",
        help="with --reuse: only the concurrent runs (the pages' figures stand)",
    )
    args = parser.parse_args()
    if args.no_pages and not args.reuse:
        parser.error("--no-pages measures over the last seed: use it with --reuse")

    owner_url, redis = prepare_environment(reuse=args.reuse)
    import django

    django.setup()
    from django.core.management import call_command

    from bench import costs, pages, report
    from bench.measure import RawSQL
    from bench.seed import Scale, seed_history, seed_structure, world_from_database

    scale = Scale.quick() if args.quick else Scale()
    progress(f"migrating {DATABASE}")
    call_command("migrate", verbosity=0)
    figures = []
    raw = RawSQL(os.environ["DATABASE_URL"])
    if args.reuse:
        world = world_from_database()
        measured = pages.Pages(world, raw, args.repeat)
        counts = {"audit_events": raw.rows("SELECT count(*) FROM portal_auditevent")[0][0]}
        seeding = {}
    else:
        progress(f"seeding {scale.services} services × 3 environments (Prod on two clusters)")
        world = seed_structure(scale)
        measured = pages.Pages(world, raw, args.repeat)
        progress("measuring the dashboard and a service page with no history")
        figures.append(measured.dashboard("no history"))
        figures.append(measured.service_page("monolith", "no history"))

        seeded = time.monotonic()
        counts = seed_history(owner_url, world, scale, progress)
        seeding = {**counts, "seconds": round(time.monotonic() - seeded, 1)}
        progress(f"seeded in {seeding['seconds']} s: {counts}")

    if not args.no_pages:
        progress("measuring pages and API pages")
        history = f"{scale.releases:,} releases"
        figures.append(measured.dashboard(history))
        figures.append(measured.dashboard_search())
        monolith_releases = raw.rows(
            "SELECT count(*) FROM releases_release WHERE service_id = %s", (world.services[0],)
        )[0][0]
        figures.append(measured.service_page("monolith", f"{monolith_releases:,} releases"))
        figures.extend(measured.api_pages())
        figures.extend(measured.audit_pages())
        for figure in figures:
            print("  " + figure.line())

    # Export, audit writes and verify_audit do not read the pages' code: --reuse keeps them.
    if not args.reuse:
        progress("CSV export in a fresh process")
        figures.append(costs.csv_export(world.lead_username, raw))
        print("  " + figures[-1].line())
        progress("audit writes: 1 writer, then 8 at once")
        for figure in costs.audit_writes():
            figures.append(figure)
            print("  " + figure.line())
        progress(f"verify_audit over {counts['audit_events']:,} events")
        events = raw.rows("SELECT count(*) FROM portal_auditevent")[0][0]
        figures.append(costs.verify(events))
        print("  " + figures[-1].line())

    if not args.no_pages:
        from bench import live_pages

        progress("a change reaching open pages (Chromium, server-sent events)")
        figures.append(live_pages.run(progress))
        print("  " + figures[-1].line())

    if not args.no_releases:
        from bench import concurrent_releases

        for backend in args.backends.split(","):
            for figure in concurrent_releases.run(
                args.concurrent, redis, progress, backend=backend.strip()
            ):
                figures.append(figure)
                print("  " + figure.line())

    raw.close()
    data = report.write(
        figures,
        asdict(scale),
        time.monotonic() - STARTED,
        seeding,
        readme=not args.quick,
        merge=args.reuse,
    )
    progress(f"done in {data['bench_seconds']:.0f} s: bench/results.json, bench/RESULTS.md")


if __name__ == "__main__":
    main()
