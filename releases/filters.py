"""Filters of release and deployment history, shared by the pages and the API."""

from __future__ import annotations

import django_filters
from django import forms

from releases.choices import DeploymentKind, DeploymentStatus, ReleaseStatus
from releases.models import Deployment, Release

DATE = forms.DateInput(attrs={"type": "date"})


class _Common(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__slug", label="Service")
    person = django_filters.CharFilter(field_name="requested_by__username", label="Requested by")
    since = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", label="From", widget=DATE
    )
    until = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", label="To", widget=DATE
    )


class ReleaseFilter(_Common):
    status = django_filters.ChoiceFilter(choices=ReleaseStatus.choices, label="Status")
    ref = django_filters.CharFilter(label="Ref")

    class Meta:
        model = Release
        fields = ["service", "status", "ref", "person", "since", "until"]


class DeploymentFilter(_Common):
    environment = django_filters.CharFilter(field_name="environment__slug", label="Environment")
    status = django_filters.ChoiceFilter(choices=DeploymentStatus.choices, label="Status")
    kind = django_filters.ChoiceFilter(choices=DeploymentKind.choices, label="Kind")

    class Meta:
        model = Deployment
        fields = ["service", "environment", "status", "kind", "person", "since", "until"]
