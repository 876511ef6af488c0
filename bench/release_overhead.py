"""How much time Slipway adds around Jenkins and Kubernetes, with real parts.

Runs N releases one after another through a real Celery worker, the Jenkins emulator
over HTTP (fixed quiet period and build duration) and, with --deploy, real helm against
a local cluster (real control plane, kwok nodes). Prints, per phase, what the release
took beyond what Jenkins/Kubernetes themselves took.

    make services && .venv/bin/python bench/release_overhead.py --releases 5 --deploy

It uses its own database (slipway_bench, recreated) and Redis database 14.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=5)
    parser.add_argument("--build-seconds", type=float, default=2.0)
    parser.add_argument("--quiet-seconds", type=float, default=0.5)
    parser.add_argument("--deploy", action="store_true", help="also deploy each to Beta")
    args = parser.parse_args()

    from devtools.services import read_env_file

    services = read_env_file()
    if not services:
        sys.exit("Run `make services` first.")
    base = services["DATABASE_URL"].rsplit("/", 1)[0]
    redis = urlunparse(urlparse(services["REDIS_URL"])._replace(path="/14"))
    subprocess.run(
        ["psql", f"{base}/postgres", "-qc", "DROP DATABASE IF EXISTS slipway_bench"], check=True
    )
    subprocess.run(["psql", f"{base}/postgres", "-qc", "CREATE DATABASE slipway_bench"], check=True)
    os.environ.update(
        DATABASE_URL=f"{base}/slipway_bench",
        REDIS_URL=redis,
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    env = {"SLIPWAY_POLL_SECONDS": "0.2", "SLIPWAY_WATCH_BUDGET_SECONDS": "20"}
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run(args, redis, env)


def run(args, redis: str, env: dict[str, str]) -> None:
    from releases.services import release_create

    from devtools.jenkins_emulator import JenkinsEmulator
    from portal.audit.chain import Actor
    from tests.factories import JenkinsServerFactory, UserFactory, service_path
    from tests.support.jenkins import TOKEN, USERS, job_config
    from tests.support.worker import WorkerProcess

    job = job_config(
        "demo/app",
        quiet_period_seconds=args.quiet_seconds,
        duration_seconds=args.build_seconds,
        log=[f"line {n}" for n in range(50)],
    )
    emulator = JenkinsEmulator({"users": USERS, "jobs": [job]}).start()
    plane = None
    kubeconfig = "unused"
    if args.deploy:
        from devtools.kube.controlplane import ControlPlane

        plane = ControlPlane(Path(tempfile.mkdtemp(prefix="slipway-bench-"))).start()
        kubeconfig = plane.kubeconfig()
    worker = WorkerProcess(
        database_url=os.environ["DATABASE_URL"],
        redis_url=redis,
        log_path=Path(tempfile.mkdtemp()) / "worker.log",
        extra_env=env,
    )
    worker.start()
    try:
        path = service_path(
            jenkins_server=JenkinsServerFactory(url=emulator.url, api_token=TOKEN),
            cluster={"kubeconfig": kubeconfig},
        )
        service, beta, user = path.service, path.beta, UserFactory(username="bench")
        figures: dict[str, list[float]] = {
            "request → build started": [],
            "build finished → release built": [],
            "built → deployed (helm, rollout)": [],
        }
        for n in range(args.releases):
            started = time.time()
            release = release_create(
                service=service,
                ref=f"v{n}",
                actor=Actor.for_user(user),
                user=user,
                deploy_to=beta if args.deploy else None,
            )
            while True:
                release.refresh_from_db()
                deployment = release.deployments.first()
                done = release.status in ("built", "failed") and (
                    not args.deploy or (deployment and deployment.finished_at)
                )
                if done or time.time() - started > 120:
                    break
                time.sleep(0.05)
            if release.status != "built":
                sys.exit(f"release {n} ended {release.status}: {release.status_reason}")
            build = emulator.control("GET", "state")["jobs"]["demo/app"]["builds"][-1]
            build_end = release.build_started_at.timestamp() + args.build_seconds
            figures["request → build started"].append(
                release.build_started_at.timestamp() - started - args.quiet_seconds
            )
            figures["build finished → release built"].append(
                release.finished_at.timestamp() - build_end
            )
            if args.deploy:
                # Helm and the cluster's own rollout (controllers, scheduler, kwok) included.
                figures["built → deployed (helm, rollout)"].append(
                    deployment.finished_at.timestamp() - release.finished_at.timestamp()
                )
            assert build["digest"] == release.image_digest
        print(
            f"{args.releases} releases; Jenkins quiet {args.quiet_seconds}s + build "
            f"{args.build_seconds}s{'; real helm and controllers' if args.deploy else ''}"
        )
        print("Slipway's own time (seconds), beyond Jenkins/Kubernetes:")
        for name, values in figures.items():
            if values:
                print(
                    f"  {name:32} median {statistics.median(values):6.2f}   "
                    f"min {min(values):6.2f}   max {max(values):6.2f}"
                )
    finally:
        worker.stop()
        emulator.stop()
        if plane:
            plane.stop()


if __name__ == "__main__":
    main()
