"""Offboarding: people leave the directory, or its groups, without signing in again.

`ldap_offboarding_sync` (beat, every SLIPWAY_LDAP_SYNC_SECONDS) reads the directory again
for every LDAP account with a live token or a recent sign-in, and every LDAP account at
least daily. Someone gone from it (or denied) is deactivated; someone left with no role at
all loses their sessions and tokens. Each is audited once. An unreachable directory
decides nothing.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from doors.directory import DirectoryUnavailable, directory_entry
from portal.access.choices import AccountSource
from portal.access.ldap import LDAP_ACTOR, ldap_roles_sync
from portal.access.models import Account, ApiToken, Membership
from portal.access.teams import membership_remove
from portal.audit.actions import Access
from portal.audit.chain import audit_record


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
            action=Access.OFFBOARD if deactivate else Access.ACCESS_END,
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
