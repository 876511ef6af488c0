"""API tokens for scripts: issued once, stored as SHA-256, revocable, optionally expiring."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from portal.audit import Actor, audit_record
from portal.models import ApiToken

TOKEN_PREFIX = "slw_"


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def token_issue(
    *, user, name: str, expires_at: datetime | None = None, actor: Actor | None = None
) -> tuple[ApiToken, str]:
    """Create a token; return the row and the raw token, which is never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=raw[:12], token_hash=_digest(raw), expires_at=expires_at
    )
    audit_record(
        actor=actor or Actor.system(),
        action="api_token.issue",
        target=token,
        after={
            "user": user.get_username(),
            "name": name,
            "prefix": token.prefix,
            "expires_at": expires_at,
        },
    )
    return token, raw


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated:
        audit_record(actor=actor, action="api_token.revoke", target=token)
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
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
