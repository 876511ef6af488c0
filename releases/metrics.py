"""The release engine's figures for /metrics, read from the database when scraped:
counters of releases and deployments by outcome, build and rollout duration histograms,
and what is in flight now."""

from __future__ import annotations

from django.db import connection
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from portal.ops.metrics import Cached, add_collector
from releases.choices import DEPLOYMENT_OPEN, RELEASE_ACTIVE

BUILD_BUCKETS = (30, 60, 120, 300, 600, 1200, 1800, 3600)
ROLLOUT_BUCKETS = (10, 30, 60, 120, 300, 600, 1200)


def _histogram(name: str, doc: str, sql: str, buckets: tuple, labels: list[str]):
    """One query: per label set, how many durations fall under each bucket, their sum."""
    counts = ", ".join(f"count(*) FILTER (WHERE d <= {b})" for b in buckets)
    family = HistogramMetricFamily(name, doc, labels=labels)
    group = f" GROUP BY {', '.join(labels)}" if labels else ""
    # Built from this module's constants only (buckets, column names), never from input.
    query = f"SELECT {', '.join(labels) or 'NULL'}, {counts}, count(*), sum(d) FROM ({sql}) t"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(query + group)
        for row in cursor.fetchall():
            values = row[: len(labels)] if labels else []
            cumulative = row[len(labels) or 1 : (len(labels) or 1) + len(buckets)]
            total, seconds = row[-2], row[-1] or 0.0
            family.add_metric(
                [str(v) for v in values],
                [(str(b), c) for b, c in zip(buckets, cumulative, strict=True)] + [("+Inf", total)],
                float(seconds),
            )
    return family


def _families() -> list:
    releases = CounterMetricFamily(
        "slipway_releases", "Releases by service and status.", labels=["service", "status"]
    )
    deployments = CounterMetricFamily(
        "slipway_deployments",
        "Deployments by service, environment, kind and status.",
        labels=["service", "environment", "kind", "status"],
    )
    releases_in_flight = GaugeMetricFamily(
        "slipway_releases_in_flight", "Releases being built, by status.", labels=["status"]
    )
    deployments_in_flight = GaugeMetricFamily(
        "slipway_deployments_in_flight",
        "Deployments waiting or running, by status.",
        labels=["status"],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.slug, r.status, count(*) FROM releases_release r"
            " JOIN portal_service s ON s.id = r.service_id GROUP BY s.slug, r.status"
        )
        for slug, status, count in cursor.fetchall():
            releases.add_metric([slug, status], count)
            if status in RELEASE_ACTIVE:
                releases_in_flight.add_metric([status], count)
        cursor.execute(
            "SELECT s.slug, e.slug, d.kind, d.status, count(*) FROM releases_deployment d"
            " JOIN portal_service s ON s.id = d.service_id"
            " JOIN portal_environment e ON e.id = d.environment_id"
            " GROUP BY s.slug, e.slug, d.kind, d.status"
        )
        open_by_status: dict[str, int] = {}
        for service, environment, kind, status, count in cursor.fetchall():
            deployments.add_metric([service, environment, kind, status], count)
            if status in DEPLOYMENT_OPEN:
                open_by_status[status] = open_by_status.get(status, 0) + count
        for status, count in open_by_status.items():
            deployments_in_flight.add_metric([status], count)
    builds = _histogram(
        "slipway_build_duration_seconds",
        "From the Jenkins build's start to the release's end (built or failed).",
        "SELECT extract(epoch FROM finished_at - build_started_at) AS d FROM releases_release"
        " WHERE build_started_at IS NOT NULL AND finished_at IS NOT NULL",
        BUILD_BUCKETS,
        [],
    )
    rollouts = _histogram(
        "slipway_rollout_duration_seconds",
        "From helm upgrade to the rollout's end, by environment.",
        "SELECT e.slug AS environment, extract(epoch FROM d.finished_at - d.started_at) AS d"
        " FROM releases_deployment d JOIN portal_environment e ON e.id = d.environment_id"
        " WHERE d.started_at IS NOT NULL AND d.finished_at IS NOT NULL",
        ROLLOUT_BUCKETS,
        ["environment"],
    )
    return [releases, deployments, releases_in_flight, deployments_in_flight, builds, rollouts]


def register() -> None:
    add_collector(Cached(_families))
