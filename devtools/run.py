"""`make run`: migrate, load demo data, then run the portal and its companions in the
foreground until Ctrl-C or SIGTERM stops them all (honcho runs the Procfile).

Companions: Celery worker and beat, the Jenkins emulator with one job per demo service
(so a build shows a believable log), the Drone emulator (it builds the Search service), a
local cluster: the real control plane with kwok's fake nodes (so a deployment runs real
helm, and makes real ReplicaSets and pods), and a private Prometheus scraping a private
Pushgateway where the demo traffic is pushed (so each deployment's verification measures
something; docs/verification.md).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from devtools import demo_catalog

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_CONFIG = ROOT / "devtools" / "jenkins_emulator" / "demo.json"


def manage(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        check=True,
        env={**os.environ, **(env or {})},
    )


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


PROMETHEUS_CONFIG = """global:
  scrape_interval: 2s
  evaluation_interval: 2s
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{pushgateway_port}"]
"""


def prometheus_config() -> tuple[int, int]:
    """Free ports for Prometheus and the Pushgateway, and Prometheus's config and data
    under .local/prometheus (the Procfile starts both)."""
    prometheus_port, pushgateway_port = free_port(9090), free_port(9091)
    root = ROOT / ".local" / "prometheus"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "prometheus.yml").write_text(
        PROMETHEUS_CONFIG.format(pushgateway_port=pushgateway_port)
    )
    return prometheus_port, pushgateway_port


def main() -> None:
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SLIPWAY_LOG_FORMAT", "console")  # for a person at a terminal
    # The emulators and the local cluster's companions listen on loopback: let the egress
    # door call them (and a webhook receiver you run on your laptop).
    os.environ.setdefault("SLIPWAY_EGRESS_ALLOW", "127.0.0.1,localhost")
    from devtools.kube.__main__ import local_plane
    from devtools.kube.binaries import ensure_all, say

    # Builds helm, etcd, the control plane and kwok on the first run (minutes, with
    # progress; or waits for a build already under way); the worker finds helm through
    # SLIPWAY_HELM (the product never looks into devtools/).
    binaries = ensure_all(on_wait=lambda tail: say(f"waiting for another build: {tail}"))
    os.environ["SLIPWAY_HELM"] = str(binaries["helm"])
    kube_port = free_port(6443)
    os.environ["SLIPWAY_KUBE_PORT"] = str(kube_port)
    plane = local_plane()
    kubeconfig = plane.root / "kubeconfig"
    kubeconfig.write_text(plane.kubeconfig())
    kubeconfig.chmod(0o600)
    jenkins_port = free_port(8080)
    user, credentials = next(iter(json.loads(EMULATOR_CONFIG.read_text())["users"].items()))
    os.environ["SLIPWAY_EMULATOR_PORT"] = str(jenkins_port)
    # The emulator tells the portal when a build starts and ends (the Notification plugin);
    # the worker polls Jenkins only as a fallback.
    notify_secret = secrets.token_urlsafe(24)
    os.environ["SLIPWAY_JENKINS_NOTIFY_URL"] = (
        f"http://127.0.0.1:8000/hooks/jenkins/local?token={notify_secret}"
    )
    drone_port = free_port(8092)
    os.environ["SLIPWAY_DRONE_PORT"] = str(drone_port)
    os.environ["SLIPWAY_DRONE_TOKEN"] = drone_token = secrets.token_urlsafe(24)
    # A change desk answering like ServiceNow: Prod's deployments open change requests in
    # it, and its board approves each as it is made (docs/change-management.md).
    changes_port = free_port(8091)
    os.environ["SLIPWAY_CHANGES_PORT"] = str(changes_port)
    os.environ["SLIPWAY_CHANGES_PASSWORD"] = changes_password = secrets.token_urlsafe(24)
    # A Git server holding the demo's service declared in its repository (slipway.yaml).
    git_port = free_port(9418)
    os.environ["SLIPWAY_GIT_PORT"] = str(git_port)
    demo_catalog.seed(ROOT / ".local" / "git", ROOT / "charts" / "demo-service")
    catalog_url = f"git://127.0.0.1:{git_port}/{demo_catalog.REPOSITORY}.git"
    prometheus_port, pushgateway_port = prometheus_config()
    os.environ["SLIPWAY_PROMETHEUS_PORT"] = str(prometheus_port)
    os.environ["SLIPWAY_PUSHGATEWAY_PORT"] = str(pushgateway_port)
    manage("migrate", "--no-input", "-v", "0")
    manage(
        "load_demo",
        env={
            "SLIPWAY_DEMO_JENKINS_URL": f"http://127.0.0.1:{jenkins_port}/",
            "SLIPWAY_DEMO_JENKINS_USER": user,
            "SLIPWAY_DEMO_JENKINS_TOKEN": credentials["api_token"],
            "SLIPWAY_DEMO_KUBECONFIG": str(kubeconfig),
            "SLIPWAY_DEMO_PROMETHEUS_URL": f"http://127.0.0.1:{prometheus_port}",
            "SLIPWAY_DEMO_JENKINS_NOTIFY_SECRET": notify_secret,
            "SLIPWAY_DEMO_DRONE_URL": f"http://127.0.0.1:{drone_port}/",
            "SLIPWAY_DEMO_DRONE_TOKEN": drone_token,
            "SLIPWAY_DEMO_CATALOG_URL": catalog_url,
            "SLIPWAY_DEMO_CHANGES_URL": f"http://127.0.0.1:{changes_port}",
            "SLIPWAY_DEMO_CHANGES_PASSWORD": changes_password,
        },
    )
    print(f"Local Kubernetes API on https://127.0.0.1:{kube_port} (KUBECONFIG={kubeconfig})")
    print(f"Jenkins emulator on http://127.0.0.1:{jenkins_port}/", flush=True)
    print(f"Drone emulator on http://127.0.0.1:{drone_port}/ (builds the Search service)",
          flush=True)  # fmt: skip
    print(f"Change desk (ServiceNow's Table API) on http://127.0.0.1:{changes_port}/: Prod's "
          "deployments open change requests there", flush=True)  # fmt: skip
    print(f"Git server on git://127.0.0.1:{git_port}/: {catalog_url} declares the Ledger "
          "service (slipway.yaml); preview and sync it on /catalog/", flush=True)  # fmt: skip
    print(f"Prometheus on http://127.0.0.1:{prometheus_port}/ (demo traffic pushed to the "
          f"Pushgateway on 127.0.0.1:{pushgateway_port})", flush=True)  # fmt: skip
    print("Slipway on http://127.0.0.1:8000/ — Ctrl-C stops it.", flush=True)
    honcho = Path(sys.executable).with_name("honcho")
    os.execv(str(honcho), [str(honcho), "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start"])


if __name__ == "__main__":
    main()
