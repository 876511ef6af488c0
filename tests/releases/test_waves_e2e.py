"""Prod over two real clusters (each its own etcd, control plane and kwok): a promotion
goes out wave by wave through a real Celery worker and real helm; a failure in one
cluster leaves each running what the reason says; a lead retries or skips a cluster
through the API."""

import pytest
from kubernetes import client, config
from rest_framework.test import APIClient

from clusters.models import Cluster
from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.catalog.models import DeploymentTarget
from releases.models import Deployment
from releases.rollouts import deployment_rollouts
from tests.cli.test_cli import slipway
from tests.factories import allow, member
from tests.support.deploy import built_release, deploy, finished, namespace

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]
FAILING = {"simulate": "crashloop", "progressDeadlineSeconds": 6}


@pytest.fixture
def two(world, kube_cluster_b):
    """The world's Prod on cluster-a (wave 1) and cluster-b (wave 2), rolling back the
    cluster that fails; a lead with an API token."""
    prod = world["prod"]
    prod.auto_rollback = True
    prod.save()
    Cluster.objects.filter(pk=world["cluster"].pk).update(name="cluster-a")
    second = Cluster.objects.create(
        slug="cluster-b", name="cluster-b", kubeconfig=kube_cluster_b.kubeconfig()
    )
    targets = {
        "cluster-a": world["service"].targets.get(environment=prod),
        "cluster-b": allow(
            DeploymentTarget.objects.create(
                service=world["service"],
                environment=prod,
                cluster=second,
                namespace=namespace(world, "prod"),
                helm_release_name=world["service"].slug,
                values={"replicaCount": 2},
                wave=2,
            )
        ),
    }
    lead = member(world["service"].team, "wave-lead", Role.LEAD)
    raw = token_issue(user=lead, name="ci", scopes=TokenScope.values)[1]
    apps_b = client.AppsV1Api(config.new_client_from_config(str(kube_cluster_b.kubeconfig_path)))
    return {
        **world,
        "targets": targets,
        "apps_b": apps_b,
        "api": APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}"),
        "token": raw,
    }


def runs(two, cluster: str) -> str:
    """The image the app's Deployment in Prod runs on `cluster`."""
    apps = two["apps"] if cluster == "cluster-a" else two["apps_b"]
    deployment = apps.read_namespaced_deployment("app", namespace(two, "prod"))
    return deployment.spec.template.spec.containers[0].image


def statuses(deployment) -> list[tuple[str, str]]:
    return [(r.target.cluster.name, r.status) for r in deployment_rollouts(deployment)]


def promoted(two, release) -> Deployment:
    assert deploy(two, release, "beta").status == "succeeded"
    return deploy(two, release, "prod", kind="promote", timeout=90)


def test_a_promotion_rolls_out_to_both_clusters_one_wave_after_the_other(two):
    release = built_release(two, 1)
    prod = promoted(two, release)
    assert prod.status == "succeeded", prod.status_reason
    assert statuses(prod) == [("cluster-a", "succeeded"), ("cluster-b", "succeeded")]
    first, second = deployment_rollouts(prod)
    assert first.finished_at <= second.started_at  # wave 2 began after wave 1 rolled out
    assert runs(two, "cluster-a") == runs(two, "cluster-b") == release.image
    assert [len(r.verified_images[0]["pods"]) for r in (first, second)] == [2, 2]


def test_a_failure_in_the_second_cluster_leaves_the_first_on_the_new_release(
    two, live_server, tmp_path
):
    old, new = built_release(two, 1), built_release(two, 2)
    assert promoted(two, old).status == "succeeded"
    DeploymentTarget.objects.filter(pk=two["targets"]["cluster-b"].pk).update(
        values={"replicaCount": 2, **FAILING}
    )
    prod = promoted(two, new)
    assert prod.status == "rolled_back"
    assert statuses(prod) == [("cluster-a", "succeeded"), ("cluster-b", "rolled_back")]
    assert runs(two, "cluster-a") == new.image
    assert runs(two, "cluster-b") == old.image
    assert prod.status_reason.startswith("cluster-b: Rollout failed.")
    assert "CrashLoopBackOff" in prod.status_reason
    assert (
        f"cluster-a runs release #{new.pk} (wave 1); cluster-b rolled back: runs release "
        f"#{old.pk} again." in prod.status_reason
    )
    # What the service's page and API say of Prod: split between the two releases.
    state = two["api"].get(f"/api/v1/services/{two['service'].slug}/").json()
    [prod_state] = [e for e in state["environments"] if e["environment"] == "prod"]
    assert [(c["cluster"], c["release"]) for c in prod_state["clusters"]] == [
        ("cluster-a", new.pk),
        ("cluster-b", old.pk),
    ]

    # And the CLI's status, line by line:
    status = slipway(tmp_path, "--url", live_server.url, "status", two["service"].slug,
                     token=two["token"]).stdout  # fmt: skip
    assert "prod     not one release on every cluster:" in status
    assert f"1. cluster-a        release #{new.pk} succeeded" in status
    assert f"2. cluster-b        release #{old.pk} succeeded" in status

    # The lead fixes cluster-b's values and retries it through the API.
    DeploymentTarget.objects.filter(pk=two["targets"]["cluster-b"].pk).update(
        values={"replicaCount": 2}
    )
    answer = two["api"].post(
        f"/api/v1/deployments/{prod.pk}/clusters/cluster-b/retry",
        {"reason": "values fixed"},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    retried = finished(Deployment.objects.get(pk=answer.json()["id"]), 90)
    assert retried.status == "succeeded", retried.status_reason
    assert statuses(retried) == [("cluster-b", "succeeded")]
    assert runs(two, "cluster-b") == new.image


def test_a_lead_skips_a_failing_first_cluster_and_the_second_gets_the_release(two):
    old, new = built_release(two, 1), built_release(two, 2)
    assert promoted(two, old).status == "succeeded"
    DeploymentTarget.objects.filter(pk=two["targets"]["cluster-a"].pk).update(
        values={"replicaCount": 2, **FAILING}
    )
    prod = promoted(two, new)
    assert prod.status == "rolled_back"
    assert statuses(prod) == [("cluster-a", "rolled_back"), ("cluster-b", "skipped")]
    assert runs(two, "cluster-a") == runs(two, "cluster-b") == old.image

    answer = two["api"].post(
        f"/api/v1/deployments/{prod.pk}/clusters/cluster-a/skip",
        {"reason": "cluster-a is being drained"},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    went_on = finished(Deployment.objects.get(pk=answer.json()["id"]), 90)
    assert went_on.status == "succeeded", went_on.status_reason
    assert statuses(went_on) == [("cluster-b", "succeeded")]
    assert (runs(two, "cluster-a"), runs(two, "cluster-b")) == (old.image, new.image)
