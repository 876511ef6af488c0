"""Reads for pages and the API: what runs where, history, approvals waiting, the console.

Lists read a constant number of queries whatever their size (no query per row), and
"what runs now" is one index lookup per target, so pages do not slow down as history
grows (see bench/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from django.db.models import CharField, Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Cast

from portal.access.choices import Role
from portal.access.permissions import teams_with_role, visible
from portal.audit.models import AuditEvent
from portal.catalog.environment_config import (
    Link,
    Variable,
    links_by_environment,
    target_links,
    variables_by_target,
)
from portal.catalog.freezes import freezes_covering
from portal.catalog.models import DeploymentTarget, Environment, Freeze, Service
from portal.catalog.selectors import visible_services
from releases.choices import (
    DEPLOYMENT_OPEN,
    DEPLOYMENT_RUNNING,
    DEPLOYMENT_WAITING,
    DeploymentStatus,
)
from releases.gates import gates_for
from releases.models import (
    ChecklistTick,
    Deployment,
    GateResult,
    PromotionGate,
    Release,
    ReleaseLogChunk,
)
from releases.promotion import (
    CHANGED_WHAT_RUNS,
    previous_environment,
    release_promotion_target,
)


def service_environments(*, service: Service) -> list[Environment]:
    return list(Environment.objects.filter(targets__service=service).order_by("order"))


# -- what runs where ------------------------------------------------------------------


@dataclass
class EnvironmentState:
    """One service in one environment: what runs, what moves, what waits, what differs."""

    environment: Environment
    target: DeploymentTarget | None
    current: Deployment | None = None  # its release runs there now
    broken: Deployment | None = None  # the last change failed: nothing good runs
    active: Deployment | None = None  # running now
    waiting: list[Deployment] = field(default_factory=list)
    waiting_count: int = 0
    rollback_to: Release | None = None
    promote_to: Environment | None = None  # runs a release the next environment does not
    freeze: Freeze | None = None  # a freeze in force for this service here
    links: list[Link] = field(default_factory=list)  # the environment's links for it
    variables: list[Variable] = field(default_factory=list)  # filled by service_overview

    @property
    def drift(self) -> dict | None:
        return self.target.drift if self.target else None

    @property
    def targeted(self) -> bool:
        return self.target is not None


STATE_FIELDS = [
    "id", "kind", "status", "image", "helm_revision", "finished_at", "service_id",
    "environment_id", "target_id", "release_id", "requested_by_id",
    "release__id", "release__ref", "release__image_repository", "release__image_digest",
    "requested_by__id", "requested_by__username",
]  # fmt: skip


def _last_changes(targets: QuerySet[DeploymentTarget]) -> dict[tuple[int, int], Deployment]:
    """Per (service id, environment id), the deployment that last changed what runs there:
    one query, one index lookup per target, whatever the history's length."""
    latest = (
        Deployment.objects.filter(
            CHANGED_WHAT_RUNS,
            service_id=OuterRef("service_id"),
            environment_id=OuterRef("environment_id"),
        )
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
        .values("id")[:1]
    )
    # Only what the pages and the API show of what runs: at 400 cells, decoding each
    # deployment's JSON fields and whole release and user rows is most of a dashboard.
    # The ids stay in the database (a subquery): binding 400 ids into the query text
    # cost more than reading the rows.
    rows = (
        Deployment.objects.select_related("release", "requested_by")
        .only(*STATE_FIELDS)
        .filter(id__in=targets.annotate(last=Subquery(latest)).values("last"))
    )
    return {(d.service_id, d.environment_id): d for d in rows}


def environment_states(
    services: list[Service],
    environments: list[Environment],
    *,
    waiting_rows: bool = False,
    service_query: QuerySet[Service] | None = None,
) -> dict[int, list[EnvironmentState]]:
    """Per service id, its state in each environment (in order), in constant queries.

    `service_query`, the query that selected `services`, lets the database join on it
    rather than receive hundreds of ids."""
    service_ids = (
        service_query.values("pk") if service_query is not None else [s.pk for s in services]
    )
    targets = DeploymentTarget.objects.filter(service_id__in=service_ids)
    by_pair = {(t.service_id, t.environment_id): t for t in targets}
    changes = _last_changes(targets)
    running = {
        (d.service_id, d.environment_id): d
        for d in Deployment.objects.filter(
            service_id__in=service_ids, status__in=DEPLOYMENT_RUNNING
        ).select_related("release", "requested_by")
    }
    waiting: dict[tuple[int, int], list[Deployment]] = {}
    waiting_counts: dict[tuple[int, int], int] = {}
    open_requests = Deployment.objects.filter(
        service_id__in=service_ids, status__in=DEPLOYMENT_WAITING
    )
    if waiting_rows:
        for d in open_requests.select_related("release", "requested_by").order_by("id"):
            waiting.setdefault((d.service_id, d.environment_id), []).append(d)
        waiting_counts = {pair: len(rows) for pair, rows in waiting.items()}
    else:
        waiting_counts = {
            (s, e): n
            for s, e, n in open_requests.values_list("service_id", "environment_id").annotate(
                n=Count("id")
            )
        }
    links = links_by_environment(e.pk for e in environments)
    freezes: dict[tuple[int, int | None], Freeze] = {}
    for freeze in freezes_covering(environment_ids=[e.pk for e in environments]):
        freezes.setdefault((freeze.environment_id, freeze.team_id), freeze)
    states: dict[int, list[EnvironmentState]] = {}
    for service in services:
        row = []
        for environment in environments:
            target = by_pair.get((service.pk, environment.pk))
            last = changes.get((service.pk, environment.pk)) if target else None
            succeeded = last is not None and last.status == DeploymentStatus.SUCCEEDED
            row.append(
                EnvironmentState(
                    environment=environment,
                    target=target,
                    current=last if succeeded else None,
                    broken=last if last is not None and not succeeded else None,
                    active=running.get((service.pk, environment.pk)),
                    waiting=waiting.get((service.pk, environment.pk), []),
                    waiting_count=waiting_counts.get((service.pk, environment.pk), 0),
                    freeze=freezes.get((environment.pk, service.team_id))
                    or freezes.get((environment.pk, None)),
                )
            )
        targeted = [state for state in row if state.targeted]
        for state in targeted:
            runs = state.current.release if state.current else None
            state.links = target_links(
                links,
                service_slug=service.slug,
                environment_slug=state.environment.slug,
                target=state.target,
                release=runs,
            )
        for before, after in pairwise(targeted):
            if before.current and (
                after.current is None or after.current.release_id != before.current.release_id
            ):
                before.promote_to = after.environment
        states[service.pk] = row
    return states


@dataclass
class DashboardRow:
    service: Service
    states: list[EnvironmentState]


def dashboard(
    *, user, team: str = "", search: str = ""
) -> tuple[list[Environment], list[DashboardRow]]:
    """Services by environments for the user's teams (or one team), filtered by name."""
    services = visible_services(user).order_by("name")
    if team:
        services = services.filter(team__slug=team)
    if search:
        services = services.filter(Q(name__icontains=search) | Q(slug__icontains=search))
    service_query, services = services, list(services)
    environments = list(Environment.objects.order_by("order"))
    states = environment_states(services, environments, service_query=service_query)
    return environments, [DashboardRow(s, states[s.pk]) for s in services]


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
    gates = gates_for(source)
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


def service_overview(*, service: Service) -> list[EnvironmentState]:
    """Per environment of the service: what runs there, what moves, what waits, drift, and
    the release a lead can roll back to in one click."""
    environments = service_environments(service=service)
    states = environment_states([service], environments, waiting_rows=True)[service.pk]
    variables = variables_by_target([s.target for s in states if s.target])
    for state in states:
        state.variables = variables.get(state.target.pk, []) if state.target else []
        state.rollback_to = environment_rollback_candidate(
            service=service, environment=state.environment, current=state.current
        )
    return states


def environment_rollback_candidate(
    *, service: Service, environment: Environment, current: Deployment | None
) -> Release | None:
    """The release that last succeeded there before the one running now: one-click rollback."""
    if current is None:
        return None
    earlier = (
        Deployment.objects.filter(
            service=service, environment=environment, status=DeploymentStatus.SUCCEEDED
        )
        .exclude(release_id=current.release_id)
        .select_related("release")
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
        .first()
    )
    return earlier.release if earlier else None


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
    """Requests the user may decide: awaiting approval in a team where they are a lead
    (or admin), never their own."""
    teams = teams_with_role(user, Role.LEAD)
    waiting = Deployment.objects.filter(status=DeploymentStatus.AWAITING_APPROVAL).exclude(
        requested_by=user
    )
    if teams is not None:
        waiting = waiting.filter(service__team_id__in=teams)
    return waiting


def approvals_inbox(user) -> list[Deployment]:
    return list(
        approvals_waiting_for(user)
        .select_related("release", "service__team", "environment", "requested_by")
        .order_by("created_at")
    )


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
