"""Sign-in with LDAP (django-auth-ldap): users come from the directory, and their roles
from its groups, refreshed at every sign-in and by the offboarding sync.

An `LdapGroupRole` (admin) maps a group's DN to a role in a team. A user gets, per team,
the highest role their groups map to; roles that came from LDAP and no longer do are
removed. Roles granted in Slipway by hand are left alone, so local break-glass admins and
exceptions keep working. Members of SLIPWAY_LDAP_DENY_GROUP cannot sign in.

Accounts know where they come from (`Account.source`): the LDAP backend never signs in
as a local account (a directory user named like the break-glass admin, in any case, gets
nothing) and the local backend never as an LDAP account.

Offboarding (`ldap_offboarding_sync`, beat every SLIPWAY_LDAP_SYNC_SECONDS): for every
LDAP account with a live token or a recent sign-in, and every LDAP account at least daily,
the directory is read again. Someone gone from it (or denied) is deactivated; someone left
with no role at all loses their sessions and tokens. Each is audited. An unreachable
directory decides nothing.
"""

from __future__ import annotations

from datetime import timedelta

import ldap
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_auth_ldap.backend import LDAPBackend, ldap_error

from doors.directory import DirectoryUnavailable, directory_entry
from portal.access.choices import AccountSource, MembershipSource, Role
from portal.access.models import Account, ApiToken, LdapGroupRole, Membership
from portal.access.teams import membership_remove, membership_set
from portal.audit.chain import Actor, audit_record

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


# -- offboarding -----------------------------------------------------------------------


def _revoke_tokens(user) -> int:
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def _end_sessions(user) -> None:
    # A new unusable password changes the session hash Django checks on every request:
    # each of the user's sessions ends at its next request, wherever it is stored.
    user.set_unusable_password()
    user.save(update_fields=["password"])


def account_end_access(*, user, reason: str, deactivate: bool) -> None:
    """Take everything a person has in Slipway: roles (all, when `deactivate`), sessions,
    tokens, and the account itself when `deactivate`. Audited."""
    with transaction.atomic():
        removed = []
        if deactivate:
            for membership in Membership.objects.filter(user=user).select_related("team", "user"):
                removed.append(membership.team.slug)
                membership_remove(membership=membership, actor=LDAP_ACTOR)
            type(user).objects.filter(pk=user.pk).update(is_active=False)
        revoked = _revoke_tokens(user)
        _end_sessions(user)
        Account.objects.filter(user=user).update(access_ended_at=timezone.now())
        audit_record(
            actor=LDAP_ACTOR,
            action="account.offboard" if deactivate else "account.access_end",
            target=user,
            after={
                "user": user.get_username(),
                "reason": reason,
                "deactivated": deactivate,
                "tokens_revoked": revoked,
                "memberships_removed": removed,
            },
        )


def _denied(group_dns: set[str]) -> str:
    deny, require = settings.AUTH_LDAP_DENY_GROUP, settings.AUTH_LDAP_REQUIRE_GROUP
    if deny and str(deny).lower() in group_dns:
        return "in SLIPWAY_LDAP_DENY_GROUP"
    if require and str(require).lower() not in group_dns:
        return "no longer in SLIPWAY_LDAP_REQUIRE_GROUP"
    return ""


def ldap_account_sync(*, user) -> str:
    """Read the directory for one LDAP account and act on it; returns what happened
    (kept, offboarded, access ended). Raises DirectoryUnavailable, deciding nothing."""
    entry = directory_entry(user.get_username())
    Account.objects.filter(user=user).update(directory_checked_at=timezone.now())
    if entry is None or _denied(set(entry.group_dns)):
        why = "gone from the directory" if entry is None else _denied(set(entry.group_dns))
        account_end_access(user=user, reason=why, deactivate=True)
        return "offboarded"
    ldap_roles_sync(user=user, group_dns=set(entry.group_dns))
    if user.is_superuser or Membership.objects.filter(user=user).exists():
        return "kept"
    if _has_live_access(user):
        account_end_access(user=user, reason="in no mapped LDAP group any more", deactivate=False)
        return "access ended"
    return "kept"


def _has_live_access(user) -> bool:
    """A token not revoked, or a sign-in since access was last ended (a live session)."""
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists():
        return True
    ended = Account.objects.filter(user=user).values_list("access_ended_at", flat=True).first()
    return bool(user.last_login and (ended is None or user.last_login > ended))


def ldap_accounts_due():
    """LDAP accounts to read again now: those with a live token or a sign-in recent enough
    for a live session, and any not read for a day."""
    now = timezone.now()
    live_token = Q(
        api_tokens__revoked_at__isnull=True,
        api_tokens__expires_at__gt=now,
    )
    recent = Q(last_login__gt=now - timedelta(seconds=settings.SESSION_COOKIE_AGE))
    stale = Q(account__directory_checked_at__isnull=True) | Q(
        account__directory_checked_at__lt=now - timedelta(days=1)
    )
    return (
        get_user_model()
        .objects.filter(account__source=AccountSource.LDAP, is_active=True)
        .filter(live_token | recent | stale)
        .distinct()
        .order_by("pk")
    )


def ldap_offboarding_sync() -> dict[str, int]:
    """Read the directory again for the accounts due; stop at the first outage."""
    counts: dict[str, int] = {}
    for user in ldap_accounts_due():
        try:
            outcome = ldap_account_sync(user=user)
        except DirectoryUnavailable:
            counts["directory unavailable"] = 1
            break
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
