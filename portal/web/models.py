"""What the web layer keeps between requests: the first answer of a request that must act
once."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.core import sizes


class IdempotencyKey(models.Model):
    """A request that must act once: its caller's key, what it asked, and its first answer.

    The same key with the same request replays `status_code`/`body` (or `location`, for
    pages); with another request it is refused. Kept a day (see portal/idempotency.py).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Empty while the first request runs."
    )
    body = models.JSONField(null=True, blank=True)
    location = models.CharField(max_length=sizes.PARAGRAPH, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} of {self.user_id}"
