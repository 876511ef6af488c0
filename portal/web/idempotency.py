"""Exactly-once requests: the same key from the same caller acts once.

The first request with a key claims it (a committed row, unique per user and key) before
it acts; a repeat with the same request gets the first answer again, one with another
request is refused, and one that arrives while the first still runs waits for its answer.
Keys are forgotten after SLIPWAY_IDEMPOTENCY_HOURS. Used by every POST of the API
(`Idempotency-Key` header) and by the pages' action forms (a one-time form token).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.core import sizes
from portal.web.models import IdempotencyKey

# Printable ASCII without the space; the schema states the same pattern.
KEY_PATTERN = "^[!-~]{1,255}$"
KEY_RE = re.compile(KEY_PATTERN)
WAIT_FOR_FIRST_SECONDS = 10.0
# A claim whose request never answered (its process died) is taken over after this.
ABANDONED_AFTER_SECONDS = 120.0


class KeyInvalid(ValueError):
    """The key is not 1 to 255 printable ASCII characters."""


class KeyReused(Exception):
    """The key was used before for another request."""


class KeyBusy(Exception):
    """The first request with this key is still running."""


@dataclass(frozen=True)
class Replay:
    """The first answer to a request with this key."""

    status_code: int
    body: object
    location: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What a request asks: method, path and body (JSON compared by content)."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True).encode()
    except (ValueError, RecursionError):
        canonical = body
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


def _expiry_cutoff():
    return timezone.now() - timezone.timedelta(hours=settings.SLIPWAY_IDEMPOTENCY_HOURS)


def idempotency_claim(*, user, key: str, fingerprint: str) -> IdempotencyKey | Replay:
    """Claim `key` for this request, or return the first answer given to it.

    Raises KeyInvalid, KeyReused (another request used the key) or KeyBusy (the first
    request is still running after a short wait). Call outside a transaction: the claim
    must be visible to concurrent requests before this one acts.
    """
    if not KEY_RE.fullmatch(key):
        raise KeyInvalid("Idempotency-Key must be 1 to 255 printable ASCII characters.")
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while True:
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    user=user, key=key, fingerprint=fingerprint, created_at=timezone.now()
                )
        except IntegrityError:
            pass  # someone has it: see what they made of it
        first = IdempotencyKey.objects.filter(user=user, key=key).first()
        if first is None:
            continue  # forgotten meanwhile: claim again
        abandoned = first.status_code is None and first.created_at < timezone.now() - (
            timezone.timedelta(seconds=ABANDONED_AFTER_SECONDS)
        )
        if first.created_at < _expiry_cutoff() or abandoned:
            IdempotencyKey.objects.filter(pk=first.pk, created_at=first.created_at).delete()
            continue
        if first.fingerprint != fingerprint:
            raise KeyReused(
                "This Idempotency-Key was already used for a different request; use a new key "
                "for a new request."
            )
        if first.status_code is not None:
            return Replay(first.status_code, first.body, first.location)
        if time.monotonic() > deadline:
            raise KeyBusy(
                "A request with this Idempotency-Key is still being processed; retry shortly."
            )
        time.sleep(0.05)


def idempotency_complete(
    claim: IdempotencyKey, *, status_code: int, body: object = None, location: str = ""
) -> None:
    """Record the answer to replay. A server error is not recorded: the key is released,
    so the caller's retry acts again."""
    if status_code >= 500:
        idempotency_release(claim)
        return
    IdempotencyKey.objects.filter(pk=claim.pk).update(
        status_code=status_code, body=body, location=location[: sizes.PARAGRAPH]
    )


def idempotency_release(claim: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk).delete()


def idempotency_forget_expired() -> int:
    """Forget keys older than SLIPWAY_IDEMPOTENCY_HOURS (run hourly by beat)."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=_expiry_cutoff()).delete()
    return deleted
