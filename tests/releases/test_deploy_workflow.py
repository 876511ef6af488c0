"""The deploy steps with in-memory Helm and rollout ports: the rules, not the wire
(the wire is covered by test_deploy_step.py against real helm and kube-apiserver)."""

import uuid

import pytest

from portal.audit.chain import Actor
from portal.catalog.targets import release_key, target_adopt_release
from releases.deploy_steps import deployment_step, deployment_steps
from releases.deployments import deployment_start
from releases.transitions import Step
from tests.factories import BuiltReleaseFactory, UserFactory, service_path
from tests.support.deploy import rollout_of
from tests.support.fake_clusters import (
    DIGEST,
    FakeClusters,
    FakeHelm,
    FakeWatcher,
    run_to_end,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment():
    path = service_path(image_repository="reg/app", beta={"auto_rollback": True})
    release = BuiltReleaseFactory(service=path.service, image_digest=DIGEST)
    return deployment_start(
        release=release, environment=path.beta, actor=Actor.for_user(UserFactory())
    )


def target_of(deployment):
    return deployment.rollouts.get().target


def ours(deployment, history=1) -> FakeHelm:
    """A release Slipway made earlier for this deployment's target (it carries its label)."""
    return FakeHelm(
        [FakeHelm()._rev(n) for n in range(1, history + 1)], owner=str(target_of(deployment).pk)
    )


def test_a_retried_upgrade_step_finds_its_revision_instead_of_upgrading_twice(deployment):
    helm = ours(deployment)
    deployment_step(deployment=deployment, clusters=FakeClusters(helm, FakeWatcher()))
    deployment.refresh_from_db()
    # The worker ran helm, then died before recording the revision:
    helm.history.append(helm._rev(2, description=f"slipway deployment {deployment.pk}: x"))
    done = run_to_end(deployment, helm, FakeWatcher())
    assert [c for c in helm.calls if c[0] == "upgrade"] == []
    assert (done.status, rollout_of(done).helm_revision) == ("succeeded", 2)


def test_our_own_half_done_upgrade_is_recovered_then_redone(deployment):
    helm = ours(deployment)
    deployment_step(deployment=deployment, clusters=FakeClusters(helm, FakeWatcher()))
    deployment.refresh_from_db()
    helm.history.append(helm._rev(2, "pending-upgrade", f"slipway deployment {deployment.pk}"))
    done = run_to_end(deployment, helm, FakeWatcher())
    assert [c[0] for c in helm.calls] == ["recover", "upgrade"]
    assert done.status == "succeeded"


def test_the_image_is_pinned_by_digest_and_what_runs_is_recorded(deployment):
    helm = FakeHelm()
    done = run_to_end(deployment, helm, FakeWatcher())
    assert helm.calls == [("upgrade", {"repository": "reg/app", "digest": DIGEST})]
    assert done.status == "succeeded"
    assert rollout_of(done).verified_images == [
        {
            "workload": "Deployment/app",
            "container": "app",
            "image": f"reg/app@{DIGEST}",
            "pods": [
                {"pod": "app-1", "image": f"reg/app@{DIGEST}", "image_id": f"reg/app@{DIGEST}"}
            ],
        }
    ]


def test_a_chart_that_renders_a_tag_is_refused_before_the_upgrade(deployment):
    helm = FakeHelm(renders_tag="6.14.1")
    done = run_to_end(deployment, helm, FakeWatcher())
    assert done.status == "failed"
    assert done.status_reason.startswith("The chart renders reg/app:6.14.1 in Deployment/app")
    assert f"not @{DIGEST}; set the service's image values" in done.status_reason
    assert [c for c in helm.calls if c[0] == "upgrade"] == []


def test_a_cluster_running_another_image_fails_the_verification(deployment):
    done = run_to_end(deployment, FakeHelm(), FakeWatcher(runs="reg/app:latest"))
    assert done.status == "failed"
    assert "Verification failed: The cluster's Deployment/app runs reg/app:latest" in (
        done.status_reason
    )


def test_a_pod_running_another_image_than_its_template_fails_the_verification(deployment):
    """A mutating webhook rewrote the pod: the template is right, the pod is not."""
    other = "mirror.local/app@sha256:" + "d" * 64
    done = run_to_end(deployment, FakeHelm(), FakeWatcher(pod_runs=other))
    assert done.status == "failed"
    assert f"Pod app-1 of Deployment/app runs {other} (container app), not @{DIGEST}" in (
        done.status_reason
    )


def test_a_chart_without_workload_succeeds_after_helm_and_says_so(deployment):
    helm = FakeHelm()
    helm.render = lambda **kwargs: [{"kind": "ConfigMap", "metadata": {"name": "settings"}}]
    done = run_to_end(deployment, helm, FakeWatcher(workloads=False))
    assert done.status == "succeeded", done.status_reason
    assert done.progress["summary"].startswith("no workload to roll out")
    assert rollout_of(done).verified_images == []


def test_failed_rollout_rolls_back_to_the_previous_revision(deployment):
    helm = ours(deployment)
    done = run_to_end(deployment, helm, FakeWatcher(failed=True))
    assert done.status == "rolled_back"
    assert ("rollback", 1) in helm.calls
    assert "1 of 1 pods CrashLoopBackOff, 4 restarts" in done.status_reason
    assert "Warning BackOff: crash" in done.status_reason


def test_failed_first_install_has_nothing_to_roll_back_to(deployment):
    helm = FakeHelm()
    done = run_to_end(deployment, helm, FakeWatcher(failed=True))
    assert done.status == "failed"
    assert not [c for c in helm.calls if c[0] == "rollback"]


def test_a_worker_without_helm_fails_the_deployment_at_once_saying_how_to_get_one(
    deployment, settings, monkeypatch, tmp_path
):
    from releases.tasks import deployment_advance

    # Given a worker with no helm on PATH and none configured
    monkeypatch.setenv("PATH", str(tmp_path))
    settings.SLIPWAY_HELM = ""
    # When the deployment task runs (here, in this process)
    deployment_advance.apply(args=(deployment.pk, str(deployment.run_token)))
    # Then the deployment fails at once, naming what is missing and how to get it
    deployment.refresh_from_db()
    assert deployment.status == "failed"
    assert deployment.status_reason.startswith("helm not found: install helm 3")
    assert "SLIPWAY_HELM" in deployment.status_reason


def test_an_unusable_kubeconfig_fails_the_deployment_without_showing_it(deployment, helm_binary):
    from clusters.models import Cluster
    from releases.tasks import deployment_advance

    Cluster.objects.update(kubeconfig="::: not yaml [ secret-token")
    deployment_advance.apply(args=(deployment.pk, str(deployment.run_token)))
    deployment.refresh_from_db()
    assert deployment.status == "failed"
    assert deployment.status_reason.startswith("the cluster's kubeconfig is unusable (")
    assert "an admin must store a valid one" in deployment.status_reason
    assert "secret-token" not in deployment.status_reason


# -- a target touches only the Helm release it owns ------------------------------------


def test_the_release_a_target_installs_carries_its_owner_label(deployment):
    helm = FakeHelm()
    assert run_to_end(deployment, helm, FakeWatcher()).status == "succeeded"
    assert helm.owner == str(target_of(deployment).pk)


def test_a_release_another_target_owns_is_never_upgraded(deployment):
    # Given the release this target points at carries another target's label
    helm = FakeHelm([FakeHelm()._rev(1)], owner="999")
    done = run_to_end(deployment, helm, FakeWatcher())
    assert done.status == "failed"
    assert "belongs to another Slipway target: a target never upgrades" in done.status_reason
    assert [c for c in helm.calls if c[0] in ("upgrade", "rollback", "recover")] == []
    # A team admin cannot change that; a platform admin may adopt it (the owner is gone)
    root = UserFactory(username="root", is_superuser=True)
    target_adopt_release(target=target_of(deployment), user=root, actor=Actor.for_user(root))
    again = deployment_start(
        release=deployment.release, environment=deployment.environment, actor=Actor.system()
    )
    assert run_to_end(again, helm, FakeWatcher()).status == "succeeded"
    assert helm.owner == str(target_of(deployment).pk)


def test_a_release_installed_outside_slipway_needs_a_platform_admins_adoption(deployment):
    helm = FakeHelm([FakeHelm()._rev(1)], owner=None)
    refused = run_to_end(deployment, helm, FakeWatcher())
    assert refused.status == "failed"
    assert "exists but Slipway did not install it; a platform admin may adopt it" in (
        refused.status_reason
    )
    assert [c for c in helm.calls if c[0] == "upgrade"] == []
    # When a platform admin adopts it, the next deployment takes it over and labels it
    root = UserFactory(username="root", is_superuser=True)
    target = target_of(deployment)
    target_adopt_release(target=target, user=root, actor=Actor.for_user(root))
    assert target.adopted_release == release_key(target)
    again = deployment_start(
        release=deployment.release, environment=deployment.environment, actor=Actor.system()
    )
    assert run_to_end(again, helm, FakeWatcher()).status == "succeeded"
    assert helm.owner == str(target.pk)


def test_a_deployments_checks_and_upgrade_take_one_turn_and_the_watch_its_own_queue(
    deployment,
):
    """One run of the deploys queue does the checks and the upgrade (the deployment does
    not go to the back of the queue in between), then leaves the watching to the rollouts
    queue."""
    helm = FakeHelm()
    step = deployment_steps(deployment=deployment, clusters=FakeClusters(helm, FakeWatcher()))
    deployment.refresh_from_db()
    assert step is Step.NEXT
    assert deployment.status == "rolling_out"
    assert [c[0] for c in helm.calls] == ["upgrade"]


def test_a_turn_ends_when_another_run_takes_the_deployment_over(deployment):
    """Resumed elsewhere while its checks ran (a new run token): this run stops there and
    the newer one does the upgrade."""

    class TakenOver(FakeHelm):
        def ownership(self, release, namespace, *, label, owner):
            type(deployment).objects.filter(pk=deployment.pk).update(run_token=uuid.uuid4())
            return super().ownership(release, namespace, label=label, owner=owner)

    helm = TakenOver()
    step = deployment_steps(deployment=deployment, clusters=FakeClusters(helm, FakeWatcher()))
    deployment.refresh_from_db()
    assert step is Step.DONE
    assert deployment.status == "deploying"
    assert helm.calls == []
