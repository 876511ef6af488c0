"""clusters/helm.py against real helm and a real cluster (rollouts: test_rollout.py)."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from kubernetes import client, config

from clusters.errors import ClusterUnreachable, HelmFailed, HelmMissing
from clusters.helm import Helm
from clusters.rollout import RolloutWatcher
from tests.support.kube import recording_helm

pytestmark = pytest.mark.e2e
CHART = str(Path(settings.BASE_DIR) / "charts" / "demo-service")
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def image_values(repository: str, digest: str) -> dict:
    return {"image": {"repository": repository, "digest": digest}}


@pytest.fixture
def helm(kube_cluster, helm_binary):
    return Helm(kube_cluster.kubeconfig(), executable=helm_binary)


@pytest.fixture
def apps(kube_cluster):
    return client.AppsV1Api(config.new_client_from_config(str(kube_cluster.kubeconfig_path)))


def _image(apps, namespace, name):
    deployment = apps.read_namespaced_deployment(name, namespace)
    return deployment.spec.template.spec.containers[0].image


def _install(helm, ns: str, digest: str, description: str, *values: dict):
    """helm upgrade --install of the demo chart as release `app`, image reg/app@digest."""
    return helm.upgrade(
        release="app",
        namespace=ns,
        chart=CHART,
        description=description,
        values=[*values, image_values("reg/app", digest)],
    )


def _ns(request) -> str:
    return "t-" + request.node.name.replace("_", "-")[5:40].strip("-")


def test_upgrade_installs_with_the_image_pinned_by_digest(helm, apps, request):
    ns = _ns(request)
    revision = _install(helm, ns, DIGEST_A, "slipway deployment 1", {"env": {"A": "1"}})
    assert (revision.revision, revision.status) == (1, "deployed")
    assert _image(apps, ns, "app") == f"reg/app@{DIGEST_A}"
    assert helm.find_revision("app", ns, "slipway deployment 1").revision == 1
    assert helm.find_revision("app", ns, "slipway deployment 2") is None


def test_second_upgrade_then_rollback(helm, apps, request):
    ns = _ns(request)
    for n, digest in enumerate((DIGEST_A, DIGEST_B), start=1):
        _install(helm, ns, digest, f"d{n}")
    assert helm.current("app", ns).revision == 2
    assert _image(apps, ns, "app") == f"reg/app@{DIGEST_B}"
    made = helm.rollback(release="app", namespace=ns, revision=1)
    assert made.revision == 3
    assert _image(apps, ns, "app") == f"reg/app@{DIGEST_A}"
    assert [r.status for r in helm.history("app", ns)] == ["superseded", "superseded", "deployed"]


def test_render_previews_without_touching_the_cluster(helm, request):
    ns = _ns(request)
    manifests = helm.render(
        release="app", namespace=ns, chart=CHART, values=[image_values("reg/app", DIGEST_A)]
    )
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds == ["Deployment", "Service"]
    assert helm.current("app", ns) is None  # a server-side dry run changes nothing


def test_a_missing_helm_is_named_with_how_to_get_one(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no helm on PATH
    settings.SLIPWAY_HELM = ""
    with pytest.raises(HelmMissing, match=r"helm not found.*SLIPWAY_HELM"):
        Helm("kubeconfig")
    settings.SLIPWAY_HELM = str(tmp_path / "nope")
    with pytest.raises(HelmMissing, match="is not an executable file"):
        Helm("kubeconfig")


def test_chart_errors_come_back_with_helms_message(helm, request):
    with pytest.raises(HelmFailed, match=r"image\.repository is required"):
        helm.upgrade(
            release="app",
            namespace=_ns(request),
            chart=CHART,
            values=[{"image": {"digest": DIGEST_A}}],
            description="x",
        )


def test_release_left_pending_upgrade_is_rolled_back(helm, apps, request, kube_cluster):
    ns = _ns(request)
    _install(helm, ns, DIGEST_A, "d1")
    _install(helm, ns, DIGEST_B, "d2")
    _mark_latest_pending(kube_cluster, ns, "app", "pending-upgrade")
    assert helm.recover_stuck(release="app", namespace=ns, older_than=timedelta(hours=2)) is None
    recovery = helm.recover_stuck(release="app", namespace=ns, older_than=timedelta(0))
    assert (recovery.action, recovery.from_status, recovery.to_revision) == (
        "rolled-back",
        "pending-upgrade",
        3,
    )
    assert _image(apps, ns, "app") == f"reg/app@{DIGEST_A}"
    assert helm.current("app", ns).status == "deployed"


def test_release_left_pending_install_is_uninstalled(helm, request, kube_cluster):
    ns = _ns(request)
    _install(helm, ns, DIGEST_A, "d1")
    _mark_latest_pending(kube_cluster, ns, "app", "pending-install")
    recovery = helm.recover_stuck(release="app", namespace=ns, older_than=timedelta(0))
    assert recovery.action == "uninstalled"
    assert helm.current("app", ns) is None


def test_unreachable_cluster_fails_with_a_clear_message(kube_cluster, helm_binary):
    dead = kube_cluster.kubeconfig().replace(kube_cluster.server, "https://127.0.0.1:1")
    with pytest.raises(ClusterUnreachable, match="cluster unreachable"):
        Helm(dead, executable=helm_binary).upgrade(
            release="app",
            namespace="x",
            chart=CHART,
            values=[image_values("reg/app", DIGEST_A)],
            description="d",
        )
    with pytest.raises(ClusterUnreachable, match="cluster unreachable"):
        RolloutWatcher(dead, request_timeout=2).status("x", "app")


def _mark_latest_pending(kube_cluster, namespace, release, status):
    """Make the latest Helm revision look like helm was killed mid-operation an hour ago:
    the release secret's status label (and its encoded record) say pending."""
    import base64
    import gzip
    import json
    from datetime import UTC, datetime

    core = client.CoreV1Api(config.new_client_from_config(str(kube_cluster.kubeconfig_path)))
    secrets = core.list_namespaced_secret(namespace, label_selector=f"owner=helm,name={release}")
    latest = max(secrets.items, key=lambda s: int(s.metadata.labels["version"]))
    record = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(latest.data["release"]))))
    record["info"]["status"] = status
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    record["info"]["last_deployed"] = an_hour_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    encoded = base64.b64encode(
        base64.b64encode(gzip.compress(json.dumps(record).encode()))
    ).decode()
    core.patch_namespaced_secret(
        latest.metadata.name,
        namespace,
        {
            "metadata": {"labels": {"status": status}},
            "data": {"release": encoded},
        },
    )


def test_an_upgrade_skips_the_schema_check_only_after_this_helm_dry_ran_it(
    kube_cluster, helm_binary, tmp_path, request
):
    """The OpenAPI check (two thirds of an upgrade's CPU) runs once per step: in the server
    dry run; the upgrade of the very chart and values that follows skips it, any other
    upgrade keeps it, and the chart is resolved once (`helm show chart`)."""
    recording, calls = recording_helm(tmp_path, helm_binary)
    ns = _ns(request)
    values = [image_values("reg/app", DIGEST_A)]

    def ran() -> list[str]:
        lines = calls.read_text().splitlines() if calls.exists() else []
        calls.unlink(missing_ok=True)
        return [line for line in lines if not line.startswith("version")]

    step = Helm(kube_cluster.kubeconfig(), executable=str(recording))
    step.render(release="app", namespace=ns, chart=CHART, values=values)
    step.upgrade(release="app", namespace=ns, chart=CHART, values=values, description="d1")
    show, dry_run, applied = ran()
    assert show.startswith("show chart")
    assert "--dry-run=server" in dry_run and "--disable-openapi-validation" not in dry_run
    assert "--disable-openapi-validation" in applied

    # Other values than the dry run's: checked again.
    other = [image_values("reg/app", DIGEST_B)]
    step.upgrade(release="app", namespace=ns, chart=CHART, values=other, description="d2")
    (applied,) = ran()
    assert applied.startswith("upgrade") and "--disable-openapi-validation" not in applied

    # A new step (a new Helm) that did not dry-run it: checked.
    fresh = Helm(kube_cluster.kubeconfig(), executable=str(recording))
    fresh.upgrade(release="app", namespace=ns, chart=CHART, values=values, description="d3")
    show, applied = ran()
    assert show.startswith("show chart") and "--disable-openapi-validation" not in applied
    assert [r.status for r in fresh.history("app", ns)][-1] == "deployed"


def test_helm_runs_collect_garbage_only_near_the_memory_limit(
    kube_cluster, helm_binary, tmp_path, request, settings, monkeypatch
):
    """helm's Go runtime is told GOGC=off and GOMEMLIMIT (15 % of its CPU went on
    collecting along the way); an empty setting, or a GOGC the worker was started with,
    leaves Go's own defaults. The worker's own environment is not changed."""
    recording, seen = recording_helm(tmp_path, helm_binary, "GOGC=$GOGC GOMEMLIMIT=$GOMEMLIMIT $1")
    ns = _ns(request)
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.delenv("GOMEMLIMIT", raising=False)

    def runs(limit: str) -> set[str]:
        settings.SLIPWAY_HELM_MEMORY_LIMIT = limit
        seen.unlink(missing_ok=True)
        assert (
            Helm(kube_cluster.kubeconfig(), executable=str(recording)).history_or_empty(
                "nothing-here", ns
            )
            == []
        )
        return {line for line in seen.read_text().splitlines() if not line.endswith("version")}

    assert runs("300MiB") == {"GOGC=off GOMEMLIMIT=300MiB history"}
    assert "GOGC" not in os.environ
    assert runs("") == {"GOGC= GOMEMLIMIT= history"}
    monkeypatch.setenv("GOGC", "200")
    assert runs("300MiB") == {"GOGC=200 GOMEMLIMIT= history"}


def test_a_first_upgrade_takes_the_releases_newest_revision_from_the_ownership_check(
    kube_cluster, helm_binary, request
):
    """What `ownership` listed stands in for `helm history` on a first attempt: nothing for
    an absent release, the newest revision of ours; never a guess for a release another
    owns, nor when nothing was listed."""
    ns = _ns(request)
    owner = {"label": "slipway.dev/target", "owner": "t-1"}

    def fresh() -> Helm:
        return Helm(kube_cluster.kubeconfig(), executable=helm_binary)

    assert fresh().history_as_listed("app", ns) is None  # nothing listed yet
    checks = fresh()
    assert checks.ownership("app", ns, **owner) == "absent"
    assert checks.history_as_listed("app", ns) == []

    installed = checks.upgrade(
        release="app", namespace=ns, chart=CHART, description="slipway deployment 1",
        values=[image_values("reg/app", DIGEST_A)], labels={owner["label"]: owner["owner"]},
    )  # fmt: skip
    again = fresh()
    assert again.ownership("app", ns, **owner) == "ours"
    (newest,) = again.history_as_listed("app", ns)
    assert (newest.revision, newest.status, newest.deployed) == (1, "deployed", True)
    assert abs((newest.updated - installed.updated).total_seconds()) < 1
    assert [(r.revision, r.status) for r in again.history("app", ns)] == [(1, "deployed")]

    other = fresh()
    assert other.ownership("app", ns, label=owner["label"], owner="t-2") == "other"
    assert other.history_as_listed("app", ns) is None
