"""/insights/: delivery metrics (DORA) of the caller's teams over a period; CSV export."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from portal.choices import Role
from portal.permissions import teams_with_role, visible_services, visible_teams
from releases.insights import Insights, Period, insights, insights_csv

MAX_DAYS = 731


class InsightsForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Included.",
    )
    team = forms.SlugField(required=False)
    service = forms.SlugField(required=False)

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError("The period's start is after its end.")
        if since and until and (until - since).days > MAX_DAYS:
            raise forms.ValidationError(f"At most {MAX_DAYS} days at once.")
        return data


def _start_of(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def period_from(form: InsightsForm) -> Period:
    """The form's dates (until included), by default the last 30 days."""
    until = form.cleaned_data.get("until")
    since = form.cleaned_data.get("since")
    end = _start_of(until + timedelta(days=1)) if until else timezone.now()
    start = _start_of(since) if since else end - timedelta(days=30)
    return Period(start, end)


def insights_for(user, form: InsightsForm) -> Insights:
    """What the user may see: their teams, or one of them, or one of their services."""
    teams = teams_with_role(user, Role.VIEWER)
    team_slug, service_slug = form.cleaned_data.get("team"), form.cleaned_data.get("service")
    if team_slug:
        team = visible_teams(user).filter(slug=team_slug).first()
        teams = [team.pk] if team else []
    service = None
    if service_slug:
        service = visible_services(user).filter(slug=service_slug).first()
        if service is None:
            teams = []
    return insights(period=period_from(form), team_ids=teams, service=service)


def chart(result: Insights, width: int = 640, height: int = 160) -> dict:
    """A weekly bar chart, drawn on the server as SVG coordinates (no script, no CDN)."""
    weeks = result.weeks
    if not weeks:
        return {}
    top = max(max(w.deployments for w in weeks), 1)
    step = width / len(weeks)
    bars = []
    bar = min(max(step - 4, 1), 48)  # a lone week is a bar, not a band across the chart
    for i, week in enumerate(weeks):
        h = (height - 20) * week.deployments / top
        f = (height - 20) * week.failures / top
        x = i * step + (step - bar) / 2
        bars.append({
            "x": round(x, 1), "w": round(bar, 1),
            "y": round(height - 20 - h, 1), "h": round(h, 1),
            "fy": round(height - 20 - f, 1), "fh": round(f, 1),
            "label": week.week.strftime("%b %-d"), "deployments": week.deployments,
            "failures": week.failures, "lx": round(i * step + step / 2, 1),
        })  # fmt: skip
    return {"width": width, "height": height, "bars": bars, "top": top,
            "label_every": max(1, len(weeks) // 8)}  # fmt: skip


@login_required
def insights_page(request):
    form = InsightsForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "releases/insights.html", {"form": form}, status=400)
    if not request.GET:
        form = InsightsForm({})
        form.is_valid()
    result = insights_for(request.user, form)
    if request.GET.get("format") == "csv":
        response = HttpResponse(insights_csv(result), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="slipway-insights.csv"'
        return response
    query = request.GET.copy()
    query.pop("format", None)
    return render(
        request,
        "releases/insights.html",
        {
            "form": form,
            "result": result,
            "overall": result.overall,
            "teams": [r for r in result.rows if r.scope == "team"],
            "services": [r for r in result.rows if r.scope == "service"],
            "chart": chart(result),
            "query": query.urlencode(),
        },
    )
