"""Pages for a team (members, deployment targets, freezes) and for a user's API tokens.

Thin: check access with the access policy, call one service, render. Team admins change
members and targets; leads (and admins) make and end freezes; everyone in the team reads.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.validators import MaxValueValidator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.access.choices import Role, TokenScope
from portal.access.models import ApiToken, Membership, Team
from portal.access.permissions import RoleMissing, role_in_team, visible_teams
from portal.access.teams import membership_remove, membership_set, require_team_admin
from portal.access.tokens import DEFAULT_SCOPES, token_issue, token_revoke
from portal.audit.chain import actor_and_context
from portal.catalog.freezes import freeze_create, freeze_delete
from portal.catalog.models import DeploymentTarget, Environment, Freeze, NamespaceGrant
from portal.catalog.targets import (
    release_key,
    require_target_change,
    target_adopt_release,
    target_save,
)
from portal.core import sizes
from portal.web.once import acts_once
from portal.web.pages import refusals_as_messages

LOCAL = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)


class FreezeForm(forms.Form):
    environment = forms.ModelChoiceField(queryset=Environment.objects.order_by("order"))
    starts_at = forms.DateTimeField(label="From (UTC)", widget=LOCAL)
    ends_at = forms.DateTimeField(label="Until (UTC)", widget=LOCAL)
    reason = forms.CharField(max_length=sizes.LINE)


class TargetForm(forms.ModelForm):
    class Meta:
        model = DeploymentTarget
        fields = [
            "service",
            "environment",
            "cluster",
            "wave",
            "namespace",
            "helm_release_name",
            "values",
            "canary_steps",
        ]

    def __init__(self, *args, team: Team, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = team.services.order_by("name")
        if not user.is_superuser:
            # Protected environments' targets are a platform admin's to change.
            self.fields["environment"].queryset = Environment.objects.filter(protected=False)
        # The clusters the team was granted namespaces on (the save checks the rest); the
        # Cluster model is the clusters app's, reached through the relation.
        clusters = DeploymentTarget._meta.get_field("cluster").related_model.objects
        self.fields["cluster"].queryset = (
            clusters.filter(namespace_grants__team=team).distinct().order_by("name")
        )
        self.fields["values"].widget = forms.Textarea(attrs={"rows": 3})
        self.fields["canary_steps"].widget = forms.Textarea(attrs={"rows": 2})
        self.fields["canary_steps"].required = False
        # Most environments have one cluster: a form (or script) that leaves the wave out
        # keeps the target's own, or 1.
        self.fields["wave"].required = False

    def clean_canary_steps(self) -> list:
        # Empty means off; the model's clean says what a wrong list lacks.
        return self.cleaned_data.get("canary_steps") or []

    def clean_wave(self) -> int:
        return self.cleaned_data.get("wave") or self.instance.wave or 1

    def validate_unique(self):
        # target_save says which rule a clash breaks, in the product's words.
        return


def _team(request, slug: str) -> Team:
    return get_object_or_404(visible_teams(request.user), slug=slug)


def _require_lead(request, team: Team) -> None:
    role = role_in_team(request.user, team.pk)
    if role is None or Role.rank(role) < Role.rank(Role.LEAD):
        raise RoleMissing(f"You need the lead role in {team} to manage its freezes.")


@login_required
def team_detail(request, slug: str):
    team = _team(request, slug)
    role = role_in_team(request.user, team.pk)
    now = timezone.now()
    return render(
        request,
        "portal/team.html",
        {
            "team": team,
            "is_admin": role == Role.ADMIN,
            "may_freeze": role is not None and Role.rank(role) >= Role.rank(Role.LEAD),
            "members": Membership.objects.filter(team=team)
            .select_related("user")
            .order_by("user__username"),
            "targets": [
                (
                    target,
                    TargetForm(
                        instance=target, team=team, user=request.user, prefix=f"t{target.pk}"
                    ),
                    target.adopted_release == release_key(target),
                )
                for target in DeploymentTarget.objects.filter(service__team=team)
                .select_related("service", "environment", "cluster")
                .order_by("service__name", "environment__order")
            ],
            "grants": NamespaceGrant.objects.filter(team=team)
            .select_related("cluster", "environment")
            .order_by("cluster__name", "pattern"),
            "platform_admin": request.user.is_superuser,
            "freezes": Freeze.objects.filter(team=team, ends_at__gt=now)
            .select_related("environment", "created_by")
            .order_by("starts_at"),
            "site_freezes": Freeze.objects.filter(team__isnull=True, ends_at__gt=now)
            .select_related("environment", "created_by")
            .order_by("starts_at"),
            "ldap_groups": team.ldap_groups.order_by("group_dn"),
            "member_form": MemberForm(),
            "freeze_form": FreezeForm(
                initial={"starts_at": now, "ends_at": now + timezone.timedelta(hours=4)}
            ),
            "target_form": TargetForm(team=team, user=request.user),
            "roles": Role.choices,
            "now": now,
        },
    )


@login_required
@require_POST
@acts_once
def team_member_set(request, slug: str):
    team = _team(request, slug)
    require_team_admin(request.user, team)
    form = MemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a username and a role.")
        return redirect("team-detail", slug=slug)
    with refusals_as_messages(request):
        membership_set(
            team=team,
            by=request.user.get_username(),
            **form.cleaned_data,
            **actor_and_context(request),
        )
        messages.success(
            request, f"{form.cleaned_data['username']} is {form.cleaned_data['role']} in {team}."
        )
    return redirect("team-detail", slug=slug)


@login_required
@require_POST
@acts_once
def team_member_remove(request, slug: str, pk: int):
    team = _team(request, slug)
    require_team_admin(request.user, team)
    membership = get_object_or_404(
        Membership.objects.select_related("user", "team"), team=team, pk=pk
    )
    membership_remove(membership=membership, **actor_and_context(request))
    messages.success(request, f"{membership.user} is no longer in {team}.")
    return redirect("team-detail", slug=slug)


@login_required
@require_POST
@acts_once
def team_target_save(request, slug: str, pk: int | None = None):
    team = _team(request, slug)
    require_team_admin(request.user, team)
    instance = get_object_or_404(DeploymentTarget, service__team=team, pk=pk) if pk else None
    if instance is not None:
        require_target_change(request.user, instance, None)
    form = TargetForm(
        request.POST,
        instance=instance,
        team=team,
        user=request.user,
        prefix=f"t{pk}" if pk else None,
    )
    if not form.is_valid():
        messages.error(
            request,
            "The target is not valid: "
            + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
        )
        return redirect("team-detail", slug=slug)
    with refusals_as_messages(request):  # a missing role stays a 403 page
        target = target_save(
            target=form.save(commit=False), user=request.user, **actor_and_context(request)
        )
        messages.success(request, f"Saved {target}.")
    return redirect("team-detail", slug=slug)


@login_required
@require_POST
@acts_once
def team_target_adopt(request, slug: str, pk: int):
    """A platform admin lets a target take over a Helm release Slipway did not install."""
    team = _team(request, slug)
    target = get_object_or_404(
        DeploymentTarget.objects.select_related("cluster"), service__team=team, pk=pk
    )
    target_adopt_release(target=target, user=request.user, **actor_and_context(request))
    messages.success(
        request,
        f"{target} may take over Helm release {target.helm_release_name} in "
        f"{target.namespace} on {target.cluster} at its next deployment.",
    )
    return redirect("team-detail", slug=slug)


@login_required
@require_POST
@acts_once
def team_freeze_create(request, slug: str):
    team = _team(request, slug)
    _require_lead(request, team)
    form = FreezeForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "The freeze is not valid: "
            + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
        )
        return redirect("team-detail", slug=slug)
    with refusals_as_messages(request):
        freeze_create(
            team=team, user=request.user, **form.cleaned_data, **actor_and_context(request)
        )
        messages.success(
            request, f"{form.cleaned_data['environment']} is frozen for {team}'s services."
        )
    return redirect("team-detail", slug=slug)


@login_required
@require_POST
@acts_once
def team_freeze_delete(request, slug: str, pk: int):
    team = _team(request, slug)
    _require_lead(request, team)
    freeze = get_object_or_404(
        Freeze.objects.select_related("environment", "team"), team=team, pk=pk
    )
    with refusals_as_messages(request):
        freeze_delete(freeze=freeze, user=request.user, **actor_and_context(request))
        messages.success(request, "Freeze ended.")
    return redirect("team-detail", slug=slug)


# -- API tokens -----------------------------------------------------------------------


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=list(DEFAULT_SCOPES),
    )
    days = forms.IntegerField(label="Expires in (days)", min_value=1, initial=90)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["days"].max_value = settings.SLIPWAY_TOKEN_MAX_DAYS
        self.fields["days"].validators.append(MaxValueValidator(settings.SLIPWAY_TOKEN_MAX_DAYS))
        self.fields["days"].widget.attrs["max"] = settings.SLIPWAY_TOKEN_MAX_DAYS


@login_required
def tokens(request):
    """The user's own API tokens: create (shown once), list, revoke."""
    return render(
        request,
        "portal/tokens.html",
        {
            "tokens": ApiToken.objects.filter(user=request.user).order_by("-created_at"),
            "form": TokenForm(),
            "created": request.session.pop("slipway_new_token", None),
            "now": timezone.now(),
        },
    )


@login_required
@require_POST
@acts_once
def token_create(request):
    form = TokenForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Give a name, at least one scope and an expiry of 1 to "
            f"{settings.SLIPWAY_TOKEN_MAX_DAYS} days.",
        )
        return redirect("tokens")
    with refusals_as_messages(request):
        token, raw = token_issue(
            user=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=timezone.now() + timezone.timedelta(days=form.cleaned_data["days"]),
            **actor_and_context(request),
        )
        # Shown once, on the next page only: never stored but as its hash.
        request.session["slipway_new_token"] = {"name": token.name, "value": raw}
    return redirect("tokens")


@login_required
@require_POST
@acts_once
def token_revoke_view(request, pk: int):
    token = get_object_or_404(ApiToken, user=request.user, pk=pk)
    token_revoke(token=token, **actor_and_context(request))
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("tokens")
