"""Demo data for `make run`: a team, four users, three services with Beta and Prod (a fourth
declared in its own repository), and a change desk for Prod."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from clusters.models import Cluster
from portal.access.choices import Role
from portal.access.models import Membership, Team
from portal.catalog.models import (
    CatalogSource,
    ClusterEnvironment,
    DeploymentTarget,
    DroneServer,
    Environment,
    EnvironmentLink,
    EnvironmentVariable,
    JenkinsServer,
    NamespaceGrant,
    Service,
)
from releases.change_models import ChangeSystem, ChangeSystemKind
from releases.models import AnalysisMetric, AnalysisTemplate

PASSWORDS_FILE = Path(settings.BASE_DIR) / ".local" / "demo-passwords.json"
DEMO_USERS = {"admin": Role.ADMIN, "lead": Role.LEAD, "lead2": Role.LEAD, "dev": Role.DEVELOPER}
DEMO_SERVICES = {"storefront": "Storefront", "payments": "Payments"}
# Built by Drone (the Drone emulator under `make run`) instead of Jenkins.
DEMO_DRONE_SERVICES = {"search": "Search"}
DEMO_CATALOG_SOURCE = "demo repositories"
DEMO_CHANGE_SYSTEM = "ServiceNow (local desk)"
DEMO_CANARY = [{"weight": 10, "pause": 20}, {"weight": 50, "pause": "lead"}, {"weight": 100}]
# The share of a release's requests answered with a 5xx over the last 30 s.
DEMO_ERROR_RATIO = (
    'sum(rate(http_requests_total{namespace="{namespace}",release="{release}",code=~"5.."}[30s]))'
    ' / sum(rate(http_requests_total{namespace="{namespace}",release="{release}"}[30s]))'
)
PLACEHOLDER_KUBECONFIG = "# not configured: `make run` writes the local cluster's here\n"


def _demo_passwords() -> dict[str, str]:
    # Made once per checkout, so they stay the same across restarts.
    if PASSWORDS_FILE.exists():
        return json.loads(PASSWORDS_FILE.read_text())
    passwords = {name: f"{name}-{secrets.token_urlsafe(6)}" for name in DEMO_USERS}
    PASSWORDS_FILE.parent.mkdir(exist_ok=True)
    PASSWORDS_FILE.write_text(json.dumps(passwords))
    PASSWORDS_FILE.chmod(0o600)
    return passwords


@transaction.atomic
def demo_load(
    *,
    jenkins_url: str = "",
    jenkins_user: str = "",
    jenkins_token: str = "",
    kubeconfig: str = "",
    prometheus_url: str = "",
    jenkins_notify_secret: str = "",
    drone_url: str = "",
    drone_token: str = "",
    catalog_url: str = "",
    changes_url: str = "",
    changes_password: str = "",
) -> dict[str, str]:
    """Create or refresh the demo rows; return the users' passwords. Idempotent."""
    passwords = _demo_passwords()
    users = get_user_model().objects
    team, _ = Team.objects.get_or_create(slug="demo", defaults={"name": "Demo team"})
    for name, role in DEMO_USERS.items():
        user = users.filter(username=name).first() or users.create_user(name)
        user.set_password(passwords[name])
        user.is_staff = user.is_superuser = role == Role.ADMIN
        user.save()
        Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})

    beta, _ = Environment.objects.update_or_create(
        slug="beta", defaults={"name": "Beta", "order": 10, "auto_rollback": True}
    )
    prod, _ = Environment.objects.update_or_create(
        slug="prod",
        defaults={
            "name": "Prod",
            "order": 20,
            "requires_approval": True,
            "auto_rollback": True,
            "protected": True,
        },
    )
    jenkins, _ = JenkinsServer.objects.get_or_create(
        name="local",
        defaults={
            "url": jenkins_url or "http://127.0.0.1:8080/",
            "username": jenkins_user or "slipway",
        },
    )
    if jenkins_url:
        jenkins.url, jenkins.username, jenkins.api_token = jenkins_url, jenkins_user, jenkins_token
        # The emulator posts each build's start and end to /hooks/jenkins/local.
        jenkins.notification_secret = jenkins_notify_secret
        jenkins.save()
    cluster, _ = Cluster.objects.get_or_create(
        slug="local", defaults={"name": "Local cluster", "kubeconfig": PLACEHOLDER_KUBECONFIG}
    )
    if kubeconfig:
        cluster.kubeconfig = kubeconfig
        cluster.save()
    # The platform admin's grants: both environments on the local cluster, and the demo
    # team in `<service>-beta` / `<service>-prod` namespaces only.
    for env in (beta, prod):
        ClusterEnvironment.objects.get_or_create(cluster=cluster, environment=env)
        NamespaceGrant.objects.get_or_create(
            cluster=cluster, team=team, pattern=f"*-{env.slug}", environment=env
        )
    drone, _ = DroneServer.objects.get_or_create(
        name="local-drone", defaults={"url": drone_url or "http://127.0.0.1:8092/"}
    )
    if drone_url:
        drone.url, drone.token = drone_url, drone_token
        drone.save()
    chart = str(Path(settings.BASE_DIR) / "charts" / "demo-service")
    for slug, name in {**DEMO_SERVICES, **DEMO_DRONE_SERVICES}.items():
        by_drone = slug in DEMO_DRONE_SERVICES
        service, _ = Service.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "team": team,
                "build_backend": "drone" if by_drone else "jenkins",
                "drone_server": drone if by_drone else None,
                "drone_repository": f"demo/{slug}" if by_drone else "",
                "jenkins_server": None if by_drone else jenkins,
                "jenkins_job": "" if by_drone else f"demo/{slug}",
                "chart": chart,
                "image_repository": f"registry.local/demo/{slug}",
                "repository_url": f"https://git.example.com/demo/{slug}.git",
            },
        )
        for env in (beta, prod):
            DeploymentTarget.objects.update_or_create(
                service=service,
                environment=env,
                defaults={
                    "cluster": cluster,
                    "namespace": f"{slug}-{env.slug}",
                    "helm_release_name": slug,
                    "values": {
                        "replicaCount": 2 if env == prod else 1,
                        "ingress": {"enabled": True, "host": f"{slug}.{env.slug}.demo.local"},
                    },
                    # The storefront goes to Prod in canary steps: 10 % for 20 s, then 50 %
                    # until a lead promotes it (docs/verification.md).
                    "canary_steps": DEMO_CANARY if env == prod and slug == "storefront" else [],
                },
            )
    _demo_environment_config(beta, prod)
    _demo_verification(beta, prod, prometheus_url)
    if catalog_url:
        # Ledger is declared in its own repository (devtools/demo_catalog.py): the catalog
        # creates it on its first sync (the schedule's, or "Sync now" on /catalog/).
        CatalogSource.objects.update_or_create(
            name=DEMO_CATALOG_SOURCE, defaults={"repositories": catalog_url, "enabled": True}
        )
    if changes_url:
        # Prod's deployments open change requests at the local desk (devtools/
        # change_receiver.py, answering like ServiceNow), whose board approves them as they
        # are made: the ticket's life shows on the release page without a second approver.
        # Not waited for (require_approved off), so release trains to Prod run in the demo
        # too; docs/change-management.md says how to make requests wait for the board.
        desk, _ = ChangeSystem.objects.get_or_create(
            environment=prod,
            defaults={
                "name": DEMO_CHANGE_SYSTEM,
                "kind": ChangeSystemKind.SERVICENOW,
                "require_approved": False,
            },
        )
        if desk.name == DEMO_CHANGE_SYSTEM:
            # Where the desk listens changes with each start; what an admin chose stays.
            desk.url, desk.username, desk.secret = changes_url, "slipway", changes_password
            desk.save()
    return passwords


def _demo_verification(beta: Environment, prod: Environment, prometheus_url: str) -> None:
    """Each deployment is verified against `make run`'s private Prometheus, which scrapes
    the demo traffic (devtools/traffic.py): a release built from a ref with `bad` in it
    fails its verification and Prod rolls back to the last verified release."""
    url = prometheus_url or "http://127.0.0.1:9090"
    for env, interval in ((beta, 5), (prod, 10)):
        template, _ = AnalysisTemplate.objects.update_or_create(
            environment=env,
            service=None,
            name="error rate",
            defaults={"prometheus_url": url, "enabled": True},
        )
        AnalysisMetric.objects.update_or_create(
            template=template,
            name="error ratio",
            defaults={
                "query": DEMO_ERROR_RATIO,
                "interval_seconds": interval,
                "count": 3,
                "initial_delay_seconds": 10,
                "success_condition": "result < 0.05",
                "failure_condition": "result >= 0.05",
                "failure_limit": 0,
                "inconclusive_limit": 1,
            },
        )


def _demo_environment_config(beta: Environment, prod: Environment) -> None:
    """What each environment gives every service: ENV and an Apollo meta server (as the
    teams' configuration center finds its namespace), a secret, and the usual links."""
    for env in (beta, prod):
        for name, value in (
            ("ENV", env.slug),
            ("APOLLO_META", f"http://apollo-config-{env.slug}.apollo:8080"),
        ):
            EnvironmentVariable.objects.update_or_create(
                environment=env, target=None, name=name, defaults={"value": value}
            )
        if not EnvironmentVariable.objects.filter(environment=env, name="DB_PASSWORD").exists():
            EnvironmentVariable.objects.create(
                environment=env,
                name="DB_PASSWORD",
                is_secret=True,
                secret_value=secrets.token_urlsafe(16),
            )
        for order, (name, template) in enumerate(
            (
                ("Grafana", f"https://grafana.example.com/d/svc?var-service={{service}}"
                 f"&var-namespace={{namespace}}&var-env={env.slug}"),
                ("Logs", "https://kibana.example.com/app/discover#/?_a=(query:(language:kuery,"
                 "query:'kubernetes.namespace:\"{namespace}\"'))"),
                ("Open", f"https://{{service}}.{env.slug}.example.com/"),
            )
        ):  # fmt: skip
            EnvironmentLink.objects.update_or_create(
                environment=env, name=name, defaults={"url_template": template, "order": order}
            )
