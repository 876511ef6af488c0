"""Where a team is told about its releases (channels) and every try to tell it (attempts)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from notifications.events import EventKind
from portal.core import sizes
from portal.core.crypto import EncryptedTextField


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (JSON, HMAC-SHA256 signed)"
    SLACK = "slack", "Slack incoming webhook"
    DINGTALK = "dingtalk", "DingTalk robot"
    WECOM = "wecom", "WeCom robot"


class Channel(models.Model):
    """A team's destination for notifications of the kinds it subscribes to."""

    team = models.ForeignKey(
        "portal.Team", on_delete=models.CASCADE, related_name="notification_channels"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    # Slack, DingTalk and WeCom put their credential in the URL itself.
    url = EncryptedTextField(help_text="Stored encrypted; never shown again.")
    secret = EncryptedTextField(
        blank=True,
        help_text="Webhook: HMAC key of the signature header. DingTalk: the robot's SEC… "
        "signing secret. Stored encrypted; never shown again.",
    )
    events = ArrayField(
        models.CharField(max_length=32, choices=EventKind.choices),
        default=list,
        blank=True,
        help_text="The event kinds sent to this channel.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="channel_unique_name_per_team")
        ]

    def __str__(self) -> str:
        return f"{self.team.slug}/{self.name} ({self.get_kind_display()})"


class AttemptStatus(models.TextChoices):
    SENT = "sent", "Sent"
    RETRYING = "retrying", "Failed, will retry"
    FAILED = "failed", "Failed, gave up"


class Attempt(models.Model):
    """One try to deliver one audit event's notification to one channel."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="attempts")
    audit_event_id = models.BigIntegerField(db_index=True)
    event_kind = models.CharField(max_length=32, choices=EventKind.choices)
    summary = models.CharField(max_length=sizes.LINE)
    number = models.PositiveSmallIntegerField(help_text="1 for the first try.")
    status = models.CharField(max_length=16, choices=AttemptStatus.choices)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=sizes.LINE, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["channel", "-id"], name="attempt_channel_recent")]

    def __str__(self) -> str:
        return f"{self.channel} #{self.audit_event_id} try {self.number}: {self.status}"
