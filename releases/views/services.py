"""The dashboard (every service in every environment) and a service's page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.access.choices import Role
from portal.access.permissions import has_role, visible_teams
from portal.audit.chain import actor_and_context
from portal.catalog.selectors import visible_services
from portal.web.once import acts_once
from portal.web.pages import refusals_as_messages
from releases import selectors, states
from releases.builds import release_create
from releases.views.common import require


@login_required
def dashboard(request):
    """Which release runs in which environment of every service of the caller's teams."""
    team, search = request.GET.get("team", ""), request.GET.get("q", "").strip()
    changed_today, failing = request.GET.get("today") == "1", request.GET.get("failing") == "1"
    shown = states.dashboard(
        user=request.user, team=team, search=search, changed_today=changed_today,
        failing=failing, page=request.GET.get("page", 1),
    )  # fmt: skip
    query = request.GET.copy()
    query.pop("page", None)
    # A live refresh of the table asks for its rows only (templates/_dashboard_rows.html).
    rows_only = request.htmx and request.htmx.target == "dashboard-rows"
    return render(
        request,
        "releases/_dashboard_rows.html" if rows_only else "releases/dashboard.html",
        {
            "page": shown,
            "environments": shown.environments,
            "rows": shown.rows,
            "teams": [] if rows_only else list(visible_teams(request.user).order_by("name")),
            "team": team,
            "q": search,
            "today": changed_today,
            "failing": failing,
            "filtered": bool(team or search or changed_today or failing),
            "query": query.urlencode(),
        },
    )


@login_required
def service_detail(request, slug: str):
    service = get_object_or_404(visible_services(request.user), slug=slug)
    environments = states.service_environments(service=service)
    return render(
        request,
        "releases/service_detail.html",
        {
            "service": service,
            "overview": states.service_overview(service=service),
            "releases": selectors.release_history(service=service),
            "first_environment": environments[0] if environments else None,
            "can_build": has_role(request.user, service, Role.DEVELOPER),
            "can_roll_back": has_role(request.user, service, Role.LEAD),
            "tab": "overview",
        },
    )


@login_required
@require_POST
@acts_once
def release_new(request, slug: str):
    service = get_object_or_404(visible_services(request.user), slug=slug)
    require(request, service, Role.DEVELOPER)
    environments = states.service_environments(service=service)
    release = None
    with refusals_as_messages(request):
        release = release_create(
            service=service,
            ref=request.POST.get("ref", ""),
            user=request.user,
            deploy_to=environments[0] if environments else None,
            **actor_and_context(request),
        )
    if release is None:
        return redirect("service-detail", slug=slug)
    return redirect("release-detail", pk=release.pk)


@login_required
def service_audit(request, slug: str):
    """The service's audit tab: its own events and those of its releases and deployments."""
    service = get_object_or_404(visible_services(request.user), slug=slug)
    before = request.GET.get("before", "")
    events = selectors.events_of_service(service)
    if before.isdigit():
        events = events.filter(pk__lt=int(before))
    chunk = list(events[:51])
    return render(
        request,
        "releases/service_audit.html",
        {
            "service": service,
            "events": chunk[:50],
            "older": chunk[49].pk if len(chunk) > 50 else None,
            "tab": "audit",
        },
    )
