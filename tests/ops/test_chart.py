"""charts/slipway: lint, render, and install into the local kube-apiserver."""

import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from clusters.helm import Helm
from clusters.rollout import RolloutWatcher
from tests.ops.test_packaging import SIZED_BY_WAIT, queue_pools

CHART = Path(settings.BASE_DIR) / "charts" / "slipway"
PRODUCTION = CHART / "values-production.yaml"


def _helm(helm_binary: str, *args: str) -> str:
    result = subprocess.run([helm_binary, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _render(helm_binary: str, *extra: str) -> dict[tuple[str, str], dict]:
    out = _helm(helm_binary, "template", "slipway", str(CHART), *extra)
    return {(m["kind"], m["metadata"]["name"]): m for m in yaml.safe_load_all(out) if m}


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("values", [[], ["-f", str(PRODUCTION)]], ids=["default", "production"])
def test_the_chart_lints_and_renders(helm_binary, values):
    _helm(helm_binary, "lint", "--strict", str(CHART), *values)
    manifests = _render(helm_binary, *values)
    kinds = sorted({kind for kind, _ in manifests})
    assert {"ConfigMap", "Deployment", "Job", "Service", "PodDisruptionBudget"} <= set(kinds)
    beat = manifests[("Deployment", "slipway-beat")]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    web = manifests[("Deployment", "slipway-web")]["spec"]["template"]["spec"]
    [container] = web["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["securityContext"]["runAsNonRoot"] is True
    worker = manifests[("Deployment", "slipway-worker")]["spec"]["template"]["spec"]
    assert "--without-heartbeat" in worker["containers"][0]["command"]
    pools = [
        manifests[("Deployment", name)]["spec"]["template"]["spec"]["containers"][0]["command"]
        for name in ("slipway-worker", "slipway-worker-network")
    ]
    assert queue_pools(pools) == SIZED_BY_WAIT
    if values:
        assert ("Ingress", "slipway") in manifests
        assert ("HorizontalPodAutoscaler", "slipway-web") in manifests
        assert container["image"].startswith("harbor.example.com/platform/slipway@sha256:")


def test_only_the_migrate_hook_job_gets_the_owner_database_url(helm_binary):
    manifests = _render(helm_binary)
    job = manifests[("Job", "slipway-migrate")]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    [migrate] = job["spec"]["template"]["spec"]["containers"]
    owner = _env(migrate)["MIGRATION_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert owner == {"name": "slipway", "key": "MIGRATION_DATABASE_URL", "optional": False}
    assert migrate["command"] == ["python", "manage.py", "migrate", "--no-input"]
    for name in ("slipway-web", "slipway-worker", "slipway-worker-network", "slipway-beat"):
        [container] = manifests[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
        assert "MIGRATION_DATABASE_URL" not in _env(container)
        assert "DATABASE_URL" in _env(container)


@pytest.mark.e2e
def test_the_chart_installs_and_its_deployments_roll_out(helm_binary, kube_cluster):
    helm = Helm(kube_cluster.kubeconfig(), executable=helm_binary)
    revision = helm.upgrade(
        release="slipway",
        namespace="slipway-system",
        chart=str(CHART),
        values=[{"web": {"replicas": 2}, "worker": {"replicas": 2}}],
        description="chart test",
    )
    assert revision.status == "deployed"  # the migrate hook Job's pod ran to completion
    progress = RolloutWatcher(kube_cluster.kubeconfig()).watch("slipway-system", "slipway", 30)
    assert progress.complete, progress.summary()
    names = sorted(w.name for w in progress.workloads)
    assert names == ["slipway-beat", "slipway-web", "slipway-worker", "slipway-worker-network"]
