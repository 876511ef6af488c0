"""A private OCI registry for the tests: Debian's `docker-registry` (CNCF distribution)
with its own config, data dir, TLS certificate, htpasswd users and free port. Test images
are pushed through the registry's HTTP API (blob uploads, then a manifest)."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.services import free_port

USERNAME = "puller"
PASSWORD = "registry-pw-7f3a"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def _certificate(root: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "slipway test registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    (root / "cert.pem").write_text(pem)
    (root / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return root / "cert.pem", root / "key.pem", pem


@dataclass
class LocalRegistry:
    root: Path
    port: int
    ca_pem: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(self.root / "config.yml")],
            stdout=open(self.root / "registry.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/v2/", verify=str(self.root / "cert.pem"), timeout=1)
                return self
            except requests.RequestException:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not start:\n" + self.log())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return (self.root / "registry.log").read_text(errors="replace")[-3000:]

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.auth = (USERNAME, PASSWORD)
        session.verify = str(self.root / "cert.pem")
        # Else REQUESTS_CA_BUNDLE, when set, overrides the session's own CA file.
        session.trust_env = False
        return session

    def push(self, repository: str, tag: str, content: str) -> str:
        """Push a one-layer image; return its manifest digest."""
        session = self._session()
        base = f"{self.url}/v2/{repository}"

        def blob(data: bytes) -> dict:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            started = session.post(f"{base}/blobs/uploads/")
            started.raise_for_status()
            location = started.headers["Location"]
            if location.startswith("/"):
                location = self.url + location
            separator = "&" if "?" in location else "?"
            done = session.put(
                f"{location}{separator}digest={digest}",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            done.raise_for_status()
            return {"digest": digest, "size": len(data)}

        layer = blob(content.encode())
        config = blob(
            json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode()
        )  # fmt: skip
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", **layer}],
            }
        ).encode()
        put = session.put(
            f"{base}/manifests/{tag}", data=manifest, headers={"Content-Type": MANIFEST}
        )
        put.raise_for_status()
        return put.headers["Docker-Content-Digest"]

    def delete(self, repository: str, digest: str) -> None:
        self._session().delete(f"{self.url}/v2/{repository}/manifests/{digest}").raise_for_status()


@pytest.fixture(scope="session")
def docker_registry(tmp_path_factory):
    if shutil.which("docker-registry") is None:
        raise RuntimeError(
            "docker-registry is missing: `make test` installs it (apt-get install docker-registry)"
        )
    root = tmp_path_factory.mktemp("registry")
    cert, key, pem = _certificate(root)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    (root / "htpasswd").write_text(f"{USERNAME}:{hashed}\n")
    port = free_port()
    (root / "config.yml").write_text(
        json.dumps(  # YAML is a superset of JSON
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {
                    "filesystem": {"rootdirectory": str(root / "data")},
                    "delete": {"enabled": True},
                },
                "http": {
                    "addr": f"127.0.0.1:{port}",
                    "tls": {"certificate": str(cert), "key": str(key)},
                },
                "auth": {"htpasswd": {"realm": "slipway-tests", "path": str(root / "htpasswd")}},
            }
        )
    )
    registry = LocalRegistry(root, port, pem).start()
    yield registry
    registry.stop()
