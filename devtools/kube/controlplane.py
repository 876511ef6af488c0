"""A Kubernetes cluster without machines, on loopback: the real control plane (etcd,
kube-apiserver, kube-controller-manager, kube-scheduler of one Kubernetes version) and
kwok for the nodes, whose pods it moves through the stages in devtools/kube/stages/.

Deployments make ReplicaSets, ReplicaSets make pods, the scheduler places them on the fake
nodes, kwok makes them Running and Ready (or crash, or never pull, when the pod asks): what
a team meets in a real cluster, minus the containers. Each cluster is its own set of
processes, ports and folders, so two can run side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.kube.binaries import (
    ETCD,
    KUBE_APISERVER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_SCHEDULER,
    KWOK,
    find,
    say,
)

STAGES = Path(__file__).resolve().parent / "stages"
# kwok manages the nodes that carry this annotation (and only those).
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ControlPlane:
    """One local cluster's processes under `root`, and the kubeconfig to reach it."""

    root: Path
    etcd_port: int = 0
    apiserver_port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    nodes: int = 1
    name: str = "slipway-local"
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def kubeconfig_path(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def kubeconfig(self) -> str:
        # The apiserver's serving certificate is self-signed for this run only.
        return f"""apiVersion: v1
kind: Config
clusters:
- name: {self.name}
  cluster:
    server: {self.server}
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: {self.token}
contexts:
- name: {self.name}
  context: {{cluster: {self.name}, user: admin}}
current-context: {self.name}
"""

    def start(self, timeout: float = 120) -> ControlPlane:
        binaries = {b.name: str(find(b)) for b in (ETCD, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER)}
        binaries |= {b.name: str(find(b)) for b in (KUBE_APISERVER, KWOK)}
        self.root.mkdir(parents=True, exist_ok=True)
        self.etcd_port = self.etcd_port or free_port()
        self.apiserver_port = self.apiserver_port or free_port()
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        self._start_etcd(binaries["etcd"], logs)
        key = self._service_account_key()
        tokens = self.root / "tokens.csv"
        tokens.write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        tokens.chmod(0o600)
        self._spawn(
            [
                binaries["kube-apiserver"],
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.root / 'certs'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                "--authorization-mode=RBAC",
                f"--token-auth-file={tokens}",
                f"--service-account-key-file={key}",
                f"--service-account-signing-key-file={key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--v=0",
            ],
            logs / "kube-apiserver.log",
        )
        self.kubeconfig_path.write_text(self.kubeconfig())
        self.kubeconfig_path.chmod(0o600)
        self._wait_ready(timeout)
        kubeconfig = str(self.kubeconfig_path)
        self._spawn(
            [
                binaries["kube-controller-manager"],
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={self.root / 'certs-cm'}",
                f"--service-account-private-key-file={key}",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                "--controllers=*",
                "--v=0",
            ],
            logs / "kube-controller-manager.log",
        )
        self._spawn(
            [
                binaries["kube-scheduler"],
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={self.root / 'certs-scheduler'}",
                "--leader-elect=false",
                "--v=0",
            ],
            logs / "kube-scheduler.log",
        )
        self._spawn(
            [
                binaries["kwok"],
                f"--kubeconfig={kubeconfig}",
                f"--config={self._stages_file()}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                f"--server-address=127.0.0.1:{free_port()}",
                "--node-lease-duration-seconds=40",
            ],
            logs / "kwok.log",
        )
        self._add_nodes()
        self._wait_nodes_ready(timeout)
        return self

    # -- the parts ----------------------------------------------------------------------

    def _start_etcd(self, binary: str, logs: Path) -> None:
        peer = free_port()
        self._spawn(
            [
                binary,
                "--data-dir",
                str(self.root / "etcd"),
                "--name",
                "default",
                "--listen-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{self.etcd_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            logs / "etcd.log",
        )

    def _service_account_key(self) -> Path:
        key = self.root / "sa.key"
        if not key.exists():
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key.write_bytes(
                private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                )
            )
            key.chmod(0o600)
        return key

    def _stages_file(self) -> Path:
        """kwok's stages, one multi-document file (see devtools/kube/stages/README.md)."""
        path = self.root / "stages.yaml"
        path.write_text(
            "\n---\n".join(f.read_text().strip() for f in sorted(STAGES.glob("*.yaml"))) + "\n"
        )
        return path

    def _request(self, method: str, path: str, body: dict | None = None) -> bytes:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(
            f"{self.server}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.read()

    def _api(self, method: str, path: str, body: dict | None = None) -> dict:
        return json.loads(self._request(method, path, body) or b"{}")

    def _add_nodes(self) -> None:
        for n in range(self.nodes):
            name = f"kwok-node-{n}"
            with contextlib.suppress(urllib.error.HTTPError):  # already there after a restart
                self._api(
                    "POST",
                    "/api/v1/nodes",
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {
                            "name": name,
                            "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                            "labels": {
                                "kubernetes.io/hostname": name,
                                "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64",
                                "type": "kwok",
                            },
                        },
                    },
                )

    def _wait_nodes_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_processes()
            nodes = self._api("GET", "/api/v1/nodes").get("items", [])
            ready = [
                n
                for n in nodes
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (n.get("status") or {}).get("conditions") or []
                )
            ]
            if len(ready) >= self.nodes:
                say(f"{self.name}: {len(ready)} kwok node(s) ready at {self.server}")
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"kwok nodes not ready within {timeout:.0f} s; see {self.root / 'logs'}")

    def _spawn(self, args: list[str], log: Path) -> None:
        with log.open("ab") as out:
            self.processes.append(
                subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            )

    def _check_processes(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{process.args[0]} exited; see {self.root / 'logs'}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_processes()
            with contextlib.suppress(OSError):
                self._request("GET", "/readyz")
                say(f"kube-apiserver ready at {self.server}")
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"kube-apiserver not ready within {timeout:.0f} s; see {self.root / 'logs'}"
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
        self.processes.clear()
