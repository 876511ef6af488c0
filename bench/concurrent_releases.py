"""Many releases at once, with real parts: each is built by the Jenkins emulator (over
HTTP, through python-jenkins) — or the Drone emulator, with `backend="drone"` — and
deployed to Beta by a real Celery worker with real helm against a local cluster whose
controllers and kwok nodes roll them out.

It checks that every release ends, none is lost, no build or Helm revision is made twice,
and measures Slipway's own time at the two hand-offs: request → build trigger, and build
end → helm upgrade start.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.measure import Figure

# The production pools (Procfile, compose, chart; docs/operations.md): helm on processes,
# the queues that wait on Jenkins, Drone and the cluster on threads.
HELM_SLOTS = int(os.environ.get("BENCH_HELM_SLOTS", "2"))
NETWORK_THREADS = int(os.environ.get("BENCH_NETWORK_THREADS", "32"))
WORKER_ENV = {
    "SLIPWAY_POLL_SECONDS": "0.5",
    "SLIPWAY_WATCH_BUDGET_SECONDS": "20",
}


def _percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 3),
        "max_s": round(ordered[-1], 3),
    }


class JenkinsProbe:
    """The Jenkins emulator: starts it, configures services for it, and reads back when
    each release's build was triggered and ended."""

    label = "Jenkins"

    def __init__(self, names: list[str]) -> None:
        from devtools.jenkins_emulator import JenkinsEmulator
        from tests.support.jenkins import USERS, job_config

        jobs = [job_config(f"load/{n}", quiet_period_seconds=0.5, duration_seconds=2.0)
                for n in names]  # fmt: skip
        # A company's Jenkins has agents enough for a burst; its queue still holds the rest.
        self.emulator = JenkinsEmulator({"users": USERS, "jobs": jobs, "executors": 10}).start()

    def service_fields(self, name: str) -> dict:
        from portal.catalog.models import JenkinsServer
        from tests.support.jenkins import TOKEN

        server, _ = JenkinsServer.objects.get_or_create(
            name="emulator",
            defaults={"url": self.emulator.url, "username": "slipway", "api_token": TOKEN},
        )
        return {"jenkins_server": server, "jenkins_job": f"load/{name}"}

    def builds(self) -> tuple[dict[int, float], dict[int, list[float | None]]]:
        """Per release id: when it was triggered, and when each of its builds ended."""
        state = self.emulator.control("GET", "state")
        triggered = {int(i["parameters"].get("SLIPWAY_RELEASE_ID", 0)): i["queued"]
                     for i in state["queue"]}  # fmt: skip
        ended: dict[int, list[float | None]] = {}
        for job in state["jobs"].values():
            for build in job["builds"]:
                ended.setdefault(int(build["parameters"]["SLIPWAY_RELEASE_ID"]), []).append(
                    build["finished"]
                )
        return triggered, ended

    def stop(self) -> None:
        self.emulator.stop()


class DroneProbe:
    """The Drone emulator, read the same way (its builds carry SLIPWAY_RELEASE)."""

    label = "Drone"

    def __init__(self, names: list[str]) -> None:
        from devtools.drone_emulator import serve

        self.server, self.emulator = serve(token="bench-drone")
        for name in names:
            self.emulator.repos[f"load/{name}"] = {"steps": [
                {"name": "build", "seconds": 2.0, "lines": ["+ make image"]},
                {"name": "publish", "seconds": 0.2, "lines": ["SLIPWAY_IMAGE={image}@{digest}"]},
            ]}  # fmt: skip

    def service_fields(self, name: str) -> dict:
        from portal.catalog.models import DroneServer

        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        server, _ = DroneServer.objects.get_or_create(
            name="emulator", defaults={"url": url, "token": "bench-drone"}
        )
        return {"build_backend": "drone", "drone_server": server,
                "drone_repository": f"load/{name}"}  # fmt: skip

    def builds(self) -> tuple[dict[int, float], dict[int, list[float | None]]]:
        triggered: dict[int, float] = {}
        ended: dict[int, list[float | None]] = {}
        for builds in self.emulator.builds.values():
            for build in builds:
                release = int(build.params.get("SLIPWAY_RELEASE", 0))
                triggered.setdefault(release, build.created)
                ended.setdefault(release, []).append(build.step_windows()[-1][1])
        return triggered, ended

    def stop(self) -> None:
        self.server.shutdown()


PROBES = {"jenkins": JenkinsProbe, "drone": DroneProbe}


def run(
    count: int, redis_url: str, progress, timeout: float = 600.0, backend: str = "jenkins"
) -> list[Figure]:
    from django.conf import settings
    from django.db import connections
    from django.test import Client
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from clusters.models import Cluster
    from devtools.kube.binaries import HELM, find
    from devtools.kube.controlplane import ControlPlane
    from portal.access.choices import Role, TokenScope
    from portal.access.models import Membership, Team
    from portal.access.tokens import token_issue
    from portal.catalog.models import (
        ClusterEnvironment,
        DeploymentTarget,
        Environment,
        NamespaceGrant,
        Service,
    )
    from releases.models import Release
    from tests.factories import DEMO_CHART, UserFactory
    from tests.support.worker import WorkerProcess

    helm = str(find(HELM))
    settings.SLIPWAY_HELM = helm
    # Each backend's run has its own names: several runs share the bench's database.
    names = [f"{backend}-{n:02d}" for n in range(count)]
    probe = PROBES[backend](names)
    root = Path(tempfile.mkdtemp(prefix="slipway-bench-kube-"))
    progress("starting the local cluster (control plane + kwok nodes)")
    plane = ControlPlane(root).start()
    # As docs/operations.md sizes them: helm (deploys) on processes, the queues that wait
    # on Jenkins, Drone and the cluster (builds, rollouts, notifications) on threads.
    workers = [
        WorkerProcess(
            database_url=os.environ["DATABASE_URL"],
            redis_url=redis_url,
            log_path=root / f"worker-{queues.replace(',', '-')}.log",
            queues=queues,
            pool=pool,
            concurrency=concurrency,
            extra_env={**WORKER_ENV, "SLIPWAY_HELM": helm},
        )
        for queues, pool, concurrency in (
            ("deploys,default", "prefork", HELM_SLOTS),
            ("builds,rollouts,notifications", "threads", NETWORK_THREADS),
        )
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.wait_ready()
        cluster = Cluster.objects.create(
            slug=f"local-{backend}", name=f"local ({backend})", kubeconfig=plane.kubeconfig()
        )
        beta = Environment.objects.get(slug="beta")
        team = Team.objects.create(slug=f"load-{backend}", name=f"Load ({backend})")
        user = UserFactory(username=f"bench-ci-{backend}")
        Membership.objects.create(team=team, user=user, role=Role.DEVELOPER)
        services = Service.objects.bulk_create(
            Service(
                slug=name,
                name=name,
                team=team,
                **probe.service_fields(name),
                chart=DEMO_CHART,
                image_repository="registry.local/demo/app",
            )
            for name in names
        )
        DeploymentTarget.objects.bulk_create(
            DeploymentTarget(
                service=s,
                environment=beta,
                cluster=cluster,
                namespace="load",
                helm_release_name=s.slug,
            )
            for s in services
        )
        ClusterEnvironment.objects.create(cluster=cluster, environment=beta)
        NamespaceGrant.objects.create(cluster=cluster, team=team, pattern="load")
        token = token_issue(user=user, name="load", scopes=TokenScope.values)[1]

        accepted: dict[int, float] = {}

        def submit(name: str) -> tuple[int, float]:
            client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
            sent = time.time()
            response = client.post(
                f"/api/v1/services/{name}/releases/",
                {"ref": "main", "deploy_to": "beta"},
                content_type="application/json",
            )
            connections.close_all()
            if response.status_code != 201:
                raise SystemExit(f"{name}: HTTP {response.status_code} {response.content[:300]}")
            accepted[response.json()["id"]] = time.time()
            return response.json()["id"], sent

        progress(f"submitting {count} releases at once (build + Beta deploy each)")
        started = time.time()
        with ThreadPoolExecutor(max_workers=count) as pool:
            submitted = dict(pool.map(submit, names))
        deadline = time.time() + timeout
        while time.time() < deadline:
            releases = list(
                Release.objects.filter(pk__in=submitted).prefetch_related("deployments")
            )
            finished = [
                r
                for r in releases
                if r.status in ("failed", "cancelled")
                or (r.status == "built" and any(d.finished_at for d in r.deployments.all()))
            ]
            if len(finished) == count:
                break
            time.sleep(1)
        elapsed = time.time() - started
        releases = list(Release.objects.filter(pk__in=submitted).prefetch_related("deployments"))
        queued, per_release = probe.builds()
        k8s_config.load_kube_config(config_file=str(plane.kubeconfig_path))
        secrets = k8s.CoreV1Api().list_namespaced_secret("load", label_selector="owner=helm")
        revisions: dict[str, int] = {}
        for secret in secrets.items:
            name = secret.metadata.labels.get("name", "")
            revisions[name] = revisions.get(name, 0) + 1

        deployed = [
            r
            for r in releases
            if r.status == "built" and any(d.status == "succeeded" for d in r.deployments.all())
        ]
        to_trigger, accepted_to_trigger, to_upgrade = [], [], []
        for release in releases:
            if release.pk in queued:
                to_trigger.append(queued[release.pk] - submitted[release.pk])
                accepted_to_trigger.append(queued[release.pk] - accepted[release.pk])
            made = per_release.get(release.pk, [])
            deployment = next(iter(release.deployments.all()), None)
            if made and made[0] and deployment and deployment.started_at:
                to_upgrade.append(deployment.started_at.timestamp() - made[0])
        outcome = {
            "releases": count,
            "built_and_deployed": len(deployed),
            "lost": count - len(deployed),
            "duplicate_builds": sum(len(b) - 1 for b in per_release.values() if len(b) > 1),
            "duplicate_helm_revisions": sum(n - 1 for n in revisions.values() if n > 1),
            "seconds_for_all": round(elapsed, 1),
        }
        if outcome["lost"]:
            outcome["not_done"] = {
                r.pk: f"{r.status}: {r.status_reason[:120]}" for r in releases if r not in deployed
            }
        return [
            Figure(
                f"{count} concurrent releases: request → {probe.label} trigger",
                [v * 1000 for v in to_trigger],
                extra={**_percentiles(to_trigger), **outcome},
                goal="0 lost, 0 duplicated, p95 ≤ 1 s",
            ),
            Figure(
                f"{count} concurrent releases: 201 answered → {probe.label} trigger",
                [v * 1000 for v in accepted_to_trigger],
                extra=_percentiles(accepted_to_trigger),
                goal="p95 ≤ 1 s",
            ),
            Figure(
                f"{count} concurrent releases ({probe.label}): build end → helm upgrade start",
                [v * 1000 for v in to_upgrade],
                extra=_percentiles(to_upgrade),
                goal="p95 ≤ 1 s",
            ),
        ]
    finally:
        for worker in workers:
            worker.stop()
        plane.stop()
        probe.stop()
