"""An environment over several clusters: a deployment rolls out wave by wave, stops at the
first cluster that fails, and a lead retries or skips that cluster. The rules, with helm
and the watcher in memory (test_waves_e2e.py runs them on two real control planes)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clusters.models import Cluster
from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from portal.catalog.models import DeploymentTarget
from portal.catalog.targets import owner_value
from releases.deploy_steps import deployment_step
from releases.deployments import deployment_start
from releases.errors import Conflict, NotPermitted, ReleaseRefused
from releases.promotion import promotion_refusal
from releases.rollouts import deployment_rollouts
from releases.transitions import Step
from releases.waves import deployment_cluster_decide
from tests.factories import (
    BuiltReleaseFactory,
    ClusterFactory,
    allow,
    member,
    service_path,
    succeeded_in,
)
from tests.support.fake_clusters import DIGEST, FakeClusters, FakeHelm, FakeWatcher, run_to_end

pytestmark = pytest.mark.django_db
NAMES = ("cluster-a", "cluster-b", "cluster-c")


def spread(path, environment, names=NAMES) -> list[DeploymentTarget]:
    """The service's targets in `environment` over `names`, one wave each, in that order."""
    Cluster.objects.filter(pk=path.cluster.pk).update(name=names[0], slug=names[0])
    targets = [path.service.targets.get(environment=environment)]
    for wave, name in enumerate(names[1:], start=2):
        cluster = Cluster.objects.filter(name=name).first() or ClusterFactory(name=name, slug=name)
        targets.append(
            allow(
                DeploymentTarget.objects.create(
                    service=path.service,
                    environment=environment,
                    cluster=cluster,
                    namespace=environment.slug,
                    helm_release_name=path.service.slug,
                    wave=wave,
                )
            )
        )
    return targets


class Log(list):
    """What every cluster's helm was asked, in the order asked."""


def helm_for(target, log: Log, history: int = 1) -> FakeHelm:
    """A release Slipway made earlier on this target, `history` revisions deep."""
    helm = FakeHelm([FakeHelm()._rev(n) for n in range(1, history + 1)], owner=owner_value(target))
    calls = helm.calls

    class Logged(list):
        def append(self, call):
            log.append((target.cluster.name, call[0]))
            calls.append(call)

    helm.calls = Logged()
    return helm


def clusters_for(targets, log, failing=()) -> FakeClusters:
    return FakeClusters(
        per_cluster={
            t.cluster.name: (helm_for(t, log), FakeWatcher(failed=t.cluster.name in failing))
            for t in targets
        }
    )


@pytest.fixture
def world():
    path = service_path(image_repository="reg/app", beta={"auto_rollback": True})
    targets = spread(path, path.beta)
    lead = member(path.team, "lead", Role.LEAD)
    developer = member(path.team, "dev", Role.DEVELOPER)
    return {
        "path": path,
        "targets": targets,
        "lead": lead,
        "developer": developer,
        "old": BuiltReleaseFactory(service=path.service, ref="v1"),
        "release": BuiltReleaseFactory(service=path.service, ref="v2", image_digest=DIGEST),
    }


def deploy(world, who="developer", release=None):
    user = world[who]
    return deployment_start(
        release=release or world["release"],
        environment=world["path"].beta,
        actor=Actor.for_user(user),
        user=user,
    )


def statuses(deployment) -> dict[str, str]:
    return {r.target.cluster.name: r.status for r in deployment_rollouts(deployment)}


def audited(deployment, action: str) -> list[dict]:
    return [
        e.after
        for e in AuditEvent.objects.filter(
            action=action, target_type="releases.Deployment", target_id=str(deployment.pk)
        ).order_by("id")
    ]


def test_a_deployment_rolls_out_cluster_by_cluster_in_wave_order(world):
    log = Log()
    done = run_to_end(deploy(world), clusters=clusters_for(world["targets"], log))
    assert done.status == "succeeded", done.status_reason
    assert [c for c in log if c[1] == "upgrade"] == [
        ("cluster-a", "upgrade"),
        ("cluster-b", "upgrade"),
        ("cluster-c", "upgrade"),
    ]
    assert statuses(done) == dict.fromkeys(NAMES, "succeeded")
    assert [r.helm_revision for r in deployment_rollouts(done)] == [2, 2, 2]
    rolled_out = audited(done, "deployment.cluster_rolled_out")
    assert [(e["cluster"], e["wave"]) for e in rolled_out] == [
        ("cluster-a", 1),
        ("cluster-b", 2),
        ("cluster-c", 3),
    ]


def test_a_failure_in_the_second_cluster_rolls_it_back_and_leaves_the_third_untouched(world):
    succeeded_in(world["old"], world["path"].beta)
    log = Log()
    done = run_to_end(
        deploy(world), clusters=clusters_for(world["targets"], log, failing={"cluster-b"})
    )
    assert done.status == "rolled_back"
    assert statuses(done) == {
        "cluster-a": "succeeded",
        "cluster-b": "rolled_back",
        "cluster-c": "skipped",
    }
    assert log == [
        ("cluster-a", "upgrade"),
        ("cluster-b", "upgrade"),
        ("cluster-b", "rollback"),
    ]
    reason = done.status_reason
    assert reason.startswith("cluster-b: Rollout failed.")
    assert "1 of 1 pods CrashLoopBackOff, 4 restarts" in reason
    release, old = world["release"].pk, world["old"].pk
    assert (
        f"cluster-a runs release #{release} (wave 1); cluster-b rolled back: runs release "
        f"#{old} again; cluster-c skipped: not deployed." in reason
    )


def test_every_cluster_is_checked_before_any_is_touched(world):
    log = Log()
    clusters = clusters_for(world["targets"], log)
    clusters.pairs["cluster-c"][0].owner = "another-target"  # someone else's release there
    done = run_to_end(deploy(world), clusters=clusters)
    assert done.status == "failed"
    assert done.status_reason.startswith("Refused when starting:")
    assert log == []
    assert set(statuses(done).values()) == {"skipped"}


def test_the_next_wave_waits_for_the_environments_bake_time(world):
    beta = world["path"].beta
    beta.bake_seconds = 600
    beta.save()
    log = Log()
    clusters = clusters_for(world["targets"], log)
    deployment = deploy(world)
    steps = []
    for _ in range(10):
        steps.append(deployment_step(deployment=deployment, clusters=clusters))
        deployment.refresh_from_db()
        if steps[-1] is Step.WAIT:
            break
    assert steps[-1] is Step.WAIT
    assert [c[0] for c in log if c[1] == "upgrade"] == ["cluster-a"]
    assert deployment.progress["summary"].startswith("Baking: cluster-b gets the release at")
    assert statuses(deployment)["cluster-b"] == "deploying"
    # The bake time passes:
    deployment.rollouts.filter(target__cluster__name="cluster-b").update(
        not_before=timezone.now() - timedelta(seconds=1)
    )
    assert deployment_step(deployment=deployment, clusters=clusters) is Step.NEXT
    assert [c[0] for c in log if c[1] == "upgrade"] == ["cluster-a", "cluster-b"]


def _stopped_at_b(world, auto_rollback=False):
    beta = world["path"].beta
    beta.auto_rollback = auto_rollback
    beta.save()
    log = Log()
    done = run_to_end(
        deploy(world), clusters=clusters_for(world["targets"], log, failing={"cluster-b"})
    )
    assert done.status == "failed"
    return done


def test_promotion_waits_until_every_cluster_of_the_environment_before_runs_the_release(world):
    stopped = _stopped_at_b(world)
    refusal = promotion_refusal(release=world["release"], environment=world["path"].prod)
    assert refusal == (
        f"Release #{world['release'].pk} cannot go to Prod: Beta on cluster-b's last "
        f"deployment #{stopped.pk} (release #{world['release'].pk}) failed, so Beta on "
        "cluster-b runs no good release now."
    )
    # A lead retries cluster-b (and goes on with cluster-c after it); this time it works.
    continued = deployment_cluster_decide(
        deployment=stopped,
        cluster="cluster-b",
        action="retry",
        reason="the node pool is back",
        user=world["lead"],
        actor=Actor.for_user(world["lead"]),
    )
    assert continued.status == "pending"  # a lead's decision: no other approval
    assert [r.target.cluster.name for r in deployment_rollouts(continued)] == [
        "cluster-b",
        "cluster-c",
    ]
    log = Log()
    done = run_to_end(continued, clusters=clusters_for(world["targets"], log))
    assert done.status == "succeeded", done.status_reason
    assert [c[0] for c in log if c[1] == "upgrade"] == ["cluster-b", "cluster-c"]
    assert promotion_refusal(release=world["release"], environment=world["path"].prod) is None
    [retried] = audited(stopped, "deployment.cluster_retried")
    assert retried == {
        "cluster": "cluster-b",
        "reason": "the node pool is back",
        "continued_by": continued.pk,
        "clusters": ["cluster-b", "cluster-c"],
    }


def test_a_lead_skips_a_cluster_and_the_ones_after_it_go_on(world):
    stopped = _stopped_at_b(world)
    continued = deployment_cluster_decide(
        deployment=stopped,
        cluster="cluster-b",
        action="skip",
        reason="cluster-b is being drained",
        user=world["lead"],
        actor=Actor.for_user(world["lead"]),
    )
    log = Log()
    done = run_to_end(continued, clusters=clusters_for(world["targets"], log))
    assert done.status == "succeeded"
    assert log == [("cluster-c", "upgrade")]
    assert audited(stopped, "deployment.cluster_skipped")[0]["clusters"] == ["cluster-c"]
    # Beta on cluster-b still runs no good release: no promotion.
    assert "Beta on cluster-b" in promotion_refusal(
        release=world["release"], environment=world["path"].prod
    )
    # The stopped deployment is history now: a newer one went to Beta since.
    with pytest.raises(Conflict, match=f"Deployment #{continued.pk} went to Beta since"):
        deployment_cluster_decide(
            deployment=stopped,
            cluster="cluster-b",
            action="retry",
            reason="again",
            user=world["lead"],
            actor=Actor.for_user(world["lead"]),
        )


@pytest.mark.parametrize(
    ("who", "cluster", "action", "reason", "error", "message"),
    [
        ("developer", "cluster-b", "retry", "x", NotPermitted, "Only a lead of"),
        ("lead", "cluster-b", "retry", "  ", ReleaseRefused, "Say why"),
        ("lead", "cluster-z", "retry", "x", ReleaseRefused, "has no cluster 'cluster-z'"),
        ("lead", "cluster-b", "redo", "x", ReleaseRefused, "Unknown action 'redo'"),
        ("lead", "cluster-a", "retry", "x", Conflict, "cluster-a succeeded in deployment"),
        ("lead", "cluster-c", "skip", "x", Conflict, "No cluster comes after cluster-c"),
    ],
)
def test_a_retry_or_skip_is_refused_with_a_reason(
    world, who, cluster, action, reason, error, message
):
    stopped = _stopped_at_b(world)
    with pytest.raises(error, match=message):
        deployment_cluster_decide(
            deployment=stopped,
            cluster=cluster,
            action=action,
            reason=reason,
            user=world[who],
            actor=Actor.for_user(world[who]),
        )
    assert stopped.service.deployments.count() == 1  # nothing went on


def test_the_api_and_the_page_show_each_cluster_and_let_a_lead_retry(world, client):
    stopped = _stopped_at_b(world)
    raw = token_issue(user=world["lead"], name="ci", scopes=TokenScope.values)[1]
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    shown = api.get(f"/api/v1/deployments/{stopped.pk}/").json()
    assert [(c["cluster"], c["wave"], c["status"]) for c in shown["clusters"]] == [
        ("cluster-a", 1, "succeeded"),
        ("cluster-b", 2, "failed"),
        ("cluster-c", 3, "skipped"),
    ]
    assert shown["helm_revision"] is None  # per cluster only, when there are several
    state = api.get(f"/api/v1/services/{world['path'].service.slug}/").json()
    [beta] = [e for e in state["environments"] if e["environment"] == "beta"]  # once
    assert {c["cluster"]: c["release"] for c in beta["clusters"]}["cluster-a"] == (
        world["release"].pk
    )

    client.force_login(world["developer"])
    page = client.get(f"/deployments/{stopped.pk}/").content.decode()
    assert "Clusters, wave by wave" in page and "Retry cluster-b" not in page
    client.force_login(world["lead"])
    page = client.get(f"/deployments/{stopped.pk}/").content.decode()
    assert "Retry cluster-b" in page and "Skip cluster-b" in page

    missing = api.post(
        f"/api/v1/deployments/{stopped.pk}/clusters/cluster-b/retry", {}, format="json"
    )
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    answer = api.post(
        f"/api/v1/deployments/{stopped.pk}/clusters/cluster-b/retry",
        {"reason": "node pool back"},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert [c["cluster"] for c in answer.json()["clusters"]] == ["cluster-b", "cluster-c"]
