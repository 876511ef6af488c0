"""What the page views share: access checks that raise the right page."""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.shortcuts import get_object_or_404

from portal.access.permissions import require_role, visible
from releases.models import Deployment, Release


def release_or_404(request, pk: int, *related: str) -> Release:
    """A release of the caller's teams (404 for any other: it does not exist for them)."""
    return get_object_or_404(
        visible(Release.objects.select_related("service__team", *related), request.user), pk=pk
    )


def deployment_or_404(request, pk: int) -> Deployment:
    return get_object_or_404(
        visible(
            Deployment.objects.select_related("service__team", "environment", "release"),
            request.user,
        ),
        pk=pk,
    )


def require(request, service, role: str) -> None:
    """The caller must have `role` in the service's team (403 naming it otherwise)."""
    require_role(request.user, service, role)


def int_param(request, name: str, default: int | None = None) -> int | None:
    value = request.GET.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest(f"{name} must be a whole number") from exc
