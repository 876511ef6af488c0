"""Verify what runs: the image a deployment puts on the cluster is the release's digest.

Checked twice: in the manifests the chart renders before the upgrade (a chart that
renders `repository:tag` is refused before anything changes), and in the workloads the
cluster holds after the rollout (recorded on the deployment).
"""

from __future__ import annotations

from clusters.rollout import ContainerImage
from portal.core.images import split_image

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


def manifest_containers(manifests: list[dict]) -> list[ContainerImage]:
    """Every container (init containers too) of the workloads among `manifests`."""
    found = []
    for manifest in manifests:
        if not isinstance(manifest, dict) or manifest.get("kind") not in POD_SPEC_PATHS:
            continue
        spec = manifest
        for key in POD_SPEC_PATHS[manifest["kind"]]:
            spec = (spec or {}).get(key) or {}
        name = f"{manifest['kind']}/{(manifest.get('metadata') or {}).get('name', '?')}"
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            found.append(
                ContainerImage(name, container.get("name", "?"), container.get("image", ""))
            )
    return found


def _ours(containers: list[ContainerImage], repository: str) -> list[ContainerImage]:
    return [c for c in containers if split_image(c.image)[0] == repository]


def _digest_of(image_id: str) -> str:
    return image_id.rpartition("@")[2]


def rendered_refusal(containers: list[ContainerImage], repository: str, digest: str) -> str | None:
    """Why the rendered chart does not pin the release's digest, or None when it does."""
    ours = _ours(containers, repository)
    if not ours:
        shown = ", ".join(sorted({c.image for c in containers})) or "no container at all"
        return (
            f"The chart renders no container of {repository} (it renders {shown}); set the "
            "service's image values so the chart places the release's image."
        )
    loose = [c for c in ours if split_image(c.image)[2] != digest]
    if loose:
        first = loose[0]
        return (
            f"The chart renders {first.image} in {first.workload} (container {first.container}),"
            f" not @{digest}; set the service's image values so the chart pins the digest."
        )
    return None


def cluster_refusal(containers: list[ContainerImage], repository: str, digest: str) -> str | None:
    """Why what the cluster holds is not the release's digest, or None when it is."""
    ours = _ours(containers, repository)
    if not ours:
        return f"The cluster holds no workload running {repository} for this release."
    for container in ours:
        if split_image(container.image)[2] != digest:
            return (
                f"The cluster's {container.workload} runs {container.image} (container "
                f"{container.container}), not @{digest}."
            )
        for image_id in container.image_ids:
            if _digest_of(image_id) not in (digest, ""):
                return (
                    f"A pod of {container.workload} runs {image_id} (container "
                    f"{container.container}), not @{digest}."
                )
    return None
