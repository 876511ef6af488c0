"""Drift end to end: what the cluster runs behind Slipway's back (a hand-made helm
upgrade, a `kubectl set image`) is found on the next check, shown, and audited once."""

import pytest
from kubernetes import client as kube
from kubernetes import config

from clusters.access import cluster_helm
from clusters.models import Cluster
from portal.audit.models import AuditEvent
from portal.catalog.models import DeploymentTarget
from releases.tasks import target_check_drift
from tests.support.deploy import namespace, pod_images
from tests.support.scripted import build, deployed
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]
OTHER = "sha256:" + "d" * 64


def test_a_hand_made_helm_upgrade_is_marked_as_drift_and_audited_once(
    world, api, helm_binary, client
):
    # Given R1 deployed to Beta by Slipway
    r1 = build(api, "r1")
    deployed(api["ci"], r1, "beta")
    target = DeploymentTarget.objects.get(environment=world["beta"])
    assert target_check_drift(target.pk) is None
    # When someone runs helm by hand with another image
    other = f"{r1.image_repository}@{OTHER}"
    cluster_helm(Cluster.objects.get(pk=world["cluster"].pk)).upgrade(
        release="app",
        namespace=namespace(world, "beta"),
        chart=world["service"].chart,
        values=[{"image": {"repository": r1.image_repository, "digest": OTHER}}],
        description="by hand",
    )
    wait_until(lambda: pod_images(world, "beta") == [other], 30, "pods running the other image")
    # Then the check marks it, on the service's API and page, and audits it once
    for _ in range(3):
        drift = target_check_drift(target.pk)
    assert drift["helm_revision"] == 2 and drift["expected_revision"] == 1
    assert drift["images"] == [other]
    assert drift["expected_image"] == r1.image
    beta = api["ci"].get("/api/v1/services/app/").json()["environments"][0]
    assert beta["drift"]["summary"] == drift["summary"]
    client.force_login(r1.requested_by)
    assert "<strong>Drift:</strong> Helm release app is at revision 2" in (
        client.get("/services/app/").content.decode()
    )
    events = AuditEvent.objects.filter(action__startswith="drift.")
    assert list(events.values_list("action", flat=True)) == ["drift.detected"]
    # And a deployment by Slipway resolves it, audited once more
    deployed(api["ci"], r1, "beta")
    wait_until(lambda: pod_images(world, "beta") == [r1.image], 30, "the release's pods back")
    assert target_check_drift(target.pk) is None
    assert list(events.values_list("action", flat=True)) == ["drift.detected", "drift.resolved"]


def test_a_kubectl_set_image_is_drift_read_from_the_pods_and_a_deployment_ends_it(
    world, api, kube_cluster, client
):
    # Given R1 deployed to Beta by Slipway
    r1 = build(api, "r1")
    deployed(api["ci"], r1, "beta")
    target = DeploymentTarget.objects.get(environment=world["beta"])
    assert target_check_drift(target.pk) is None
    # When someone runs `kubectl set image deployment/app app=…@OTHER` (the same patch)
    other = f"{r1.image_repository}@{OTHER}"
    apps = client_for(kube_cluster)
    apps.patch_namespaced_deployment(
        "app",
        namespace(world, "beta"),
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": other}]}}}},
    )
    wait_until(lambda: pod_images(world, "beta") == [other], 30, "pods running the other image")
    # Then the check finds it in the pods (Helm's revision did not move), once
    for _ in range(3):
        drift = target_check_drift(target.pk)
    assert drift["helm_revision"] == drift["expected_revision"] == 1
    assert drift["images"] == [other]
    assert len(drift["pods"]) == 1 and drift["pods"][0].endswith(f"(app): {other}")
    assert drift["summary"].startswith(f"the cluster runs {other}; pods app-")
    page = client_page(client, r1)
    assert "<strong>Drift:</strong> the cluster runs" in page
    events = AuditEvent.objects.filter(action__startswith="drift.")
    assert list(events.values_list("action", flat=True)) == ["drift.detected"]
    assert events.get().after["pods"] == drift["pods"]
    # And Slipway's next deployment puts the release's digest back (Helm's three-way merge)
    deployed(api["ci"], r1, "beta")
    wait_until(lambda: pod_images(world, "beta") == [r1.image], 30, "the release's pods back")
    assert target_check_drift(target.pk) is None
    assert list(events.values_list("action", flat=True)) == ["drift.detected", "drift.resolved"]


def client_for(kube_cluster):
    return kube.AppsV1Api(config.new_client_from_config(str(kube_cluster.kubeconfig_path)))


def client_page(web, release) -> str:
    web.force_login(release.requested_by)
    return web.get("/services/app/").content.decode()
