"""Verification after a deployment: analysis templates (Prometheus queries measured at an
interval, each judged by a success and a failure condition), the runs that measure a
deployment, and every measurement taken (see releases/verifying.py and docs/verification.md).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from portal.core import sizes
from releases.analysis import ConditionError, parse_condition
from releases.choices import MeasurementPhase, VerificationStatus


class AnalysisTemplate(models.Model):
    """What to measure in an environment after each deployment there (for one service, or
    for every service when none is named)."""

    environment = models.ForeignKey(
        "portal.Environment", on_delete=models.CASCADE, related_name="analysis_templates"
    )
    service = models.ForeignKey(
        "portal.Service",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="analysis_templates",
        help_text="Only this service; empty: every service deployed to the environment.",
    )
    name = models.CharField(max_length=100)
    prometheus_url = models.CharField(
        max_length=sizes.LINE, help_text="e.g. http://prometheus.monitoring:9090"
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["environment__order", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} in {self.environment}"

    def clean(self) -> None:
        if not self.prometheus_url.startswith(("http://", "https://")):
            raise ValidationError({"prometheus_url": "An http:// or https:// address."})


class AnalysisMetric(models.Model):
    """One query of a template: measured `count` times, `interval_seconds` apart, after
    `initial_delay_seconds`; each value is judged by the conditions (`result < 0.05`)."""

    template = models.ForeignKey(AnalysisTemplate, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=100)
    query = models.TextField(
        help_text="PromQL giving one value; {service}, {namespace}, {release} and {digest} "
        "are filled in."
    )
    interval_seconds = models.PositiveIntegerField(default=60)
    count = models.PositiveIntegerField(default=5, help_text="How many measurements.")
    initial_delay_seconds = models.PositiveIntegerField(default=0)
    success_condition = models.CharField(
        max_length=sizes.QUOTE, blank=True, help_text="e.g. result < 0.05"
    )
    failure_condition = models.CharField(
        max_length=sizes.QUOTE, blank=True, help_text="e.g. result >= 0.1"
    )
    failure_limit = models.PositiveIntegerField(
        default=0, help_text="Failed measurements tolerated; one more fails the run."
    )
    inconclusive_limit = models.PositiveIntegerField(
        default=0,
        help_text="Inconclusive measurements (no data, neither condition) tolerated; one "
        "more makes the run inconclusive.",
    )
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.template.name})"

    def clean(self) -> None:
        if not self.query.strip():
            raise ValidationError({"query": "A PromQL query."})
        if not self.success_condition.strip() and not self.failure_condition.strip():
            raise ValidationError({"success_condition": "Give a success or a failure condition."})
        if self.count < 1:
            raise ValidationError({"count": "At least one measurement."})
        if self.count > 1 and self.interval_seconds < 1:
            raise ValidationError({"interval_seconds": "At least one second between measurements."})
        for field in ("success_condition", "failure_condition"):
            try:
                parse_condition(getattr(self, field))
            except ConditionError as exc:
                raise ValidationError({field: str(exc)}) from exc


class VerificationRun(models.Model):
    """One verification of one deployment (its release's digest in its environment). Every
    deployment gets a fresh one; a lead may re-run it (a new run) or skip it."""

    deployment = models.ForeignKey(
        "releases.Deployment", on_delete=models.CASCADE, related_name="verifications"
    )
    release = models.ForeignKey(
        "releases.Release", on_delete=models.CASCADE, related_name="verifications"
    )
    environment = models.ForeignKey(
        "portal.Environment", on_delete=models.PROTECT, related_name="verifications"
    )
    service = models.ForeignKey(
        "portal.Service", on_delete=models.CASCADE, related_name="verifications"
    )
    status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.RUNNING
    )
    reason = models.TextField(blank=True)
    judgement = models.CharField(
        max_length=16,
        blank=True,
        help_text="A lead's word on an inconclusive run: continue or roll back.",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    rollback = models.ForeignKey(
        "releases.Deployment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The rollback this run's failure started.",
    )
    canary_step = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Set for the analysis of a canary step (1 for the first): it judges the step, "
        "and never makes the release verified in the environment.",
    )
    canary_weight = models.PositiveSmallIntegerField(null=True, blank=True)
    next_at = models.DateTimeField(null=True, blank=True, help_text="The next measurement due.")
    run_token = models.UUIDField(
        default=uuid.uuid4, help_text="The measuring chain that owns the run (a resume rotates it)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["release", "environment", "-id"], name="verification_latest"),
            models.Index(fields=["service", "environment", "-id"], name="verification_env"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=VerificationStatus.values),
                name="verification_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Verification #{self.pk} of deployment #{self.deployment_id}"


class Measurement(models.Model):
    """One value of one metric in one run, and how it was judged."""

    run = models.ForeignKey(VerificationRun, on_delete=models.CASCADE, related_name="measurements")
    metric = models.ForeignKey(
        AnalysisMetric, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    metric_name = models.CharField(max_length=100)
    sequence = models.PositiveIntegerField(help_text="1 for the first measurement of the metric.")
    query = models.TextField(help_text="The query as sent, placeholders filled.")
    phase = models.CharField(max_length=16, choices=MeasurementPhase.choices)
    value = models.FloatField(null=True, blank=True)
    detail = models.CharField(max_length=sizes.PARAGRAPH, blank=True)
    taken_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["metric_name", "sequence"]
        constraints = [
            # A doubled task measures once: the second insert of the same slot fails.
            models.UniqueConstraint(
                fields=["run", "metric", "sequence"], name="measurement_once_per_slot"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric_name} #{self.sequence}: {self.phase}"
