"""Releases (one build of one commit, one image digest), their console log, and
deployments (one release rolled out to one environment)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from portal.core import sizes
from portal.core.images import DIGEST_PATTERN
from releases.choices import (
    DEPLOYMENT_RUNNING,
    DEPLOYMENT_WAITING,
    DeploymentKind,
    DeploymentStatus,
    ReleaseStatus,
    RolloutStatus,
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

    # Database defaults too: rows written around the ORM (the bench's COPY, a restore
    # script) get a backend and an empty cursor, not a NULL.
    build_backend = models.CharField(max_length=16, default="jenkins", db_default="jenkins")
    jenkins_server = models.ForeignKey(
        "portal.JenkinsServer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="releases",
    )
    jenkins_job = models.CharField(max_length=sizes.LINE, blank=True)
    drone_server = models.ForeignKey(
        "portal.DroneServer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="releases",
    )
    drone_repository = models.CharField(max_length=200, blank=True, db_default="")
    log_cursor = models.JSONField(
        default=dict, db_default={}, blank=True, help_text="Drone: the steps whose logs are read."
    )
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
    """One release rolled out to one environment: to each of the service's targets there
    (one per cluster), wave after wave (its TargetRollouts)."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="deployments")
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
        default=dict, blank=True, help_text="The current wave's rollout progress, for the page."
    )
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
    approval_policy = models.ForeignKey(
        "releases.ApprovalPolicy",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deployments",
        help_text="The policy it waited under (none: the default, one lead of the team).",
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
            models.Index(fields=["service", "-id"], name="deployment_service_newest"),
            # What ran before in one environment (a service page's one-click rollback, per
            # environment): without it, a service with 600,000 deployments read each
            # environment's in a second.
            models.Index(
                models.F("service"),
                models.F("environment"),
                models.F("finished_at").desc(nulls_last=True),
                models.F("id").desc(),
                name="deployment_succeeded_newest",
                condition=models.Q(status="succeeded"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.release} → {self.environment}"


class TargetRollout(models.Model):
    """One deployment's rollout to one of its targets (one cluster): Helm's revision there,
    what it was deployed with, what runs there after. A deployment's rollouts go wave by
    wave, in the targets' order."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="rollouts")
    target = models.ForeignKey(
        "portal.DeploymentTarget", on_delete=models.PROTECT, related_name="rollouts"
    )
    wave = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=RolloutStatus.choices, default=RolloutStatus.WAITING
    )
    status_reason = models.TextField(blank=True)
    progress = models.JSONField(default=dict, blank=True)
    helm_revision = models.IntegerField(null=True, blank=True)
    previous_revision = models.IntegerField(null=True, blank=True)
    rolled_back_to_revision = models.IntegerField(null=True, blank=True)
    values = models.JSONField(
        default=list,
        blank=True,
        help_text="The Helm values layers it was deployed with (secrets as fingerprints).",
    )
    canary = models.JSONField(
        default=dict,
        db_default={},  # rows written around the ORM (the bench's COPY) too
        blank=True,
        help_text="Canary steps under way on this cluster: the canary Helm release, the step, "
        "its weight and phase, a lead's word (releases/canary.py).",
    )
    verified_images = models.JSONField(
        default=list,
        blank=True,
        help_text="What runs after the rollout: each container's image and its Ready pods' "
        "images and imageIDs.",
    )
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="The environment's bake time after the wave before."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["wave", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "target"], name="rollout_once_per_target"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=RolloutStatus.values), name="rollout_status_valid"
            ),
        ]
        indexes = [
            # "What runs there now": one index lookup per target, however long the history
            # (see releases/promotion.py CHANGED_WHAT_RUNS).
            models.Index(
                models.F("target"),
                models.F("finished_at").desc(nulls_last=True),
                models.F("id").desc(),
                name="rollout_last_change",
                condition=models.Q(status__in=[RolloutStatus.SUCCEEDED, RolloutStatus.FAILED]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.deployment} on {self.target.cluster}"


# Gates live in their own module; Django finds models through this one.
from releases.analysis_models import (  # noqa: E402
    AnalysisMetric,
    AnalysisTemplate,
    Measurement,
    VerificationRun,
)
from releases.change_models import ChangeSystem, ChangeTicket  # noqa: E402
from releases.gate_models import ChecklistTick, GateResult, PromotionGate  # noqa: E402
from releases.policy_models import ApprovalPolicy, ApprovalRule, ApprovalVote  # noqa: E402
from releases.train_models import ReleaseTrain, TrainMember  # noqa: E402

__all__ = [
    "AnalysisMetric",
    "AnalysisTemplate",
    "Approval",
    "ApprovalPolicy",
    "ApprovalRule",
    "ApprovalVote",
    "ChangeSystem",
    "ChangeTicket",
    "ChecklistTick",
    "Deployment",
    "GateResult",
    "Measurement",
    "PromotionGate",
    "Release",
    "ReleaseLogChunk",
    "ReleaseTrain",
    "TargetRollout",
    "TrainMember",
    "VerificationRun",
]
