"""Change tickets: a deployment to an environment with a change system opens a change
request when it is requested, may start only once the change is approved there and its
window is open (read back at the approval that starts it), notes when it starts, and
closes the change with the outcome.

A refusal by the change system when the request is made refuses the deployment with the
system's own words (nothing is recorded). An emergency change (a lead's reason, or any
rollback) is opened as `emergency`, skips the wait for the ticket's approval (never the
approval policy) and is audited as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from doors.changes import (
    Change,
    ChangeError,
    ChangeRefused,
    ChangeRequest,
    ChangeSystemDoor,
    JiraServiceManagement,
    ServiceNow,
    SignedWebhook,
)
from portal.access.choices import Role
from portal.access.permissions import has_role
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.catalog.models import Environment
from portal.core.crypto import plaintext
from releases.actions import Engine
from releases.change_models import ChangeSystemKind
from releases.choices import DeploymentKind, DeploymentStatus
from releases.errors import Conflict, NotPermitted, ReleaseRefused
from releases.models import ChangeSystem, ChangeTicket, Deployment, Release

ACTOR = Actor.system("change management")


def change_door(system: ChangeSystem) -> ChangeSystemDoor:
    secret = plaintext(system.secret)
    if system.kind == ChangeSystemKind.SERVICENOW:
        return ServiceNow(url=system.url, username=system.username, password=secret)
    if system.kind == ChangeSystemKind.JIRA:
        try:
            settings = system.jira_settings()
        except ValidationError as exc:  # saved around the admin's checks
            raise ChangeRefused(
                f"its Jira settings are incomplete: {' '.join(exc.messages)}"
            ) from exc
        return JiraServiceManagement(
            url=system.url, username=system.username, token=secret, settings=settings
        )
    return SignedWebhook(url=system.url, secret=secret)


def change_system_for(environment: Environment) -> ChangeSystem | None:
    return ChangeSystem.objects.filter(environment=environment, enabled=True).first()


@dataclass(frozen=True)
class OpenedChange:
    system: ChangeSystem
    change: Change
    emergency: bool
    emergency_reason: str


def change_open(
    *, release: Release, environment: Environment, kind: str, user, emergency_reason: str = ""
) -> OpenedChange | None:
    """Open the change request for a deployment about to be requested (None: the
    environment has no change system). Raises the system's refusal as the deployment's."""
    system = change_system_for(environment)
    if system is None:
        if emergency_reason:
            raise ReleaseRefused(
                f"{environment.name} has no change system: an emergency change means nothing "
                "there. Request the deployment without it."
            )
        return None
    if emergency_reason and not (user and has_role(user, release.service, Role.LEAD)):
        raise NotPermitted(
            f"Only a lead of {release.service.team} may ask for an emergency change."
        )
    emergency = bool(emergency_reason) or kind == DeploymentKind.ROLLBACK
    reason = emergency_reason or ("a rollback" if emergency else "")
    now = timezone.now()
    who = user.get_username() if user else "Slipway"
    request = ChangeRequest(
        short_description=(
            f"{DeploymentKind(kind).label} {release.service.name} {release.ref} to "
            f"{environment.name}"
        )[:160],
        description=(
            f"Slipway release #{release.pk} of {release.service.name} (commit "
            f"{release.commit_sha or 'unknown'}), image {release.image}, requested by {who}."
            + (f" Emergency: {reason}." if emergency else "")
        ),
        emergency=emergency,
        planned_start=now,
        planned_end=now + timezone.timedelta(hours=system.window_hours),
        assignment_group=system.assignment_group,
        correlation_id=f"slipway:release:{release.pk}:{environment.slug}",
    )
    try:
        change = change_door(system).create(request)
    except ChangeRefused as exc:
        raise ReleaseRefused(
            f"{system.name} refused the change request, so nothing was requested: {exc}"
        ) from exc
    except ChangeError as exc:
        raise Conflict(
            f"{system.name} could not open the change request ({exc}); nothing was "
            "requested. Try again."
        ) from exc
    return OpenedChange(system, change, emergency, reason)


def _copy(ticket: ChangeTicket, change: Change) -> None:
    # A Jira workflow names its own statuses, as long as it likes.
    ticket.state = change.state[: ChangeTicket._meta.get_field("state").max_length]
    ticket.approval = change.approval[: ChangeTicket._meta.get_field("approval").max_length]
    ticket.planned_start, ticket.planned_end = change.planned_start, change.planned_end


def ticket_record(
    *,
    deployment: Deployment,
    opened: OpenedChange,
    actor: Actor,
    context: RequestContext | None,
) -> ChangeTicket:
    """Keep the opened change with the deployment (in the request's transaction)."""
    ticket = ChangeTicket(
        deployment=deployment,
        system=opened.system,
        external_id=opened.change.id,
        number=opened.change.number,
        emergency=opened.emergency,
        emergency_reason=opened.emergency_reason[:300],
    )
    _copy(ticket, opened.change)
    ticket.save()
    after = {"number": ticket.number, "system": opened.system.name, "state": ticket.state,
             "emergency": ticket.emergency}  # fmt: skip
    audit_record(actor=actor, action=Engine.CHANGE_OPENED, target=deployment, context=context,
                 after=after)  # fmt: skip
    if opened.emergency:
        audit_record(
            actor=actor,
            action=Engine.CHANGE_EMERGENCY,
            target=deployment,
            context=context,
            after={"number": ticket.number, "reason": opened.emergency_reason},
        )
    return ticket


def _ticket(deployment: Deployment) -> ChangeTicket | None:
    return ChangeTicket.objects.select_related("system").filter(deployment=deployment).first()


def change_start_refusal(deployment: Deployment) -> str | None:
    """Why the deployment may not start yet for its change (read back from the system), or
    None: no ticket, an emergency, a system that does not require approval, or an approved
    change whose window is open."""
    ticket = _ticket(deployment)
    if ticket is None or ticket.emergency or not ticket.system.require_approved:
        return None
    system = ticket.system
    try:
        change = change_door(system).read(ticket.external_id)
    except ChangeError as exc:
        return (
            f"Change {ticket.number} could not be read back from {system.name} ({exc}); "
            "the request keeps waiting."
        )
    _copy(ticket, change)
    ticket.save(update_fields=["state", "approval", "planned_start", "planned_end", "updated_at"])
    if change.rejected:
        return (
            f"Change {ticket.number} was rejected in {system.name} (approval: rejected, "
            f"state: {change.state}), so this request cannot start: reject it here and "
            "request again for a new change."
        )
    if not change.approved:
        return (
            f"Change {ticket.number} is not approved in {system.name} yet (approval: "
            f"{change.approval or 'none'}, state: {change.state}); the request keeps waiting. "
            "Approve again once it is."
        )
    now = timezone.now()
    if change.planned_start and now < change.planned_start:
        return (
            f"Change {ticket.number}'s window opens at {change.planned_start:%Y-%m-%d %H:%M} "
            "UTC; the request keeps waiting."
        )
    if change.planned_end and now > change.planned_end:
        return (
            f"Change {ticket.number}'s window closed at {change.planned_end:%Y-%m-%d %H:%M} UTC: "
            "ask for a new window in the change system, or withdraw and request again."
        )
    return None


# What a deployment's move tells its change: (what to do, successful?).
_ON_STATUS = {
    DeploymentStatus.DEPLOYING: ("implement", None),
    DeploymentStatus.SUCCEEDED: ("close", True),
    DeploymentStatus.FAILED: ("close", False),
    DeploymentStatus.ROLLED_BACK: ("close", False),
    DeploymentStatus.CANCELLED: ("cancel", None),
}
TOLD = tuple(_ON_STATUS)


def change_tell(deployment_id: int, status: str) -> str:
    """Tell the deployment's change what happened (a task; raises ChangeError to retry)."""
    ticket = (
        ChangeTicket.objects.select_related("system", "deployment")
        .filter(deployment_id=deployment_id)
        .first()
    )
    if ticket is None or status not in _ON_STATUS or ticket.outcome:
        return "nothing to tell"
    deployment = ticket.deployment
    door = change_door(ticket.system)
    what, successful = _ON_STATUS[status]
    said = f"Slipway deployment #{deployment.pk}: {DeploymentStatus(status).label}."
    if deployment.status_reason:
        said += f" {deployment.status_reason}"
    try:
        if what == "implement":
            change = door.implement(ticket.external_id, said)
        elif what == "close":
            change = door.close(ticket.external_id, successful=bool(successful), note=said)
            ticket.outcome = "successful" if successful else "unsuccessful"
        else:
            change = door.cancel(ticket.external_id, said)
            ticket.outcome = "canceled"
    except ChangeError as exc:
        ChangeTicket.objects.filter(pk=ticket.pk).update(last_error=str(exc)[:500])
        raise
    _copy(ticket, change)
    ticket.last_error = ""
    ticket.save()
    if ticket.outcome:
        audit_record(
            actor=ACTOR,
            action=Engine.CHANGE_CLOSED,
            target=deployment,
            after={"number": ticket.number, "outcome": ticket.outcome, "state": ticket.state},
        )
    return what
