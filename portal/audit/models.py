"""The audit log: append-only, hash-chained events, the anchors that pin its head, and the
record of each walk of the chain."""

from __future__ import annotations

from django.db import models

from portal.audit.choices import ActorType
from portal.core import sizes


class AuditCheck(models.Model):
    """One walk of the audit chain (`verify_audit`, beat daily, or an admin's button)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    events = models.PositiveBigIntegerField(help_text="Events verified before any break.")
    broken_event_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=sizes.LINE, blank=True)
    trigger = models.CharField(max_length=30, help_text="command, beat or an admin's name")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{'intact' if self.ok else 'BROKEN'} at {self.finished_at:%Y-%m-%d %H:%M}"


class AuditAnchor(models.Model):
    """The audit chain's head as published (beat, every SLIPWAY_AUDIT_ANCHOR_SECONDS): also
    written to the log, outside the database. Verification checks the chain still reaches
    the latest anchor, so a tail cut off after it shows. Append-only like the events."""

    created_at = models.DateTimeField()
    last_event_id = models.BigIntegerField()
    last_hash = models.CharField(max_length=64)
    events = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"anchor {self.last_event_id}:{self.last_hash[:12]}…"


class AuditEvent(models.Model):
    """An append-only, hash-chained record of an action or state change.

    PostgreSQL refuses UPDATE, DELETE and TRUNCATE on this table (a trigger, see the
    migration). `hash` covers the event's canonical content and the previous event's
    hash, so `manage.py verify_audit` detects an altered, removed or inserted event.
    Actors and targets are stored by value, not by foreign key, so deleting a user or
    a service never needs to touch the log.
    """

    created_at = models.DateTimeField()
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=sizes.QUOTE)
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=sizes.LINE, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=sizes.LINE, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(
        max_length=16, blank=True, help_text="Which audit key signed it (empty: before keys)."
    )
    # Whose event it is, for who may read it (not part of the hashed content: it decides
    # visibility only, like an index).
    team_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.actor_name} {self.action} {self.target_repr}"
