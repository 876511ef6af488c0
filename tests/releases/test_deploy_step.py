"""Deployments end to end: a real Celery worker runs real helm against a real control
plane (kube-apiserver, kube-controller-manager, kube-scheduler) whose pods kwok runs."""

import pytest
from celery.signals import before_task_publish

from clusters.models import Cluster
from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from portal.catalog.models import DeploymentTarget
from releases.deployments import deployment_start
from releases.errors import DeploymentBusy, PromotionRefused
from tests.support.deploy import built_release, deploy, finished, image_in, pod_images, rollout_of
from tests.support.kube import recording_helm
from tests.support.waiting import wait_until


def _status(deployment) -> str:
    deployment.refresh_from_db()
    return deployment.status


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


def test_deploy_to_beta_then_promote_the_same_digest_to_prod(world):
    release = built_release(world, 1)
    beta = deploy(world, release, "beta")
    assert beta.status == "succeeded", beta.status_reason
    assert image_in(world, "beta") == release.image
    assert release.image.startswith("registry.local/demo/app@sha256:")
    assert rollout_of(beta).helm_revision == 1
    assert beta.progress["complete"] is True

    prod = deploy(world, release, "prod", kind="promote")
    assert prod.status == "succeeded", prod.status_reason
    assert image_in(world, "prod") == image_in(world, "beta") == release.image
    assert (
        world["apps"].read_namespaced_deployment("app", f"prod-{world['suffix']}").spec.replicas
        == 2
    )
    actions = list(
        AuditEvent.objects.filter(
            target_type="releases.Deployment", target_id=str(prod.pk)
        ).values_list("action", flat=True)
    )
    assert actions == [
        "deployment.promote",
        "deployment.deploying",
        "deployment.rolling_out",
        "deployment.succeeded",
    ]


def test_promotion_to_prod_is_refused_before_beta_succeeded(world):
    release = built_release(world, 1)
    with pytest.raises(PromotionRefused, match="nothing runs in Beta yet"):
        deployment_start(
            release=release, environment=world["prod"], actor=Actor.for_user(world["user"])
        )


def test_upgrade_then_rollback_to_the_first_release(world):
    first, second = built_release(world, 1), built_release(world, 2)
    assert rollout_of(deploy(world, first, "beta")).helm_revision == 1
    upgraded = deploy(world, second, "beta")
    assert (
        upgraded.status,
        rollout_of(upgraded).helm_revision,
        rollout_of(upgraded).previous_revision,
    ) == (
        "succeeded",
        2,
        1,
    )
    assert image_in(world, "beta") == second.image
    rolled = deploy(world, first, "beta", kind="rollback")
    assert (rolled.status, rollout_of(rolled).helm_revision) == ("succeeded", 3)
    assert image_in(world, "beta") == first.image


# Pods that never become Ready, and a progress deadline short enough for a test.
NEVER_READY = {"simulate": "never-ready", "progressDeadlineSeconds": 4}


def test_failing_rollout_fails_with_the_reason_and_auto_rollback_restores(world):
    first, second = built_release(world, 1), built_release(world, 2)
    assert deploy(world, first, "beta").status == "succeeded"
    DeploymentTarget.objects.filter(environment=world["beta"]).update(values=NEVER_READY)
    failed = deploy(world, second, "beta")
    assert failed.status == "rolled_back"
    assert "ProgressDeadlineExceeded" in failed.status_reason
    # The old pod still serves (max surge 1, none unavailable); the new one never got ready.
    assert "1 of 2 pods running but not ready" in failed.status_reason
    assert "Rolled back to revision 1" in failed.status_reason
    assert rollout_of(failed).rolled_back_to_revision == 3
    assert image_in(world, "beta") == first.image
    # The rollback's pods run the first release again; the failed ones are gone.
    wait_until(
        lambda: pod_images(world, "beta") == [first.image], 30, "the first release's pods back"
    )


@pytest.mark.parametrize(
    ("simulate", "says"),
    [
        ("crashloop", "1 of 2 pods CrashLoopBackOff, "),
        ("image-pull", '1 of 2 pods ImagePullBackOff: Back-off pulling image "registry.local'),
    ],
)
def test_each_failure_mode_ends_with_the_pods_own_reason_and_rolls_back(world, simulate, says):
    first, second = built_release(world, 1), built_release(world, 2)
    assert deploy(world, first, "beta").status == "succeeded"
    DeploymentTarget.objects.filter(environment=world["beta"]).update(
        values={"simulate": simulate, "progressDeadlineSeconds": 6}
    )
    failed = deploy(world, second, "beta")
    assert failed.status == "rolled_back"
    assert "ProgressDeadlineExceeded" in failed.status_reason
    assert says in failed.status_reason
    assert image_in(world, "beta") == first.image


def test_failing_rollout_without_auto_rollback_is_failed(world):
    world["beta"].auto_rollback = False
    world["beta"].save()
    DeploymentTarget.objects.filter(environment=world["beta"]).update(values=NEVER_READY)
    failed = deploy(world, built_release(world, 1), "beta")
    assert failed.status == "failed"
    assert "ProgressDeadlineExceeded" in failed.status_reason


def test_a_release_left_pending_upgrade_is_recovered_before_deploying(world, kube_cluster):
    from tests.clusters.test_helm_adapter import _mark_latest_pending

    first, second, third = (built_release(world, n) for n in (1, 2, 3))
    deploy(world, first, "beta")
    deploy(world, second, "beta")
    # helm was killed while upgrading to revision 2: it is left pending-upgrade.
    _mark_latest_pending(kube_cluster, f"beta-{world['suffix']}", "app", "pending-upgrade")
    deployment = deploy(world, third, "beta")
    assert deployment.status == "succeeded", deployment.status_reason
    recovered = AuditEvent.objects.get(action="helm.recovered", target_id=str(deployment.pk))
    assert recovered.after == {
        "action": "rolled-back",
        "from_revision": 2,
        "from_status": "pending-upgrade",
        "to_revision": 3,
        "cluster": world["cluster"].name,
        "wave": 1,
    }
    assert rollout_of(deployment).helm_revision == 4
    assert image_in(world, "beta") == third.image


def test_second_deployment_while_one_is_in_flight_is_busy(world):
    release = built_release(world, 1)
    deployment_start(
        release=release, environment=world["beta"], actor=Actor.for_user(world["user"])
    )
    with pytest.raises(DeploymentBusy, match="Beta is busy with deployment #"):
        deployment_start(
            release=release, environment=world["beta"], actor=Actor.for_user(world["user"])
        )


def test_unreachable_cluster_fails_the_deployment_with_a_clear_message(world, kube_cluster):
    Cluster.objects.update(
        kubeconfig=kube_cluster.kubeconfig().replace(kube_cluster.server, "https://127.0.0.1:1")
    )
    failed = deploy(world, built_release(world, 1), "beta")
    assert failed.status == "failed"
    assert "cluster unreachable" in failed.status_reason
    assert "gave up after 2 retries" in failed.status_reason


def test_the_kubeconfig_never_reaches_logs_task_arguments_or_audit(
    world, kube_cluster, celery_worker
):
    published = []

    def capture(body=None, **kwargs):
        published.append(repr(body))

    before_task_publish.connect(capture)
    try:
        first, second = built_release(world, 1), built_release(world, 2)
        deploy(world, first, "beta")
        DeploymentTarget.objects.filter(environment=world["beta"]).update(values=NEVER_READY)
        deploy(world, second, "beta")
    finally:
        before_task_publish.disconnect(capture)
    secret = kube_cluster.token
    assert published and not any(secret in body for body in published)
    assert secret not in celery_worker.log_text()
    assert "kubeconfig" in celery_worker.log_text()  # helm ran with a file path, not content
    for event in AuditEvent.objects.all():
        assert secret not in f"{event.before} {event.after} {event.target_repr}"


def test_build_and_deploy_to_beta_runs_the_whole_flow(world, emulator):
    """One click: Jenkins builds once (the emulator), the digest it reports runs in Beta."""
    from releases.builds import release_create
    from tests.support.jenkins import TOKEN, builds_for
    from tests.support.releases import wait_for_release

    world["jenkins"].url, world["jenkins"].api_token = emulator.url, TOKEN
    world["jenkins"].username = "slipway"
    world["jenkins"].save()
    service = world["service"]
    service.jenkins_server, service.jenkins_job = world["jenkins"], "demo/app"
    service.save()
    release = release_create(
        service=service,
        ref="main",
        actor=Actor.for_user(world["user"]),
        user=world["user"],
        deploy_to=world["beta"],
    )
    release = wait_for_release(release)
    assert release.status == "built", release.status_reason
    deployment = finished(wait_until(release.deployments.first, 30, "the Beta deployment"))
    assert deployment.status == "succeeded", deployment.status_reason
    [build] = builds_for(emulator, release)
    assert image_in(world, "beta") == f"registry.local/demo/app@{build['digest']}"
    assert AuditEvent.objects.get(action="deployment.deploy").actor_name == "lead (after build)"


def test_worker_killed_while_watching_the_rollout_resumes_and_finishes(world, celery_worker):
    """SIGKILL mid-rollout: the resumer picks the deployment up, no second helm upgrade."""
    DeploymentTarget.objects.filter(environment=world["beta"]).update(
        values={"simulate": "slow-start", "startSeconds": 8}
    )
    release = built_release(world, 1)
    deployment = deployment_start(
        release=release, environment=world["beta"], actor=Actor.for_user(world["user"])
    )
    wait_until(lambda: _status(deployment) == "rolling_out", 30, "rolling out")
    celery_worker.kill()
    celery_worker.start()
    deployment = finished(deployment)
    assert deployment.status == "succeeded", deployment.status_reason
    assert rollout_of(deployment).helm_revision == 1  # found again, not upgraded twice
    assert AuditEvent.objects.filter(
        action="deployment.resume", target_id=str(deployment.pk)
    ).exists()
    assert image_in(world, "beta") == release.image


def test_an_upgrade_runs_helm_only_for_what_it_needs(world, celery_worker, helm_binary, tmp_path):
    """Which helm runs a deployment makes, and why each (docs/deployments.md)."""
    counting, calls = recording_helm(tmp_path, helm_binary)
    first, second = built_release(world, 1), built_release(world, 2)
    assert deploy(world, first, "beta").status == "succeeded"
    celery_worker.env["SLIPWAY_HELM"] = str(counting)
    celery_worker.kill()
    celery_worker.start()
    try:
        upgraded = deploy(world, second, "beta")
    finally:
        celery_worker.env["SLIPWAY_HELM"] = helm_binary
        celery_worker.kill()
        celery_worker.start()
    assert upgraded.status == "succeeded", upgraded.status_reason
    lines = calls.read_text().splitlines()
    ran = [line.split()[0] for line in lines]
    # `helm version`: pyhelm3 asks it for each client; once per worker process now.
    assert ran.count("version") <= celery_worker.concurrency
    lines = [line for line in lines if not line.startswith("version")]
    ran = [line.split()[0] for line in lines]
    checks, upgrade = ran[:-3], ran[-3:]
    # The release is ours (its owner label), and what that list said of it (its newest
    # revision runs, nothing is pending) is all a first attempt needs: no `history` (an
    # attempt resumed after a lost worker, or a release left pending, reads it).
    assert checks == ["list"]
    assert upgrade == [
        "show",  # the chart's version, resolved once: what is checked is what is applied
        "upgrade",  # rendered by the cluster (a server-side dry run), then checked
        "upgrade",  # the upgrade itself
    ]  # fmt: skip
    dry_run, applied = lines[-2:]
    # The dry run checks the manifests against the cluster's schema; the upgrade of the
    # same chart and values does not fetch and read that schema a second time.
    assert "--dry-run=server" in dry_run and "--disable-openapi-validation" not in dry_run
    assert "--dry-run" not in applied and "--disable-openapi-validation" in applied
