"""A chart nobody here wrote: podinfo's own (tests/charts/podinfo, 6.14.1), deployed
through Slipway onto the real control plane. It declares `kubeVersion: ">=1.23.0-0"`,
which Helm's built-in defaults (v1.20) refuse; rendering on the target cluster lets it
through."""

from pathlib import Path

import pytest

from tests.support.deploy import built_release, deploy, namespace, pod_images, rollout_of

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]
PODINFO = str(Path(__file__).resolve().parents[1] / "charts" / "podinfo")


def test_podinfos_own_chart_deploys_with_pods_ready_and_the_digest_pinned(world):
    service = world["service"]
    service.chart = PODINFO
    service.default_values = {"replicaCount": 2}
    # As docs/deployments.md recommends for a chart that renders repository:tag.
    service.image_values = {"image": {"repository": "{repository}", "tag": "{tag}@{digest}"}}
    service.save()
    release = built_release(world, 1)

    done = deploy(world, release, "beta")

    assert done.status == "succeeded", done.status_reason
    pinned = f"{release.image_repository}:v1@{release.image_digest}"
    deployment = world["apps"].read_namespaced_deployment("app-podinfo", namespace(world, "beta"))
    assert deployment.spec.template.spec.containers[0].image == pinned
    assert deployment.status.ready_replicas == 2
    assert pod_images(world, "beta") == [pinned]
    [verified] = rollout_of(done).verified_images
    assert verified["workload"] == "Deployment/app-podinfo"
    assert len(verified["pods"]) == 2
    assert {p["image_id"] for p in verified["pods"]} == {pinned}


def test_the_promote_dialogs_manifest_diff_renders_podinfo_on_the_target(world):
    from releases import preview
    from releases.tasks import render_preview

    service = world["service"]
    service.chart = PODINFO
    service.image_values = {"image": {"repository": "{repository}", "tag": "{tag}@{digest}"}}
    service.save()
    first, second = built_release(world, 1), built_release(world, 2)
    assert deploy(world, first, "beta").status == "succeeded"

    assert render_preview(second.pk, world["beta"].pk) is True
    diff = preview.manifest_diff(release=second, environment=world["beta"])
    assert diff.ready and not diff.error, diff.error
    changed = [line for line in diff.lines if line.startswith(("-", "+"))]
    assert f"-        image: {first.image_repository}:v1@{first.image_digest}" in changed
    assert f"+        image: {second.image_repository}:v2@{second.image_digest}" in changed
