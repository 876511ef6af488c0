"""Release and deployment history for leads: filtered, paged by id (so a page deep in
history costs what the first does), and exported as CSV that streams row by row."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.postgres.aggregates import StringAgg
from django.db.models import CharField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Cast, Concat

from portal.access.permissions import visible
from portal.core import sizes
from portal.core.exports import csv_row, csv_writer
from releases.filters import DeploymentFilter, ReleaseFilter
from releases.models import Deployment, Release, TargetRollout
from releases.timeline import human_duration

PAGE_SIZE = 50
VIEWS = {"deployments": DeploymentFilter, "releases": ReleaseFilter}


def history_rows(*, user, view: str, params) -> tuple[QuerySet, object]:
    """The visible rows of a view ('deployments' or 'releases'), filtered by `params`;
    returns them (newest first) and the bound filter (for its form and errors)."""
    if view == "releases":
        rows = Release.objects.select_related("service", "requested_by")
    else:
        rows = Deployment.objects.select_related(
            "service", "environment", "release", "requested_by", "approval__decided_by"
        )
    bound = VIEWS[view](params, queryset=visible(rows, user))
    rows = bound.qs if bound.is_valid() else rows.none()
    return rows.order_by("-id"), bound


@dataclass
class Page:
    rows: list
    older: int | None  # the `before` cursor of the next page, if any
    newer: int | None  # the `after` cursor of the previous page, if any


def page_of(
    rows: QuerySet, *, before: int | None, after: int | None, size: int | None = None
) -> Page:
    """A page of rows by id: `before` walks to older rows, `after` back to newer ones."""
    size = size or PAGE_SIZE
    if after is not None:
        chunk = list(rows.filter(pk__gt=after).order_by("id")[: size + 1])
        more_newer = len(chunk) > size
        chunk = list(reversed(chunk[:size]))
        older = chunk[-1].pk if chunk else None
        return Page(chunk, older, chunk[0].pk if chunk and more_newer else None)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    chunk = list(rows[: size + 1])
    page = chunk[:size]
    return Page(
        page,
        page[-1].pk if len(chunk) > size else None,
        page[0].pk if page and before is not None else None,
    )


def _seconds(start, end) -> str:
    return f"{(end - start).total_seconds():.1f}" if start and end else ""


DEPLOYMENT_COLUMNS = [
    "deployment",
    "service",
    "environment",
    "kind",
    "status",
    "release",
    "ref",
    "image",
    "requested_by",
    "approved_by",
    "created_at",
    "started_at",
    "finished_at",
    "rollout_seconds",
    "build_seconds",
    "helm_revision",
    "reason",
]
RELEASE_COLUMNS = [
    "release",
    "service",
    "ref",
    "commit",
    "status",
    "image",
    "requested_by",
    "created_at",
    "build_started_at",
    "finished_at",
    "build_seconds",
    "jenkins_build",
    "reason",
]


# What each export reads: plain rows from one joined query, never model instances.
_DEPLOYMENT_FIELDS = [
    "pk", "service__slug", "environment__slug", "kind", "status", "release_id",
    "release__ref", "image", "requested_by__username", "approval__approved",
    "approval__decided_by__username", "created_at", "started_at", "finished_at",
    "release__build_started_at", "release__finished_at", "helm_revisions", "status_reason",
]  # fmt: skip
_RELEASE_FIELDS = [
    "pk", "service__slug", "ref", "commit_sha", "status", "image_repository", "image_digest",
    "requested_by__username", "created_at", "build_started_at", "finished_at",
    "build_number", "status_reason",
]  # fmt: skip


def _with_revisions(rows: QuerySet) -> QuerySet:
    """Each deployment's Helm revision per cluster, `cluster-a:3 cluster-b:5` (a subquery:
    one row per deployment still)."""
    per_cluster = (
        TargetRollout.objects.filter(deployment=OuterRef("pk"), helm_revision__isnull=False)
        .order_by()
        .values("deployment")
        .annotate(
            joined=StringAgg(
                Concat("target__cluster__name", Value(":"), Cast("helm_revision", CharField())),
                delimiter=" ",
                order_by=("wave",),
            )
        )
        .values("joined")
    )
    return rows.annotate(helm_revisions=Subquery(per_cluster))


def _revisions(joined: str | None) -> str:
    """One cluster: its revision alone (as before clusters were several)."""
    if not joined:
        return ""
    return joined.split(":", 1)[1] if " " not in joined else joined


def _iso(value) -> str:
    return value.isoformat() if value else ""


def _deployment_line(row: tuple) -> list:
    pk, service, environment, kind, status, release, ref, image = row[:8]
    requested_by, approved, approver, created, started, finished = row[8:14]
    build_started, built, revision, reason = row[14:]
    return [
        pk,
        service,
        environment,
        kind,
        status,
        release,
        ref,
        image,
        requested_by or "",
        approver if approved else "",
        _iso(created),
        _iso(started),
        _iso(finished),
        _seconds(started, finished),
        _seconds(build_started, built),
        _revisions(revision),
        reason[: sizes.PARAGRAPH],
    ]


def _release_line(row: tuple) -> list:
    pk, service, ref, commit, status, repository, digest = row[:7]
    requested_by, created, build_started, finished, build_number, reason = row[7:]
    return [
        pk,
        service,
        ref,
        commit,
        status,
        f"{repository}@{digest}" if digest else "",
        requested_by or "",
        _iso(created),
        _iso(build_started),
        _iso(finished),
        _seconds(build_started, finished),
        build_number or "",
        reason[: sizes.PARAGRAPH],
    ]


# Lines go out in batches: one write per 500 rows, not one per row.
CSV_BATCH = 500


def csv_lines(rows: QuerySet, view: str) -> Iterator[str]:
    """The rows as CSV, read from the database in chunks through a server-side cursor and
    written in batches, so memory stays flat whatever the export's size."""
    writer = csv_writer()
    columns, fields, line = (
        (RELEASE_COLUMNS, _RELEASE_FIELDS, _release_line)
        if view == "releases"
        else (DEPLOYMENT_COLUMNS, _DEPLOYMENT_FIELDS, _deployment_line)
    )
    yield csv_row(writer, columns)
    if view != "releases":
        rows = _with_revisions(rows)
    batch: list[str] = []
    for row in rows.values_list(*fields).iterator(chunk_size=2000):
        batch.append(csv_row(writer, line(row)))
        if len(batch) >= CSV_BATCH:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)


def durations(row) -> dict:
    """Build and rollout durations of a row, for the page."""
    if isinstance(row, Release):
        return {"build": human_duration(_delta(row.build_started_at, row.finished_at))}
    return {
        "rollout": human_duration(_delta(row.started_at, row.finished_at)),
        "build": human_duration(_delta(row.release.build_started_at, row.release.finished_at)),
    }


def _delta(start, end):
    return end - start if start and end else None
