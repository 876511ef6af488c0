"""Change management: the system an environment's deployments open change requests in,
and the change request each deployment opened there."""

from __future__ import annotations

from django.db import models

from portal.core import sizes
from portal.core.crypto import EncryptedTextField


class ChangeSystemKind(models.TextChoices):
    SERVICENOW = "servicenow", "ServiceNow (Table API, change_request)"
    WEBHOOK = "webhook", "Signed webhook (generic)"


class ChangeSystem(models.Model):
    """Where deployments to a protected environment open their change requests."""

    environment = models.OneToOneField(
        "portal.Environment", on_delete=models.CASCADE, related_name="change_system"
    )
    name = models.CharField(max_length=100, help_text="e.g. 'ServiceNow (prod)'.")
    kind = models.CharField(max_length=16, choices=ChangeSystemKind.choices)
    url = models.CharField(
        max_length=sizes.LINE,
        help_text="ServiceNow: the instance, e.g. https://acme.service-now.com. "
        "Webhook: the URL every event is POSTed to.",
    )
    username = models.CharField(max_length=150, blank=True, help_text="ServiceNow only.")
    secret = EncryptedTextField(
        blank=True,
        help_text="ServiceNow: the password. Webhook: the HMAC secret the receiver checks. "
        "Stored encrypted; never shown again.",
    )
    assignment_group = models.CharField(max_length=100, blank=True)
    require_approved = models.BooleanField(
        default=True,
        help_text="A deployment starts only once its change is approved in the system "
        "(read back at approval) and inside its planned window. Emergency changes skip it.",
    )
    window_hours = models.PositiveSmallIntegerField(
        default=4, help_text="The planned window asked for: from the request, this long."
    )
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.name} for {self.environment}"


class ChangeTicket(models.Model):
    """The change request one deployment opened, as last read back."""

    deployment = models.OneToOneField(
        "releases.Deployment", on_delete=models.CASCADE, related_name="change_ticket"
    )
    system = models.ForeignKey(ChangeSystem, on_delete=models.PROTECT, related_name="tickets")
    external_id = models.CharField(max_length=100, help_text="sys_id, or the webhook's id.")
    number = models.CharField(max_length=100)
    state = models.CharField(max_length=32, blank=True)
    approval = models.CharField(max_length=32, blank=True)
    planned_start = models.DateTimeField(null=True, blank=True)
    planned_end = models.DateTimeField(null=True, blank=True)
    emergency = models.BooleanField(default=False)
    emergency_reason = models.CharField(max_length=sizes.LINE, blank=True)
    outcome = models.CharField(
        max_length=16, blank=True, help_text="successful, unsuccessful or canceled, once closed."
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.number} ({self.state}) for deployment #{self.deployment_id}"
