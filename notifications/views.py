"""A team's notification channels and every delivery attempt: members read, admins change."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from notifications.channels import channel_create, channel_delete, channel_set_enabled
from notifications.events import EventKind
from notifications.models import Attempt, Channel, ChannelKind
from portal.access.choices import Role
from portal.access.permissions import role_in_team, visible_teams
from portal.access.teams import require_team_admin
from portal.audit.chain import actor_and_context
from portal.core import sizes
from portal.web.once import acts_once
from portal.web.pages import refusals_as_messages


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    url = forms.CharField(
        label="URL", max_length=2000, widget=forms.PasswordInput(render_value=False),
        help_text="Slack, DingTalk and WeCom put their key in the URL: it is stored encrypted "
        "and never shown again.",
    )  # fmt: skip
    secret = forms.CharField(
        required=False, max_length=sizes.PARAGRAPH, widget=forms.PasswordInput(render_value=False),
        help_text="Webhook: HMAC key (required). DingTalk: the robot's signing secret (SEC…).",
    )  # fmt: skip
    events = forms.MultipleChoiceField(
        choices=EventKind.choices, widget=forms.CheckboxSelectMultiple, initial=EventKind.values
    )


@login_required
def team_notifications(request, slug: str):
    team = get_object_or_404(visible_teams(request.user), slug=slug)
    return render(
        request,
        "notifications/team.html",
        {
            "team": team,
            "is_admin": role_in_team(request.user, team.pk) == Role.ADMIN,
            "channels": Channel.objects.filter(team=team).order_by("name"),
            "attempts": Attempt.objects.filter(channel__team=team)
            .select_related("channel")
            .order_by("-id")[:100],
            "form": ChannelForm(),
        },
    )


@login_required
@require_POST
@acts_once
def team_channel_create(request, slug: str):
    team = get_object_or_404(visible_teams(request.user), slug=slug)
    require_team_admin(request.user, team)
    form = ChannelForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{f}: {' '.join(e)}" for f, e in form.errors.items())
        messages.error(request, f"Channel not added: {errors}")
        return redirect("team-notifications", slug=slug)
    with refusals_as_messages(request):
        channel = channel_create(team=team, **form.cleaned_data, **actor_and_context(request))
        messages.success(request, f"Channel {channel.name} added.")
    return redirect("team-notifications", slug=slug)


@login_required
@require_POST
@acts_once
def team_channel_change(request, slug: str, pk: int):
    team = get_object_or_404(visible_teams(request.user), slug=slug)
    require_team_admin(request.user, team)
    channel = get_object_or_404(Channel, team=team, pk=pk)
    action = request.POST.get("action", "")
    if action == "delete":
        channel_delete(channel=channel, **actor_and_context(request))
        messages.success(request, f"Channel {channel.name} removed.")
    elif action in ("pause", "enable"):
        channel_set_enabled(
            channel=channel, enabled=action == "enable", **actor_and_context(request)
        )
        messages.success(
            request, f"Channel {channel.name} {'enabled' if action == 'enable' else 'paused'}."
        )
    else:
        messages.error(request, "Choose pause, enable or delete.")
    return redirect("team-notifications", slug=slug)
