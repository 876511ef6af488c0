"""What a rollout looks like from the objects Kubernetes' controllers write: each
workload's progress as `kubectl rollout status` judges it, the pods' own reasons when they
are not ready, and what each Ready pod runs. Pure functions of the API's objects; the
watcher (clusters/rollout.py) reads them.

Success, per kind: the controller has observed the new generation, every desired replica
is updated and available, and no pod of an older revision is left (a Deployment's old
ReplicaSets scaled down, a StatefulSet's current revision the updated one). Failure is a
Deployment's Progressing condition at ProgressDeadlineExceeded. Either way the pods say
why: the reasons they wait (ImagePullBackOff, CrashLoopBackOff and its restarts) or that
they run without becoming ready.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

# How many pods' reasons a summary names at most.
REASONS_SHOWN = 3


@dataclass(frozen=True)
class PodImage:
    """What one Ready pod runs in one container (imageID: what the node reports it pulled)."""

    pod: str
    image: str
    image_id: str = ""


@dataclass(frozen=True)
class ContainerImage:
    """One container of one workload: the image its template asks for, and what its Ready
    pods run."""

    workload: str  # Kind/name
    container: str
    image: str
    pods: tuple[PodImage, ...] = ()

    def as_dict(self) -> dict:
        return {**asdict(self), "pods": [asdict(p) for p in self.pods]}


@dataclass(frozen=True)
class WorkloadProgress:
    kind: str  # Deployment | StatefulSet | DaemonSet
    name: str
    desired: int
    updated: int
    ready: int
    available: int
    observed: bool
    complete: bool
    failed: bool
    old: int = 0  # pods of an older revision still there
    reason: str = ""
    message: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class RolloutProgress:
    workloads: list[WorkloadProgress] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)  # the pods' own reasons, when they have any
    no_workload: bool = False  # the release has nothing to roll out (checked after helm)

    @property
    def complete(self) -> bool:
        if self.no_workload:
            return True
        return bool(self.workloads) and all(w.complete for w in self.workloads)

    @property
    def failed(self) -> bool:
        return any(w.failed for w in self.workloads)

    def summary(self) -> str:
        if self.no_workload:
            return "no workload to roll out: the chart has no Deployment, StatefulSet or DaemonSet"
        if not self.workloads:
            return "waiting for the release's workloads to appear"
        lines = [
            f"{w.label}: {w.updated} updated, {w.ready} ready, {w.available} available of "
            f"{w.desired}" + (f", {w.old} old still running" if w.old > 0 else "")
            for w in self.workloads
        ]
        return "; ".join(lines + self.pods)

    def failure_reason(self) -> str:
        lines = [f"{w.label}: {w.reason}: {w.message}" for w in self.workloads if w.failed]
        lines += self.pods
        if self.events:
            lines.append("Recent events:")
            lines += [f"  {e}" for e in self.events]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "summary": self.summary(),
            "complete": self.complete,
            "failed": self.failed,
            "workloads": [asdict(w) | {"label": w.label} for w in self.workloads],
            "pods": self.pods,
            "events": self.events,
        }


def _condition(status, kind: str):
    return next((c for c in (status.conditions or []) if c.type == kind), None)


def workload_progress(kind: str, workload) -> WorkloadProgress:
    """How far one workload's rollout is, from the status its controller writes."""
    spec, status, meta = workload.spec, workload.status, workload.metadata
    observed = (status.observed_generation or 0) >= (meta.generation or 0)
    if kind == "DaemonSet":
        desired = status.desired_number_scheduled or 0
        updated = status.updated_number_scheduled or 0
        ready, available = status.number_ready or 0, status.number_available or 0
        old = max(0, (status.current_number_scheduled or 0) - updated)
        complete = observed and updated >= desired and available >= desired
        return WorkloadProgress(
            kind, meta.name, desired, updated, ready, available, observed, complete, False, old
        )
    desired = spec.replicas if spec.replicas is not None else 1
    updated = status.updated_replicas or 0
    ready, available = status.ready_replicas or 0, status.available_replicas or 0
    total = status.replicas or 0
    if kind == "StatefulSet":
        current = (status.current_revision or "") == (status.update_revision or "")
        complete = observed and updated >= desired and ready >= desired and current
        old = 0 if current else max(0, total - updated)
        return WorkloadProgress(
            kind, meta.name, desired, updated, ready, available, observed, complete, False, old
        )
    progressing = _condition(status, "Progressing")
    failed = bool(observed and progressing and progressing.reason == "ProgressDeadlineExceeded")
    complete = observed and updated >= desired and available >= desired and total <= updated
    return WorkloadProgress(
        kind,
        meta.name,
        desired,
        updated,
        ready,
        available,
        observed,
        complete and not failed,
        failed,
        max(0, total - updated),
        progressing.reason if failed else "",
        progressing.message if failed else "",
    )


def pod_ready(pod) -> bool:
    condition = _condition(pod.status, "Ready") if pod.status else None
    return bool(condition and condition.status == "True")


def pod_reasons(pods: list) -> list[str]:
    """Why a workload's pods are not ready, in the pods' own words, counted: `2 of 3 pods
    ImagePullBackOff: …`, `CrashLoopBackOff, 5 restarts`, `running but not ready`."""
    total = len(pods)
    waiting: Counter = Counter()
    messages: dict[str, str] = {}
    restarts: dict[str, int] = {}
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None or pod_ready(pod):
            continue
        statuses = [
            *((pod.status and pod.status.init_container_statuses) or []),
            *((pod.status and pod.status.container_statuses) or []),
        ]
        reason = ""
        for container in statuses:
            state = container.state.waiting if container.state else None
            if (
                state
                and state.reason
                and state.reason not in ("ContainerCreating", "PodInitializing")
            ):
                reason = state.reason
                messages.setdefault(reason, state.message or "")
                restarts[reason] = max(restarts.get(reason, 0), container.restart_count or 0)
                break
        if not reason:
            scheduled = _condition(pod.status, "PodScheduled") if pod.status else None
            if scheduled is not None and scheduled.status == "False":
                reason = scheduled.reason or "Unschedulable"
                messages.setdefault(reason, scheduled.message or "")
            elif statuses and all(c.state and c.state.running for c in statuses):
                reason = "running but not ready"
        if reason:
            waiting[reason] += 1
    found = []
    for reason, count in waiting.most_common(REASONS_SHOWN):
        line = f"{count} of {total} pods {reason}"
        if reason == "CrashLoopBackOff":
            line += f", {restarts.get(reason, 0)} restarts"
        elif messages.get(reason):
            line += f": {messages[reason]}"
        found.append(line)
    return found


def _named(items, name: str):
    return next((item for item in items or [] if item.name == name), None)


def container_images(kind: str, workload, pods: list) -> list[ContainerImage]:
    """Each container of `workload`'s pod template, with what its Ready `pods` run."""
    # A pod on its way out (an old ReplicaSet's, terminating) no longer counts.
    ready = [p for p in pods if pod_ready(p) and p.metadata.deletion_timestamp is None]
    template = workload.spec.template.spec
    found = []
    for container in [*(template.init_containers or []), *(template.containers or [])]:
        running = []
        for pod in ready:
            spec = _named([*(pod.spec.init_containers or []), *pod.spec.containers], container.name)
            status = _named(
                [
                    *(pod.status.init_container_statuses or []),
                    *(pod.status.container_statuses or []),
                ],
                container.name,
            )
            if spec is not None:
                running.append(
                    PodImage(pod.metadata.name, spec.image, (status and status.image_id) or "")
                )
        found.append(
            ContainerImage(
                f"{kind}/{workload.metadata.name}",
                container.name,
                container.image,
                tuple(sorted(running, key=lambda p: p.pod)),
            )
        )
    return found
