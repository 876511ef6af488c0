"""Release and deployment history for leads: filtered, paged by id (so a page deep in
history costs what the first does), and exported as CSV that streams row by row."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from portal.permissions import visible
from releases.filters import DeploymentFilter, ReleaseFilter
from releases.models import Deployment, Release
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


def _deployment_line(d: Deployment) -> list:
    approval = getattr(d, "approval", None)
    return [
        d.pk,
        d.service.slug,
        d.environment.slug,
        d.kind,
        d.status,
        d.release_id,
        d.release.ref,
        d.image,
        d.requested_by.get_username() if d.requested_by else "",
        approval.decided_by.get_username() if approval and approval.approved else "",
        d.created_at.isoformat(),
        d.started_at.isoformat() if d.started_at else "",
        d.finished_at.isoformat() if d.finished_at else "",
        _seconds(d.started_at, d.finished_at),
        _seconds(d.release.build_started_at, d.release.finished_at),
        d.helm_revision or "",
        d.status_reason[:500],
    ]


def _release_line(r: Release) -> list:
    return [
        r.pk,
        r.service.slug,
        r.ref,
        r.commit_sha,
        r.status,
        r.image,
        r.requested_by.get_username() if r.requested_by else "",
        r.created_at.isoformat(),
        r.build_started_at.isoformat() if r.build_started_at else "",
        r.finished_at.isoformat() if r.finished_at else "",
        _seconds(r.build_started_at, r.finished_at),
        r.build_number or "",
        r.status_reason[:500],
    ]


class _Echo:
    def write(self, value):
        return value


def csv_lines(rows: QuerySet, view: str) -> Iterator[str]:
    """The rows as CSV lines, read from the database in chunks (memory stays flat)."""
    writer = csv.writer(_Echo())
    columns, line = (
        (RELEASE_COLUMNS, _release_line)
        if view == "releases"
        else (DEPLOYMENT_COLUMNS, _deployment_line)
    )
    yield writer.writerow(columns)
    for row in rows.iterator(chunk_size=2000):
        yield writer.writerow(line(row))


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
