"""Who may do what: a user's role in the team that owns a service."""

from __future__ import annotations

from portal.choices import Role
from portal.models import Membership, Service


def role_for(user, service: Service) -> str | None:
    """The user's role for a service: admin for superusers, else their team role."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return (
        Membership.objects.filter(user=user, team_id=service.team_id)
        .values_list("role", flat=True)
        .first()
    )


def has_role(user, service: Service, minimum: str) -> bool:
    role = role_for(user, service)
    return role is not None and Role.rank(role) >= Role.rank(minimum)
