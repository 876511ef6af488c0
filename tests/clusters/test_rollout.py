"""clusters/rollout.py and clusters/helm.py's render against the real control plane:
kube-controller-manager makes ReplicaSets and pods, kube-scheduler places them on kwok's
nodes, kwok runs them through its stages (devtools/kube/stages/)."""

import threading
from pathlib import Path

import pytest
from django.conf import settings
from kubernetes import client, config

from clusters.helm import Helm
from clusters.rollout import RolloutWatcher
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
CHART = str(Path(settings.BASE_DIR) / "charts" / "demo-service")
CONFIG_ONLY = str(Path(__file__).resolve().parents[1] / "charts" / "config-only")
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture
def helm(kube_cluster, helm_binary):
    return Helm(kube_cluster.kubeconfig(), executable=helm_binary)


@pytest.fixture
def watcher(kube_cluster):
    return RolloutWatcher(kube_cluster.kubeconfig())


@pytest.fixture
def api(kube_cluster):
    return config.new_client_from_config(str(kube_cluster.kubeconfig_path))


@pytest.fixture
def ns(request) -> str:
    return "r-" + request.node.name.replace("_", "-")[5:40].strip("-")


def _install(helm, ns: str, digest: str, **values):
    return helm.upgrade(
        release="app",
        namespace=ns,
        chart=CHART,
        description="test",
        values=[values, {"image": {"repository": "reg/app", "digest": digest}}],
    )


def test_a_rollout_makes_replica_sets_and_pods_that_carry_the_digest(helm, watcher, api, ns):
    _install(helm, ns, DIGEST_A, replicaCount=3)
    first = watcher.watch(ns, "app", 30)
    assert first.complete, first.summary()
    # A second release: a new ReplicaSet surges, the old one is scaled down to nothing.
    _install(helm, ns, DIGEST_B, replicaCount=3)
    seen = []
    progress = watcher.watch(ns, "app", 30, seen.append)
    assert progress.complete, progress.summary()
    [workload] = progress.workloads
    assert (workload.kind, workload.desired, workload.updated, workload.available) == (
        "Deployment",
        3,
        3,
        3,
    )
    assert workload.old == 0
    # Never judged complete while pods of the old ReplicaSet were still there.
    assert not any(p.complete for p in seen if any(w.old for w in p.workloads))
    replica_sets = client.AppsV1Api(api).list_namespaced_replica_set(ns).items
    by_image = {rs.spec.template.spec.containers[0].image: rs for rs in replica_sets}
    assert by_image[f"reg/app@{DIGEST_A}"].spec.replicas == 0
    assert by_image[f"reg/app@{DIGEST_B}"].status.ready_replicas == 3

    [container] = watcher.images(ns, "app")
    assert container.image == f"reg/app@{DIGEST_B}"
    assert len(container.pods) == 3
    assert {(p.image, p.image_id) for p in container.pods} == {
        (f"reg/app@{DIGEST_B}", f"reg/app@{DIGEST_B}")
    }
    pods = client.CoreV1Api(api).list_namespaced_pod(ns).items
    assert {p.metadata.name for p in pods if p.metadata.deletion_timestamp is None} == {
        p.pod for p in container.pods
    }
    assert all(p.spec.node_name.startswith("kwok-node-") for p in pods)


def test_pods_that_never_become_ready_fail_at_the_real_progress_deadline(helm, watcher, ns):
    _install(helm, ns, DIGEST_A, replicaCount=2, simulate="never-ready", progressDeadlineSeconds=3)
    progress = watcher.watch(ns, "app", 40)
    assert progress.failed, progress.summary()
    reason = progress.failure_reason()
    assert "Deployment/app: ProgressDeadlineExceeded" in reason
    assert "2 of 2 pods running but not ready" in reason
    assert "Recent events:" in reason


def test_a_crash_loop_is_reported_with_its_rising_restart_count(helm, watcher, ns):
    _install(helm, ns, DIGEST_A, replicaCount=2, simulate="crashloop")

    def restarts() -> int:
        line = next((p for p in watcher.status(ns, "app").pods if "CrashLoopBackOff" in p), "")
        return int(line.rsplit(", ", 1)[1].split()[0]) if line else 0

    wait_until(lambda: restarts() >= 1, 30, "a first restart")
    first = restarts()
    wait_until(lambda: restarts() > first, 30, "the restart count to rise")
    assert f"2 of 2 pods CrashLoopBackOff, {restarts()} restarts" in watcher.status(ns, "app").pods


def test_an_image_that_cannot_be_pulled_is_named_in_the_pods_reason(helm, watcher, ns):
    _install(helm, ns, DIGEST_A, replicaCount=3, simulate="image-pull")

    def reason() -> str:
        return " ".join(watcher.status(ns, "app").pods)

    # Each pod shows ErrImagePull first, then settles in ImagePullBackOff: wait for all three.
    wait_until(lambda: "3 of 3 pods ImagePullBackOff" in reason(), 30, "ImagePullBackOff")
    assert f'3 of 3 pods ImagePullBackOff: Back-off pulling image "reg/app@{DIGEST_A}"' in (
        reason()
    )


def test_a_slow_start_completes_when_its_pods_become_ready(helm, watcher, ns):
    _install(helm, ns, DIGEST_A, simulate="slow-start", startSeconds=3)
    seen = []
    progress = watcher.watch(ns, "app", 30, seen.append)
    assert progress.complete, progress.summary()
    assert not seen[0].complete  # the pod took its start-up seconds


def test_a_watch_resumes_from_the_version_it_was_given(helm, watcher, api, ns):
    """Resumed from a version taken before the install, the watch is given every change
    since (none missed between two short watches) and sees the rollout to its end."""
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    before = client.AppsV1Api(api).list_namespaced_deployment(ns).metadata.resource_version
    _install(helm, ns, DIGEST_A, simulate="slow-start", startSeconds=3)
    seen = []
    progress = watcher.watch(ns, "app", 30, seen.append, resume_from=before)
    assert progress.complete, progress.summary()
    assert watcher.restarts_after_gone == 0
    assert not seen[0].complete


def test_a_watch_follows_its_own_workloads_among_many_in_the_namespace(kube_cluster, helm, api, ns):
    """Other services' workloads in the namespace change all the while (here 30 times):
    the watch passes their events over and re-reads only its own workloads by name, so
    its requests do not grow with its neighbours' changes (each change of theirs used to
    cost it 3 listings of the namespace and its pods)."""
    apps = client.AppsV1Api(api)
    _install(helm, ns, DIGEST_A, simulate="slow-start", startSeconds=4)
    neighbour = {
        "metadata": {"name": "neighbour"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "neighbour"}},
            "template": {
                "metadata": {"labels": {"app": "neighbour"}},
                "spec": {"containers": [{"name": "c", "image": "reg/other@" + DIGEST_B}]},
            },
        },
    }
    apps.create_namespaced_deployment(ns, neighbour)
    requests = []
    watcher = RolloutWatcher(kube_cluster.kubeconfig(), before_call=lambda: requests.append(1))
    stop = threading.Event()

    def churn():
        for n in range(30):
            if stop.wait(0.1):
                return
            patch = {"metadata": {"annotations": {"churn": str(n)}}}
            apps.patch_namespaced_deployment("neighbour", ns, patch)

    neighbours = threading.Thread(target=churn)
    neighbours.start()
    try:
        progress = watcher.watch(ns, "app", 30)
    finally:
        stop.set()
        neighbours.join()
    assert progress.complete, progress.summary()
    assert len(requests) < 30, len(requests)


def test_a_stateful_set_rolls_out_and_is_updated_pod_by_pod(helm, watcher, ns):
    _install(helm, ns, DIGEST_A, replicaCount=2, workload="StatefulSet")
    progress = watcher.watch(ns, "app", 40)
    assert progress.complete, progress.summary()
    assert [w.label for w in progress.workloads] == ["StatefulSet/app"]
    _install(helm, ns, DIGEST_B, replicaCount=2, workload="StatefulSet")
    progress = watcher.watch(ns, "app", 60)
    assert progress.complete, progress.summary()
    [container] = watcher.images(ns, "app")
    assert [p.pod for p in container.pods] == ["app-0", "app-1"]
    assert {p.image for p in container.pods} == {f"reg/app@{DIGEST_B}"}


def test_a_chart_without_workload_is_complete_after_helm_and_says_so(helm, watcher, ns):
    helm.upgrade(release="app", namespace=ns, chart=CONFIG_ONLY, description="t", values=[])
    progress = watcher.watch(ns, "app", 5)
    assert progress.complete and progress.no_workload
    assert progress.summary().startswith("no workload to roll out")
    assert watcher.images(ns, "app") == []


def test_render_uses_the_target_clusters_version_and_api_groups(helm, watcher, api, ns):
    """helm template's defaults (Kubernetes v1.20, no custom API groups) would refuse this
    chart (kubeVersion >=1.30) and leave out what it renders for slipway.dev/v1."""
    version, groups = watcher.server_capabilities()
    assert version.startswith("v1.34.")
    assert "apps/v1" in groups

    def render():
        return helm.render(release="app", namespace=ns, chart=CONFIG_ONLY, values=[])

    [settings_map] = render()
    assert settings_map["data"]["kubeVersion"] == version
    extensions = client.ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets{ns.replace('-', '')[:20]}.slipway.dev"},
            "spec": {
                "group": "slipway.dev",
                "scope": "Namespaced",
                "names": {
                    "plural": f"widgets{ns.replace('-', '')[:20]}",
                    "singular": f"widget{ns.replace('-', '')[:20]}",
                    "kind": "Widget",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": {"type": "object"}},
                    }
                ],
            },
        }
    )
    wait_until(lambda: len(render()) == 2, 30, "the chart to see slipway.dev/v1")
    # Nothing was installed by rendering.
    assert helm.current("app", ns) is None
