"""Reads for pages and the API: what runs where, release history, what may come next."""

from __future__ import annotations

from django.db.models import QuerySet

from portal.models import Environment, Service
from releases.choices import DeploymentStatus
from releases.models import Deployment, Release, ReleaseLogChunk


def environment_current_deployment(
    *, service: Service, environment: Environment
) -> Deployment | None:
    """The last deployment that succeeded: what runs there now."""
    return (
        Deployment.objects.select_related("release")
        .filter(service=service, environment=environment, status=DeploymentStatus.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .first()
    )


def service_environments(*, service: Service) -> list[Environment]:
    return list(Environment.objects.filter(targets__service=service).order_by("order"))


def service_overview(*, service: Service) -> list[dict]:
    """Per environment of the service: what runs there and what is in flight."""
    rows = []
    for environment in service_environments(service=service):
        rows.append(
            {
                "environment": environment,
                "current": environment_current_deployment(service=service, environment=environment),
                "rollback_to": environment_rollback_candidate(
                    service=service, environment=environment
                ),
                "active": Deployment.objects.filter(
                    service=service,
                    environment=environment,
                    status__in=[
                        DeploymentStatus.PENDING,
                        DeploymentStatus.DEPLOYING,
                        DeploymentStatus.ROLLING_OUT,
                    ],
                )
                .select_related("release")
                .first(),
            }
        )
    return rows


def environment_rollback_candidate(*, service: Service, environment: Environment) -> Release | None:
    """The release that last succeeded there before the one running now: one-click rollback."""
    current = environment_current_deployment(service=service, environment=environment)
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


def release_history(*, service: Service, limit: int = 25) -> QuerySet[Release]:
    return (
        Release.objects.filter(service=service)
        .select_related("requested_by")
        .prefetch_related("deployments__environment")
        .order_by("-id")[:limit]
    )


def release_log_since(*, release: Release, offset: int) -> tuple[str, int]:
    """Console text stored from byte `offset` on, and the offset to ask for next."""
    chunks = list(
        ReleaseLogChunk.objects.filter(release=release, offset__gte=offset)
        .order_by("offset")
        .values_list("offset", "text")
    )
    if not chunks:
        return "", offset
    last_offset, last_text = chunks[-1]
    return "".join(text for _, text in chunks), last_offset + len(last_text.encode())
