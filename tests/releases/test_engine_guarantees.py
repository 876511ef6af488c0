"""The engine's guarantees end to end, through the API as a script would use it: real
PostgreSQL, a Celery worker process, the Jenkins emulator, helm and a kube-apiserver."""

import pytest

from clusters.models import Cluster
from portal.audit.models import AuditEvent
from portal.catalog.models import DeploymentTarget
from releases.models import Deployment
from tests.support.deploy import finished, image_in, namespace, rollout_of
from tests.support.jenkins import builds_for
from tests.support.scripted import approved, build, deployed, request
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


def test_promotion_follows_what_beta_runs_now_and_approvals_hold_nothing(world, api):
    world["prod"].requires_approval = True
    world["prod"].save()
    # Given R1 in Beta and Prod, and R2 in Beta
    r1, r2 = build(api, "r1"), build(api, "r2")
    deployed(api["ci"], r1, "beta")
    approved(api, request(api["ci"], r1, "prod").json()["id"])
    deployed(api["ci"], r2, "beta")
    # When a lead rolls Beta back to R1
    deployed(api["lead"], r1, "beta", kind="rollback")
    # Then promoting R2 is refused, naming what Beta runs (and not as "busy")
    refused = request(api["ci"], r2, "prod")
    assert refused.status_code == 409
    assert f"not what Beta runs now: Beta runs release #{r1.pk} (r1," in refused.json()["detail"]
    assert "busy" not in refused.json()["detail"]

    # Given R2 back in Beta and its promotion awaiting approval
    deployed(api["ci"], r2, "beta")
    waiting = request(api["ci"], r2, "prod").json()
    assert waiting["status"] == "awaiting_approval"
    # When a lead rolls Prod back meanwhile, it runs at once
    rollback = deployed(api["lead"], r1, "prod", kind="rollback")
    assert rollback.kind == "rollback" and image_in(world, "prod") == r1.image
    # When the requester withdraws, a new request is accepted
    assert api["ci"].post(f"/api/v1/deployments/{waiting['id']}/cancel").json()["status"] == (
        "cancelled"
    )
    again = request(api["ci"], r2, "prod").json()
    assert again["status"] == "awaiting_approval"
    # When Beta moves on to R3, approving R2 is refused and the request keeps waiting
    r3 = build(api, "r3")
    deployed(api["ci"], r3, "beta")
    late = api["lead2"].post(f"/api/v1/deployments/{again['id']}/approve", {}, format="json")
    assert late.status_code == 409 and "not what Beta runs now" in late.json()["detail"]
    assert Deployment.objects.get(pk=again["id"]).status == "awaiting_approval"
    # And a request nobody decides expires with its reason (beat runs every second here)
    world["prod"].approval_timeout_seconds = 1
    world["prod"].save()
    expired = wait_until(
        lambda: Deployment.objects.filter(pk=again["id"], status="cancelled").first(), 30, "expiry"
    )
    assert expired.status_reason == "Expired: no lead approved or rejected it within 1 s."
    assert image_in(world, "prod") == r1.image  # Prod never ran R2


def test_the_build_and_deploy_waits_its_turn_when_beta_is_busy(world, api, emulator, client):
    # Given Beta rolling out R1 slowly
    DeploymentTarget.objects.filter(environment=world["beta"]).update(
        values={"simulate": "slow-start", "startSeconds": 6}
    )
    r1 = build(api, "r1")
    first = Deployment.objects.get(pk=request(api["ci"], r1, "beta", "deploy").json()["id"])
    # When R2 is built with "deploy to Beta" while R1 still rolls out
    r2 = build(api, "r2", deploy_to="beta")
    # Then R2's deployment waits for Beta, saying for what, and starts once Beta is free
    queued = r2.deployments.get()
    assert queued.status == "queued", queued.status_reason
    client.force_login(r2.requested_by)
    page = client.get(f"/releases/{r2.pk}/status").content.decode()
    assert f"Waiting for Beta to free up: deployment #{first.pk} (release #{r1.pk})" in page
    assert finished(first).status == "succeeded"
    second = finished(queued)
    assert second.status == "succeeded", second.status_reason
    assert second.started_at >= first.finished_at
    assert image_in(world, "beta") == r2.image
    assert len(builds_for(emulator, r2)) == 1


def test_a_chart_that_renders_a_tag_is_refused_until_the_image_values_pin_the_digest(
    world, api, settings
):
    from pathlib import Path

    # Given a chart that places the image as repository:tag, the way podinfo's does
    service = world["service"]
    service.chart = str(Path(__file__).resolve().parents[1] / "charts" / "tagged-app")
    service.save()
    r1 = build(api, "r1")
    refused = finished(
        Deployment.objects.get(pk=request(api["ci"], r1, "beta", "deploy").json()["id"])
    )
    # Then the deployment fails before any upgrade, saying what the chart renders
    assert refused.status == "failed"
    assert refused.status_reason == (
        f"The chart renders {r1.image_repository}:6.14.1 in Deployment/app (container app), "
        f"not @{r1.image_digest}; set the service's image values so the chart pins the digest."
    )
    assert rollout_of(refused).helm_revision is None
    # When the service's image values map the digest into the tag
    service.image_values = {"image": {"repository": "{repository}", "tag": "{tag}@{digest}"}}
    service.save()
    done = deployed(api["ci"], r1, "beta")
    # Then the cluster's pod template carries the digest, and the deployment records it
    assert image_in(world, "beta") == f"{r1.image_repository}:r1@{r1.image_digest}"
    pinned = f"{r1.image_repository}:r1@{r1.image_digest}"
    [verified] = rollout_of(done).verified_images
    assert (verified["workload"], verified["container"], verified["image"]) == (
        "Deployment/app",
        "app",
        pinned,
    )
    # Its Ready pod runs it, and the node reports the digest it pulled.
    assert [(p["image"], p["image_id"]) for p in verified["pods"]] == [(pinned, pinned)]


def test_slipways_own_rollout_deadline_fails_a_slow_rollout(world, api):
    world["beta"].rollout_timeout_seconds = 3
    world["beta"].auto_rollback = False
    world["beta"].save()
    DeploymentTarget.objects.filter(environment=world["beta"]).update(
        values={"simulate": "slow-start", "startSeconds": 60}
    )
    r1 = build(api, "r1")
    failed = finished(
        Deployment.objects.get(pk=request(api["ci"], r1, "beta", "deploy").json()["id"])
    )
    assert failed.status == "failed"
    assert failed.status_reason.startswith("Rollout not finished after 3 s: Deployment/app: ")


def test_a_worker_killed_during_the_real_helm_upgrade_resumes_with_one_revision(
    world, celery_worker, helm_binary, tmp_path
):
    from portal.audit.chain import Actor
    from releases.deployments import deployment_start
    from tests.support.deploy import built_release

    # Given a worker whose helm lingers after a real `helm upgrade` has done its work
    mark = tmp_path / "upgraded"
    lingering = tmp_path / "helm"
    lingering.write_text(
        f'#!/bin/sh\n"{helm_binary}" "$@"\nrc=$?\n'
        f'if [ "$1" = upgrade ]; then touch "{mark}"; sleep 120; fi\nexit $rc\n'
    )
    lingering.chmod(0o755)
    celery_worker.env["SLIPWAY_HELM"] = str(lingering)
    celery_worker.kill()
    celery_worker.start()
    try:
        release = built_release(world, 1)
        deployment = deployment_start(
            release=release, environment=world["beta"], actor=Actor.for_user(world["user"])
        )
        # When the worker is SIGKILLed while helm upgrade runs (before it recorded anything)
        wait_until(mark.exists, 60, "helm upgrade to run")
        celery_worker.env["SLIPWAY_HELM"] = helm_binary
        celery_worker.kill()
        assert rollout_of(deployment).helm_revision is None
        celery_worker.start()
        # Then the deployment is resumed, finds the revision helm made, and upgrades no more
        deployment = finished(deployment, 90)
    finally:
        if celery_worker.env["SLIPWAY_HELM"] != helm_binary:
            celery_worker.env["SLIPWAY_HELM"] = helm_binary
            celery_worker.kill()
            celery_worker.start()
    assert deployment.status == "succeeded", deployment.status_reason
    assert rollout_of(deployment).helm_revision == 1
    assert AuditEvent.objects.filter(
        action="deployment.resume", target_id=str(deployment.pk)
    ).exists()
    from clusters.access import cluster_helm

    history = cluster_helm(Cluster.objects.get(pk=world["cluster"].pk)).history(
        "app", namespace(world, "beta")
    )
    assert [(r.revision, r.status) for r in history] == [(1, "deployed")]
    assert image_in(world, "beta") == release.image
