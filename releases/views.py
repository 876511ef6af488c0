"""Pages for services and releases. Thin: check the role, call one workflow function,
render. Every action form carries a one-time token (portal/once.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.audit import Actor, RequestContext
from portal.choices import Role
from portal.models import Environment, Service
from portal.once import acts_once
from portal.permissions import has_role
from releases import selectors
from releases.builds import release_cancel, release_create
from releases.choices import DEPLOYMENT_WITHDRAWABLE, RELEASE_ACTIVE, DeploymentKind
from releases.deployments import deployment_decide, deployment_start, deployment_withdraw
from releases.errors import ReleaseRefused
from releases.models import Deployment, Release
from releases.promotion import (
    decision_refusal,
    deployment_role_needed,
    release_promotion_target,
    withdrawal_refusal,
)


def _require(user, service: Service, role: str) -> None:
    if not has_role(user, service, role):
        raise PermissionDenied(f"You need the {role} role in {service.team} for this.")


@login_required
def service_detail(request, slug: str):
    service = get_object_or_404(Service.objects.select_related("team"), slug=slug)
    _require(request.user, service, Role.VIEWER)
    environments = selectors.service_environments(service=service)
    return render(
        request,
        "releases/service_detail.html",
        {
            "service": service,
            "overview": selectors.service_overview(service=service),
            "releases": selectors.release_history(service=service),
            "first_environment": environments[0] if environments else None,
            "can_build": has_role(request.user, service, Role.DEVELOPER),
            "can_roll_back": has_role(request.user, service, Role.LEAD),
        },
    )


@login_required
@require_POST
@acts_once
def release_new(request, slug: str):
    service = get_object_or_404(Service, slug=slug)
    _require(request.user, service, Role.DEVELOPER)
    environments = selectors.service_environments(service=service)
    try:
        release = release_create(
            service=service,
            ref=request.POST.get("ref", ""),
            user=request.user,
            actor=Actor.from_request(request),
            context=RequestContext.from_request(request),
            deploy_to=environments[0] if environments else None,
        )
    except ReleaseRefused as exc:
        messages.error(request, str(exc))
        return redirect("service-detail", slug=slug)
    return redirect("release-detail", pk=release.pk)


def _release_context(request, release: Release) -> dict:
    deployments = list(
        release.deployments.select_related("environment", "service__team", "requested_by")
        .select_related("approval__decided_by")
        .order_by("id")
    )
    for deployment in deployments:
        deployment.may_decide = (
            deployment.status == "awaiting_approval"
            and decision_refusal(deployment=deployment, user=request.user) is None
        )
        deployment.may_withdraw = (
            deployment.status in DEPLOYMENT_WITHDRAWABLE
            and withdrawal_refusal(deployment=deployment, user=request.user) is None
        )
        deployment.waiting_for = selectors.deployment_waiting_for(deployment)
    return {
        "release": release,
        "active": release.status in RELEASE_ACTIVE,
        "deployments": deployments,
        "deployments_active": selectors.release_has_open_deployments(release),
        "next_environment": release_promotion_target(release=release),
        "can_act": has_role(request.user, release.service, Role.DEVELOPER),
    }


@login_required
def release_detail(request, pk: int):
    release = get_object_or_404(
        Release.objects.select_related("service__team", "requested_by"), pk=pk
    )
    _require(request.user, release.service, Role.VIEWER)
    return render(request, "releases/release_detail.html", _release_context(request, release))


@login_required
def release_status(request, pk: int):
    """HTMX fragment: status, progress and deployments; polled while anything moves."""
    release = get_object_or_404(Release.objects.select_related("service__team"), pk=pk)
    _require(request.user, release.service, Role.VIEWER)
    return render(request, "releases/_status.html", _release_context(request, release))


@login_required
def release_log(request, pk: int):
    """HTMX fragment: console text from `offset`; the next poll asks from the new offset."""
    release = get_object_or_404(Release.objects.select_related("service__team"), pk=pk)
    _require(request.user, release.service, Role.VIEWER)
    try:
        offset = max(0, int(request.GET.get("offset", "0")))
    except ValueError:
        return HttpResponse("offset must be a whole number", status=400)
    text, next_offset = selectors.release_log_since(release=release, offset=offset)
    return render(
        request,
        "releases/_log.html",
        {
            "release": release,
            "text": text,
            "next_offset": next_offset,
            "more": release.status in RELEASE_ACTIVE,
        },
    )


@login_required
@require_POST
@acts_once
def release_deploy(request, pk: int):
    release = get_object_or_404(Release.objects.select_related("service__team"), pk=pk)
    kind = request.POST.get("kind", DeploymentKind.PROMOTE)
    if kind not in DeploymentKind.values:
        return HttpResponse("kind must be deploy, promote or rollback", status=400)
    _require(request.user, release.service, deployment_role_needed(kind))
    environment = get_object_or_404(Environment, slug=request.POST.get("environment", ""))
    try:
        deployment = deployment_start(
            release=release,
            environment=environment,
            kind=kind,
            user=request.user,
            actor=Actor.from_request(request),
            context=RequestContext.from_request(request),
        )
        waits = (
            " It waits for a lead's approval." if deployment.status == "awaiting_approval" else ""
        )
        messages.success(request, f"Deploying release #{release.pk} to {environment.name}.{waits}")
    except ReleaseRefused as exc:
        messages.error(request, str(exc))
    return redirect("release-detail", pk=release.pk)


@login_required
@require_POST
@acts_once
def release_cancel_view(request, pk: int):
    release = get_object_or_404(Release.objects.select_related("service__team"), pk=pk)
    _require(request.user, release.service, Role.DEVELOPER)
    try:
        release_cancel(
            release=release,
            actor=Actor.from_request(request),
            context=RequestContext.from_request(request),
        )
        messages.success(request, "Cancelling the build.")
    except ReleaseRefused as exc:
        messages.error(request, str(exc))
    return redirect("release-detail", pk=release.pk)


def _visible_deployment(request, pk: int) -> Deployment:
    deployment = get_object_or_404(
        Deployment.objects.select_related("service__team", "environment", "release"), pk=pk
    )
    _require(request.user, deployment.service, Role.VIEWER)
    return deployment


@login_required
@require_POST
@acts_once
def deployment_decide_view(request, pk: int):
    deployment = _visible_deployment(request, pk)
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        return HttpResponse("decision must be approve or reject", status=400)
    try:
        deployment_decide(
            deployment=deployment,
            user=request.user,
            approve=decision == "approve",
            comment=request.POST.get("comment", ""),
            actor=Actor.from_request(request),
            context=RequestContext.from_request(request),
        )
        messages.success(request, f"Deployment #{deployment.pk} {decision}d.")
    except ReleaseRefused as exc:
        messages.error(request, str(exc))
    return redirect("release-detail", pk=deployment.release_id)


@login_required
@require_POST
@acts_once
def deployment_withdraw_view(request, pk: int):
    deployment = _visible_deployment(request, pk)
    try:
        deployment_withdraw(
            deployment=deployment,
            user=request.user,
            actor=Actor.from_request(request),
            context=RequestContext.from_request(request),
        )
        messages.success(request, f"Deployment #{deployment.pk} withdrawn.")
    except ReleaseRefused as exc:
        messages.error(request, str(exc))
    return redirect("release-detail", pk=deployment.release_id)
