"""What a promotion or rollback will change, shown before it is requested: the image, what
the environment runs now, the releases in between, and the Helm values and rendered
manifests that will differ.

The values diff needs no external call (each rollout records the values it was deployed
with). Rendering manifests is a server-side dry run on the first wave's cluster, so a
worker does it (`releases.render_preview`) and the page polls for the result, kept a few
minutes in the cache: no web request waits on helm.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field

import yaml
from django.core.cache import cache

from portal.catalog.freezes import active_freeze, describe
from portal.catalog.models import DeploymentTarget, Environment, Freeze
from portal.core.errors import DoorError
from releases import dispatch
from releases.deploy_values import deployment_values
from releases.models import Deployment, Release, TargetRollout
from releases.promotion import (
    EnvironmentRuns,
    deployment_refusal,
    environment_current_deployment,
    environment_runs,
    target_last_change,
)

PREVIEW_SECONDS = 600
MAX_BETWEEN = 50


def merge_values(layers: list[dict]) -> dict:
    """Helm's merge of values files: later layers win, maps merge key by key."""
    merged: dict = {}
    for layer in layers:
        merged = _merge(merged, layer or {})
    return merged


def _merge(base: dict, over: dict) -> dict:
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = value
    return result


def _yaml(data) -> list[str]:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False).splitlines()


def unified_diff(
    before: list[str], after: list[str], before_name: str, after_name: str
) -> list[str]:
    return list(difflib.unified_diff(before, after, before_name, after_name, lineterm="", n=3))


@dataclass
class Preview:
    release: Release
    environment: Environment
    kind: str
    target: DeploymentTarget | None  # the first wave's: its values and manifests are shown
    current: Deployment | None
    refusal: str | None
    between: list[Release] = field(default_factory=list)
    values_diff: list[str] = field(default_factory=list)
    freeze: Freeze | None = None
    runs: EnvironmentRuns | None = None  # what each cluster runs now, in wave order

    @property
    def freeze_text(self) -> str:
        return describe(self.freeze) if self.freeze else ""

    @property
    def same_image(self) -> bool:
        return bool(self.current) and self.current.release.image == self.release.image

    @property
    def clusters(self) -> list[tuple[DeploymentTarget, TargetRollout | None]]:
        """With several clusters: each, in wave order, with what last changed there."""
        return self.runs.changes if self.runs and self.runs.several else []


def promotion_preview(*, release: Release, environment: Environment, kind: str) -> Preview:
    runs = environment_runs(service=release.service_id, environment=environment)
    first = runs.changes[0] if runs.changes else (None, None)
    target, last_there = first
    current = runs.current
    refusal = deployment_refusal(release=release, environment=environment, kind=kind)
    if target is None:
        refusal = f"{release.service.name} has no target in {environment.name}."
    between = []
    if current is not None and current.release_id != release.pk:
        low, high = sorted((current.release_id, release.pk))
        between = list(
            Release.objects.filter(service=release.service_id, pk__gt=low, pk__lt=high)
            .order_by("pk")
            .only("pk", "ref", "commit_sha", "status")[:MAX_BETWEEN]
        )
    values_diff = []
    if target is not None:
        new = merge_values(_values_for(release, target))
        old = merge_values(last_there.values) if last_there and last_there.values else {}
        values_diff = unified_diff(
            _yaml(old) if old else [],
            _yaml(new),
            f"{runs.where(target)} now (release #{last_there.deployment.release_id})"
            if last_there
            else "nothing",
            f"release #{release.pk}",
        )
    freeze = active_freeze(release.service, environment)
    return Preview(
        release, environment, kind, target, current, refusal, between, values_diff, freeze, runs
    )


def _values_for(release: Release, target: DeploymentTarget) -> list[dict]:
    return deployment_values(release, target)


# -- rendered manifests, by a worker --------------------------------------------------


def _key(release: Release, environment: Environment, current: Deployment | None) -> str:
    basis = json.dumps(
        [release.pk, environment.pk, current.pk if current else None], sort_keys=True
    )
    return "slipway:preview:" + hashlib.sha256(basis.encode()).hexdigest()[:24]


@dataclass
class ManifestDiff:
    ready: bool
    asked: bool = False  # a worker was asked to render it (poll for it)
    lines: list[str] = field(default_factory=list)
    error: str = ""


def manifest_diff(*, release: Release, environment: Environment) -> ManifestDiff:
    """The rendered manifests' diff as a worker stored it; reads only (a GET's)."""
    current = environment_current_deployment(service=release.service_id, environment=environment)
    key = _key(release, environment, current)
    found = cache.get(key)
    if found is not None:
        return ManifestDiff(True, True, found.get("lines", []), found.get("error", ""))
    return ManifestDiff(False, bool(cache.get(key + ":asked")))


def manifest_diff_request(*, release: Release, environment: Environment) -> ManifestDiff:
    """Ask a worker to render the diff (once per few minutes and what runs there)."""
    current = environment_current_deployment(service=release.service_id, environment=environment)
    key = _key(release, environment, current)
    if cache.get(key) is None and cache.add(key + ":asked", 1, PREVIEW_SECONDS):
        dispatch.render_preview(release.pk, environment.pk)
    return manifest_diff(release=release, environment=environment)


def hide_secret_values(manifest: dict) -> dict:
    """A Secret with each value replaced by a fingerprint: a chart may `lookup` a real
    Secret in the cluster, and the diff is shown on a page."""
    if manifest.get("kind") != "Secret":
        return manifest
    hidden = dict(manifest)
    for key in ("data", "stringData"):
        if isinstance(manifest.get(key), dict):
            hidden[key] = {
                name: "<hidden " + hashlib.sha256(str(value).encode()).hexdigest()[:12] + ">"
                for name, value in manifest[key].items()
            }
    return hidden


def render_preview(*, release: Release, environment: Environment, helm) -> dict:
    """Render the chart as it runs now and as it would with `release`; store the diff."""
    current = environment_current_deployment(service=release.service_id, environment=environment)
    target = (
        DeploymentTarget.objects.select_related("service")
        .filter(service=release.service_id, environment=environment)
        .order_by("wave", "id")
        .first()
    )
    service = target.service
    last_there = target_last_change(target)

    def render(values: list[dict]) -> list[str]:
        # The upgrade's own server-side dry run on the target cluster: its version, its
        # API groups, as promoting would apply. Secret values are fingerprints here.
        manifests = helm.render(
            release=target.helm_release_name,
            namespace=target.namespace,
            chart=service.chart,
            values=values,
            version=service.chart_version or None,
        )
        return [line for m in manifests for line in ["---", *_yaml(hide_secret_values(m))]]

    try:
        before = render(last_there.values) if last_there and last_there.values else []
        after = render(_values_for(release, target))
        result = {
            "lines": unified_diff(
                before,
                after,
                f"{environment.name} now"
                + (f" (release #{current.release_id})" if current else ""),
                f"release #{release.pk}",
            )
        }
    except DoorError as exc:
        result = {"error": f"Could not render the chart: {exc}"}
    cache.set(_key(release, environment, current), result, PREVIEW_SECONDS)
    return result
