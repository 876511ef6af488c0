"""Rates for actions that make Slipway call out on someone's behalf (a gate check asks
Prometheus, a manifest preview runs helm): counted per signed-in user (django-ratelimit,
in the shared cache), so nobody can keep workers or a Prometheus busy by clicking."""

from __future__ import annotations

from django.conf import settings
from django_ratelimit.core import is_ratelimited
from rest_framework.exceptions import PermissionDenied, Throttled

from portal.access.models import ApiToken


def over_rate(request, group: str) -> bool:
    """Count one `group` action for the caller; True when past SLIPWAY_CHECK_RATE."""
    return is_ratelimited(
        request,
        group=f"slipway.{group}",
        key="user_or_ip",
        rate=settings.SLIPWAY_CHECK_RATE,
        increment=True,
    )


def api_rate(request, group: str) -> None:
    """The API's form: 429 with Retry-After past the rate."""
    if over_rate(request, group):
        raise Throttled(
            wait=60, detail=f"At most {settings.SLIPWAY_CHECK_RATE} of these; try again soon."
        )


def require_scope(request, scope: str, what: str) -> None:
    """A token must carry `scope` for `what` (an override needs `approve`, even on a
    `deploy` call); a browser session is not scoped."""
    token = request.auth
    if isinstance(token, ApiToken) and scope not in token.scopes:
        raise PermissionDenied(
            f"{what} needs the '{scope}' scope; this token has {', '.join(token.scopes)}."
        )
