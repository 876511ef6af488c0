"""Run etcd + kube-apiserver on free loopback ports, as envtest does, with an admin
kubeconfig. No kubelet or controllers run: see devtools/kube/simulator.py."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.kube.binaries import ETCD, KUBE_APISERVER, find, say


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ControlPlane:
    """etcd and kube-apiserver processes under `root`, and the kubeconfig to reach them."""

    root: Path
    etcd_port: int = 0
    apiserver_port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(16))
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
- name: slipway-local
  cluster:
    server: {self.server}
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: {self.token}
contexts:
- name: slipway-local
  context: {{cluster: slipway-local, user: admin}}
current-context: slipway-local
"""

    def start(self, timeout: float = 90) -> ControlPlane:
        etcd, apiserver = find(ETCD), find(KUBE_APISERVER)
        self.root.mkdir(parents=True, exist_ok=True)
        self.etcd_port = self.etcd_port or free_port()
        self.apiserver_port = self.apiserver_port or free_port()
        peer = free_port()
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        self._spawn(
            [
                str(etcd),
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
        tokens = self.root / "tokens.csv"
        tokens.write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        tokens.chmod(0o600)
        self._spawn(
            [
                str(apiserver),
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
        return self

    def _spawn(self, args: list[str], log: Path) -> None:
        with log.open("ab") as out:
            self.processes.append(
                subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            )

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(
            f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.token}"}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{process.args[0]} exited; see {self.root / 'logs'}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(request, context=context, timeout=2) as response,
            ):
                if response.status == 200:
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
