"""Reads for pages and the API: what runs where, history, approvals waiting, the console.

Lists read a constant number of queries whatever their size (no query per row), and
"what runs now" is one index lookup per target, so pages do not slow down as history
grows (see bench/).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import CharField, Max, Q, QuerySet
from django.db.models.functions import Cast

from portal.access.choices import Role
from portal.access.permissions import has_role, teams_with_role, visible
from portal.audit.models import AuditEvent
from portal.catalog.environment_config import (
    Link,
    links_by_environment,
    target_links,
)
from portal.catalog.models import DeploymentTarget, Environment, Service
from releases import policies
from releases.choices import (
    DEPLOYMENT_OPEN,
    DEPLOYMENT_RUNNING,
    DeploymentStatus,
    VerificationStatus,
)
from releases.gates import gates_for
from releases.models import (
    ChecklistTick,
    Deployment,
    GateResult,
    PromotionGate,
    Release,
    ReleaseLogChunk,
    VerificationRun,
)
from releases.promotion import (
    previous_environment,
    release_promotion_target,
)
from releases.verified import is_verified


@dataclass
class GateState:
    gate: PromotionGate
    last: GateResult | None
    tick: ChecklistTick | None


def release_gates(*, release: Release) -> tuple[Environment | None, list[GateState]]:
    """The gates between the release and the next environment, with the last result of
    each (stored when someone checked them) and checklist ticks."""
    target = release_promotion_target(release=release)
    return target, (release_gates_to(release=release, environment=target) if target else [])


def release_gates_to(*, release: Release, environment: Environment) -> list[GateState]:
    """The gates a promotion of the release to `environment` must pass, each with its last
    stored result and tick: three queries, no evaluation (a GET never calls Prometheus)."""
    source = previous_environment(release.service, environment)
    if source is None:
        return []
    gates = gates_for(source, release.service_id)
    last: dict[int, GateResult] = {}
    for result in GateResult.objects.filter(release=release, gate__in=gates).order_by("id"):
        last[result.gate_id] = result
    ticks = {
        t.gate_id: t
        for t in ChecklistTick.objects.filter(release=release, gate__in=gates).select_related(
            "ticked_by"
        )
    }
    return [GateState(g, last.get(g.pk), ticks.get(g.pk)) for g in gates]


def release_links(*, release: Release) -> list[tuple[Environment, list[Link]]]:
    """Each environment's links for the service, filled with this release."""
    targets = list(
        DeploymentTarget.objects.filter(service_id=release.service_id)
        .select_related("environment")
        .order_by("environment__order")
    )
    links = links_by_environment(t.environment_id for t in targets)
    made = [
        (
            t.environment,
            target_links(
                links,
                service_slug=release.service.slug,
                environment_slug=t.environment.slug,
                target=t,
                release=release,
            ),
        )
        for t in targets
    ]
    return [(environment, found) for environment, found in made if found]


def deployment_waiting_for(deployment: Deployment) -> Deployment | None:
    """For a queued deployment: the running one it waits behind."""
    if deployment.status != DeploymentStatus.QUEUED:
        return None
    return (
        Deployment.objects.select_related("requested_by")
        .filter(
            service_id=deployment.service_id,
            environment_id=deployment.environment_id,
            status__in=DEPLOYMENT_RUNNING,
        )
        .first()
    )


def release_has_open_deployments(release: Release) -> bool:
    return release.deployments.filter(status__in=DEPLOYMENT_OPEN).exists()


def release_history(*, service: Service, limit: int = 25) -> QuerySet[Release]:
    return (
        Release.objects.filter(service=service)
        .select_related("requested_by")
        .prefetch_related("deployments__environment")
        .order_by("-id")[:limit]
    )


# -- approvals ------------------------------------------------------------------------


def approvals_waiting_for(user) -> QuerySet[Deployment]:
    """Requests the user may decide: awaiting approval, a rule of their policy counts the
    user, and they have not decided yet (never their own unless the policy allows it)."""
    return policies.waiting_for(user)


def approvals_inbox(user) -> list[Deployment]:
    """The requests with where each stands: rules met, by whom, who may still approve."""
    waiting = list(
        approvals_waiting_for(user)
        .select_related("release", "service__team", "environment", "requested_by")
        .order_by("created_at")
    )
    for deployment in waiting:
        deployment.policy = policies.policy_state(deployment, candidates=True)
    return waiting


def judgements_waiting_for(user) -> QuerySet[VerificationRun]:
    """Inconclusive verification runs nobody judged, where the user is a lead (or admin)."""
    teams = teams_with_role(user, Role.LEAD)
    waiting = VerificationRun.objects.filter(status=VerificationStatus.INCONCLUSIVE, judgement="")
    if teams is not None:
        waiting = waiting.filter(service__team_id__in=teams)
    return waiting


def judgements_inbox(user) -> list[VerificationRun]:
    runs = list(
        judgements_waiting_for(user)
        .select_related("release", "service__team", "environment", "deployment")
        .prefetch_related("measurements")
        .order_by("created_at")
    )
    for run in runs:
        run.charts = verification_charts(run)
    return runs


# -- verification ---------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 160, 40, 4


@dataclass
class Chart:
    """One metric's measurements of a run, as the points of a small SVG line chart."""

    metric: str
    measurements: list
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT

    @property
    def points(self) -> list[tuple[float, float, object]]:
        values = [m.value for m in self.measurements if m.value is not None]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        span = (high - low) or 1.0
        step = (self.width - 2 * CHART_PAD) / max(len(self.measurements) - 1, 1)
        placed = []
        for i, m in enumerate(self.measurements):
            x = CHART_PAD + i * step
            value = m.value if m.value is not None else low
            y = self.height - CHART_PAD - (value - low) / span * (self.height - 2 * CHART_PAD)
            placed.append((round(x, 1), round(y, 1), m))
        return placed

    @property
    def polyline(self) -> str:
        return " ".join(f"{x},{y}" for x, y, m in self.points if m.value is not None)

    @property
    def last(self):
        return self.measurements[-1] if self.measurements else None


def verification_charts(run: VerificationRun) -> list[Chart]:
    """A chart per metric, measurements in order (from the prefetched measurements)."""
    by_metric: dict[str, list] = {}
    for m in sorted(run.measurements.all(), key=lambda m: (m.metric_name, m.sequence)):
        by_metric.setdefault(m.metric_name, []).append(m)
    return [Chart(name, ms) for name, ms in by_metric.items()]


def release_verifications(*, release: Release, user) -> list[VerificationRun]:
    """A release's verification runs, newest first, each with its charts and what the user
    may do: only the latest run of an environment is decided on, by a lead."""
    runs = list(
        VerificationRun.objects.filter(release=release)
        .select_related("environment", "decided_by", "service__team")
        .prefetch_related("measurements")
        .order_by("-id")
    )
    lead = bool(runs) and has_role(user, release.service, Role.LEAD)
    latest = dict(
        VerificationRun.objects.filter(service=release.service_id, canary_step__isnull=True)
        .values("environment")
        .annotate(latest=Max("id"))
        .values_list("environment", "latest")
    )
    for run in runs:
        run.charts = verification_charts(run)
        run.verified = is_verified(run)
        run.may_decide = lead and latest.get(run.environment_id) == run.pk
    return runs


# -- the console ----------------------------------------------------------------------


def release_log_since(*, release: Release, offset: int) -> tuple[str, int]:
    """Console text stored from byte `offset` on, and the byte offset to ask for next."""
    chunks = list(
        ReleaseLogChunk.objects.filter(release=release, offset__gte=offset)
        .order_by("offset")
        .values_list("text", "end_offset")
    )
    if not chunks:
        return "", offset
    return "".join(text for text, _ in chunks), chunks[-1][1]


def visible_releases(user) -> QuerySet[Release]:
    return visible(Release.objects.all(), user)


def visible_deployments(user) -> QuerySet[Deployment]:
    return visible(Deployment.objects.all(), user)


def events_of_service(service) -> QuerySet[AuditEvent]:
    """A service's events: the service, its targets, its releases and their deployments."""

    def ids(queryset):
        return queryset.annotate(text_id=Cast("id", CharField())).values("text_id")

    return AuditEvent.objects.filter(
        Q(target_type="portal.Service", target_id=str(service.pk))
        | Q(
            target_type="portal.DeploymentTarget",
            target_id__in=ids(DeploymentTarget.objects.filter(service=service)),
        )
        | Q(target_type="releases.Release", target_id__in=ids(service.releases.all()))
        | Q(target_type="releases.Deployment", target_id__in=ids(service.deployments.all()))
    ).order_by("-id")
