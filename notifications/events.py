"""What a team can be told about, and which audit events say it.

Notifications follow the audit log: every change that matters is already recorded there,
in the transaction that made it, so a notification can never announce what did not happen.
"""

from __future__ import annotations

from django.db import models

from releases.choices import DeploymentStatus, ReleaseStatus


class EventKind(models.TextChoices):
    BUILD_FAILED = "build_failed", "Build failed"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    DEPLOYED = "deployed", "Deployed"
    ROLLOUT_FAILED = "rollout_failed", "Rollout failed or rolled back"
    DRIFT = "drift", "Drift detected"
    FREEZE_OVERRIDE = "freeze_override", "Freeze overridden"


# audit action -> event kind
ACTIONS: dict[str, str] = {
    f"release.{ReleaseStatus.FAILED}": EventKind.BUILD_FAILED,
    f"deployment.{DeploymentStatus.SUCCEEDED}": EventKind.DEPLOYED,
    f"deployment.{DeploymentStatus.FAILED}": EventKind.ROLLOUT_FAILED,
    f"deployment.{DeploymentStatus.ROLLED_BACK}": EventKind.ROLLOUT_FAILED,
    "drift.detected": EventKind.DRIFT,
    "freeze.override": EventKind.FREEZE_OVERRIDE,
}


def event_kind(event) -> str | None:
    """The kind an audit event announces, if any. A request to a protected environment is
    recorded as `deployment.<kind>` with the status it starts in."""
    after = event.after if isinstance(event.after, dict) else {}
    waiting = DeploymentStatus.AWAITING_APPROVAL
    if event.action.startswith("deployment.") and after.get("status") == waiting:
        return EventKind.AWAITING_APPROVAL
    return ACTIONS.get(event.action)
