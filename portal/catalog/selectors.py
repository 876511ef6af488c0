"""Reads of the catalog that depend on who asks."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from portal.access.permissions import team_roles
from portal.catalog.models import Environment, Service


def visible_services(user) -> QuerySet[Service]:
    """Services of the user's teams (every service for a superuser)."""
    services = Service.objects.select_related("team")
    if not user.is_authenticated:
        return services.none()
    if user.is_superuser:
        return services
    return services.filter(team_id__in=list(team_roles(user)))


def environment_choices() -> list[tuple[str, str]]:
    """Every environment as (slug, name), in path order: what a filter by environment
    knows, and what the API's schema names as its values."""
    return list(Environment.objects.order_by("order").values_list("slug", "name"))


def environment_or_404(slug: str) -> Environment:
    """The environment named `slug`; a 404 naming it otherwise (pages and API alike)."""
    environment = Environment.objects.filter(slug=slug).first()
    if environment is None:
        raise Http404(f"No environment {slug!r}.")
    return environment
