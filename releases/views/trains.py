"""Release trains on pages: the list with a form to make one, a train's page (each
release where it stands, the one approval's rules), approve or reject, stop."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.access.choices import Role
from portal.access.permissions import teams_with_role
from portal.audit.chain import actor_and_context
from portal.catalog.models import Environment, Service
from portal.web.once import acts_once
from portal.web.pages import refusals_as_messages
from releases.models import ReleaseTrain
from releases.policies import may_vote
from releases.promotion import environment_current_deployment
from releases.train_models import TrainStatus
from releases.trains import (
    of_train,
    train_cancel,
    train_create,
    train_decide,
    train_state,
    visible_trains,
)

# The form offers at most this many services (the API takes any).
FORM_SERVICES = 50


def _candidates(user) -> list[dict]:
    """Per service the user may deploy: what its first environment runs now (what a train
    usually carries on)."""
    teams = teams_with_role(user, Role.DEVELOPER)
    services = Service.objects.select_related("team").order_by("name")
    if teams is not None:
        services = services.filter(team_id__in=teams)
    found = []
    for service in services[:FORM_SERVICES]:
        first = Environment.objects.filter(targets__service=service).order_by("order").first()
        current = first and environment_current_deployment(service=service, environment=first)
        if current:
            found.append({"service": service, "environment": first, "release": current.release})
    return found


@login_required
def trains_page(request):
    trains = visible_trains(request.user).prefetch_related("members__release__service")[:50]
    return render(
        request,
        "releases/trains.html",
        {
            "trains": trains,
            "candidates": _candidates(request.user),
            "environments": Environment.objects.filter(order__gt=1).order_by("order")
            or Environment.objects.order_by("order"),
        },
    )


@login_required
@require_POST
@acts_once
def train_new(request):
    positions = []
    for key, value in request.POST.items():
        if key.startswith("position-") and value.strip():
            try:
                positions.append((int(value), int(key.removeprefix("position-"))))
            except ValueError:
                return HttpResponse("a position is a whole number", status=400)
    environment = Environment.objects.filter(slug=request.POST.get("environment", "")).first()
    if environment is None:
        return HttpResponse("choose an environment", status=400)
    with refusals_as_messages(request):
        train = train_create(
            name=request.POST.get("name", ""),
            environment=environment,
            releases=[release for _, release in sorted(positions)],
            user=request.user,
            **actor_and_context(request),
        )
        messages.success(request, f"Train #{train.pk} made.")
        return redirect("train-detail", pk=train.pk)
    return redirect("trains")


def _train_or_404(request, pk: int) -> ReleaseTrain:
    train = visible_trains(request.user).filter(pk=pk).first()
    if train is None:
        train = ReleaseTrain.objects.filter(pk=pk, status=TrainStatus.AWAITING_APPROVAL).first()
        if train is None or not may_vote(of_train(train), request.user):
            raise Http404("No such train.")
    return train


@login_required
def train_detail(request, pk: int):
    train = _train_or_404(request, pk)
    members = train.members.select_related("release__service", "deployment").order_by("position")
    subject = of_train(train)
    return render(
        request,
        "releases/train.html",
        {
            "train": train,
            "members": members,
            "policy": train_state(train, candidates=True),
            "may_decide": may_vote(subject, request.user),
            "open": train.status in (TrainStatus.AWAITING_APPROVAL, TrainStatus.RUNNING),
        },
    )


@login_required
@require_POST
@acts_once
def train_decide_view(request, pk: int):
    train = _train_or_404(request, pk)
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        return HttpResponse("decision must be approve or reject", status=400)
    with refusals_as_messages(request):
        train_decide(
            train=train,
            user=request.user,
            approve=decision == "approve",
            comment=request.POST.get("comment", ""),
            represented_as=request.POST.get("represented_as", ""),
            **actor_and_context(request),
        )
        messages.success(request, f"Train #{train.pk} {decision}d.")
    return redirect("train-detail", pk=train.pk)


@login_required
@require_POST
@acts_once
def train_cancel_view(request, pk: int):
    train = _train_or_404(request, pk)
    with refusals_as_messages(request):
        train_cancel(train=train, user=request.user, **actor_and_context(request))
        messages.success(request, f"Train #{train.pk} stopped.")
    return redirect("train-detail", pk=train.pk)
