"""What runs where, for pages and the API: each service in each environment, cluster by
cluster, with what moves, waits, differs and may come next.

Lists read a constant number of queries whatever their size (no query per row), and
"what runs now" is one index lookup per target, so pages do not slow down as history
grows (see bench/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

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
    DEPLOYMENT_RUNNING,
    DEPLOYMENT_WAITING,
    DeploymentStatus,
    RolloutStatus,
)
from releases.models import (
    Deployment,
    Release,
    TargetRollout,
)
from releases.promotion import (
    CHANGED_WHAT_RUNS,
)


def service_environments(*, service: Service) -> list[Environment]:
    return list(Environment.objects.filter(targets__service=service).distinct().order_by("order"))


@dataclass
class ClusterState:
    """One target (one cluster) of a service in an environment: what last changed there."""

    target: DeploymentTarget
    last: TargetRollout | None = None

    @property
    def succeeded(self) -> bool:
        return self.last is not None and self.last.status == RolloutStatus.SUCCEEDED

    @property
    def release_id(self) -> int | None:
        return self.last.deployment.release_id if self.last else None

    @property
    def drift(self) -> dict | None:
        return self.target.drift


@dataclass
class EnvironmentState:
    """One service in one environment: what runs, what moves, what waits, what differs;
    cluster by cluster when it has several targets there."""

    environment: Environment
    clusters: list[ClusterState] = field(default_factory=list)  # in wave order
    current: Deployment | None = None  # its release runs there now, on every cluster
    broken: Deployment | None = None  # a cluster's last change failed: nothing good runs
    active: Deployment | None = None  # running now
    waiting: list[Deployment] = field(default_factory=list)
    waiting_count: int = 0
    rollback_to: Release | None = None
    promote_to: Environment | None = None  # runs a release the next environment does not
    freeze: Freeze | None = None  # a freeze in force for this service here
    links: list[Link] = field(default_factory=list)  # the environment's links for it
    variables: list[Variable] = field(default_factory=list)  # filled by service_overview

    @property
    def target(self) -> DeploymentTarget | None:
        """The first wave's target (the only one, mostly)."""
        return self.clusters[0].target if self.clusters else None

    @property
    def several(self) -> bool:
        return len(self.clusters) > 1

    @property
    def split(self) -> bool:
        """Its clusters run different releases (a wave stopped, a cluster skipped)."""
        return self.current is None and self.broken is None and any(c.last for c in self.clusters)

    @property
    def drift(self) -> dict | None:
        """The first drifting cluster's drift (named, when there are several)."""
        for cluster in self.clusters:
            if cluster.drift:
                if not self.several:
                    return cluster.drift
                summary = f"{cluster.target.cluster}: {cluster.drift.get('summary', '')}"
                return {**cluster.drift, "cluster": str(cluster.target.cluster), "summary": summary}
        return None

    @property
    def targeted(self) -> bool:
        return bool(self.clusters)


STATE_FIELDS = [
    "id", "status", "helm_revision", "finished_at", "target_id", "deployment_id",
    "deployment__id", "deployment__kind", "deployment__status", "deployment__image",
    "deployment__finished_at", "deployment__service_id", "deployment__environment_id",
    "deployment__release_id", "deployment__requested_by_id",
    "deployment__release__id", "deployment__release__ref",
    "deployment__release__image_repository", "deployment__release__image_digest",
    "deployment__requested_by__id", "deployment__requested_by__username",
]  # fmt: skip


def _last_changes(targets: QuerySet[DeploymentTarget]) -> dict[int, TargetRollout]:
    """Per target id, the rollout that last changed what runs there: one query, one index
    lookup per target, whatever the history's length."""
    latest = (
        TargetRollout.objects.filter(CHANGED_WHAT_RUNS, target_id=OuterRef("pk"))
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
        .values("id")[:1]
    )
    # Only what the pages and the API show of what runs: at 400 cells, decoding each
    # rollout's JSON fields and whole release and user rows is most of a dashboard.
    # The ids stay in the database (a subquery): binding 400 ids into the query text
    # cost more than reading the rows.
    rows = (
        TargetRollout.objects.select_related("deployment__release", "deployment__requested_by")
        .only(*STATE_FIELDS)
        .filter(id__in=targets.annotate(last=Subquery(latest)).values("last"))
    )
    return {r.target_id: r for r in rows}


def _environment_state(environment: Environment, clusters: list[ClusterState], **more):
    """What runs there as a whole: one release on every cluster (current), a cluster
    whose last change failed (broken), or neither (nothing yet, or split)."""
    state = EnvironmentState(environment=environment, clusters=clusters, **more)
    changes = [c.last for c in clusters]
    failed = [c for c in changes if c is not None and c.status != RolloutStatus.SUCCEEDED]
    if failed:
        state.broken = failed[0].deployment
    elif changes and all(changes) and len({c.deployment.release_id for c in changes}) == 1:
        newest = max(changes, key=lambda c: (c.finished_at, c.pk))
        state.current = newest.deployment
    return state


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
    by_pair: dict[tuple[int, int], list[DeploymentTarget]] = {}
    for target in targets.select_related("cluster").order_by("wave", "id"):
        by_pair.setdefault((target.service_id, target.environment_id), []).append(target)
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
            pair = (service.pk, environment.pk)
            row.append(
                _environment_state(
                    environment,
                    [ClusterState(t, changes.get(t.pk)) for t in by_pair.get(pair, [])],
                    active=running.get(pair),
                    waiting=waiting.get(pair, []),
                    waiting_count=waiting_counts.get(pair, 0),
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


DASHBOARD_PAGE = 50
FAILING = (DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK)


@dataclass
class DashboardPage:
    environments: list[Environment]
    rows: list[DashboardRow]
    number: int
    pages: int
    total: int


def _changed_since(start) -> Exists:
    return Exists(Deployment.objects.filter(service=OuterRef("pk"), created_at__gte=start))


def _failing() -> Exists:
    """A deployment that failed (or was rolled back) in an environment where nothing has
    succeeded since."""
    recovered = Deployment.objects.filter(
        service=OuterRef("service"), environment=OuterRef("environment"),
        status=DeploymentStatus.SUCCEEDED, pk__gt=OuterRef("pk"),
    )  # fmt: skip
    return Exists(
        Deployment.objects.filter(service=OuterRef("pk"), status__in=FAILING).exclude(
            Exists(recovered)
        )
    )


def dashboard(
    *,
    user,
    team: str = "",
    search: str = "",
    changed_today: bool = False,
    failing: bool = False,
    page: int | str = 1,
    per_page: int = DASHBOARD_PAGE,
) -> DashboardPage:
    """Services by environments for the user's teams (or one team), filtered by name, by
    "changed today" and by "failing", a page at a time: the page costs the same for 20
    services as for 2,000 (one count, one page of rows, their states)."""
    services = visible_services(user).order_by("name", "pk")
    if team:
        services = services.filter(team__slug=team)
    if search:
        services = services.filter(Q(name__icontains=search) | Q(slug__icontains=search))
    if changed_today:
        midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        services = services.filter(_changed_since(midnight))
    if failing:
        services = services.filter(_failing())
    shown = Paginator(services, per_page).get_page(page)
    rows = list(shown.object_list)
    environments = list(Environment.objects.order_by("order"))
    states = environment_states(rows, environments)
    return DashboardPage(
        environments=environments,
        rows=[DashboardRow(s, states[s.pk]) for s in rows],
        number=shown.number,
        pages=shown.paginator.num_pages,
        total=shown.paginator.count,
    )


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
