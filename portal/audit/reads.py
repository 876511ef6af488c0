"""Reading the audit log: filters, exports, the chain's state. (Who may read which events
is access's rule: portal.access.permissions.visible_events.)

Exports stream (CSV, JSON Lines) so a year of events never sits in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import django_filters
from django import forms
from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q, QuerySet

from portal.audit.models import AuditCheck, AuditEvent
from portal.core.exports import csv_row, csv_writer
from portal.core.filters import IsoDateFilter, KnownChoiceFilter

DATE = forms.DateInput(attrs={"type": "date"})
# What an exported or listed event shows, in this order (the API's fields, the CSV's and
# JSON Lines' columns): the hashed content, its link and its hash.
COLUMNS = [
    "id", "created_at", "actor_type", "actor_name", "action", "target_type", "target_id",
    "target_repr", "before", "after", "request_id", "ip", "prev_hash", "hash",
]  # fmt: skip


class TargetsFilter(django_filters.CharFilter):
    """`type:id[,type:id…]`, e.g. `releases.Release:12,releases.Deployment:40`: the events
    of any of these objects (a release and its deployments, in one list)."""

    def filter(self, qs, value):
        if not value:
            return qs
        condition = Q(pk__in=[])
        for item in value.split(",")[:50]:
            target_type, _, target_id = item.strip().partition(":")
            condition |= Q(target_type=target_type, target_id=target_id)
        return qs.filter(condition)


def target_types() -> list[str]:
    """Every type an audit event may be about (any model, the admin audits them all):
    `releases.Deployment`, `auth.User`, …"""
    return sorted(m._meta.label for m in apps.get_models())


class AuditEventFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(
        field_name="actor_name", lookup_expr="istartswith", label="Actor"
    )
    action = django_filters.CharFilter(
        field_name="action", lookup_expr="startswith", label="Action"
    )
    target_type = KnownChoiceFilter(
        label="Target type", choices=lambda: [(t, t) for t in target_types()]
    )
    target_id = django_filters.CharFilter(label="Target id")
    target = TargetsFilter(label="Targets (type:id, …)")
    since = IsoDateFilter(
        field_name="created_at", lookup_expr="date__gte", label="From", widget=DATE
    )
    until = IsoDateFilter(field_name="created_at", lookup_expr="date__lte", label="To", widget=DATE)

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target_type", "target_id", "target", "since", "until"]


def audit_events(
    *, events: QuerySet[AuditEvent], params
) -> tuple[QuerySet[AuditEvent], AuditEventFilter]:
    """`events` (what the caller may read, portal.access.permissions.visible_events),
    filtered by `params`, newest first."""
    bound = AuditEventFilter(params, queryset=events)
    rows = bound.qs if bound.is_valid() else AuditEvent.objects.none()
    return rows.order_by("-id"), bound


def events_of(*targets) -> QuerySet[AuditEvent]:
    """The events of some objects (a release and its deployments, say), oldest first."""
    condition = Q(pk__in=[])
    for target in targets:
        condition |= Q(target_type=target._meta.label, target_id=str(target.pk))
    return AuditEvent.objects.filter(condition).order_by("id")


def _row(event: AuditEvent) -> dict:
    return {column: getattr(event, column) for column in COLUMNS}


def csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv_writer()
    yield csv_row(writer, COLUMNS)
    for event in events.iterator(chunk_size=2000):
        row = _row(event)
        row["created_at"] = event.created_at.isoformat()
        row["before"] = json.dumps(event.before, cls=DjangoJSONEncoder) if event.before else ""
        row["after"] = json.dumps(event.after, cls=DjangoJSONEncoder) if event.after else ""
        yield csv_row(writer, (row[column] for column in COLUMNS))


def jsonl_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    for event in events.iterator(chunk_size=2000):
        yield json.dumps(_row(event), cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"


def last_check() -> AuditCheck | None:
    return AuditCheck.objects.first()
