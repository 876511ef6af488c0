"""The way around Prod approval found in review, tried end to end on real helm and a real
kube-apiserver: a Beta target pointed at Prod's Helm release must never upgrade it."""

import pytest
from django.test import Client

from clusters.access import cluster_helm
from clusters.helm import Ownership
from clusters.models import Cluster
from portal.catalog.models import DeploymentTarget, NamespaceGrant
from portal.catalog.targets import OWNER_LABEL
from tests.factories import BuiltReleaseFactory, ServiceFactory, UserFactory, allow, member
from tests.support.deploy import deploy, image_in, rollout_of
from tests.support.targets import save_target

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


def test_a_beta_target_pointed_at_prods_release_is_refused_and_prod_keeps_running(world):
    # Given storefront ("app") promoted to Prod: Helm revision 1, labelled as Prod's target's
    storefront = world["service"]
    release = BuiltReleaseFactory(service=storefront, ref="v1")
    assert deploy(world, release, "beta").status == "succeeded"
    prod = deploy(world, release, "prod", kind="promote")
    assert prod.status == "succeeded" and rollout_of(prod).helm_revision == 1
    prod_target = rollout_of(prod).target
    prod_namespace = prod_target.namespace
    helm = cluster_helm(Cluster.objects.get(pk=world["cluster"].pk))
    assert (
        helm.ownership("app", prod_namespace, label=OWNER_LABEL, owner=str(prod_target.pk))
        == Ownership.OURS
    )
    # and payments, a second service of the same team, with a Beta target of its own
    payments = ServiceFactory(slug="payments", name="Payments", team=storefront.team)
    payments_beta = allow(
        DeploymentTarget.objects.create(
            service=payments,
            environment=world["beta"],
            cluster=world["cluster"],
            namespace=f"pay-{world['suffix']}",
            helm_release_name="payments",
        )
    )
    admin = member(storefront.team, "team-admin", "admin")
    client = Client()
    client.force_login(admin)

    # When the team admin tries the exploit's first step, renaming Prod's release
    response, page = save_target(client, prod_target, helm_release_name="app-renamed")
    # Then it is refused: Prod is protected
    assert response.status_code == 403 and "Prod is protected" in page

    # When a platform admin renames it anyway, and the team admin points payments' Beta
    # target at Prod's cluster, namespace and old release name
    root = UserFactory(username="root", is_superuser=True)
    client.force_login(root)
    assert (
        "Saved App in Prod" in save_target(client, prod_target, helm_release_name="app-renamed")[1]
    )
    client.force_login(admin)
    _, page = save_target(client, payments_beta, namespace=prod_namespace, helm_release_name="app")
    # Then the save is refused: the team has no Beta grant on Prod's namespace
    assert f"Team T may not deploy to namespace {prod_namespace}" in page
    # And even when a grant would cover it (a careless platform admin), the deployment that
    # would have upgraded Prod's release is refused, saying why
    NamespaceGrant.objects.create(cluster=world["cluster"], team=storefront.team, pattern="*")
    assert (
        "Saved Payments in Beta"
        in save_target(client, payments_beta, namespace=prod_namespace, helm_release_name="app")[1]
    )
    payments_release = BuiltReleaseFactory(service=payments, ref="p1")
    refused = deploy(world, payments_release, "beta")
    assert refused.status == "failed"
    assert refused.status_reason.startswith(
        f"Refused when starting: Helm release app in namespace {prod_namespace} on cluster "
        f"{world['cluster']} belongs to another Slipway target: a target never upgrades, rolls "
        "back or uninstalls a release it does not own."
    )
    assert rollout_of(refused).helm_revision is None
    # Prod still runs storefront's image at revision 1
    assert helm.current("app", prod_namespace).revision == 1
    assert image_in(world, "prod") == release.image
