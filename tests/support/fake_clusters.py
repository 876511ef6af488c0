"""In-memory Helm, rollout watcher and clusters for the deploy steps' fast tests: the
rules, not the wire (the wire is covered against real helm and a real control plane)."""

from __future__ import annotations

from datetime import UTC, datetime

from clusters.helm import HelmRevision, Ownership, Recovery
from clusters.workloads import ContainerImage, PodImage, RolloutProgress, WorkloadProgress
from portal.catalog.targets import OWNER_LABEL
from releases.deploy_steps import deployment_step
from releases.transitions import Step

DIGEST = "sha256:" + "c" * 64


def _deployment_manifest(image: str) -> dict:
    return {
        "kind": "Deployment",
        "metadata": {"name": "app"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
    }


class FakeHelm:
    """Helm in memory; `render` places image.repository@image.digest like the demo chart,
    or, with `renders_tag`, repository:tag the way podinfo's chart does."""

    def __init__(self, history=None, renders_tag=None, owner=None):
        self.history = list(history or [])
        self.calls = []
        self.renders_tag = renders_tag
        self.owner = owner  # the owner label's value on the release

    def render(self, *, release, namespace, chart, values, version=None):
        image = values[-1]["image"]
        if self.renders_tag:
            return [_deployment_manifest(f"{image['repository']}:{self.renders_tag}")]
        return [_deployment_manifest(f"{image['repository']}@{image['digest']}")]

    def _rev(self, n, status="deployed", description=""):
        return HelmRevision(n, status, datetime.now(UTC), description)

    def current(self, release, namespace):
        return self.history[-1] if self.history else None

    def history_or_empty(self, release, namespace):
        return list(self.history)

    def history_as_listed(self, release, namespace):
        return None  # read the whole history (the real Helm's shortcut: test_deploy_step.py)

    def find_revision(self, release, namespace, marker, history=None):
        history = self.history if history is None else history
        return next((r for r in reversed(history) if marker in r.description), None)

    def ownership(self, release, namespace, *, label, owner):
        if not self.history:
            return Ownership.ABSENT
        if self.owner is None:
            return Ownership.UNOWNED
        return Ownership.OURS if self.owner == owner else Ownership.OTHER

    def upgrade(self, *, release, namespace, chart, values, description, version=None, labels=None):
        self.calls.append(("upgrade", values[-1]["image"]))
        self.owner = (labels or {}).get(OWNER_LABEL, self.owner)
        made = self._rev(len(self.history) + 1, description=description)
        self.history.append(made)
        return made

    def rollback(self, *, release, namespace, revision):
        self.calls.append(("rollback", revision))
        made = self._rev(len(self.history) + 1)
        self.history.append(made)
        return made

    def recover_stuck(self, *, release, namespace, older_than, history=None):
        history = self.history if history is None else history
        latest = history[-1] if history else None
        stuck = latest and datetime.now(UTC) - latest.updated >= older_than
        if stuck and latest.status.startswith("pending-"):
            self.calls.append(("recover", latest.revision))
            return Recovery("rolled-back", latest.revision, latest.status, None)
        return None


class FakeWatcher:
    """`runs`: the template's image; `pod_runs`: what its one Ready pod runs (the same
    unless a webhook rewrote it)."""

    def __init__(self, failed=False, runs=f"reg/app@{DIGEST}", pod_runs=None, workloads=True):
        self.failed = failed
        self.runs = runs
        self.pod_runs = pod_runs or runs
        self.workloads = workloads

    def images(self, namespace, release):
        if not self.workloads:
            return []
        pod = PodImage("app-1", self.pod_runs, self.pod_runs if "@" in self.pod_runs else "")
        return [ContainerImage("Deployment/app", "app", self.runs, (pod,))]

    def watch(self, namespace, release, budget_seconds, on_progress=None):
        if not self.workloads:
            return RolloutProgress(no_workload=True)
        workload = WorkloadProgress(
            "Deployment",
            "app",
            1,
            1,
            0 if self.failed else 1,
            0 if self.failed else 1,
            True,
            complete=not self.failed,
            failed=self.failed,
            reason="ProgressDeadlineExceeded" if self.failed else "",
            message="timed out",
        )
        pods = ["1 of 1 pods CrashLoopBackOff, 4 restarts"] if self.failed else []
        events = ["Warning BackOff: crash"] if self.failed else []
        return RolloutProgress([workload], events, pods)


class FakeClusters:
    """The same in-memory helm and watcher for every target, or one pair per cluster name."""

    def __init__(self, helm=None, watcher=None, per_cluster=None):
        self.pairs = per_cluster or {}
        self.default = (helm, watcher)

    def helm(self, target):
        return self.pairs.get(target.cluster.name, self.default)[0]

    def watcher(self, target):
        return self.pairs.get(target.cluster.name, self.default)[1]


def run_to_end(deployment, helm=None, watcher=None, clusters=None):
    clusters = clusters or FakeClusters(helm, watcher)
    for _ in range(30):
        if deployment_step(deployment=deployment, clusters=clusters) is Step.DONE:
            break
        deployment.refresh_from_db()
    deployment.refresh_from_db()
    return deployment
