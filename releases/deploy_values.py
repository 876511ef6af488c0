"""The Helm values a release is deployed to a target with."""

from __future__ import annotations

from clusters.errors import HelmFailed
from portal.catalog.environment_config import variable_values
from portal.catalog.models import DeploymentTarget
from portal.core.images import is_digest, render_image_values, tag_for
from releases.models import Release


def deployment_values(
    release: Release, target: DeploymentTarget, *, reveal_secrets: bool = False
) -> list[dict]:
    """Helm values, later ones winning: the service's defaults, the target's values, the
    environment's variables, then the image by digest, placed where the service's image
    values say. Secret variables are fingerprints unless `reveal_secrets` (only for helm
    itself: what Slipway records and shows never holds them)."""
    service = target.service
    if not is_digest(release.image_digest):
        raise HelmFailed(
            f"refusing to deploy without a sha256 digest (got {release.image_digest!r})"
        )
    return [
        service.default_values or {},
        target.values or {},
        variable_values(target, reveal=reveal_secrets),
        render_image_values(
            service.image_values,
            repository=release.image_repository,
            digest=release.image_digest,
            tag=tag_for(release.ref),
        ),
    ]
