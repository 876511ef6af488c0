"""An audit event told in words: title, one-line summary, a link to the page that shows it."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.urls import reverse

from notifications.events import EventKind
from notifications.formats import Message
from portal.audit.models import AuditEvent
from portal.core import sizes


def _target(event: AuditEvent):
    if not event.target_type or not event.target_id:
        return None
    model = apps.get_model(event.target_type)
    return model._default_manager.filter(pk=event.target_id).first()


def _absolute(path: str) -> str:
    return settings.SLIPWAY_BASE_URL.rstrip("/") + path


def _reason(event: AuditEvent, target) -> str:
    after = event.after if isinstance(event.after, dict) else {}
    reason = after.get("status_reason") or after.get("reason") or ""
    return str(reason or getattr(target, "status_reason", ""))[: sizes.QUOTE]


def message_for(event: AuditEvent, kind: str) -> Message:
    target = _target(event)
    label = event.target_repr or "Slipway"
    link = ""
    data: dict = {
        "audit_event_id": event.pk,
        "action": event.action,
        "actor": event.actor_name,
        "at": event.created_at.isoformat(),
        "target": {"type": event.target_type, "id": event.target_id, "repr": event.target_repr},
    }
    release = None
    if target is not None and target._meta.label == "releases.Release":
        release = target
    elif target is not None and target._meta.label == "releases.Deployment":
        release = target.release
        data["environment"] = target.environment.slug
        data["deployment_id"] = target.pk
        data["image"] = target.image
        label = f"{target.service.name} #{target.release_id} → {target.environment.name}"
    if release is not None:
        link = _absolute(reverse("release-detail", args=[release.pk]))
        data |= {"service": release.service.slug, "release_id": release.pk, "ref": release.ref}
    elif target is not None and target._meta.label == "portal.DeploymentTarget":
        link = _absolute(reverse("service-detail", args=[target.service.slug]))
        data |= {"service": target.service.slug, "environment": target.environment.slug}
        label = f"{target.service.name} in {target.environment.name}"
    reason = _reason(event, target)
    after = event.after if isinstance(event.after, dict) else {}
    if kind == EventKind.JUDGEMENT:
        link = _absolute(reverse("approvals"))  # where a lead judges it
    title = str(EventKind(kind).label)
    summaries = {
        EventKind.BUILD_FAILED: f"The build of {label} failed" + (f": {reason}" if reason else "."),
        EventKind.AWAITING_APPROVAL: f"{label} awaits a lead's approval (asked by "
        f"{event.actor_name}).",
        EventKind.DEPLOYED: f"{label} is deployed.",
        EventKind.ROLLOUT_FAILED: f"{label} failed"
        + (" and was rolled back" if event.action.endswith("rolled_back") else "")
        + (f": {reason}" if reason else "."),
        EventKind.DRIFT: f"{label} drifted from what Slipway deployed"
        + (
            f": {event.after.get('summary')}"
            if isinstance(event.after, dict) and event.after.get("summary")
            else "."
        ),
        EventKind.FREEZE_OVERRIDE: f"{event.actor_name} deployed {label} during a freeze"
        + (f": {reason}" if reason else "."),
        EventKind.VERIFICATION_FAILED: f"{label} failed its verification"
        + (f": {reason}" if reason else "."),
        EventKind.ROLLED_BACK: f"{label}: {after.get('outcome', 'rolled back')}"
        + (f" Why: {reason}" if reason else ""),
        EventKind.JUDGEMENT: f"{label}: verification inconclusive"
        + (f" ({reason})" if reason else "")
        + "; a lead decides in the approvals inbox: continue or roll back.",
    }
    if reason:
        data["reason"] = reason
    return Message(
        kind=kind, title=f"{title}: {label}", summary=summaries[kind], link=link, data=data
    )
