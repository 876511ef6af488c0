"""Many releases at once, with real parts in their own processes, as production runs
them: the portal under uvicorn (asked over HTTP with a token), the Jenkins emulator (which
notifies the portal of each build's start and end, like Jenkins's Notification plugin) —
or the Drone emulator, with `backend="drone"`, which is polled — the worker pools of
docs/operations.md, real helm, and a local cluster whose controllers and kwok nodes roll
each release out to Beta.

It checks that every release ends, none is lost, no build or Helm revision is made twice,
and measures Slipway's own time at the three hand-offs: 201 answered → build trigger,
build end → `helm upgrade` start, and Kubernetes "available" (seen by a watch of this
process's own) → the deployment `succeeded`.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.request import Request, urlopen

from bench.measure import Figure
from tests.support.web import WebProcess, process_answering, process_stopped

# The production pools (Procfile, compose, chart; docs/operations.md): helm on processes,
# the queues that wait on Jenkins, Drone and the cluster on threads.
HELM_SLOTS = int(os.environ.get("BENCH_HELM_SLOTS", "2"))
NETWORK_THREADS = int(os.environ.get("BENCH_NETWORK_THREADS", "32"))
WORKER_ENV = {"SLIPWAY_WATCH_BUDGET_SECONDS": "20"}
# Drone cannot notify: its builds are polled, every half second here.
POLLED_ENV = {"SLIPWAY_POLL_SECONDS": "0.5"}


def _percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 3),
        "max_s": round(ordered[-1], 3),
    }


def _get(url: str, timeout: float = 10) -> dict:
    with urlopen(Request(url), timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def _post(url: str, body: dict, timeout: float = 10) -> dict:
    request = Request(url, data=json.dumps(body).encode(), method="POST",
                      headers={"Content-Type": "application/json"})  # fmt: skip
    with urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def _warm_up(helm: str, kubeconfig: Path) -> None:
    """What a cluster Slipway has deployed to before has already done: helm's discovery
    cache filled (~/.kube/cache) and the API server's OpenAPI document built (it builds it
    on the first request, seconds of CPU). One server-side dry run does both; without it
    the burst's first deployments pay for a cluster born a moment ago."""
    from tests.factories import DEMO_CHART

    subprocess.run(
        [helm, "upgrade", "warm-up", DEMO_CHART, "--install", "--dry-run=server",
         "--namespace", "warm-up", "--kubeconfig", str(kubeconfig),
         "--set", "image.repository=registry.local/demo/app",
         "--set", "image.digest=sha256:" + "0" * 64],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


class JenkinsProbe:
    """The Jenkins emulator in a process of its own (Jenkins is another machine; in this
    process it would wait on the GIL behind the bench's own threads): configures services
    for it and reads back when each release's build was triggered and ended."""

    label = "Jenkins"
    worker_env: dict = {}

    def __init__(self, names: list[str], root: Path, portal: WebProcess, tag: str) -> None:
        from devtools.services import free_port
        from tests.support.jenkins import USERS, job_config

        self.server_name = f"emulator-{tag}"
        jobs = [job_config(f"load/{n}", quiet_period_seconds=0.5, duration_seconds=2.0)
                for n in names]  # fmt: skip
        # A company's Jenkins has agents enough for a burst; its queue still holds the rest.
        config = root / "jenkins.json"
        config.write_text(json.dumps({"users": USERS, "jobs": jobs, "executors": 10}))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        self.secret = secrets.token_urlsafe(24)
        self.process = process_answering(
            [sys.executable, "-m", "devtools.jenkins_emulator", "--port", str(port),
             "--config", str(config),
             "--notify", f"{portal.url}/hooks/jenkins/{self.server_name}?token={self.secret}"],
            root / "jenkins.log",
            f"{self.url}_emulator/state",
        )  # fmt: skip

    def service_fields(self, name: str) -> dict:
        from portal.catalog.models import JenkinsServer
        from tests.support.jenkins import TOKEN

        server, _ = JenkinsServer.objects.get_or_create(
            name=self.server_name,
            defaults={"url": self.url, "username": "slipway", "api_token": TOKEN,
                      "notification_secret": self.secret},
        )  # fmt: skip
        return {"jenkins_server": server, "jenkins_job": f"load/{name}"}

    def builds(self) -> tuple[dict[int, float], dict[int, list[float | None]]]:
        """Per release id: when it was triggered, and when each of its builds ended."""
        state = _get(f"{self.url}_emulator/state")
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
        process_stopped(self.process)


class DroneProbe:
    """The Drone emulator in a process of its own, like Jenkins (Drone is another machine;
    here, polled 100 times a second by the network worker, it waited on the bench's GIL):
    its repositories set and its builds read back through its control API (its builds
    carry SLIPWAY_RELEASE). It is polled, never waited for."""

    label = "Drone"
    worker_env = POLLED_ENV

    def __init__(self, names: list[str], root: Path, portal: WebProcess, tag: str) -> None:
        from devtools.services import free_port

        self.server_name = f"emulator-{tag}"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = process_answering(
            [sys.executable, "-m", "devtools.drone_emulator", "--port", str(port),
             "--token", "bench-drone"],
            root / "drone.log",
            f"{self.url}/_emulator/builds",
        )  # fmt: skip
        steps = [
            {"name": "build", "seconds": 2.0, "lines": ["+ make image"]},
            {"name": "publish", "seconds": 0.2, "lines": ["SLIPWAY_IMAGE={image}@{digest}"]},
        ]
        for name in names:
            _post(f"{self.url}/_emulator/repos/load/{name}", {"steps": steps})

    def service_fields(self, name: str) -> dict:
        from portal.catalog.models import DroneServer

        server, _ = DroneServer.objects.get_or_create(
            name=self.server_name, defaults={"url": self.url, "token": "bench-drone"}
        )
        return {"build_backend": "drone", "drone_server": server,
                "drone_repository": f"load/{name}"}  # fmt: skip

    def builds(self) -> tuple[dict[int, float], dict[int, list[float | None]]]:
        triggered: dict[int, float] = {}
        ended: dict[int, list[float | None]] = {}
        for builds in _get(f"{self.url}/_emulator/builds").values():
            for build in builds:
                release = int(build["params"].get("SLIPWAY_RELEASE", 0))
                triggered.setdefault(release, build["emulator"]["created"])
                ended.setdefault(release, []).append(build["emulator"]["ends"])
        return triggered, ended

    def stop(self) -> None:
        process_stopped(self.process)


PROBES = {"jenkins": JenkinsProbe, "drone": DroneProbe}


class AvailableObserver:
    """An independent look at the cluster: one watch of the namespace's Deployments that
    notes when each first became available with its new template (every replica updated
    and available, the controller caught up) — the moment Slipway could call it done."""

    def __init__(self, kubeconfig_path: Path, namespace: str) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(str(kubeconfig_path))
        if api.configuration.verify_ssl is False:  # the local plane's kubeconfig: said once
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.apps = client.AppsV1Api(api)
        self.namespace = namespace
        self.available: dict[str, float] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True, name="observer")
        self._thread.start()

    @staticmethod
    def _done(item) -> bool:
        spec, status = item.spec, item.status
        wanted = spec.replicas if spec.replicas is not None else 1
        return (
            (status.observed_generation or 0) >= (item.metadata.generation or 0)
            and (status.updated_replicas or 0) == wanted
            and (status.available_replicas or 0) == wanted
            and (status.replicas or 0) == wanted
        )

    def _follow(self) -> None:
        from kubernetes import watch
        from kubernetes.client.rest import ApiException

        version = None
        while not self._stopping.is_set():
            stream = watch.Watch()
            try:
                since = {"resource_version": version} if version else {}
                for event in stream.stream(
                    self.apps.list_namespaced_deployment, self.namespace,
                    timeout_seconds=5, allow_watch_bookmarks=True, **since,
                ):  # fmt: skip
                    seen = time.time()
                    version = stream.resource_version or version
                    item = event["object"]
                    if event["type"] in ("ADDED", "MODIFIED") and self._done(item):
                        self.available.setdefault(item.metadata.name, seen)
                    if self._stopping.is_set():
                        break
            except ApiException as exc:
                if exc.status == 410:
                    version = None
                    continue
                time.sleep(0.2)
            except Exception:  # the cluster going away at the end
                time.sleep(0.2)
            finally:
                stream.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)


def run(
    count: int, redis_url: str, progress, timeout: float = 600.0, backend: str = "jenkins"
) -> list[Figure]:
    from django.conf import settings
    from django.db import connections
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
    from releases.models import Release, TargetRollout
    from slipway_cli.client import ApiError
    from slipway_cli.client import Client as ApiClient
    from tests.factories import DEMO_CHART, UserFactory
    from tests.support.worker import WorkerProcess

    helm = str(find(HELM))
    settings.SLIPWAY_HELM = helm
    # Each backend's run has its own names: several runs share the bench's database.
    # Each run has names of its own: runs share the bench's database (and --reuse runs
    # measure again over the last one's).
    tag = f"{backend}-{count}-{int(time.time()) % 100_000}"
    names = [f"{tag}-{n:03d}" for n in range(count)]
    root = Path(tempfile.mkdtemp(prefix="slipway-bench-kube-"))
    progress("starting the portal (uvicorn) and the local cluster (control plane + kwok nodes)")
    # Slipway's web process, as `make run` starts it (uvicorn, two workers here).
    portal = WebProcess(root / "portal.log", workers=2)
    probe = PROBES[backend](names, root, portal, tag)
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
            extra_env={**WORKER_ENV, **probe.worker_env, "SLIPWAY_HELM": helm},
        )
        for queues, pool, concurrency in (
            ("deploys,default", "prefork", HELM_SLOTS),
            ("builds,rollouts,notifications", "threads", NETWORK_THREADS),
        )
    ]
    for worker in workers:
        worker.start()
    observer = None
    try:
        for worker in workers:
            worker.wait_ready()
        cluster = Cluster.objects.create(
            slug=f"local-{tag}", name=f"local ({tag})", kubeconfig=plane.kubeconfig()
        )
        beta = Environment.objects.get(slug="beta")
        team = Team.objects.create(slug=f"load-{tag}", name=f"Load ({tag})")
        user = UserFactory(username=f"bench-ci-{tag}")
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
        connections.close_all()
        observer = AvailableObserver(plane.kubeconfig_path, "load")
        _warm_up(helm, plane.kubeconfig_path)

        accepted: dict[int, float] = {}

        def submit(name: str) -> tuple[int, float]:
            # As a script would, through the CLI's client: an Idempotency-Key per release,
            # and a 503 (the web's connections all busy) tried again with backoff.
            client = ApiClient(portal.url, token, timeout=60)
            sent = time.time()
            try:
                body = client.post(
                    f"/api/v1/services/{name}/releases/", {"ref": "main", "deploy_to": "beta"}
                )
            except ApiError as exc:
                raise SystemExit(f"{name}: {exc}") from exc
            accepted[body["id"]] = time.time()
            return body["id"], sent

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
        releases = list(
            Release.objects.filter(pk__in=submitted)
            .select_related("service")
            .prefetch_related("deployments")
        )
        queued, per_release = probe.builds()
        k8s_config.load_kube_config(config_file=str(plane.kubeconfig_path))
        stored = k8s.CoreV1Api().list_namespaced_secret("load", label_selector="owner=helm")
        revisions: dict[str, int] = {}
        for secret in stored.items:
            name = secret.metadata.labels.get("name", "")
            revisions[name] = revisions.get(name, 0) + 1

        deployed = [
            r
            for r in releases
            if r.status == "built" and any(d.status == "succeeded" for d in r.deployments.all())
        ]
        to_trigger, accepted_to_trigger, to_upgrade, to_succeeded = [], [], [], []
        upgraded = {
            r.deployment.release_id: r.started_at
            for r in TargetRollout.objects.filter(
                deployment__release__in=releases, started_at__isnull=False
            ).select_related("deployment")
        }
        for release in releases:
            if release.pk in queued:
                to_trigger.append(queued[release.pk] - submitted[release.pk])
                accepted_to_trigger.append(queued[release.pk] - accepted[release.pk])
            made = per_release.get(release.pk, [])
            # The upgrade step's start (its rollout's), not the deployment's checks before it.
            if made and made[0] and upgraded.get(release.pk):
                to_upgrade.append(upgraded[release.pk].timestamp() - made[0])
            deployment = next(iter(release.deployments.all()), None)
            available = observer.available.get(release.service.slug)
            if deployment and deployment.status == "succeeded" and available:
                to_succeeded.append(deployment.finished_at.timestamp() - available)
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
            Figure(
                f"{count} concurrent releases ({probe.label}): Kubernetes available → succeeded",
                [v * 1000 for v in to_succeeded],
                extra={**_percentiles(to_succeeded), "observed": len(to_succeeded)},
                goal="p95 ≤ 1 s",
            ),
        ]
    finally:
        if observer is not None:
            observer.stop()
        for worker in workers:
            worker.stop()
        plane.stop()
        probe.stop()
        portal.stop()
