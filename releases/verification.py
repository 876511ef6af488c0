"""Verify what runs: the image a deployment puts on the cluster is the release's digest.

Checked twice: in the manifests the chart renders before the upgrade (a chart that
renders `repository:tag` is refused before anything changes), and in what the cluster
runs after the rollout: the workloads' templates and their Ready pods (recorded on the
deployment). Drift checks read the pods the same way.
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
    """Why the rendered chart does not pin the release's digest, or None when it does (or
    renders no container at all: a chart without workload has nothing to pin)."""
    if not containers:
        return None
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
    """Why what the cluster runs is not the release's digest, or None when it is: each
    workload template's image, and each Ready pod's image and (where the node reports one
    by digest) imageID, so a pod a webhook rewrote or a node pulled otherwise is caught."""
    ours = _ours(containers, repository)
    if not ours:
        return f"The cluster holds no workload running {repository} for this release."
    for container in ours:
        if split_image(container.image)[2] != digest:
            return (
                f"The cluster's {container.workload} runs {container.image} (container "
                f"{container.container}), not @{digest}."
            )
        for pod in container.pods:
            if split_image(pod.image)[2] != digest:
                return (
                    f"Pod {pod.pod} of {container.workload} runs {pod.image} (container "
                    f"{container.container}), not @{digest}."
                )
            if "@" in pod.image_id and _digest_of(pod.image_id) != digest:
                return (
                    f"Pod {pod.pod} of {container.workload} reports imageID {pod.image_id} "
                    f"(container {container.container}), not @{digest}."
                )
    return None


def pods_off_digest(containers: list[ContainerImage], repository: str, digest: str) -> list[str]:
    """The Ready pods of the service's containers that run anything but `digest`, as
    `pod (container): image`."""
    found = []
    for container in containers:
        refs = [container.image, *(p.image for p in container.pods)]
        if not any(split_image(ref)[0] == repository for ref in refs):
            continue
        for pod in container.pods:
            pulled = _digest_of(pod.image_id) if "@" in pod.image_id else digest
            if split_image(pod.image)[2] != digest or pulled != digest:
                found.append(f"{pod.pod} ({container.container}): {pod.image_id or pod.image}")
    return sorted(found)
