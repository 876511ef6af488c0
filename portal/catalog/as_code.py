"""Services as code: a catalog source's repositories declare services in `slipway.yaml`;
a sync reads each repository's newest commit, says what would change (a dry run), then
applies the whole source: creates, changes, orphans and restores services and their
targets, each change audited with the repository and commit it came from.

What a file may not do is refused, per repository, with the line: name a team, Jenkins
server, environment or cluster that does not exist; take a service another source (or an
admin, by hand) owns; point a target outside its team's namespace grants (the targets
rule, portal/catalog/targets.py); move a protected environment's target (a platform
admin's change); remove a target that has deployed. A repository that cannot be read or
whose file is invalid changes nothing of its service (it is not orphaned for it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.db import transaction
from django.utils import timezone

from doors.git import GitError, read_files
from portal.access.models import Team
from portal.audit.actions import Catalog
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.catalog.models import (
    BuildBackend,
    CatalogSource,
    DeploymentTarget,
    DroneServer,
    Environment,
    EnvironmentVariable,
    JenkinsServer,
    Service,
)
from portal.catalog.service_file import (
    BACKSTAGE_FILE,
    FILE,
    DeclarationRefused,
    FileInvalid,
    ServiceSpec,
    TargetSpec,
    backstage_pointer,
    parse_service_file,
)
from portal.catalog.signals import service_declared
from portal.catalog.targets import target_refusal
from portal.core.images import default_image_values

SYNC_ACTOR = Actor.system("catalog sync")
# The service fields a file declares, as (field, how the spec says it).
FIELDS = ("name", "team", "repository_url", "build_backend", "jenkins_server", "jenkins_job",
          "drone_server", "drone_repository", "chart",
          "chart_version", "image_repository", "image_values", "default_values",
          "backstage_entity")  # fmt: skip
TARGET_FIELDS = ("namespace", "helm_release_name", "values", "wave")


@dataclass
class RepositoryReport:
    url: str
    commit: str = ""
    service: str = ""
    error: str = ""
    line: int | None = None


@dataclass
class Change:
    """What a sync does (or would do) to one service."""

    action: str  # create, update, orphan, restore, unchanged
    service: str
    repository: str = ""
    commit: str = ""
    fields: dict = field(default_factory=dict)  # name → [before, after]
    targets: list[str] = field(default_factory=list)


@dataclass
class Plan:
    source: str
    changes: list[Change] = field(default_factory=list)
    repositories: list[RepositoryReport] = field(default_factory=list)
    applied: bool = False

    @property
    def errors(self) -> list[RepositoryReport]:
        return [r for r in self.repositories if r.error]

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "applied": self.applied,
            "changes": [asdict(c) for c in self.changes if c.action != "unchanged"],
            "unchanged": [c.service for c in self.changes if c.action == "unchanged"],
            "repositories": [asdict(r) for r in self.repositories],
        }


@dataclass
class _Desired:
    spec: ServiceSpec
    report: RepositoryReport
    values: dict  # service field → value
    targets: dict  # (environment slug, cluster name) → (TargetSpec, Environment, Cluster)


class _Refused(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _cluster_model():
    return DeploymentTarget._meta.get_field("cluster").related_model


def _resolve(spec: ServiceSpec, source: CatalogSource, url: str) -> tuple[dict, dict]:
    """The service's field values and targets from the file, or _Refused."""
    team = Team.objects.filter(slug=spec.team).first()
    if team is None:
        raise _Refused(f"metadata.team: no team {spec.team}")
    drone = spec.build_backend == BuildBackend.DRONE
    servers = DroneServer if drone else JenkinsServer
    server = servers.objects.filter(name=spec.build_server).first()
    if server is None:
        kind = "Drone" if drone else "Jenkins"
        raise _Refused(f"spec.build.server: no {kind} server named {spec.build_server}")
    values = {
        "name": spec.name, "team": team, "repository_url": url,
        "build_backend": spec.build_backend,
        "jenkins_server": None if drone else server, "jenkins_job": "" if drone else spec.build_job,
        "drone_server": server if drone else None,
        "drone_repository": spec.build_job if drone else "",
        "chart": spec.chart, "chart_version": spec.chart_version,
        "image_repository": spec.image_repository,
        "image_values": spec.image_values or default_image_values(),
        "default_values": spec.default_values, "backstage_entity": spec.backstage_entity,
    }  # fmt: skip
    clusters = _cluster_model()
    targets = {}
    for target in spec.targets:
        environment = Environment.objects.filter(slug=target.environment).first()
        if environment is None:
            raise _Refused(f"no environment {target.environment}", target.line)
        cluster = (
            clusters.objects.filter(name=target.cluster).first()
            or clusters.objects.filter(slug=target.cluster).first()
        )
        if cluster is None:
            raise _Refused(f"no cluster {target.cluster}", target.line)
        targets[(environment.slug, cluster.pk)] = (target, environment, cluster)
    return values, targets


def _read(source: CatalogSource, url: str, branch: str) -> _Desired | RepositoryReport:
    report = RepositoryReport(url=url)
    try:
        snapshot = read_files(url, ref=branch, paths=[FILE, BACKSTAGE_FILE])
    except GitError as exc:
        report.error = str(exc)
        return report
    report.url, report.commit = snapshot.url, snapshot.commit
    text = snapshot.files[FILE]
    pointer = backstage_pointer(snapshot.files[BACKSTAGE_FILE] or "")
    if text is None:
        if pointer:
            report.error = (
                f"{BACKSTAGE_FILE} names Slipway service {pointer[0]} but there is no {FILE}"
            )
        return report  # no service here (or no longer)
    try:
        spec = parse_service_file(text)
    except FileInvalid as exc:
        report.error, report.line = f"{FILE}: {exc.message}", exc.line
        return report
    report.service = spec.slug
    if pointer:
        if pointer[0] != spec.slug:
            report.error = (
                f"{BACKSTAGE_FILE} names service {pointer[0]} but {FILE} declares {spec.slug}"
            )
            return report
        spec.backstage_entity = pointer[1]
    try:
        values, targets = _resolve(spec, source, snapshot.url)
    except _Refused as exc:
        report.error, report.line = f"{FILE}: {exc}", exc.line
        return report
    return _Desired(spec, report, values, targets)


def _target_change(existing: DeploymentTarget | None, spec: TargetSpec) -> dict:
    wanted = {"namespace": spec.namespace, "helm_release_name": spec.release,
              "values": spec.values, "wave": spec.wave}  # fmt: skip
    if existing is None:
        return wanted
    return {k: v for k, v in wanted.items() if getattr(existing, k) != v}


def _variables_wanted(spec: TargetSpec, environment: Environment) -> dict[str, tuple]:
    """name → (value, is secret, the secret) as the target should have them; raises
    _Refused for a reference to a secret the environment does not keep."""
    wanted = {}
    for name, value in spec.variables.items():
        if isinstance(value, dict):
            kept = EnvironmentVariable.objects.filter(
                environment=environment, target__isnull=True, name=value["secret"], is_secret=True
            ).first()
            if kept is None:
                raise _Refused(
                    f"variables.{name}: {environment.name} keeps no secret variable "
                    f"{value['secret']} (an admin adds it in Slipway)",
                    spec.line,
                )
            wanted[name] = ("", True, kept.secret_value.reveal())
        else:
            wanted[name] = (value, False, "")
    return wanted


def _variables_differ(target: DeploymentTarget | None, wanted: dict[str, tuple]) -> bool:
    if target is None:
        return bool(wanted)
    have = {v.name: (v.value, v.is_secret, v.secret_value.reveal()) for v in target.variables.all()}
    return have != wanted


def _check_targets(desired: _Desired, service: Service | None) -> list[str]:
    """What changes in the targets, in words; raises _Refused for what a file may not do."""
    said = []
    existing = {}
    if service is not None:
        existing = {(t.environment.slug, t.cluster_id): t
                    for t in service.targets.select_related("environment", "cluster")}  # fmt: skip
    team = desired.values["team"]
    for key, (spec, environment, cluster) in desired.targets.items():
        current = existing.get(key)
        changed = _target_change(current, spec)
        probe = DeploymentTarget(
            service=Service(slug=desired.spec.slug, team=team), environment=environment,
            cluster=cluster, namespace=spec.namespace, helm_release_name=spec.release,
        )  # fmt: skip
        refusal = target_refusal(probe)
        if refusal:
            raise _Refused(refusal, spec.line)
        if _variables_differ(current, _variables_wanted(spec, environment)):
            changed = {**changed, "variables": True}
        moved = {"namespace", "helm_release_name"} & set(changed)
        if current is not None and environment.protected and moved:
            raise _Refused(
                f"the {environment.name} target on {cluster} is protected: where it points "
                "(namespace, Helm release) changes only by a platform admin",
                spec.line,
            )
        if current is None:
            said.append(f"+ {environment.slug} on {cluster}: {spec.namespace}/{spec.release}")
        elif changed:
            said.append(f"~ {environment.slug} on {cluster}: {', '.join(sorted(changed))}")
    for key, target in existing.items():
        if key not in desired.targets:
            if target.rollouts.exists():
                raise _Refused(
                    f"the {target.environment.slug} target on {target.cluster} has deployed "
                    "and is no longer in the file: a platform admin removes it"
                )
            said.append(f"- {target.environment.slug} on {target.cluster}")
    return said


def _variables_save(target: DeploymentTarget, wanted: dict[str, tuple]) -> None:
    target.variables.exclude(name__in=list(wanted)).delete()
    for name, (value, secret, secret_value) in wanted.items():
        EnvironmentVariable.objects.update_or_create(
            environment=target.environment, target=target, name=name,
            defaults={"value": value, "is_secret": secret, "secret_value": secret_value},
        )  # fmt: skip


def _declared(service: Service | None, spec: ServiceSpec, *, apply: bool) -> list[str]:
    """What the other parts of Slipway plan (or apply) for the rest of the file."""
    said = []
    for _receiver, changes in service_declared.send(
        sender=Service, service=service, spec=spec, apply=apply
    ):
        said += changes or []
    return said


def _field_changes(service: Service, values: dict) -> dict:
    changes = {}
    for name in FIELDS:
        before, after = getattr(service, name), values[name]
        if before != after:
            shown = lambda v: getattr(v, "slug", None) or getattr(v, "name", None) or v  # noqa: E731
            changes[name] = [shown(before), shown(after)]
    return changes


def source_plan(source: CatalogSource) -> tuple[Plan, dict[str, _Desired]]:
    """Read every repository of the source and say what a sync would change."""
    plan = Plan(source=source.name)
    wanted: dict[str, _Desired] = {}
    unreadable: set[str] = set()
    for url, branch in source.repository_list():
        read = _read(source, url, branch)
        if isinstance(read, RepositoryReport):
            plan.repositories.append(read)
            if read.error:
                unreadable.add(read.url)
            continue
        report = read.report
        plan.repositories.append(report)
        slug = read.spec.slug
        if slug in wanted:
            report.error = f"{FILE}: service {slug} is also declared by {wanted[slug].report.url}"
            continue
        service = Service.objects.filter(slug=slug).first()
        if service is not None and service.catalog_source_id != source.pk:
            owner = service.catalog_source or "an admin, by hand"
            report.error = (
                f"{FILE}: service {slug} exists and is declared by {owner}, not this source; "
                "a platform admin hands it over by setting its catalog source"
            )
            continue
        try:
            targets = _check_targets(read, service)
            targets += _declared(service, read.spec, apply=False)
        except (_Refused, DeclarationRefused) as exc:
            report.error, report.line = f"{FILE}: {exc}", exc.line
            unreadable.add(report.url)
            continue
        wanted[slug] = read
        if service is None:
            plan.changes.append(Change("create", slug, report.url, report.commit,
                                       {k: [None, str(v)] for k, v in read.values.items()},
                                       targets))  # fmt: skip
            continue
        fields = _field_changes(service, read.values)
        action = (
            "restore" if service.orphaned_at else ("update" if fields or targets else "unchanged")
        )
        plan.changes.append(Change(action, slug, report.url, report.commit, fields, targets))
    for service in Service.objects.filter(catalog_source=source, orphaned_at__isnull=True):
        if service.slug in wanted or service.catalog_repository in unreadable:
            continue
        plan.changes.append(Change("orphan", service.slug, service.catalog_repository))
    return plan, wanted


def _apply(change: Change, desired: _Desired | None, source: CatalogSource, who: dict) -> None:
    context = {"repository": change.repository, "commit": change.commit}
    if change.action == "orphan":
        service = Service.objects.get(slug=change.service)
        service.orphaned_at = timezone.now()
        service.save(update_fields=["orphaned_at"])
        audit_record(action=Catalog.SERVICE_ORPHANED, target=service,
                     after={**context, "reason": f"{FILE} is gone"}, **who)  # fmt: skip
        return
    service = Service.objects.filter(slug=change.service).first() or Service(
        slug=change.service, catalog_source=source
    )
    for name, value in desired.values.items():
        setattr(service, name, value)
    service.catalog_repository, service.catalog_commit = change.repository, change.commit
    service.orphaned_at = None
    service.save()
    existing = {
        (t.environment.slug, t.cluster_id): t for t in service.targets.select_related("environment")
    }
    for key, (spec, environment, cluster) in desired.targets.items():
        target = existing.pop(key, None) or DeploymentTarget(
            service=service, environment=environment, cluster=cluster
        )
        created = target.pk is None
        changed = _target_change(None if created else target, spec)
        variables = _variables_wanted(spec, environment)
        new_variables = _variables_differ(None if created else target, variables)
        if changed or new_variables:
            for name, value in changed.items():
                setattr(target, name, value)
            target.full_clean()
            target.save()
            if new_variables:
                _variables_save(target, variables)
                changed["variables"] = sorted(spec.variables)  # names only, never values
            audit_record(action=Catalog.TARGET_CREATE if created else Catalog.TARGET_CHANGE,
                         target=target, after={**context, **changed}, **who)  # fmt: skip
    for gone in existing.values():
        gone.delete()
    _declared(service, desired.spec, apply=True)
    action = {"create": Catalog.SERVICE_DECLARED, "restore": Catalog.SERVICE_RESTORED}.get(
        change.action, Catalog.SERVICE_REDECLARED
    )
    after = {**context, "fields": change.fields, "targets": change.targets}
    audit_record(action=action, target=service, after=after, **who)


def source_sync(
    source: CatalogSource,
    *,
    dry_run: bool = False,
    actor: Actor = SYNC_ACTOR,
    context: RequestContext | None = None,
) -> Plan:
    """Plan, and unless `dry_run` apply the whole source (one transaction)."""
    plan, wanted = source_plan(source)
    if dry_run:
        return plan
    who = {"actor": actor, "context": context}
    with transaction.atomic():
        for change in plan.changes:
            if change.action != "unchanged":
                _apply(change, wanted.get(change.service), source, who)
        source.last_synced_at = timezone.now()
        source.last_report = {"repositories": [asdict(r) for r in plan.repositories]}
        source.save(update_fields=["last_synced_at", "last_report"])
    plan.applied = True
    return plan
