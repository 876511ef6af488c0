"""Delivery metrics (DORA) over a period, per service, per team and overall.

All four come from one SQL statement over the last environment's deployments (two with
the weekly series), whatever the history's size: PostgreSQL groups them with GROUPING
SETS and takes the percentiles itself; Python only names the rows.

Definitions (also written on the page):
- a *change* is a deployment of kind deploy or promote to the last environment (Prod) that
  finished in the period as succeeded, failed or rolled back; rollbacks are remedies;
- *deployment frequency*: succeeded changes, per week of the period;
- *lead time for changes*: from the commit the build built (Jenkins's git data, Drone's
  commit) to the change's success in Prod; median and 90th percentile (changes without
  commit time are left out);
- *change failure rate*: failed or rolled-back changes, plus succeeded ones that a
  rollback of the same service in Prod undid within SLIPWAY_INSIGHTS_ROLLBACK_HOURS (a
  lead's, or the automatic one after a failed verification; no other change came between),
  or that failed a verification run, over all changes;
- *time to restore*: from a failed change's end to the next succeeded deployment of the
  same service in Prod (any kind); median.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from portal.access.choices import Role
from portal.access.models import Team
from portal.access.permissions import teams_with_role, visible_teams
from portal.catalog.models import Environment, Service
from portal.catalog.selectors import visible_services
from portal.core.exports import csv_row, csv_writer
from releases.choices import DeploymentKind, DeploymentStatus, VerificationStatus

_CHANGES = """
WITH changes AS (
    SELECT d.id, d.service_id, s.team_id, d.environment_id, d.status, d.finished_at,
           r.commit_time,
           (d.status = ANY(%(failures)s) OR EXISTS (
               SELECT 1 FROM releases_deployment rb
               WHERE rb.service_id = d.service_id AND rb.environment_id = d.environment_id
                 AND rb.kind = %(rollback)s AND rb.created_at > d.finished_at
                 AND rb.created_at <= d.finished_at + make_interval(hours => %(window)s)
                 -- the rollback undid this change, not a later one
                 AND NOT EXISTS (
                     SELECT 1 FROM releases_deployment nx
                     WHERE nx.service_id = d.service_id AND nx.environment_id = d.environment_id
                       AND nx.kind = ANY(%(changes)s) AND nx.id <> d.id
                       AND nx.finished_at > d.finished_at AND nx.finished_at < rb.created_at
                 )
           ) OR EXISTS (
               SELECT 1 FROM releases_verificationrun v
               WHERE v.deployment_id = d.id AND v.status = %(verification_failed)s
           )) AS failed
    FROM releases_deployment d
    JOIN releases_release r ON r.id = d.release_id
    JOIN portal_service s ON s.id = d.service_id
    WHERE d.environment_id = %(environment)s
      AND d.kind = ANY(%(changes)s)
      AND d.status = ANY(%(ended)s)
      AND d.finished_at >= %(since)s AND d.finished_at < %(until)s
      AND (%(all_teams)s OR s.team_id = ANY(%(teams)s))
      AND (%(service)s::bigint IS NULL OR s.id = %(service)s::bigint)
),
measured AS (
    SELECT c.*,
        CASE WHEN c.status = %(succeeded)s AND c.commit_time IS NOT NULL
             THEN extract(epoch FROM c.finished_at - c.commit_time) END AS lead_seconds,
        CASE WHEN c.failed THEN (
            SELECT extract(epoch FROM min(n.finished_at) - c.finished_at)
            FROM releases_deployment n
            WHERE n.service_id = c.service_id AND n.environment_id = c.environment_id
              AND n.status = %(succeeded)s AND n.finished_at > c.finished_at
        ) END AS restore_seconds
    FROM changes c
)
"""

_SUMMARY = (
    _CHANGES
    + """
SELECT team_id, service_id, GROUPING(team_id, service_id) AS level,
       count(*) FILTER (WHERE status = %(succeeded)s) AS deployments,
       count(*) AS changes,
       count(*) FILTER (WHERE failed) AS failures,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_seconds) AS lead_median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY lead_seconds) AS lead_p90,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY restore_seconds) AS restore_median,
       count(restore_seconds) AS restored
FROM measured
GROUP BY GROUPING SETS ((team_id, service_id), (team_id), ())
ORDER BY level DESC, team_id, service_id
"""
)

_WEEKLY = (
    _CHANGES
    + """
SELECT date_trunc('week', finished_at) AS week,
       count(*) FILTER (WHERE status = %(succeeded)s) AS deployments,
       count(*) FILTER (WHERE failed) AS failures
FROM measured GROUP BY 1 ORDER BY 1
"""
)


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    @property
    def weeks(self) -> float:
        return max((self.until - self.since) / timedelta(weeks=1), 1 / 7)

    @classmethod
    def last_days(cls, days: int = 30) -> Period:
        until = timezone.now()
        return cls(until - timedelta(days=days), until)


@dataclass
class Metrics:
    scope: str  # overall | team | service
    name: str
    team: str
    service: str
    deployments: int
    per_week: float
    changes: int
    failures: int
    failure_rate: float | None  # 0..1; None without changes
    lead_time_median_hours: float | None
    lead_time_p90_hours: float | None
    restore_median_hours: float | None
    restored: int


@dataclass
class Week:
    week: datetime
    deployments: int
    failures: int


@dataclass
class Insights:
    period: Period
    environment: Environment | None
    rows: list[Metrics] = field(default_factory=list)
    weeks: list[Week] = field(default_factory=list)

    @property
    def overall(self) -> Metrics | None:
        return next((row for row in self.rows if row.scope == "overall"), None)


def _hours(seconds) -> float | None:
    return None if seconds is None else round(float(seconds) / 3600, 2)


def insights(
    *,
    period: Period,
    team_ids: list[int] | None,
    service: Service | None = None,
    environment: Environment | None = None,
) -> Insights:
    """Metrics for the teams `team_ids` (None: every team), optionally one service, over
    the deployments to `environment` (default: the last on the path)."""
    environment = environment or Environment.objects.order_by("-order").first()
    result = Insights(period, environment)
    if environment is None:
        return result
    params = {
        "environment": environment.pk,
        "since": period.since,
        "until": period.until,
        "window": settings.SLIPWAY_INSIGHTS_ROLLBACK_HOURS,
        # The words of the status tables, never spelled again in the SQL.
        "succeeded": DeploymentStatus.SUCCEEDED,
        "failures": [DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK],
        "ended": [
            DeploymentStatus.SUCCEEDED,
            DeploymentStatus.FAILED,
            DeploymentStatus.ROLLED_BACK,
        ],
        "changes": [DeploymentKind.DEPLOY, DeploymentKind.PROMOTE],
        "rollback": DeploymentKind.ROLLBACK,
        "verification_failed": VerificationStatus.FAILED,
        "all_teams": team_ids is None,
        "teams": team_ids or [],
        "service": service.pk if service else None,
    }
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY, params)
        summary = cursor.fetchall()
        cursor.execute(_WEEKLY, params)
        weekly = cursor.fetchall()
    teams = dict(Team.objects.filter(pk__in={r[0] for r in summary}).values_list("pk", "slug"))
    services = dict(
        Service.objects.filter(pk__in={r[1] for r in summary}).values_list("pk", "slug")
    )
    for (
        team_id,
        service_id,
        level,
        deployed,
        changes,
        failures,
        lead,
        lead90,
        restore,
        n,
    ) in summary:
        if not changes:
            continue  # the overall row of an empty period
        scope = {0: "service", 1: "team", 3: "overall"}[level]
        team, service_slug = teams.get(team_id, ""), services.get(service_id, "")
        result.rows.append(
            Metrics(
                scope=scope,
                name={"overall": "All services", "team": team, "service": service_slug}[scope],
                team=team,
                service=service_slug,
                deployments=deployed,
                per_week=round(deployed / period.weeks, 2),
                changes=changes,
                failures=failures,
                failure_rate=round(failures / changes, 4) if changes else None,
                lead_time_median_hours=_hours(lead),
                lead_time_p90_hours=_hours(lead90),
                restore_median_hours=_hours(restore),
                restored=n,
            )
        )
    result.weeks = [Week(week, deployed, failed) for week, deployed, failed in weekly]
    return result


def insights_for(user, *, period: Period, team: str = "", service: str = "") -> Insights:
    """What the user may see: their teams, or one of them (`team`), or one of their
    services (`service`); a team or service they may not see gives nothing."""
    team_ids = teams_with_role(user, Role.VIEWER)
    if team:
        found = visible_teams(user).filter(slug=team).first()
        team_ids = [found.pk] if found else []
    chosen = None
    if service:
        chosen = visible_services(user).filter(slug=service).first()
        if chosen is None:
            team_ids = []
    return insights(period=period, team_ids=team_ids, service=chosen)


CSV_FIELDS = [
    "scope", "name", "team", "service", "deployments", "per_week", "changes", "failures",
    "failure_rate", "lead_time_median_hours", "lead_time_p90_hours", "restore_median_hours",
    "restored",
]  # fmt: skip


def insights_csv(result: Insights) -> str:
    writer = csv_writer()
    lines = [
        csv_row(writer, ["since", result.period.since.isoformat(), "until",
                         result.period.until.isoformat()]),
        csv_row(writer, CSV_FIELDS),
    ]  # fmt: skip
    lines += [csv_row(writer, (getattr(row, f) for f in CSV_FIELDS)) for row in result.rows]
    return "".join(lines)
