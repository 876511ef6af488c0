"""Promotion gates (what must hold in an environment before a release leaves it), their
results and a lead's checklist ticks."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from portal.core import sizes
from releases.choices import GateKind


class PromotionGate(models.Model):
    """Something that must hold in an environment before a release is promoted out of it."""

    environment = models.ForeignKey(
        "portal.Environment",
        on_delete=models.CASCADE,
        related_name="gates",
        help_text="Checked before a release is promoted out of this environment (e.g. Beta).",
    )
    service = models.ForeignKey(
        "portal.Service",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="declared_gates",
        help_text="Only for this service (declared in its slipway.yaml: a sync puts it back as "
        "the file says). Empty: every service leaving the environment.",
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=GateKind.choices)
    soak_minutes = models.PositiveIntegerField(
        default=30,
        help_text="Soak: minutes the release must have run here. Prometheus: the {window}.",
    )
    prometheus_url = models.CharField(
        max_length=sizes.LINE, blank=True, help_text="e.g. http://prometheus.monitoring:9090"
    )
    query = models.TextField(
        blank=True,
        help_text="PromQL giving one value; {service}, {namespace} and {window} are filled in.",
    )
    min_value = models.FloatField(null=True, blank=True)
    max_value = models.FloatField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["environment__order", "order", "id"]
        constraints = [
            # A file's gate is found again by its name, per environment.
            models.UniqueConstraint(
                fields=["environment", "service", "name"],
                condition=models.Q(service__isnull=False),
                name="declared_gate_once",
            )
        ]

    def __str__(self) -> str:
        whose = f" for {self.service}" if self.service_id else ""
        return f"{self.name} ({self.get_kind_display()}) in {self.environment}{whose}"

    def clean(self) -> None:
        if self.kind == GateKind.PROMETHEUS:
            if not self.prometheus_url.startswith(("http://", "https://")):
                raise ValidationError({"prometheus_url": "An http:// or https:// address."})
            if not self.query.strip():
                raise ValidationError({"query": "A PromQL query."})
            if self.min_value is None and self.max_value is None:
                raise ValidationError({"max_value": "Give a minimum, a maximum or both."})


class GateResult(models.Model):
    """One evaluation of one gate for one release, as shown on its page."""

    gate = models.ForeignKey(PromotionGate, on_delete=models.CASCADE, related_name="results")
    release = models.ForeignKey(
        "releases.Release", on_delete=models.CASCADE, related_name="gate_results"
    )
    passed = models.BooleanField()
    detail = models.CharField(max_length=sizes.PARAGRAPH)
    value = models.FloatField(null=True, blank=True)
    checked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["release", "gate", "-id"], name="gate_result_latest")]

    def __str__(self) -> str:
        return f"{self.gate.name} for release {self.release_id}: {self.detail}"


class ChecklistTick(models.Model):
    """A lead's tick of a checklist gate for one release."""

    gate = models.ForeignKey(PromotionGate, on_delete=models.CASCADE, related_name="ticks")
    release = models.ForeignKey(
        "releases.Release", on_delete=models.CASCADE, related_name="checklist_ticks"
    )
    ticked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(max_length=sizes.LINE, blank=True)
    ticked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["gate", "release"], name="tick_once_per_release")
        ]

    def __str__(self) -> str:
        return f"{self.gate.name} ticked for release {self.release_id}"
