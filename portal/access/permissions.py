"""The one access policy, used by pages and API alike: who may see and do what.

Roles are per team, from least to most: viewer, developer, lead, admin; a superuser is
admin everywhere. An object of a team the caller is not in does not exist for them (404
everywhere, never a 403 that would reveal it); a missing role is a 403 that names the
role needed. A user's roles are read once per request object and cached on it.
"""

from __future__ import annotations

from typing import Protocol

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from portal.access.choices import Role
from portal.access.models import Membership, Team
from portal.audit.choices import ActorType
from portal.audit.models import AuditEvent
from portal.core.errors import Refused


class OwnedByTeam(Protocol):
    """What a role is checked on: anything a team owns (a service, a target's service)."""

    team_id: int
    team: Team


class RoleMissing(Refused, PermissionDenied):
    """The caller is in the team but lacks the role for this action (a 403 page, or a
    403 problem in the API)."""

    http_status = 403
    title = "Not permitted"


def team_roles(user) -> dict[int, str]:
    """The user's role per team id (cached on the user object for the request)."""
    if not user.is_authenticated:
        return {}
    cached = getattr(user, "_slipway_team_roles", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        user._slipway_team_roles = cached
    return cached


def role_in_team(user, team_id: int) -> str | None:
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return team_roles(user).get(team_id)


def role_for(user, service: OwnedByTeam) -> str | None:
    """The user's role for a service: admin for superusers, else their team role."""
    return role_in_team(user, service.team_id)


def has_role(user, service: OwnedByTeam, minimum: str) -> bool:
    role = role_for(user, service)
    return role is not None and Role.rank(role) >= Role.rank(minimum)


def require_role(user, service: OwnedByTeam, minimum: str) -> None:
    """Raise RoleMissing (403) naming the role needed, unless the user has it."""
    if not has_role(user, service, minimum):
        raise RoleMissing(
            f"You need the {Role(minimum).label.lower()} role in {service.team} for this."
        )


def visible_teams(user) -> QuerySet[Team]:
    """The teams whose services the user may see."""
    if not user.is_authenticated:
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(pk__in=list(team_roles(user)))


def teams_with_role(user, minimum: str) -> list[int] | None:
    """Ids of the teams where the user has at least `minimum`; None means every team."""
    if not user.is_authenticated:
        return []
    if user.is_superuser:
        return None
    return [
        team for team, role in team_roles(user).items() if Role.rank(role) >= Role.rank(minimum)
    ]


def visible(queryset: QuerySet, user, service_field: str = "service") -> QuerySet:
    """Restrict rows that belong to a service to those the user may see."""
    if user.is_authenticated and user.is_superuser:
        return queryset
    teams = list(team_roles(user)) if user.is_authenticated else []
    return queryset.filter(**{f"{service_field}__team_id__in": teams})


def visible_events(user) -> QuerySet[AuditEvent]:
    """The audit events the user may read: their teams' objects' and their own actions'
    (every event for a superuser)."""
    events = AuditEvent.objects.all()
    if user.is_superuser:
        return events
    return events.filter(
        Q(team_id__in=list(team_roles(user)))
        | Q(actor_id=str(user.pk), actor_type__in=[ActorType.USER, ActorType.TOKEN])
    )
