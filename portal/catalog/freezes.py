"""Change freezes: windows in which no deployment may enter an environment.

A freeze covers one team's services in an environment (made by that team's admins or
leads), or every team's (site admins only). A deployment requested, approved or started
while a freeze covers it is refused naming the freeze, unless a lead overrides it with
a reason (recorded on the deployment and audited). See releases/deployments.py.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from portal.access.choices import Role
from portal.access.models import Team
from portal.access.permissions import RoleMissing, role_in_team, team_roles
from portal.audit.actions import Catalog
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.catalog.models import Environment, Freeze, Service
from portal.core.errors import Refused

MAX_REASON = 300


class FreezeRefused(Refused):
    """The freeze cannot be made or removed as asked."""


def freezes_covering(*, environment_ids, at: datetime | None = None) -> QuerySet[Freeze]:
    """Freezes in force at `at` (now) in these environments."""
    at = at or timezone.now()
    return Freeze.objects.filter(
        environment_id__in=environment_ids, starts_at__lte=at, ends_at__gt=at
    ).select_related("team", "created_by", "environment")


def active_freeze(service: Service, environment: Environment) -> Freeze | None:
    """The freeze that covers this service in this environment now, if any."""
    return (
        freezes_covering(environment_ids=[environment.pk])
        .filter(Q(team__isnull=True) | Q(team_id=service.team_id))
        .order_by("-ends_at")
        .first()
    )


def describe(freeze: Freeze) -> str:
    whose = f"{freeze.team.name}'s services" if freeze.team_id else "every service"
    return (
        f"{freeze.environment.name} is frozen for {whose} until "
        f"{freeze.ends_at:%Y-%m-%d %H:%M} UTC (freeze #{freeze.pk} by "
        f"{freeze.created_by.get_username()}: {freeze.reason})"
    )


def _may_manage(user, team: Team | None) -> None:
    if team is None:
        if not user.is_superuser:
            raise RoleMissing("Only a site admin may freeze an environment for every team.")
        return
    role = role_in_team(user, team.pk)
    if role is None or Role.rank(role) < Role.rank(Role.LEAD):
        raise RoleMissing(f"You need the lead role in {team} to freeze its services.")


def freeze_create(
    *,
    environment: Environment,
    team: Team | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    user,
    actor: Actor,
    context: RequestContext | None = None,
) -> Freeze:
    _may_manage(user, team)
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise FreezeRefused(f"Give a reason of 1 to {MAX_REASON} characters.")
    if ends_at <= starts_at:
        raise FreezeRefused("The freeze must end after it starts.")
    if ends_at <= timezone.now():
        raise FreezeRefused("The freeze must end in the future.")
    with transaction.atomic():
        freeze = Freeze.objects.create(
            environment=environment,
            team=team,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
            created_by=user,
        )
        audit_record(
            actor=actor,
            action=Catalog.FREEZE_CREATE,
            target=freeze,
            context=context,
            after={
                "environment": environment.slug,
                "team": team.slug if team else None,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "reason": reason,
            },
        )
    return freeze


def freeze_delete(
    *, freeze: Freeze, user, actor: Actor, context: RequestContext | None = None
) -> None:
    _may_manage(user, freeze.team)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=Catalog.FREEZE_DELETE,
            target=freeze,
            context=context,
            before={
                "environment": freeze.environment.slug,
                "team": freeze.team.slug if freeze.team_id else None,
                "starts_at": freeze.starts_at,
                "ends_at": freeze.ends_at,
                "reason": freeze.reason,
            },
        )
        freeze.delete()


def visible_freezes(user) -> QuerySet[Freeze]:
    """Freezes the user may see: their teams' and the ones for every team."""
    freezes = Freeze.objects.select_related("environment", "team", "created_by")
    if user.is_superuser:
        return freezes
    return freezes.filter(Q(team__isnull=True) | Q(team_id__in=list(team_roles(user))))
