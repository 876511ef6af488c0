"""Requests that wait: for a lead's decision (they expire after the environment's approval
timeout) or for the environment to free up (the oldest starts when it does; beat starts
any left waiting)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from releases import dispatch
from releases.choices import DEPLOYMENT_RUNNING, DeploymentStatus
from releases.models import Deployment
from releases.transitions import deployment_transition


def _duration(seconds: int) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def deployment_expire_waiting() -> list[int]:
    """End requests nobody decided within their environment's approval timeout."""
    expired = []
    now = timezone.now()
    waiting = Deployment.objects.select_related("environment").filter(
        status=DeploymentStatus.AWAITING_APPROVAL
    )
    for deployment in waiting:
        timeout = deployment.environment.approval_timeout_seconds
        if deployment.created_at + timezone.timedelta(seconds=timeout) > now:
            continue
        if deployment_transition(
            deployment=deployment,
            to=DeploymentStatus.CANCELLED,
            reason=f"Expired: no lead approved or rejected it within {_duration(timeout)}.",
        ):
            expired.append(deployment.pk)
    return expired


def deployment_start_waiting(*, service_id: int, environment_id: int) -> Deployment | None:
    """Start the oldest deployment queued for this service and environment, if the
    environment is free; otherwise leave it queued for the next try."""
    if Deployment.objects.filter(
        service_id=service_id, environment_id=environment_id, status__in=DEPLOYMENT_RUNNING
    ).exists():
        return None
    queued = (
        Deployment.objects.filter(
            service_id=service_id, environment_id=environment_id, status=DeploymentStatus.QUEUED
        )
        .order_by("id")
        .first()
    )
    if queued is None:
        return None
    try:
        with transaction.atomic():
            if not deployment_transition(deployment=queued, to=DeploymentStatus.PENDING):
                return None
            dispatch.advance_deployment(queued)
    except IntegrityError:
        return None  # someone took the slot meanwhile; their end starts us
    return queued


def deployment_start_all_waiting() -> list[int]:
    """Safety net run by beat: start queued deployments whose environment is free."""
    pairs = (
        Deployment.objects.filter(status=DeploymentStatus.QUEUED)
        .values_list("service_id", "environment_id")
        .distinct()
    )
    started = []
    for service_id, environment_id in pairs:
        deployment = deployment_start_waiting(service_id=service_id, environment_id=environment_id)
        if deployment is not None:
            started.append(deployment.pk)
    return started
