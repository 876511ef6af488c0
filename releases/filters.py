"""Filters of release and deployment history, shared by the pages and the API."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.utils import timezone

from portal.catalog.selectors import environment_choices
from portal.core.filters import IsoDateField, IsoDateFilter, KnownChoiceFilter
from releases.choices import DeploymentKind, DeploymentStatus, ReleaseStatus
from releases.insights import Period
from releases.models import Deployment, Release

DATE = forms.DateInput(attrs={"type": "date"})


class _Common(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__slug", label="Service")
    person = django_filters.CharFilter(field_name="requested_by__username", label="Requested by")
    since = IsoDateFilter(
        field_name="created_at", lookup_expr="date__gte", label="From", widget=DATE
    )
    until = IsoDateFilter(field_name="created_at", lookup_expr="date__lte", label="To", widget=DATE)


class ReleaseFilter(_Common):
    status = KnownChoiceFilter(choices=ReleaseStatus.choices, label="Status")
    ref = django_filters.CharFilter(label="Ref")

    class Meta:
        model = Release
        fields = ["service", "status", "ref", "person", "since", "until"]


class DeploymentFilter(_Common):
    environment = KnownChoiceFilter(
        field_name="environment__slug",
        label="Environment",
        choices=environment_choices,
    )
    status = KnownChoiceFilter(choices=DeploymentStatus.choices, label="Status")
    kind = KnownChoiceFilter(choices=DeploymentKind.choices, label="Kind")

    class Meta:
        model = Deployment
        fields = ["service", "environment", "status", "kind", "person", "since", "until"]


INSIGHTS_MAX_DAYS = 731


def _start_of(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


class InsightsForm(forms.Form):
    """The insights page's and API's period (days, `until` included; default: the last 30
    days), team and service.

    Any two dates make a period, so the API's schema can promise what it takes: the
    earlier is its start, an end after today is today, and a period longer than
    INSIGHTS_MAX_DAYS keeps its last days (the answer's `since` and `until` say which)."""

    since = IsoDateField(required=False, widget=DATE)
    until = IsoDateField(required=False, widget=DATE, help_text="Included.")
    team = forms.SlugField(required=False, strip=False)
    service = forms.SlugField(required=False, strip=False)

    def selection(self) -> dict:
        """The cleaned form as `insights_for` keyword arguments."""
        until, since = self.cleaned_data.get("until"), self.cleaned_data.get("since")
        if since and until and since > until:
            since, until = until, since
        today = timezone.localdate()
        end = _start_of(until + timedelta(days=1)) if until and until < today else timezone.now()
        start = _start_of(since) if since else end - timedelta(days=30)
        start = min(max(start, end - timedelta(days=INSIGHTS_MAX_DAYS)), end)
        return {
            "period": Period(start, end),
            "team": self.cleaned_data.get("team") or "",
            "service": self.cleaned_data.get("service") or "",
        }
