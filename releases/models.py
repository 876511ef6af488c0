"""Releases (one build of one commit, one image digest), their console log, and
deployments (one release rolled out to one environment)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from portal.core import sizes
from portal.core.images import DIGEST_PATTERN
from releases.choices import (
    DEPLOYMENT_RUNNING,
    DEPLOYMENT_WAITING,
    DeploymentKind,
    DeploymentStatus,
    GateKind,
    ReleaseStatus,
)


class Release(models.Model):
    """One Jenkins build of one ref of a service, and the image digest it produced.

    Built once, never rebuilt: `queue_item_id` and `build_number` are recorded before
    the next step, so a retried or resumed task follows them instead of triggering again.
    """

    service = models.ForeignKey("portal.Service", on_delete=models.PROTECT, related_name="releases")
    ref = models.CharField(max_length=sizes.QUOTE, help_text="Branch, tag or commit asked for.")
    commit_sha = models.CharField(max_length=64, blank=True)
    commit_time = models.DateTimeField(
        null=True, blank=True, help_text="When the built commit was made (from Jenkins's git data)."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="releases",
    )
    status = models.CharField(
        max_length=16, choices=ReleaseStatus.choices, default=ReleaseStatus.REQUESTED
    )
    status_reason = models.TextField(blank=True, help_text="Why it failed or was cancelled.")
    progress = models.CharField(
        max_length=sizes.LINE,
        blank=True,
        help_text="What Jenkins says while it waits (queue 'why').",
    )

    jenkins_server = models.ForeignKey(
        "portal.JenkinsServer", on_delete=models.PROTECT, related_name="releases"
    )
    jenkins_job = models.CharField(max_length=sizes.LINE)
    queue_item_id = models.BigIntegerField(null=True, blank=True)
    build_number = models.IntegerField(null=True, blank=True)
    build_url = models.CharField(max_length=sizes.PARAGRAPH, blank=True)
    build_result = models.CharField(max_length=16, blank=True)
    image_repository = models.CharField(max_length=sizes.LINE)
    image_digest = models.CharField(max_length=71, blank=True)
    log_offset = models.BigIntegerField(default=0, help_text="Next console byte to fetch.")

    deploy_after_build = models.ForeignKey(
        "portal.Environment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Deploy here as soon as the build succeeds.",
    )
    cancel_requested = models.BooleanField(default=False)
    run_token = models.UUIDField(
        default=uuid.uuid4, help_text="Only tasks carrying this token may advance it."
    )
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Alive until then: a run past it (and the grace) is resumed.",
    )
    resume_count = models.PositiveIntegerField(
        default=0, help_text="How many times a lost worker's run was resumed."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    build_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ReleaseStatus.values), name="release_status_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(status=ReleaseStatus.BUILT)
                | models.Q(image_digest__regex=f"^{DIGEST_PATTERN}$"),
                name="release_built_has_digest",
            ),
        ]
        indexes = [
            models.Index(fields=["status"]),
            models.Index(fields=["service", "-id"], name="release_service_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.service.slug} #{self.pk} ({self.ref})"

    @property
    def image(self) -> str:
        """The image by digest, the only way Slipway ever deploys it."""
        return f"{self.image_repository}@{self.image_digest}" if self.image_digest else ""


class ReleaseLogChunk(models.Model):
    """A piece of the Jenkins console, addressed by byte offsets in the whole log.

    `text` is what the bytes decode to (NUL and invalid UTF-8 replaced), so its length in
    UTF-8 may differ from the bytes it stands for: `end_offset` is where the next chunk
    starts in Jenkins's byte stream.
    """

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="log_chunks")
    offset = models.BigIntegerField()
    end_offset = models.BigIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["offset"]
        constraints = [
            models.UniqueConstraint(fields=["release", "offset"], name="log_chunk_unique_offset")
        ]

    def __str__(self) -> str:
        return f"log of {self.release_id} at {self.offset}"


class Approval(models.Model):
    """A lead's decision on a deployment to a protected environment."""

    deployment = models.OneToOneField(
        "Deployment", on_delete=models.PROTECT, related_name="approval"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals"
    )
    approved = models.BooleanField()
    comment = models.CharField(max_length=sizes.PARAGRAPH, blank=True)
    decided_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        verdict = "approved" if self.approved else "rejected"
        return f"{verdict} by {self.decided_by} ({self.deployment})"


class Deployment(models.Model):
    """One release rolled out to one environment: a Helm upgrade and the rollout after it."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="deployments")
    target = models.ForeignKey(
        "portal.DeploymentTarget", on_delete=models.PROTECT, related_name="deployments"
    )
    # environment and service repeat what target says: the partial unique index below
    # ("one in flight per service and environment") can only cover this table's columns.
    environment = models.ForeignKey(
        "portal.Environment", on_delete=models.PROTECT, related_name="deployments"
    )
    service = models.ForeignKey(
        "portal.Service", on_delete=models.PROTECT, related_name="deployments"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deployments",
    )
    kind = models.CharField(
        max_length=16, choices=DeploymentKind.choices, default=DeploymentKind.DEPLOY
    )
    status = models.CharField(
        max_length=24, choices=DeploymentStatus.choices, default=DeploymentStatus.PENDING
    )
    status_reason = models.TextField(blank=True)
    progress = models.JSONField(
        default=dict, blank=True, help_text="Latest rollout progress for the page."
    )
    helm_revision = models.IntegerField(null=True, blank=True)
    previous_revision = models.IntegerField(null=True, blank=True)
    rolled_back_to_revision = models.IntegerField(null=True, blank=True)
    image = models.CharField(max_length=400, help_text="repo@sha256:… deployed")
    gate_override = models.JSONField(
        null=True,
        blank=True,
        help_text="A lead's reason to promote past failing gates, and the gates it passed.",
    )
    freeze_override = models.JSONField(
        null=True,
        blank=True,
        help_text="The freeze a lead overrode to request it, with their reason.",
    )
    values = models.JSONField(
        default=list,
        blank=True,
        help_text="The Helm values layers it was deployed with (for previews and history).",
    )
    verified_images = models.JSONField(
        default=list,
        blank=True,
        help_text="What the cluster holds after the rollout: each container's image "
        "(and the pods' imageID where pods exist).",
    )
    run_token = models.UUIDField(default=uuid.uuid4)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resume_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=DeploymentStatus.values),
                name="deployment_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=DeploymentKind.values), name="deployment_kind_valid"
            ),
            # At most one deployment running per service and environment; a request
            # waiting for approval or for the slot holds nothing.
            models.UniqueConstraint(
                fields=["service", "environment"],
                condition=models.Q(status__in=DEPLOYMENT_RUNNING),
                name="deployment_one_running_per_service_environment",
            ),
            # At most one waiting request per release and environment.
            models.UniqueConstraint(
                fields=["release", "environment"],
                condition=models.Q(status__in=DEPLOYMENT_WAITING),
                name="deployment_one_waiting_per_release_environment",
            ),
        ]
        indexes = [
            # "What runs there now": one index lookup per service and environment, however
            # long the history (see releases/promotion.py CHANGED_WHAT_RUNS).
            models.Index(
                models.F("service"),
                models.F("environment"),
                models.F("finished_at").desc(nulls_last=True),
                models.F("id").desc(),
                name="deployment_last_change",
                condition=models.Q(
                    status__in=[DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED]
                ),
            ),
            models.Index(fields=["service", "-id"], name="deployment_service_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.release} → {self.environment}"


class PromotionGate(models.Model):
    """Something that must hold in an environment before a release is promoted out of it."""

    environment = models.ForeignKey(
        "portal.Environment",
        on_delete=models.CASCADE,
        related_name="gates",
        help_text="Checked before a release is promoted out of this environment (e.g. Beta).",
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

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()}) in {self.environment}"

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
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="gate_results")
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
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="checklist_ticks")
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
