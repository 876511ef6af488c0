"""A release's timeline, read from the audit log: every step of its build and of each of
its deployments, who did it, when, and how long the step before took.

The audit log already holds each state change with its actor and time, so the timeline
is a reading of it (two queries), never a second record that could disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from portal.audit.actions import describe
from portal.audit.models import AuditEvent
from releases.actions import DEPLOYMENT_REQUEST, DEPLOYMENT_STATUS, RELEASE_STATUS, Engine
from releases.choices import DeploymentStatus, ReleaseStatus
from releases.deployments import REJECTED_BY
from releases.models import Deployment, Release


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    subject: str  # "Build" or "Prod deployment #4"
    what: str
    actor: str
    detail: str = ""
    since_previous: timedelta | None = None  # the step before, of the same subject
    failed: bool = False

    @property
    def duration(self) -> str:
        return human_duration(self.since_previous) if self.since_previous is not None else ""


def human_duration(delta: timedelta | None) -> str:
    if delta is None:
        return ""
    seconds = delta.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _release_step(event: AuditEvent) -> tuple[str, str, bool]:
    """What the step was called, its detail, and whether it went wrong."""
    after = event.after or {}
    action = describe(event.action)
    detail = {
        Engine.RELEASE_CREATE: "",
        RELEASE_STATUS[ReleaseStatus.QUEUED]: f"queue item {after.get('queue_item_id', '')}",
        RELEASE_STATUS[ReleaseStatus.BUILDING]: f"build #{after.get('build_number', '')}",
        RELEASE_STATUS[ReleaseStatus.BUILT]: after.get("image_digest", ""),
        Engine.RELEASE_RESUME: f"time {after.get('times', '')}",
    }.get(action, after.get("reason", ""))
    if action == Engine.RELEASE_CREATE:
        return f"Build of {after.get('ref', '')} requested", detail, False
    return action.label, detail, action.failed


def _deployment_step(event: AuditEvent) -> tuple[str, str, bool]:
    after, before = event.after or {}, event.before or {}
    reason = after.get("reason", "")
    action = describe(event.action)
    if action in DEPLOYMENT_REQUEST.values():
        waits = {
            DeploymentStatus.AWAITING_APPROVAL: " (waits for approval)",
            DeploymentStatus.QUEUED: " (waits for the environment)",
        }.get(after.get("status", ""), "")
        return f"{action.label}{waits}", after.get("image", ""), False
    if action == DEPLOYMENT_STATUS[DeploymentStatus.PENDING]:
        if before.get("status") == DeploymentStatus.AWAITING_APPROVAL:
            comment = after.get("comment", "")
            return "Approved", f"“{comment}”" if comment else "", False
        if before.get("status") == DeploymentStatus.QUEUED:
            return "Environment free: starting", "", False
    if action == DEPLOYMENT_STATUS[DeploymentStatus.CANCELLED] and reason.startswith(REJECTED_BY):
        return "Rejected", reason, True
    cluster = after.get("cluster", "")
    on = f"{cluster}: " if cluster else ""
    wave = f"{cluster}, wave {after.get('wave', '')} of {after.get('waves', '')}"
    detail = {
        DEPLOYMENT_STATUS[DeploymentStatus.ROLLING_OUT]: (
            f"{on}Helm revision {after.get('helm_revision', '')}"
        ),
        DEPLOYMENT_STATUS[DeploymentStatus.DEPLOYING]: wave if cluster else reason,
        Engine.DEPLOYMENT_RESUME: f"time {after.get('times', '')}",
        Engine.HELM_RECOVERED: (
            f"{on}{after.get('action', '')} from revision {after.get('from_revision', '')}"
        ),
        Engine.CLUSTER_ROLLED_OUT: f"{on}Helm revision {after.get('helm_revision', '')}",
        Engine.CLUSTER_RETRIED: (
            f"{on}{after.get('reason', '')} (deployment #{after.get('continued_by', '')})"
        ),
        Engine.CLUSTER_SKIPPED: (
            f"{on}{after.get('reason', '')} (deployment #{after.get('continued_by', '')})"
        ),
    }.get(action, reason)
    return action.label, detail, action.failed


def release_timeline(release: Release, deployments: list[Deployment]) -> list[TimelineEntry]:
    """The release's build and its deployments, step by step, oldest first."""
    names = {str(d.pk): f"{d.environment.name} deployment #{d.pk}" for d in deployments}
    events = AuditEvent.objects.filter(
        Q(target_type="releases.Release", target_id=str(release.pk))
        | Q(target_type="releases.Deployment", target_id__in=list(names))
    ).order_by("id")
    entries, previous = [], {}
    for event in events:
        if event.target_type == "releases.Release":
            subject, (what, detail, failed) = "Build", _release_step(event)
        else:
            subject = names[event.target_id]
            what, detail, failed = _deployment_step(event)
        since = event.created_at - previous[subject] if subject in previous else None
        previous[subject] = event.created_at
        entries.append(
            TimelineEntry(event.created_at, subject, what, event.actor_name, detail, since, failed)
        )
    return entries
