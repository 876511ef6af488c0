"""Rows for tests (factory_boy), so each test file states only what matters to it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import factory
from django.conf import settings
from django.contrib.auth import get_user_model

from clusters.models import Cluster
from portal.access.models import Membership, Team
from portal.catalog.models import (
    ClusterEnvironment,
    DeploymentTarget,
    Environment,
    JenkinsServer,
    NamespaceGrant,
    Service,
)
from releases.models import Deployment, Release, TargetRollout

PASSWORD = "pw-123456789"
DEMO_CHART = str(Path(settings.BASE_DIR) / "charts" / "demo-service")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ["slug"]

    slug = "t"
    name = "Team T"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


def member(team: Team, username: str, role: str):
    """A user with `role` in `team` (password PASSWORD)."""
    user = UserFactory(username=username)
    Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return user


def member_token(team: Team, username: str, role: str) -> str:
    """An API token with every scope for a new member of `team`."""
    from portal.access.choices import TokenScope
    from portal.access.tokens import token_issue

    return token_issue(user=member(team, username, role), name="t", scopes=TokenScope.values)[1]


def member_clients(team: Team, roles: dict[str, str]):
    """An API client per new member (username → role), each with its own token."""
    from rest_framework.test import APIClient

    return {name: APIClient(HTTP_AUTHORIZATION=f"Bearer {member_token(team, name, role)}")
            for name, role in roles.items()}  # fmt: skip


class JenkinsServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JenkinsServer

    name = factory.Sequence(lambda n: f"jenkins{n}")
    url = "http://127.0.0.1:9/"
    username = "slipway"
    api_token = "jenkins-secret-token"
    timeout_seconds = 5


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    slug = factory.Sequence(lambda n: f"cluster{n}")
    name = factory.LazyAttribute(lambda o: o.slug)
    kubeconfig = "kube-secret-config"


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    slug = "app"
    name = "App"
    team = factory.SubFactory(TeamFactory)
    jenkins_server = factory.SubFactory(JenkinsServerFactory)
    jenkins_job = "demo/app"
    chart = DEMO_CHART
    image_repository = "registry.local/demo/app"


@dataclass
class Path2:
    """A service on the path Beta → Prod, with a target on one cluster in each."""

    service: Service
    beta: Environment
    prod: Environment
    cluster: Cluster

    @property
    def team(self) -> Team:
        return self.service.team

    @property
    def jenkins(self) -> JenkinsServer:
        return self.service.jenkins_server


def service_path(
    *,
    namespace_suffix: str = "",
    beta: dict | None = None,
    prod: dict | None = None,
    cluster: dict | None = None,
    **service,
) -> Path2:
    """Create a service with Beta (order 1) and protected Prod (order 2) targets."""
    made = ServiceFactory(**service)
    cluster_row = ClusterFactory(**(cluster or {}))
    environments = {
        "beta": Environment.objects.create(slug="beta", name="Beta", order=1, **(beta or {})),
        "prod": Environment.objects.create(
            slug="prod",
            name="Prod",
            order=2,
            **{"requires_approval": True, "protected": True, **(prod or {})},
        ),
    }
    for slug, environment in environments.items():
        allow(
            DeploymentTarget.objects.create(
                service=made,
                environment=environment,
                cluster=cluster_row,
                namespace=f"{slug}{namespace_suffix}",
                helm_release_name=made.slug,
            )
        )
    return Path2(made, environments["beta"], environments["prod"], cluster_row)


def allow(target: DeploymentTarget) -> DeploymentTarget:
    """Grant what the target uses, as a platform admin would: its environment may use its
    cluster, its team may deploy to exactly its namespace for that environment."""
    ClusterEnvironment.objects.get_or_create(
        cluster_id=target.cluster_id, environment_id=target.environment_id
    )
    NamespaceGrant.objects.get_or_create(
        cluster_id=target.cluster_id,
        team_id=target.service.team_id,
        pattern=target.namespace,
        environment_id=target.environment_id,
    )
    return target


def digest_for(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


class BuiltReleaseFactory(factory.django.DjangoModelFactory):
    """A release Jenkins has built: it has a digest and can be deployed."""

    class Meta:
        model = Release

    ref = factory.Sequence(lambda n: f"v{n}")
    status = "built"
    jenkins_server = factory.LazyAttribute(lambda o: o.service.jenkins_server)
    jenkins_job = factory.LazyAttribute(lambda o: o.service.jenkins_job)
    image_repository = factory.LazyAttribute(lambda o: o.service.image_repository)
    image_digest = factory.LazyAttribute(lambda o: digest_for(o.ref))


def succeeded_in(release: Release, environment: Environment) -> Deployment:
    """Record that `release` runs in `environment` (a finished, successful deployment)."""
    from django.utils import timezone

    now = timezone.now()
    deployment = Deployment.objects.create(
        release=release,
        environment=environment,
        service=release.service,
        status="succeeded",
        image=release.image,
        finished_at=now,
    )
    for target in release.service.targets.filter(environment=environment):
        TargetRollout.objects.create(
            deployment=deployment,
            target=target,
            wave=target.wave,
            status="succeeded",
            helm_revision=1,
            finished_at=now,
        )
    return deployment
