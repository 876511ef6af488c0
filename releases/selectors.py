"""Reads for pages and the API: what runs where, release history, the console log."""

from __future__ import annotations

from django.db.models import QuerySet

from portal.models import DeploymentTarget, Environment, Service
from releases.choices import DEPLOYMENT_OPEN, DEPLOYMENT_RUNNING, DeploymentStatus
from releases.models import Deployment, Release, ReleaseLogChunk
from releases.promotion import environment_last_change


def service_environments(*, service: Service) -> list[Environment]:
    return list(Environment.objects.filter(targets__service=service).order_by("order"))


def environment_rollback_candidate(
    *, service: Service, environment: Environment, current: Deployment | None
) -> Release | None:
    """The release that last succeeded there before the one running now: one-click rollback."""
    if current is None:
        return None
    earlier = (
        Deployment.objects.filter(
            service=service, environment=environment, status=DeploymentStatus.SUCCEEDED
        )
        .exclude(release_id=current.release_id)
        .select_related("release")
        .order_by("-finished_at", "-id")
        .first()
    )
    return earlier.release if earlier else None


def service_overview(*, service: Service) -> list[dict]:
    """Per environment of the service: what runs there, what is in flight, what waits,
    and what the cluster runs that Slipway did not deploy (drift)."""
    rows = []
    targets = DeploymentTarget.objects.filter(service=service).select_related("environment")
    for target in targets.order_by("environment__order"):
        environment = target.environment
        last = environment_last_change(service=service, environment=environment)
        current = last if last and last.status == DeploymentStatus.SUCCEEDED else None
        rows.append(
            {
                "environment": environment,
                "target": target,
                "current": current,
                "broken": last if last and last.status != DeploymentStatus.SUCCEEDED else None,
                "rollback_to": environment_rollback_candidate(
                    service=service, environment=environment, current=current
                ),
                "active": Deployment.objects.filter(
                    service=service, environment=environment, status__in=DEPLOYMENT_RUNNING
                )
                .select_related("release", "requested_by")
                .first(),
                "waiting": list(
                    Deployment.objects.filter(
                        service=service,
                        environment=environment,
                        status__in=(DeploymentStatus.QUEUED, DeploymentStatus.AWAITING_APPROVAL),
                    )
                    .select_related("release", "requested_by")
                    .order_by("id")
                ),
                "drift": target.drift,
            }
        )
    return rows


def deployment_waiting_for(deployment: Deployment) -> Deployment | None:
    """For a queued deployment: the running one it waits behind."""
    if deployment.status != DeploymentStatus.QUEUED:
        return None
    return (
        Deployment.objects.select_related("requested_by")
        .filter(
            service_id=deployment.service_id,
            environment_id=deployment.environment_id,
            status__in=DEPLOYMENT_RUNNING,
        )
        .first()
    )


def release_has_open_deployments(release: Release) -> bool:
    return release.deployments.filter(status__in=DEPLOYMENT_OPEN).exists()


def release_history(*, service: Service, limit: int = 25) -> QuerySet[Release]:
    return (
        Release.objects.filter(service=service)
        .select_related("requested_by")
        .prefetch_related("deployments__environment")
        .order_by("-id")[:limit]
    )


def release_log_since(*, release: Release, offset: int) -> tuple[str, int]:
    """Console text stored from byte `offset` on, and the byte offset to ask for next."""
    chunks = list(
        ReleaseLogChunk.objects.filter(release=release, offset__gte=offset)
        .order_by("offset")
        .values_list("text", "end_offset")
    )
    if not chunks:
        return "", offset
    return "".join(text for text, _ in chunks), chunks[-1][1]
