"""Seed the bench database to a large company's scale, fast.

The structure (teams, services, targets, users) goes in through the ORM; the history
(releases, deployments, audit events) through PostgreSQL's COPY, as the owner role. The
audit chain is computed with the app's own `chain_hash` and key, so `verify_audit` over
the seeded database checks out exactly as it would for events the app wrote.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import psycopg
from psycopg import sql

PASSWORD = "bench-password-1"
DIGEST = "sha256:" + "0" * 64


@dataclass
class Scale:
    teams: int = 40
    services: int = 2_000
    releases: int = 1_000_000
    deployments: int = 3_000_000
    audit_events: int = 5_000_000
    # One service ("monolith") holds this share of all releases, like the one big app
    # every company has; the rest share the remainder.
    monolith_share: float = 0.2

    @classmethod
    def quick(cls) -> Scale:
        return cls(teams=20, services=200, releases=5_000, deployments=15_000, audit_events=50_000)


@dataclass
class World:
    lead_username: str
    services: list[int]  # service ids, monolith first
    slugs: dict[int, str]
    teams: dict[int, int]  # service id -> team id
    beta: int
    staging: int
    prod: int
    # (service, environment) -> [(target id, wave)]: Prod has two clusters, in two waves
    targets: dict[tuple[int, int], list[tuple[int, int]]]
    jenkins: int
    lead_id: int


def seed_structure(scale: Scale) -> World:
    """Teams, services on Beta → Staging → Prod (Prod on two clusters, in two waves), a
    lead of every team."""
    from django.contrib.auth import get_user_model

    from clusters.models import Cluster
    from portal.access.choices import Role
    from portal.access.models import Membership, Team
    from portal.catalog.models import DeploymentTarget, Environment, JenkinsServer, Service

    jenkins = JenkinsServer.objects.create(
        name="jenkins", url="http://127.0.0.1:9/", username="slipway", api_token="bench-token"
    )
    cluster = Cluster.objects.create(slug="main", name="main", kubeconfig="bench-kubeconfig")
    prod_clusters = [
        Cluster.objects.create(slug=f"prod-{r}", name=f"prod-{r}", kubeconfig="bench-kubeconfig")
        for r in ("eu", "us")
    ]
    beta = Environment.objects.create(slug="beta", name="Beta", order=1)
    staging = Environment.objects.create(slug="staging", name="Staging", order=2)
    prod = Environment.objects.create(slug="prod", name="Prod", order=3, requires_approval=True)
    teams = Team.objects.bulk_create(
        Team(slug=f"team-{n:02d}", name=f"Team {n:02d}") for n in range(scale.teams)
    )
    services = Service.objects.bulk_create(
        Service(
            slug="monolith" if n == 0 else f"svc-{n:03d}",
            name="Monolith" if n == 0 else f"Service {n:03d}",
            team=teams[n % len(teams)],
            jenkins_server=jenkins,
            jenkins_job=f"apps/svc-{n:03d}",
            chart="oci://registry.local/charts/app",
            image_repository=f"registry.local/apps/svc-{n:03d}",
        )
        for n in range(scale.services)
    )
    placements = [(beta, cluster, 1), (staging, cluster, 1)] + [
        (prod, c, wave) for wave, c in enumerate(prod_clusters, start=1)
    ]
    targets = DeploymentTarget.objects.bulk_create(
        DeploymentTarget(
            service=service,
            environment=environment,
            cluster=where,
            wave=wave,
            namespace=f"{environment.slug}-{service.slug}",
            helm_release_name=service.slug,
        )
        for service in services
        for environment, where, wave in placements
    )
    by_place: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for t in targets:
        by_place.setdefault((t.service_id, t.environment_id), []).append((t.pk, t.wave))
    lead = get_user_model().objects.create_user("bench-lead", password=PASSWORD)
    Membership.objects.bulk_create(Membership(team=t, user=lead, role=Role.LEAD) for t in teams)
    return World(
        lead_username=lead.username,
        services=[s.pk for s in services],
        slugs={s.pk: s.slug for s in services},
        teams={s.pk: s.team_id for s in services},
        beta=beta.pk,
        staging=staging.pk,
        prod=prod.pk,
        targets=by_place,
        jenkins=jenkins.pk,
        lead_id=lead.pk,
    )


def world_from_database() -> World:
    """The World of a database seeded by an earlier run (`--reuse`)."""
    from django.contrib.auth import get_user_model

    from portal.catalog.models import DeploymentTarget, Environment, JenkinsServer, Service

    services = list(
        Service.objects.filter(jenkins_job__startswith="apps/svc-")
        .order_by("pk")
        .values_list("pk", "slug", "team_id")
    )
    environments = dict(Environment.objects.values_list("slug", "pk"))
    targets: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for pk, service, environment, wave in DeploymentTarget.objects.filter(
        service__jenkins_job__startswith="apps/svc-"
    ).values_list("pk", "service_id", "environment_id", "wave"):
        targets.setdefault((service, environment), []).append((pk, wave))
    lead = get_user_model().objects.get(username="bench-lead")
    return World(
        lead_username=lead.username,
        services=[pk for pk, _, _ in services],
        slugs={pk: slug for pk, slug, _ in services},
        teams={pk: team for pk, _, team in services},
        beta=environments["beta"],
        staging=environments["staging"],
        prod=environments["prod"],
        targets=targets,
        jenkins=JenkinsServer.objects.get(name="jenkins").pk,
        lead_id=lead.pk,
    )


def _digest(n: int) -> str:
    return "sha256:" + hashlib.sha256(f"release-{n}".encode()).hexdigest()


RELEASE_COLUMNS = [
    "id",
    "ref",
    "commit_sha",
    "status",
    "status_reason",
    "progress",
    "jenkins_job",
    "queue_item_id",
    "build_number",
    "build_url",
    "build_result",
    "image_repository",
    "image_digest",
    "log_offset",
    "cancel_requested",
    "run_token",
    "heartbeat_at",
    "created_at",
    "build_started_at",
    "finished_at",
    "jenkins_server_id",
    "requested_by_id",
    "service_id",
    "deploy_after_build_id",
    "resume_count",
]
DEPLOYMENT_COLUMNS = [
    "id",
    "kind",
    "status",
    "status_reason",
    "progress",
    "image",
    "run_token",
    "heartbeat_at",
    "created_at",
    "started_at",
    "finished_at",
    "environment_id",
    "requested_by_id",
    "service_id",
    "release_id",
    "resume_count",
    "freeze_override",
]
ROLLOUT_COLUMNS = [
    "id",
    "deployment_id",
    "target_id",
    "wave",
    "status",
    "status_reason",
    "progress",
    "helm_revision",
    "previous_revision",
    "values",
    "verified_images",
    "started_at",
    "finished_at",
]
AUDIT_COLUMNS = [
    "id",
    "created_at",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "before",
    "after",
    "request_id",
    "ip",
    "user_agent",
    "prev_hash",
    "hash",
    "team_id",
    "key_id",
]


def _copy(cursor: psycopg.Cursor, table: str, columns: list[str], rows) -> int:
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _without_secondary_indexes(cursor: psycopg.Cursor, tables: tuple[str, ...]) -> list[str]:
    """Drop the tables' foreign keys and secondary indexes before a bulk COPY (a foreign
    key checks each row by itself; an index built once over every row is several times
    faster than one kept up row by row); returns the statements that make them again."""
    names = list(tables)
    cursor.execute(
        "SELECT format('ALTER TABLE %%I ADD CONSTRAINT %%I ', conrelid::regclass::text, conname)"
        " || pg_get_constraintdef(oid),"
        " format('ALTER TABLE %%I DROP CONSTRAINT %%I', conrelid::regclass::text, conname)"
        " FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
        [names],
    )
    keys = cursor.fetchall()
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid), format('DROP INDEX %%I', c.relname)"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
        [names],
    )
    indexes = cursor.fetchall()
    for _, drop in keys + indexes:
        cursor.execute(drop)
    return [make for make, _ in indexes + keys]


def seed_history(owner_url: str, world: World, scale: Scale, progress) -> dict[str, int]:
    """Releases, deployments and a chained audit log, through COPY, oldest first."""
    from django.conf import settings

    from portal.audit.chain import GENESIS_HASH, chain_hash, key_id

    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=730)
    span = timedelta(days=729).total_seconds()
    others = world.services[1:]
    monolith = world.services[0]
    releases: list[tuple] = []  # (id, service, status, created)
    for n in range(1, scale.releases + 1):
        service = monolith if rng.random() < scale.monolith_share else rng.choice(others)
        created = start + timedelta(seconds=span * n / scale.releases)
        roll = rng.random()
        status = "built" if roll < 0.9 else "failed" if roll < 0.97 else "cancelled"
        built = status == "built"
        releases.append((n, service, status, created))

    def release_rows():
        for n, service, status, created in releases:
            built = status == "built"
            yield (
                n, f"v{n}", hashlib.sha256(str(n).encode()).hexdigest()[:40], status,
                "" if built else "Jenkins build FAILURE", "", f"apps/{world.slugs[service]}",
                n, n, f"http://jenkins/job/{n}/", "SUCCESS" if built else "FAILURE",
                f"registry.local/apps/{world.slugs[service]}", _digest(n) if built else "",
                0, status == "cancelled", uuid.uuid4(), None, created,
                created + timedelta(seconds=5), created + timedelta(seconds=120),
                world.jenkins, world.lead_id, service, None, 0,
            )  # fmt: skip

    deployments: list[tuple] = []  # (id, release id, service, environment, kind, status, t)
    built = [r for r in releases if r[2] == "built"]
    kinds = [("deploy", world.beta), ("promote", world.staging), ("promote", world.prod)]
    d = 0
    rollbacks = max(0, scale.deployments - len(kinds) * len(built))
    every = max(1, len(built) // rollbacks) if rollbacks else 0
    for index, (rid, service, _, created) in enumerate(built):
        for kind, environment in kinds:
            if d >= scale.deployments:
                break
            d += 1
            status = "succeeded" if rng.random() < 0.95 else "failed"
            at = created + timedelta(
                minutes={world.beta: 5, world.staging: 30}.get(environment, 60)
            )
            deployments.append((d, rid, service, environment, kind, status, at))
        # A rollback only where the releases still to come keep their three deployments:
        # the newest releases (the API's first page) look like the older ones.
        room = scale.deployments - d - len(kinds) * (len(built) - index - 1)
        if every and index % every == every - 1 and room > 0 and index > 0:
            d += 1
            earlier = built[index - 1]
            at = created + timedelta(minutes=90)
            deployments.append((d, earlier[0], service, world.prod, "rollback", "succeeded", at))
    deployment_rows = (
        (
            d, kind, status, "" if status == "succeeded" else "ProgressDeadlineExceeded",
            json.dumps({"ready": 2, "desired": 2}),
            f"registry.local/apps/{world.slugs[service]}@{_digest(rid)}", uuid.uuid4(), None,
            at, at + timedelta(seconds=2), at + timedelta(seconds=40), environment,
            world.lead_id, service, rid, 0, None,
        )
        for d, rid, service, environment, kind, status, at in deployments
    )  # fmt: skip

    def rollout_rows():
        # One rollout per target: one in Beta and Staging, two waves in Prod.
        number = 0
        for d, _, service, environment, _, status, at in deployments:
            for target, wave in world.targets[(service, environment)]:
                number += 1
                yield (
                    number, d, target, wave, status,
                    "" if status == "succeeded" else "ProgressDeadlineExceeded",
                    json.dumps({"ready": 2, "desired": 2}), d, d - 1 if d > 1 else None,
                    json.dumps({}), json.dumps([]), at + timedelta(seconds=2 + 40 * (wave - 1)),
                    at + timedelta(seconds=40 * wave),
                )  # fmt: skip

    key = settings.SLIPWAY_AUDIT_KEYS[0]
    kid, secret = key_id(key), key.encode()

    def audit_rows(first_id: int, prev: str):
        # What the app writes, in time order: per release its request and outcome, per
        # deployment its request, start and outcome; sign-ins fill the rest.
        stream = []
        for rid, service, status, created in releases:
            stream.append((created, "release.requested", "releases.Release", rid, service))
            stream.append(
                (created + timedelta(seconds=120), f"release.{status}", "releases.Release",
                 rid, service)
            )  # fmt: skip
        for did, _, service, _, _, status, at in deployments:
            stream.append((at, "deployment.requested", "releases.Deployment", did, service))
            stream.append(
                (at + timedelta(seconds=2), "deployment.started", "releases.Deployment", did,
                 service)
            )  # fmt: skip
            stream.append(
                (at + timedelta(seconds=40), f"deployment.{status}", "releases.Deployment", did,
                 service)
            )  # fmt: skip
        stream = stream[: scale.audit_events]
        stream.sort(key=lambda e: e[0])
        extra = scale.audit_events - len(stream)
        for n in range(extra):
            at = start + timedelta(seconds=span * n / max(extra, 1))
            stream.append((at, "auth.signed_in", "auth.User", world.lead_id, None))
        stream.sort(key=lambda e: e[0])
        for number, (at, action, target_type, target_id, service) in enumerate(stream, first_id):
            event = SimpleNamespace(
                created_at=at,
                actor_type="user",
                actor_id=str(world.lead_id),
                actor_name=world.lead_username,
                action=action,
                target_type=target_type,
                target_id=str(target_id),
                target_repr=f"{target_type.split('.')[-1]} #{target_id}",
                before=None,
                after={"n": number},
                request_id=f"bench{number:010d}",
                ip="10.0.0.7",
                user_agent="bench",
                key_id=kid,
            )
            digest = chain_hash(prev, event, secret)
            yield (
                number, at, event.actor_type, event.actor_id, event.actor_name, action,
                target_type, event.target_id, event.target_repr, None,
                json.dumps(event.after), event.request_id, event.ip, event.user_agent, prev,
                digest, world.teams.get(service) if service else None, kid,
            )  # fmt: skip
            prev = digest

    counts = {}
    tables = ("releases_release", "releases_deployment", "releases_targetrollout")
    with psycopg.connect(owner_url, autocommit=False) as connection:
        with connection.cursor() as cursor:
            remake = _without_secondary_indexes(cursor, (*tables, "portal_auditevent"))
            progress(f"COPY {len(releases):,} releases")
            counts["releases"] = _copy(cursor, "releases_release", RELEASE_COLUMNS, release_rows())
            progress(f"COPY {len(deployments):,} deployments")
            counts["deployments"] = _copy(
                cursor, "releases_deployment", DEPLOYMENT_COLUMNS, deployment_rows
            )
            progress("COPY their rollouts (two per Prod deployment)")
            counts["rollouts"] = _copy(
                cursor, "releases_targetrollout", ROLLOUT_COLUMNS, rollout_rows()
            )
            progress(f"COPY {scale.audit_events:,} audit events (HMAC chain computed)")
            # The chain goes on from what the structure's set-up already wrote.
            cursor.execute("SELECT id, hash FROM portal_auditevent ORDER BY id DESC LIMIT 1")
            last_id, last_hash = cursor.fetchone() or (0, GENESIS_HASH)
            counts["audit_events"] = _copy(
                cursor, "portal_auditevent", AUDIT_COLUMNS, audit_rows(last_id + 1, last_hash)
            )
            progress(f"indexes and foreign keys made again ({len(remake)})")
            cursor.execute("SET maintenance_work_mem = '512MB'")
            for statement in remake:
                cursor.execute(statement)
            for table in (*tables, "portal_auditevent"):
                cursor.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({name}, 'id'), "
                        "(SELECT max(id) FROM {table}))"
                    ).format(name=sql.Literal(table), table=sql.Identifier(table))
                )
        connection.commit()
        connection.autocommit = True
        progress("ANALYZE")
        connection.execute("ANALYZE")
    return counts
