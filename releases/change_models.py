"""Change management: the system an environment's deployments open change requests in,
and the change request each deployment opened there."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from doors.changes import JSM_STATUSES, JiraSettings
from portal.core import sizes
from portal.core.crypto import EncryptedTextField


class ChangeSystemKind(models.TextChoices):
    SERVICENOW = "servicenow", "ServiceNow (Table API, change_request)"
    WEBHOOK = "webhook", "Signed webhook (generic)"
    JIRA = "jira", "Jira Service Management (change requests)"


JIRA_REQUIRED = ("service_desk_id", "request_type_id", "planned_start_field", "planned_end_field")
JIRA_KNOWN = (*JIRA_REQUIRED, "change_type_field", "statuses")


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
        "Jira: the site, e.g. https://acme.atlassian.net. "
        "Webhook: the URL every event is POSTed to.",
    )
    username = models.CharField(
        max_length=150, blank=True, help_text="ServiceNow: the user. Jira: the account's e-mail."
    )
    secret = EncryptedTextField(
        blank=True,
        help_text="ServiceNow: the password. Jira: the API token. Webhook: the HMAC secret the "
        "receiver checks. Stored encrypted; never shown again.",
    )
    jira = models.JSONField(
        "Jira settings",
        default=dict,
        blank=True,
        help_text='Jira only: {"service_desk_id": "4", "request_type_id": "38", '
        '"planned_start_field": "customfield_10040", "planned_end_field": "customfield_10041", '
        '"change_type_field": "customfield_10005" (optional), "statuses": {"implement": '
        '"Implementing", "successful": "Completed", "unsuccessful": "Failed", "canceled": '
        '"Canceled"} (optional: the statuses of your change workflow)}. docs/change-management.md',
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

    def clean(self) -> None:
        if self.kind == ChangeSystemKind.JIRA:
            self.jira_settings()

    def jira_settings(self) -> JiraSettings:
        """The Jira settings, checked; ValidationError naming what is missing or unknown."""
        given = self.jira if isinstance(self.jira, dict) else {}
        unknown = sorted(set(given) - set(JIRA_KNOWN))
        missing = [key for key in JIRA_REQUIRED if not str(given.get(key) or "").strip()]
        statuses = given.get("statuses") or {}
        if unknown or missing or not isinstance(statuses, dict):
            said = []
            if missing:
                said.append(f"missing {', '.join(missing)}")
            if unknown:
                said.append(f"unknown {', '.join(unknown)} (known: {', '.join(JIRA_KNOWN)})")
            if not isinstance(statuses, dict):
                said.append("statuses must map implement, successful, unsuccessful, canceled")
            raise ValidationError({"jira": "; ".join(said)})
        bad = sorted(set(statuses) - set(JSM_STATUSES))
        if bad:
            raise ValidationError(
                {"jira": f"statuses: unknown {', '.join(bad)} (known: {', '.join(JSM_STATUSES)})"}
            )
        return JiraSettings(
            **{key: str(given[key]).strip() for key in JIRA_REQUIRED},
            change_type_field=str(given.get("change_type_field") or "").strip(),
            statuses=tuple({**JSM_STATUSES, **statuses}.items()),
        )


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
