"""Canary steps in Prod against the real control plane, real helm, a real worker and a real
Prometheus: the new digest runs as `app-canary` beside the stable `app`, its Ingress
carries nginx-ingress's canary annotations (watched in the apiserver at every step), each
step is analysed, a failing step sets the weight to 0 and removes the canary release, and a
lead promotes through the API and aborts through the CLI."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from rest_framework.test import APIClient

from clusters.access import cluster_helm
from clusters.models import Cluster
from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from releases.deployments import deployment_start
from releases.models import AnalysisMetric, AnalysisTemplate, Deployment, TargetRollout
from releases.transitions import deployment_fail
from tests.cli.test_cli import slipway
from tests.factories import member
from tests.releases.test_verification_e2e import ERROR_RATIO, serving
from tests.support.deploy import built_release, deploy, finished, image_in, namespace
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


class IngressLog:
    """Every change to the namespace's Ingresses, as the apiserver reports it."""

    def __init__(self, api_client, ns: str):
        self.api = client.NetworkingV1Api(api_client)
        self.ns = ns
        self.seen: list[tuple[str, str, str | None]] = []
        self._stream = watch.Watch()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._stream.stream(
                self.api.list_namespaced_ingress, self.ns, timeout_seconds=300
            ):
                ingress = event["object"]
                annotations = ingress.metadata.annotations or {}
                self.seen.append((event["type"], ingress.metadata.name, annotations.get(WEIGHT)))
        except Exception:  # the watch ends with the test
            return

    def weights(self, name: str = "app-canary") -> list[str]:
        """The canary weights seen, each change once, in order."""
        found: list[str] = []
        for kind, seen_name, weight in self.seen:
            if seen_name == name and kind != "DELETED" and (not found or found[-1] != weight):
                found.append(weight)
        return found

    def deleted(self, name: str = "app-canary") -> bool:
        return any(kind == "DELETED" and n == name for kind, n, _ in self.seen)

    def stop(self) -> None:
        self._stream.stop()


@pytest.fixture
def canary_world(world, prometheus, kube_cluster):
    target = world["service"].targets.get(environment=world["prod"])
    target.values = {"replicaCount": 2, "ingress": {"enabled": True, "host": "app.example.test"}}
    target.canary_steps = [{"weight": 10}, {"weight": 50, "pause": "lead"}, {"weight": 100}]
    target.save()
    template = AnalysisTemplate.objects.create(
        environment=world["prod"], name="error rate", prometheus_url=prometheus.url
    )
    AnalysisMetric.objects.create(
        template=template, name="error ratio", query=ERROR_RATIO, interval_seconds=1, count=2,
        success_condition="result < 0.05", failure_condition="result >= 0.05",
    )  # fmt: skip
    lead = member(world["service"].team, "canary-lead", Role.LEAD)
    token = token_issue(user=lead, name="ci", scopes=TokenScope.values)[1]
    api_client = config.new_client_from_config(str(kube_cluster.kubeconfig_path))
    log = IngressLog(api_client, namespace(world, "prod"))
    yield {
        **world,
        "target": target,
        "lead": lead,
        "token": token,
        "api": APIClient(HTTP_AUTHORIZATION=f"Bearer {token}"),
        "ingresses": log,
        "networking": client.NetworkingV1Api(api_client),
        "prometheus": prometheus,
    }
    log.stop()


def stable_in_prod(w, n: int):
    """Release n runs in Prod as the stable release (a first install: no canary)."""
    release = built_release(w, n)
    serving(w, w["prometheus"], "prod", release, requests=400, errors=0)
    assert deploy(w, release, "beta").status == "succeeded"
    first = deploy(w, release, "prod", kind="promote", timeout=90)
    assert first.status == "succeeded" and not TargetRollout.objects.get(deployment=first).canary
    return release


def promote(w, release) -> Deployment:
    assert deploy(w, release, "beta").status == "succeeded"
    return deployment_start(
        release=release, environment=w["prod"], actor=Actor.for_user(w["user"]),
        user=w["user"], kind="promote",
    )  # fmt: skip


def canary_at(deployment: Deployment, weight: int, phase: str, timeout: float = 60) -> dict:
    def there():
        rollout = TargetRollout.objects.get(deployment=deployment)
        c = rollout.canary or {}
        return c if (c.get("weight"), c.get("phase")) == (weight, phase) else None

    return wait_until(there, timeout, f"the canary at {weight} %, {phase}")


def canary_release(w):
    """The canary's Helm release in Prod, as helm sees it (None: not installed)."""
    cluster = Cluster.objects.get(pk=w["cluster"].pk)
    return cluster_helm(cluster).current("app-canary", namespace(w, "prod"))


def ingress(w, name: str):
    try:
        return w["networking"].read_namespaced_ingress(name, namespace(w, "prod"))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_a_canary_walks_10_then_50_and_a_lead_promotes_it_through_the_api(canary_world):
    w = canary_world
    stable = stable_in_prod(w, 1)
    new = built_release(w, 2)
    serving(w, w["prometheus"], "prod", new, requests=400, errors=1)
    deployment = promote(w, new)
    canary_at(deployment, 50, "paused")
    # At 50 % and paused for a lead: both releases run, the Ingresses say who gets what.
    assert w["ingresses"].weights() == ["10", "50"]
    canary_ingress = ingress(w, "app-canary")
    assert canary_ingress.metadata.annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert canary_ingress.spec.rules[0].host == ingress(w, "app").spec.rules[0].host
    assert WEIGHT not in (ingress(w, "app").metadata.annotations or {})
    assert image_in(w, "prod").endswith(stable.image_digest)
    canary_pods = w["apps"].read_namespaced_deployment("app-canary", namespace(w, "prod"))
    assert canary_pods.spec.template.spec.containers[0].image.endswith(new.image_digest)
    steps = list(deployment.verifications.order_by("id").values_list("canary_step", "status"))
    assert steps == [(1, "successful"), (2, "successful")]
    # A lead promotes it through the API, with a reason (none: 400).
    url = f"/api/v1/deployments/{deployment.pk}/canary/promote"
    assert w["api"].post(url, {}, format="json").status_code == 400
    answer = w["api"].post(url, {"reason": "50 % looks healthy"}, format="json")
    assert answer.status_code == 200, answer.content
    done = finished(deployment, 90)
    assert done.status == "succeeded", done.status_reason
    assert image_in(w, "prod").endswith(new.image_digest)
    wait_until(lambda: ingress(w, "app-canary") is None, 30, "the canary Ingress gone")
    assert canary_release(w) is None
    assert w["ingresses"].weights() == ["10", "50", "100"] and w["ingresses"].deleted()
    actions = list(
        AuditEvent.objects.filter(target_id=str(deployment.pk), action__startswith="canary.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "canary.step",
        "canary.step",
        "canary.promoted",
        "canary.step",
        "canary.removed",
    ]
    # Promoted, it is verified as every deployment is (a fresh attempt).
    wait_until(
        lambda: deployment.verifications.filter(canary_step=None, status="successful").exists(),
        30, "the verification after promotion",
    )  # fmt: skip


def test_a_failing_step_sets_weight_0_and_removes_the_canary_and_a_lead_aborts_by_cli(
    canary_world, live_server, tmp_path
):
    w = canary_world
    stable = stable_in_prod(w, 1)
    bad = built_release(w, 2)
    serving(w, w["prometheus"], "prod", bad, requests=400, errors=120)
    failed = finished(promote(w, bad), 90)
    assert failed.status == "rolled_back"
    assert "Canary aborted at step 1 of 2 (10 %): its analysis" in failed.status_reason
    assert "error ratio: 1 of 1 measurements failed" in failed.status_reason
    wait_until(lambda: w["ingresses"].deleted(), 30, "the canary Ingress deleted")
    assert w["ingresses"].weights() == ["10", "0"]  # weight 0 first, then removed
    assert canary_release(w) is None
    assert image_in(w, "prod").endswith(stable.image_digest)  # the stable never changed

    # A canary paused for a lead at 10 %, aborted from the command line.
    w["target"].canary_steps = [{"weight": 10, "pause": "lead"}]
    w["target"].save()
    third = built_release(w, 3)
    serving(w, w["prometheus"], "prod", third, requests=400, errors=0)
    deployment = promote(w, third)
    canary_at(deployment, 10, "paused")
    result = slipway(tmp_path, "--url", live_server.url, "canary", "abort", str(deployment.pk),
                     "--reason", "not tonight", "--wait", token=w["token"])  # fmt: skip
    assert "rolled_back" in result.stdout and "canary-lead aborted it: not tonight" in result.stdout
    assert image_in(w, "prod").endswith(stable.image_digest)
    assert canary_release(w) is None
    event = AuditEvent.objects.get(action="canary.abort_requested")
    assert (event.actor_name, event.after["reason"]) == ("canary-lead (token ci)", "not tonight")


def test_a_deployment_that_ends_otherwise_takes_its_canary_with_it(canary_world):
    w = canary_world
    stable = stable_in_prod(w, 1)
    w["target"].canary_steps = [{"weight": 10, "pause": "lead"}]
    w["target"].save()
    new = built_release(w, 2)
    serving(w, w["prometheus"], "prod", new, requests=400, errors=0)
    deployment = promote(w, new)
    canary_at(deployment, 10, "paused")
    # As the task does when a step raises something unexpected.
    assert deployment_fail(deployment=deployment, reason="Unexpected error in the canary step")
    wait_until(lambda: w["ingresses"].deleted(), 60, "the canary Ingress deleted")
    assert w["ingresses"].weights() == ["10", "0"]
    assert canary_release(w) is None
    assert image_in(w, "prod").endswith(stable.image_digest)
    event = AuditEvent.objects.get(action="canary.aborted", target_id=str(deployment.pk))
    assert "the deployment ended failed" in event.after["reason"]
