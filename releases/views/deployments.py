"""Deciding and withdrawing deployment requests, and the approvals inbox."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from portal.access.choices import Role
from portal.access.permissions import has_role, visible
from portal.audit.chain import actor_and_context
from portal.audit.reads import events_of
from portal.web.once import acts_once
from portal.web.pages import refusals_as_messages
from releases import selectors
from releases.canary import ABORT, PROMOTE, canary_decide
from releases.choices import DeploymentStatus
from releases.deployments import deployment_decide, deployment_withdraw
from releases.models import Deployment
from releases.policies import decidable_or_404
from releases.preview import merge_values
from releases.rollouts import deployment_rollouts
from releases.trains import trains_waiting_for
from releases.views.common import deployment_or_404
from releases.waves import RETRY, deployment_cluster_decide, wave_choices


def _back(request, deployment):
    """Back where the form was (the inbox or the release page)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("release-detail", pk=deployment.release_id)


@login_required
@require_POST
@acts_once
def deployment_decide_view(request, pk: int):
    deployment = decidable_or_404(
        visible(Deployment.objects.select_related("service__team", "environment", "release"),
                request.user),
        request.user,
        pk,
    )  # fmt: skip
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        return HttpResponse("decision must be approve or reject", status=400)
    with refusals_as_messages(request):
        deployment_decide(
            deployment=deployment,
            user=request.user,
            approve=decision == "approve",
            comment=request.POST.get("comment", ""),
            gate_override=request.POST.get("gate_override", ""),
            represented_as=request.POST.get("represented_as", ""),
            **actor_and_context(request),
        )
        messages.success(request, decided_message(deployment, decision))
    return _back(request, deployment)


def decided_message(deployment, decision: str) -> str:
    if decision == "approve" and deployment.status == DeploymentStatus.AWAITING_APPROVAL:
        return (
            f"Your approval of deployment #{deployment.pk} is counted; it waits for the "
            "policy's other approvals."
        )
    return f"Deployment #{deployment.pk} {decision}d."


@login_required
@require_POST
@acts_once
def deployment_withdraw_view(request, pk: int):
    deployment = deployment_or_404(request, pk)
    with refusals_as_messages(request):
        deployment_withdraw(deployment=deployment, user=request.user, **actor_and_context(request))
        messages.success(request, f"Deployment #{deployment.pk} withdrawn.")
    return _back(request, deployment)


@login_required
@require_POST
@acts_once
def deployment_canary_view(request, pk: int):
    """A lead promotes a paused canary step or aborts the canary."""
    deployment = deployment_or_404(request, pk)
    action = request.POST.get("action", "")
    if action not in (PROMOTE, ABORT):
        return HttpResponse(f"action must be {PROMOTE} or {ABORT}", status=400)
    with refusals_as_messages(request):
        canary_decide(
            deployment=deployment,
            action=action,
            reason=request.POST.get("reason", ""),
            user=request.user,
            **actor_and_context(request),
        )
        messages.success(
            request,
            f"Deployment #{deployment.pk}: canary "
            + ("promoted; the next step follows." if action == PROMOTE else "aborted."),
        )
    return _back(request, deployment)


@login_required
def approvals_count(request):
    """HTMX fragment: the top bar's count (the context processor counts), fetched again when
    a decision someone may owe changed."""
    return render(request, "releases/_approvals_count.html")


@login_required
def approvals(request):
    """What waits for the caller's decision: where they are a lead, never their own."""
    return render(
        request,
        "releases/approvals.html",
        {
            "waiting": selectors.approvals_inbox(request.user),
            "judgements": selectors.judgements_inbox(request.user),
            "trains": trains_waiting_for(request.user),
        },
    )


@login_required
def deployment_detail(request, pk: int):
    """One deployment: its progress, what it deployed (values, images), and its audit."""
    deployment = deployment_or_404(request, pk)
    deployment.may_canary = deployment.status == DeploymentStatus.CANARY and has_role(
        request.user, deployment.service, Role.LEAD
    )
    rollouts = deployment_rollouts(deployment)
    for rollout in rollouts:
        rollout.merged_values = merge_values(rollout.values) if rollout.values else None
        rollout.may_retry, rollout.may_skip = wave_choices(
            deployment=deployment, rollout=rollout, user=request.user
        )
    return render(
        request,
        "releases/deployment_detail.html",
        {
            "deployment": deployment,
            "release": deployment.release,
            "service": deployment.service,
            "rollouts": rollouts,
            "events": list(events_of(deployment)),
        },
    )


@login_required
@require_POST
@acts_once
def deployment_cluster_view(request, pk: int, rollout: int):
    """A lead retries or skips a cluster where the deployment stopped."""
    deployment = deployment_or_404(request, pk)
    chosen = get_object_or_404(deployment.rollouts.select_related("target__cluster"), pk=rollout)
    action = request.POST.get("action", "")
    with refusals_as_messages(request):
        continued = deployment_cluster_decide(
            deployment=deployment,
            cluster=chosen.target.cluster.name,
            action=action,
            reason=request.POST.get("reason", ""),
            user=request.user,
            **actor_and_context(request),
        )
        messages.success(
            request,
            f"{chosen.target.cluster} {'retried' if action == RETRY else 'skipped'}: "
            f"deployment #{continued.pk} goes on.",
        )
        return redirect("deployment-detail", pk=continued.pk)
    return redirect("deployment-detail", pk=deployment.pk)
