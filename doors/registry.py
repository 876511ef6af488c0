"""The door to OCI registries (Harbor, Docker Hub, CNCF distribution): does
`repository@digest` exist where the service's images live?

python-dxf speaks the distribution API, with Basic or Bearer-token auth as Harbor and
Docker Hub do it (it follows the registry's `WWW-Authenticate` challenge). Registry errors
are `DoorError`s: the deployment task retries an unreachable registry like an unreachable
cluster, then fails with the reason; a missing image fails at once.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from dxf import DXF
from dxf.exceptions import DXFAuthInsecureError, DXFUnauthorizedError

from doors import egress
from portal.core.errors import DoorError

# A manifest, an index or a token answer: small.
ANSWER_BYTES = 4 * 1024 * 1024
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class RegistryError(DoorError):
    """The registry answered something Slipway cannot deploy on; the message says what."""


class RegistryUnreachable(RegistryError):
    """The registry did not answer: trying later may help."""

    retryable = True


class ImageNotFound(RegistryError):
    """The registry answers, and has no such manifest."""


@dataclass(frozen=True)
class ImageRef:
    host: str  # as written in the image reference, e.g. harbor.example.com
    repository: str  # the path inside the registry, e.g. team/app


def registry_location(image_repository: str) -> ImageRef:
    """`harbor.example.com/team/app` → host + repository, as Docker reads references: the
    first part is a host when it has a dot or a port, or is `localhost`."""
    first, _, rest = image_repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ImageRef(first, rest)
    return ImageRef("docker.io", image_repository)


def _ca_file(pem: str) -> str:
    """python-dxf (requests) wants a CA bundle as a file path."""
    name = f"slipway-ca-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    path = Path(tempfile.gettempdir()) / name
    if not path.exists():
        path.write_text(pem)
    return str(path)


@dataclass(frozen=True)
class RegistryAccess:
    """What the door needs of a registry, credentials already decrypted by the caller."""

    name: str
    url: str
    username: str = ""
    password: str = ""
    ca_certificate: str = ""
    timeout_seconds: float = 10

    def __repr__(self) -> str:  # never the password
        return f"RegistryAccess({self.name!r}, {egress.safe_url(self.url)!r})"


def image_check(*, registry: RegistryAccess, image_repository: str, digest: str) -> None:
    """Raise unless the registry holds `image_repository@digest` (a manifest or an index)."""
    _manifest_digest(registry=registry, image_repository=image_repository, reference=digest,
                     image=f"{image_repository}@{digest}")  # fmt: skip


def image_digest_by_tag(*, registry: RegistryAccess, image_repository: str, tag: str) -> str:
    """The digest of the manifest (or index) `image_repository:tag` names now, as the
    registry says it (`Docker-Content-Digest`); ImageNotFound when no such tag."""
    image = f"{image_repository}:{tag}"
    digest = _manifest_digest(
        registry=registry, image_repository=image_repository, reference=tag, image=image
    )
    if not DIGEST.fullmatch(digest or ""):
        raise RegistryError(
            f"registry {registry.name} ({egress.safe_url(registry.url)}) answered {image} "
            f"without a sha256 digest (Docker-Content-Digest: {digest or 'absent'})"
        )
    return digest


def _manifest_digest(
    *, registry: RegistryAccess, image_repository: str, reference: str, image: str
) -> str | None:
    """HEAD the manifest `reference` (a digest or a tag) names; errors sorted into what a
    caller can act on: not found, unreachable (retry), refused credentials, untrusted TLS."""
    url = urlsplit(registry.url)
    ref = registry_location(image_repository)
    where = f"{registry.name} ({egress.safe_url(registry.url)})"
    username, password = registry.username, registry.password

    def auth(client: DXF, response: requests.Response) -> None:
        client.authenticate(username or None, password or None, response=response, actions=["pull"])

    client = DXF(
        url.netloc,
        ref.repository,
        auth=auth,
        insecure=url.scheme == "http",
        tlsverify=_ca_file(registry.ca_certificate) if registry.ca_certificate else True,
        timeout=registry.timeout_seconds,
    )

    def refused(status: int) -> RegistryError:
        return RegistryError(
            f"registry {where} refused Slipway's credentials (HTTP {status}) for "
            f"{ref.repository}; check the registry's username and password"
        )

    # python-dxf sends every request (the token dance too) through its first session: the
    # egress door's, so a registry's address is checked like any other outbound call.
    session = egress.session(deadline=registry.timeout_seconds, max_bytes=ANSWER_BYTES)
    client._sessions = [session]
    try:
        digest, _ = client.head_manifest_and_response(reference)
        return digest
    except egress.EgressUntrusted as exc:
        raise RegistryError(
            f"registry {where}: TLS certificate not trusted; set its CA certificate"
        ) from exc
    except egress.EgressRefused as exc:
        raise RegistryError(f"registry {where}: {exc}") from exc
    except egress.EgressFailed as exc:
        raise RegistryUnreachable(f"registry {where} does not answer: {exc}") from exc
    except DXFUnauthorizedError as exc:  # python-dxf's own 401, after its auth retry
        raise refused(401) from exc
    except DXFAuthInsecureError as exc:
        raise RegistryError(
            f"registry {where} asks for credentials over plain http; use its https:// address"
        ) from exc
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status == 404:
            raise ImageNotFound(f"image {image} not found in registry {where}") from exc
        if status in (401, 403):
            raise refused(status) from exc
        if status >= 500 or status == 429:
            raise RegistryUnreachable(f"registry {where} answered HTTP {status}") from exc
        raise RegistryError(f"registry {where} answered HTTP {status} for {image}") from exc
    except requests.exceptions.SSLError as exc:
        raise RegistryError(
            f"registry {where}: TLS certificate not trusted; set its CA certificate"
        ) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise RegistryUnreachable(f"registry {where} does not answer") from exc
    finally:
        session.close()
