"""Release trains: releases of several services promoted together, in order, to one
environment, with one approval."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from portal.core import sizes


class TrainStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Stopped at a failure"
    CANCELLED = "cancelled", "Cancelled"


class TrainMemberStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for its turn"
    DEPLOYING = "deploying", "Deploying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    NOT_STARTED = "not_started", "Not started (the train stopped)"


TRAIN_OPEN = (TrainStatus.AWAITING_APPROVAL, TrainStatus.RUNNING)


class ReleaseTrain(models.Model):
    name = models.CharField(max_length=100)
    environment = models.ForeignKey(
        "portal.Environment", on_delete=models.PROTECT, related_name="trains"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trains"
    )
    status = models.CharField(
        max_length=24, choices=TrainStatus.choices, default=TrainStatus.AWAITING_APPROVAL
    )
    status_reason = models.TextField(blank=True)
    approval_policy = models.ForeignKey(
        "releases.ApprovalPolicy",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="trains",
        help_text="The environment-wide policy it waited under (none: a lead of each team).",
    )
    run_token = models.UUIDField(default=uuid.uuid4)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=TrainStatus.values), name="train_status_valid"
            )
        ]

    def __str__(self) -> str:
        return f"train #{self.pk} {self.name} to {self.environment}"


class TrainMember(models.Model):
    """One release in a train, at its place; the deployment it started, once it did."""

    train = models.ForeignKey(ReleaseTrain, on_delete=models.CASCADE, related_name="members")
    release = models.ForeignKey("releases.Release", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()
    deployment = models.OneToOneField(
        "releases.Deployment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="train_member",
    )
    status = models.CharField(
        max_length=16, choices=TrainMemberStatus.choices, default=TrainMemberStatus.WAITING
    )
    reason = models.CharField(max_length=sizes.PARAGRAPH, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["train", "position"], name="train_member_position"),
            models.UniqueConstraint(fields=["train", "release"], name="train_member_once"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. release #{self.release_id} in train #{self.train_id}"
