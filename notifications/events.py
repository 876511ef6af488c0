"""What a team can be told about, and which audit events say it.

Notifications follow the audit log: every change that matters is already recorded there,
in the transaction that made it, so a notification can never announce what did not happen.
"""

from __future__ import annotations

from django.db import models

from portal.audit.actions import Notify, describe
from releases.actions import DEPLOYMENT_REQUEST
from releases.choices import DeploymentStatus


class EventKind(models.TextChoices):
    """What a channel subscribes to: the actions' `notify` values, with labels."""

    BUILD_FAILED = Notify.BUILD_FAILED, "Build failed"
    AWAITING_APPROVAL = Notify.AWAITING_APPROVAL, "Awaiting approval"
    DEPLOYED = Notify.DEPLOYED, "Deployed"
    ROLLOUT_FAILED = Notify.ROLLOUT_FAILED, "Rollout failed or rolled back"
    DRIFT = Notify.DRIFT, "Drift detected"
    FREEZE_OVERRIDE = Notify.FREEZE_OVERRIDE, "Freeze overridden"
    VERIFICATION_FAILED = Notify.VERIFICATION_FAILED, "Verification failed"
    ROLLED_BACK = Notify.ROLLED_BACK, "Rolled back automatically"
    JUDGEMENT = Notify.JUDGEMENT, "Verification needs a lead's judgement"


def event_kind(event) -> str | None:
    """The kind an audit event announces, if any (its action says: portal/audit/actions.py).
    A request to a protected environment is recorded as `deployment.<kind>` with the status
    it starts in: waiting for approval, it announces that."""
    after = event.after if isinstance(event.after, dict) else {}
    if (
        event.action in DEPLOYMENT_REQUEST.values()
        and after.get("status") == DeploymentStatus.AWAITING_APPROVAL
    ):
        return EventKind.AWAITING_APPROVAL
    return describe(event.action).notify or None
