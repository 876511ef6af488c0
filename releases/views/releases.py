"""A release's page: status, timeline, live log and rollout, and what may be done next
(promote with a confirmation of what will change, cancel the build)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.access.choices import Role
from portal.access.permissions import has_role
from portal.audit.chain import actor_and_context
from portal.audit.reads import events_of
from portal.catalog.models import Environment
from portal.core import sizes
from portal.web.limits import over_rate
from portal.web.once import acts_once
from portal.web.pages import refusals_as_messages
from releases import preview, selectors
from releases.builds import release_cancel
from releases.changes import change_system_for
from releases.choices import (
    DEPLOYMENT_OPEN,
    DEPLOYMENT_WITHDRAWABLE,
    RELEASE_ACTIVE,
    DeploymentKind,
    DeploymentStatus,
    VerificationStatus,
)
from releases.deployments import deployment_start
from releases.gates import checklist_tick, describe_failed, gates_check
from releases.models import PromotionGate
from releases.policies import may_decide, policy_state
from releases.promotion import (
    deployment_role_needed,
    release_promotion_target,
    withdrawal_refusal,
)
from releases.timeline import release_timeline
from releases.views.common import int_param, release_or_404, require


def _release_context(request, release) -> dict:
    deployments = list(
        release.deployments.select_related(
            "environment",
            "service__team",
            "requested_by",
            "approval__decided_by",
            "change_ticket__system",
        )
        .prefetch_related("rollouts__target__cluster")
        .order_by("id")
    )
    for deployment in deployments:
        deployment.may_decide = may_decide(deployment, request.user)
        if deployment.status == DeploymentStatus.AWAITING_APPROVAL:
            deployment.policy = policy_state(deployment, candidates=True)
        deployment.may_withdraw = (
            deployment.status in DEPLOYMENT_WITHDRAWABLE
            and withdrawal_refusal(deployment=deployment, user=request.user) is None
        )
        deployment.waiting_for = selectors.deployment_waiting_for(deployment)
        deployment.may_canary = deployment.status == DeploymentStatus.CANARY and has_role(
            request.user, release.service, Role.LEAD
        )
    verifications = selectors.release_verifications(release=release, user=request.user)
    return {
        "verifications": verifications,
        "verifying": any(run.status == VerificationStatus.RUNNING for run in verifications),
        "release": release,
        "service": release.service,
        "active": release.status in RELEASE_ACTIVE,
        "deployments": deployments,
        "deployments_active": any(d.status in DEPLOYMENT_OPEN for d in deployments),
        "timeline": release_timeline(release, deployments),
        "next_environment": _next_environment(release, deployments),
        "can_act": has_role(request.user, release.service, Role.DEVELOPER),
    }


def _next_environment(release, deployments) -> Environment | None:
    """Where the release may be promoted next, unless it is already on its way there."""
    target = release_promotion_target(release=release)
    if target is None or any(
        d.environment_id == target.pk and d.status in DEPLOYMENT_OPEN for d in deployments
    ):
        return None
    return target


@login_required
def release_detail(request, pk: int):
    release = release_or_404(request, pk, "requested_by")
    context = _release_context(request, release)
    context["audit_events"] = list(events_of(release, *context["deployments"]))
    context["audit_targets"] = ",".join(
        f"{row._meta.label}:{row.pk}" for row in (release, *context["deployments"])
    )
    context["links"] = selectors.release_links(release=release)
    context["gates_to"], context["gates"] = selectors.release_gates(release=release)
    context["may_tick"] = has_role(request.user, release.service, Role.LEAD)
    return render(request, "releases/release_detail.html", context)


@login_required
def release_status(request, pk: int):
    """HTMX fragment: status, progress, deployments and timeline; polled while anything moves."""
    release = release_or_404(request, pk, "requested_by")
    return render(request, "releases/_status.html", _release_context(request, release))


@login_required
def release_log(request, pk: int):
    """HTMX fragment: console text from `offset`; the next poll asks from the new offset."""
    release = release_or_404(request, pk)
    offset = int_param(request, "offset", 0)
    if offset < 0:
        return HttpResponse("offset must be 0 or more", status=400)
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


def _kind(request) -> str | None:
    kind = request.POST.get("kind") or request.GET.get("kind") or DeploymentKind.PROMOTE
    return kind if kind in DeploymentKind.values else None


@login_required
def release_confirm(request, pk: int):
    """Before a promotion or rollback: what will change (a dialog, or a page without JS).
    Reads only: the gates' last stored results and the manifests' diff a worker rendered."""
    release = release_or_404(request, pk)
    kind = _kind(request)
    if kind is None:
        return HttpResponse("kind must be deploy, promote or rollback", status=400)
    require(request, release.service, deployment_role_needed(kind))
    environment = get_object_or_404(Environment, slug=request.GET.get("environment", ""))
    shown = preview.promotion_preview(release=release, environment=environment, kind=kind)
    may_override = has_role(request.user, release.service, Role.LEAD)
    gates = (
        selectors.release_gates_to(release=release, environment=environment)
        if kind == DeploymentKind.PROMOTE and not shown.refusal
        else []
    )
    gates_failed = any(state.last is not None and not state.last.passed for state in gates)
    context = {
        "preview": shown,
        "may_override": may_override,
        "gates": gates,
        "gates_failed": gates_failed,
        "gates_unchecked": any(state.last is None for state in gates),
        "may_submit": not shown.refusal
        and (may_override or (not shown.freeze and not gates_failed)),
        "diff": preview.manifest_diff(release=release, environment=environment),
        "change_system": change_system_for(environment) if may_override else None,
    }
    template = "releases/_confirm.html" if request.htmx else "releases/confirm.html"
    return render(request, template, context)


@login_required
def release_confirm_manifests(request, pk: int):
    """HTMX fragment: the rendered manifests' diff. GET reads what a worker stored; POST
    (a developer of the team, a few times a minute) asks a worker to render it."""
    release = release_or_404(request, pk)
    environment = get_object_or_404(Environment, slug=request.GET.get("environment", ""))
    if request.method == "POST":
        require(request, release.service, Role.DEVELOPER)
        if over_rate(request, "manifest-preview"):
            return HttpResponse("Too many previews; wait a minute.", status=429)
        diff = preview.manifest_diff_request(release=release, environment=environment)
        if not request.htmx:
            query = urlencode({"environment": environment.slug, "kind": _kind(request) or ""})
            return redirect(f"{reverse('release-confirm', args=[release.pk])}?{query}")
    elif request.method == "GET":
        diff = preview.manifest_diff(release=release, environment=environment)
    else:
        return HttpResponseNotAllowed(["GET", "POST"])
    return render(
        request,
        "releases/_manifest_diff.html",
        {"diff": diff, "release": release, "environment": environment},
    )


@login_required
@require_POST
@acts_once
def release_deploy(request, pk: int):
    release = release_or_404(request, pk)
    kind = _kind(request)
    if kind is None:
        return HttpResponse("kind must be deploy, promote or rollback", status=400)
    require(request, release.service, deployment_role_needed(kind))
    environment = get_object_or_404(Environment, slug=request.POST.get("environment", ""))
    with refusals_as_messages(request):
        deployment = deployment_start(
            release=release,
            environment=environment,
            kind=kind,
            user=request.user,
            freeze_override=request.POST.get("freeze_override", ""),
            gate_override=request.POST.get("gate_override", ""),
            emergency_reason=request.POST.get("emergency_reason", "").strip(),
            **actor_and_context(request),
        )
        waits = {
            DeploymentStatus.AWAITING_APPROVAL: " It waits for a lead's approval.",
            DeploymentStatus.QUEUED: f" It waits for {environment.name} to free up.",
        }.get(deployment.status, "")
        messages.success(request, f"Deploying release #{release.pk} to {environment.name}.{waits}")
    return redirect("release-detail", pk=release.pk)


@login_required
@require_POST
@acts_once
def release_cancel_view(request, pk: int):
    release = release_or_404(request, pk)
    require(request, release.service, Role.DEVELOPER)
    with refusals_as_messages(request):
        release_cancel(release=release, **actor_and_context(request))
        messages.success(request, "Cancelling the build.")
    return redirect("release-detail", pk=release.pk)


@login_required
@require_POST
@acts_once
def release_gates_check(request, pk: int):
    """Evaluate the gates to the next environment now (results are stored and shown)."""
    release = release_or_404(request, pk)
    require(request, release.service, Role.DEVELOPER)
    if over_rate(request, "gate-check"):
        messages.error(request, "Too many gate checks; wait a minute.")
        return redirect("release-detail", pk=release.pk)
    target = release_promotion_target(release=release)
    if target is not None:
        failed = describe_failed(gates_check(release=release, environment=target))
        if failed:
            messages.error(request, f"Not passed: {failed}")
        else:
            messages.success(request, f"Every gate to {target.name} passed.")
    return redirect("release-detail", pk=release.pk)


@login_required
@require_POST
@acts_once
def release_gate_tick(request, pk: int, gate: int):
    """A lead ticks a checklist item for this release."""
    release = release_or_404(request, pk)
    found = get_object_or_404(PromotionGate, pk=gate, enabled=True)
    with refusals_as_messages(request):
        checklist_tick(
            gate=found,
            release=release,
            user=request.user,
            note=request.POST.get("note", "")[: sizes.LINE],
            **actor_and_context(request),
        )
        messages.success(request, f"{found.name}: ticked.")
    return redirect("release-detail", pk=release.pk)
