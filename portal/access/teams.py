"""A team's own administration: who has which role, and where its services deploy.

Team admins (and site admins) grant, change and remove roles from the portal; every
change is audited with before and after. Where the team's services deploy is
portal/targets.py's.
Roles that come from LDAP groups are refreshed at each sign-in (portal/ldap.py).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from portal.access.choices import MembershipSource, Role
from portal.access.models import Membership, Team
from portal.access.permissions import RoleMissing, role_in_team
from portal.audit.actions import Access
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.core.errors import Refused


class TeamRefused(Refused):
    """The change cannot be made as asked."""


def require_team_admin(user, team: Team) -> None:
    role = role_in_team(user, team.pk)
    if role != Role.ADMIN:
        raise RoleMissing(f"You need the admin role in {team} for this.")


def membership_set(
    *,
    team: Team,
    username: str,
    role: str,
    by,
    actor: Actor,
    context: RequestContext | None = None,
    source: str = MembershipSource.MANUAL,
) -> Membership:
    """Grant `role` in `team` to the user named `username` (or change their role)."""
    if role not in Role.values:
        raise TeamRefused(f"A role is one of {', '.join(Role.values)}.")
    user = get_user_model().objects.filter(username=(username or "").strip()).first()
    if user is None:
        raise TeamRefused(f"No user named {username!r}; they appear after their first sign-in.")
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
        if (
            membership is not None
            and membership.source == MembershipSource.LDAP
            and source == MembershipSource.MANUAL
        ):
            raise TeamRefused(
                f"{user.get_username()}'s role in {team} comes from an LDAP group and is "
                "refreshed from the directory; change the group (or its mapping), or remove "
                "the role first and grant it by hand."
            )
        before = membership.role if membership else None
        if membership is None:
            membership = Membership.objects.create(team=team, user=user, role=role, source=source)
        elif membership.role != role or membership.source != source:
            Membership.objects.filter(pk=membership.pk).update(role=role, source=source)
            membership.role, membership.source = role, source
        else:
            return membership
        audit_record(
            actor=actor,
            action=Access.MEMBERSHIP_CREATE if before is None else Access.MEMBERSHIP_CHANGE,
            target=membership,
            context=context,
            before={"user": user.get_username(), "role": before} if before else None,
            after={"user": user.get_username(), "role": role, "source": source, "by": str(by)},
        )
    return membership


def membership_remove(
    *, membership: Membership, actor: Actor, context: RequestContext | None = None
) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=Access.MEMBERSHIP_DELETE,
            target=membership,
            context=context,
            before={
                "user": membership.user.get_username(),
                "team": membership.team.slug,
                "role": membership.role,
                "source": membership.source,
            },
        )
        membership.delete()
