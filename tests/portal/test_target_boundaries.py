"""Targets stay inside their team: the grants a platform admin gives per cluster, system
namespaces never, one owner per Helm release, protected environments for platform admins
only, every change audited."""

import pytest

from portal.audit.models import AuditEvent
from portal.catalog.models import ClusterEnvironment, DeploymentTarget, NamespaceGrant
from tests.factories import (
    ClusterFactory,
    ServiceFactory,
    TeamFactory,
    UserFactory,
    allow,
    member,
    service_path,
)
from tests.support.targets import save_target

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams():
    """Team T (service app) and team U (service billing), each with Beta and Prod targets on
    one cluster, each granted its own namespaces only."""
    path = service_path()
    other_team = TeamFactory(slug="u", name="Team U")
    billing = ServiceFactory(slug="billing", name="Billing", team=other_team)
    for environment in (path.beta, path.prod):
        allow(
            DeploymentTarget.objects.create(
                service=billing,
                environment=environment,
                cluster=path.cluster,
                namespace=f"billing-{environment.slug}",
                helm_release_name="billing",
            )
        )
    NamespaceGrant.objects.create(
        cluster=path.cluster, team=path.team, pattern="app-*", environment=path.beta
    )
    return {
        "path": path,
        "billing": billing,
        "t_admin": member(path.team, "t-admin", "admin"),
        "u_admin": member(other_team, "u-admin", "admin"),
        "root": UserFactory(username="root", is_superuser=True, is_staff=True),
    }


def _beta(service):
    return DeploymentTarget.objects.get(service=service, environment__slug="beta")


def test_a_team_admin_moves_a_target_inside_the_teams_grants_audited(client, teams):
    client.force_login(teams["t_admin"])
    target = _beta(teams["path"].service)
    response, page = save_target(client, target, namespace="app-beta-2")
    assert response.status_code == 200 and "Saved App in Beta" in page
    target.refresh_from_db()
    assert target.namespace == "app-beta-2"
    change = AuditEvent.objects.get(action="deploymenttarget.change")
    assert (change.before, change.after) == ({"namespace": "beta"}, {"namespace": "app-beta-2"})
    assert change.actor_name == "t-admin"


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        ("kube-system", "kube-system is a system namespace: Slipway never deploys there."),
        ("default", "default is a system namespace: Slipway never deploys there."),
        (
            "billing-beta",
            "Team T may not deploy to namespace billing-beta on cluster",
        ),
    ],
)
def test_a_team_admin_cannot_point_a_target_outside_the_grants(client, teams, namespace, message):
    client.force_login(teams["t_admin"])
    target = _beta(teams["path"].service)
    _, page = save_target(client, target, namespace=namespace)
    assert message in page
    target.refresh_from_db()
    assert target.namespace == "beta"
    assert not AuditEvent.objects.filter(action="deploymenttarget.change").exists()


def test_another_teams_helm_release_is_refused_as_taken(client, teams):
    # Even with a grant covering it, a (cluster, namespace, release) has one target.
    path = teams["path"]
    NamespaceGrant.objects.create(cluster=path.cluster, team=path.team, pattern="billing-*")
    client.force_login(teams["t_admin"])
    _, page = save_target(
        client, _beta(path.service), namespace="billing-beta", helm_release_name="billing"
    )
    owned = "is another target&#x27;s: a release has one owner."
    assert f"This Helm release (cluster, namespace, name) {owned}" in page


def test_a_cluster_that_does_not_serve_the_environment_is_refused(client, teams):
    path = teams["path"]
    prod_only = ClusterFactory(slug="prod-cluster")
    NamespaceGrant.objects.create(cluster=prod_only, team=path.team, pattern="*")
    client.force_login(teams["t_admin"])
    _, page = save_target(client, _beta(path.service), cluster=prod_only.pk)
    assert "Cluster prod-cluster does not serve Beta" in page
    # Once the platform admin lets Beta use it, the same change is saved
    ClusterEnvironment.objects.create(cluster=prod_only, environment=path.beta)
    _, page = save_target(client, _beta(path.service), cluster=prod_only.pk)
    assert "Saved App in Beta" in page


def test_the_other_teams_admin_cannot_see_or_touch_this_teams_targets(client, teams):
    client.force_login(teams["u_admin"])
    target = _beta(teams["path"].service)
    response = client.post(f"/teams/t/targets/{target.pk}", {})
    assert response.status_code == 404
    # Nor move their own target into team T's namespace
    _, page = save_target(client, _beta(teams["billing"]), namespace="beta", helm_release_name="x")
    assert "Team U may not deploy to namespace beta" in page


def test_a_protected_environments_targets_are_for_platform_admins(client, teams):
    path = teams["path"]
    prod = DeploymentTarget.objects.get(service=path.service, environment=path.prod)
    client.force_login(teams["t_admin"])
    response, _ = save_target(client, prod, helm_release_name="app-renamed")
    assert response.status_code == 403
    assert "Prod is protected: only a platform admin changes where its targets point" in (
        response.content.decode()
    )
    # Moving a Beta target into Prod is the same change seen from the other side
    _, page = save_target(client, _beta(path.service), environment=path.prod.pk)
    assert "environment: Select a valid choice" in page
    assert _beta(path.service).namespace == "beta"
    prod.refresh_from_db()
    assert prod.helm_release_name == "app"
    # A platform admin may, audited with before and after
    client.force_login(teams["root"])
    _, page = save_target(client, prod, helm_release_name="app-renamed")
    assert "Saved App in Prod" in page
    change = AuditEvent.objects.get(action="deploymenttarget.change", target_id=str(prod.pk))
    assert change.before == {"helm_release_name": "app"}
    assert change.after == {"helm_release_name": "app-renamed"}


def test_adopting_a_release_installed_outside_slipway_is_a_platform_admins_audited_act(
    client, teams
):
    target = _beta(teams["path"].service)
    client.force_login(teams["t_admin"])
    assert client.post(f"/teams/t/targets/{target.pk}/adopt").status_code == 403
    client.force_login(teams["root"])
    client.post(f"/teams/t/targets/{target.pk}/adopt")
    target.refresh_from_db()
    assert target.adopted_release == f"{target.cluster_id}/beta/app"
    event = AuditEvent.objects.get(action="deploymenttarget.adopt")
    assert event.actor_name == "root"
    assert event.after["namespace"] == "beta" and event.after["helm_release_name"] == "app"
