"""Sign-in with LDAP (django-auth-ldap): users come from the directory, and their roles
from its groups, refreshed at every sign-in and by the offboarding sync.

An `LdapGroupRole` (admin) maps a group's DN to a role in a team. A user gets, per team,
the highest role their groups map to; roles that came from LDAP and no longer do are
removed. Roles granted in Slipway by hand are left alone, so local break-glass admins and
exceptions keep working. Members of SLIPWAY_LDAP_DENY_GROUP cannot sign in.

Accounts know where they come from (`Account.source`): the LDAP backend never signs in
as a local account (a directory user named like the break-glass admin, in any case, gets
nothing) and the local backend never as an LDAP account.

Offboarding, which reads the directory again between sign-ins, is portal/access/offboarding.py.
"""

from __future__ import annotations

import ldap
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.utils import timezone
from django_auth_ldap.backend import LDAPBackend, ldap_error

from portal.access.choices import AccountSource, MembershipSource, Role
from portal.access.models import Account, LdapGroupRole, Membership
from portal.access.teams import membership_remove, membership_set
from portal.audit.chain import Actor

LDAP_ACTOR = Actor.system("ldap")


def _local_account_named(username: str) -> bool:
    """A local account answers to this name, in any letter case (the directory's does)."""
    return (
        get_user_model()
        .objects.filter(username__iexact=username)
        .exclude(account__source=AccountSource.LDAP)
        .exists()
    )


class SlipwayLDAPBackend(LDAPBackend):
    """django-auth-ldap's backend: never for a local account's name; marks the account as
    the directory's and refreshes its team roles after each successful sign-in."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username and _local_account_named(username):
            return None  # a local (break-glass) account: the local backend's alone
        return super().authenticate(request, username=username, password=password, **kwargs)

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is not None:
            Account.objects.update_or_create(
                user=user,
                defaults={"source": AccountSource.LDAP, "directory_checked_at": timezone.now()},
            )
            ldap_roles_sync(user=user, group_dns=set(ldap_user.group_dns))
        return user


class LocalBackend(ModelBackend):
    """Django's password backend for local accounts only: an LDAP account signs in with
    the directory's password, never with one set in Slipway."""

    def user_can_authenticate(self, user) -> bool:
        source = getattr(getattr(user, "account", None), "source", AccountSource.LOCAL)
        return super().user_can_authenticate(user) and source != AccountSource.LDAP


def ldap_roles_sync(*, user, group_dns: set[str]) -> dict[int, str]:
    """Make the user's LDAP-granted roles match their groups; returns team id → role."""
    member_of = {dn.lower() for dn in group_dns}
    wanted: dict[int, str] = {}
    teams = {}
    for mapping in LdapGroupRole.objects.select_related("team"):
        if mapping.group_dn.lower() in member_of:
            teams[mapping.team_id] = mapping.team
            current = wanted.get(mapping.team_id)
            if current is None or Role.rank(mapping.role) > Role.rank(current):
                wanted[mapping.team_id] = mapping.role
    actor = LDAP_ACTOR
    memberships = {
        m.team_id: m for m in Membership.objects.filter(user=user).select_related("team")
    }
    for team_id, role in wanted.items():
        existing = memberships.get(team_id)
        if existing is not None and existing.source == MembershipSource.MANUAL:
            continue  # granted by hand: not LDAP's to change
        if existing is None or existing.role != role:
            membership_set(
                team=teams[team_id],
                username=user.get_username(),
                role=role,
                by="LDAP groups",
                actor=actor,
                source=MembershipSource.LDAP,
            )
    for team_id, membership in memberships.items():
        if membership.source == MembershipSource.LDAP and team_id not in wanted:
            membership_remove(membership=membership, actor=actor)
    user.__dict__.pop("_slipway_team_roles", None)
    return wanted


def _directory_down(sender, context, user, request=None, exception=None, **kwargs) -> None:
    # Tell the sign-in form the directory failed, so it does not say "wrong password".
    if request is not None and isinstance(exception, ldap.SERVER_DOWN | ldap.TIMEOUT):
        request.slipway_directory_down = True


ldap_error.connect(_directory_down, dispatch_uid="slipway-ldap-down")
