"""A release's timeline, read from the audit log: every step of its build and of each of
its deployments, who did it, when, and how long the step before took.

The audit log already holds each state change with its actor and time, so the timeline
is a reading of it (two queries), never a second record that could disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from portal.audit.models import AuditEvent
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
    after = event.after or {}
    reason = after.get("reason", "")
    status = event.action.partition(".")[2]
    return {
        "create": (f"Build of {after.get('ref', '')} requested", "", False),
        "queued": ("Queued in Jenkins", f"queue item {after.get('queue_item_id', '')}", False),
        "building": ("Build started", f"Jenkins build #{after.get('build_number', '')}", False),
        "built": ("Built", after.get("image_digest", ""), False),
        "failed": ("Build failed", reason, True),
        "cancelled": ("Build cancelled", reason, True),
        "cancel_requested": ("Cancel requested", "", False),
        "resume": ("Worker lost; resumed", f"time {after.get('times', '')}", False),
        "deploy_skipped": ("Deployment after the build skipped", reason, True),
    }.get(status, (event.action, reason, False))


def _deployment_step(event: AuditEvent) -> tuple[str, str, bool]:
    after, before = event.after or {}, event.before or {}
    reason = after.get("reason", "")
    status = event.action.partition(".")[2]
    if status in ("deploy", "promote", "rollback"):
        waits = {
            "awaiting_approval": " (waits for approval)",
            "queued": " (waits for the environment)",
        }.get(after.get("status", ""), "")
        return f"{status.capitalize()} requested{waits}", after.get("image", ""), False
    if status == "pending":
        if before.get("status") == "awaiting_approval":
            comment = after.get("comment", "")
            return "Approved", f"“{comment}”" if comment else "", False
        if before.get("status") == "queued":
            return "Environment free: starting", "", False
        return "Pending", "", False
    if status == "cancelled":
        title = "Rejected" if reason.startswith("rejected by") else "Cancelled"
        return title, reason, True
    return {
        "deploying": ("helm upgrade started", "", False),
        "rolling_out": ("Rolling out", f"Helm revision {after.get('helm_revision', '')}", False),
        "succeeded": ("Rolled out", "", False),
        "failed": ("Failed", reason, True),
        "rolled_back": ("Failed, rolled back", reason, True),
        "resume": ("Worker lost; resumed", f"time {after.get('times', '')}", False),
        "recovered": (
            "Stuck Helm release recovered",
            f"{after.get('action', '')} from revision {after.get('from_revision', '')}",
            False,
        ),
    }.get(status, (event.action, reason, status.endswith("failed")))


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
