"""API tokens for scripts: issued once, stored as SHA-256, scoped, expiring, revocable.

Scopes: `read` (GET anything the user may see), `deploy` (build, deploy, promote, roll
back, cancel, withdraw), `approve` (approve or reject, manage freezes). A token may never
do more than its user's roles allow; scopes only narrow it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.access.choices import TokenScope
from portal.access.models import ApiToken
from portal.audit.actions import Access
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.core.errors import Refused

TOKEN_PREFIX = "slw_"
DEFAULT_SCOPES = (TokenScope.READ, TokenScope.DEPLOY)


class TokenRefused(Refused):
    """The token cannot be issued or revoked as asked."""


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_issue(
    *,
    user,
    name: str,
    scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES,
    expires_at: datetime | None = None,
    actor: Actor | None = None,
    context: RequestContext | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; return the row and the raw token, which is never stored.

    Without `expires_at` it expires after SLIPWAY_TOKEN_DAYS (90)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise TokenRefused("Give the token a name of 1 to 100 characters.")
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(TokenScope.values)
    if not scopes or unknown:
        raise TokenRefused(f"Scopes are {', '.join(TokenScope.values)}; give at least one.")
    now = timezone.now()
    expires_at = expires_at or now + timedelta(days=settings.SLIPWAY_TOKEN_DAYS)
    if expires_at <= now:
        raise TokenRefused("The expiry must be in the future.")
    longest = settings.SLIPWAY_TOKEN_MAX_DAYS
    if expires_at > now + timedelta(days=longest, minutes=1):
        raise TokenRefused(
            f"A token lives at most {longest} days (SLIPWAY_TOKEN_MAX_DAYS); issue a new one "
            "before it expires."
        )
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=raw[:12],
            token_hash=_digest(raw),
            scopes=scopes,
            expires_at=expires_at,
        )
        audit_record(
            actor=actor or Actor.system(),
            action=Access.TOKEN_ISSUE,
            target=token,
            context=context,
            after={
                "user": user.get_username(),
                "name": name,
                "prefix": token.prefix,
                "scopes": scopes,
                "expires_at": expires_at,
            },
        )
    return token, raw


@transaction.atomic
def token_revoke(
    *, token: ApiToken, actor: Actor, context: RequestContext | None = None
) -> ApiToken:
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated:
        audit_record(
            actor=actor,
            action=Access.TOKEN_REVOKE,
            target=token,
            context=context,
            after={"user": token.user.get_username(), "prefix": token.prefix},
        )
    token.refresh_from_db()
    return token


def token_authenticate(raw: str) -> ApiToken | None:
    """The live token for `raw`, or None if unknown, revoked, expired or its user inactive."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=_digest(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    now = timezone.now()
    if token is None or (token.expires_at and token.expires_at <= now):
        return None
    if token.created_at + timedelta(days=settings.SLIPWAY_TOKEN_MAX_DAYS) <= now:
        return None  # older than the longest life allowed now (the setting may have shrunk)
    # At most one write a minute per token: the page shows "last used" to the minute.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
