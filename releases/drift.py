"""Drift: what a target's cluster runs that Slipway did not deploy (someone ran `helm` or
`kubectl` by hand, a webhook rewrote a pod). A periodic check compares the Helm release's
revision, the images of its workloads and what their Ready pods run with Slipway's own
record; a difference is stored on the target, shown on the pages and in the API, and
audited once per change (not on every check).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from clusters.helm import Helm
from clusters.rollout import RolloutWatcher
from portal.audit.chain import audit_record
from portal.catalog.models import DeploymentTarget
from portal.core.images import split_image
from releases.actions import Engine
from releases.choices import DEPLOYMENT_RUNNING
from releases.models import Deployment, TargetRollout
from releases.promotion import target_last_change
from releases.transitions import WORKER
from releases.verification import pods_off_digest

# How many pods a drift summary names.
PODS_SHOWN = 5


def _expected_revision(target: DeploymentTarget) -> int | None:
    """The newest Helm revision Slipway made for this target (upgrade or rollback)."""
    return (
        TargetRollout.objects.filter(target=target).aggregate(
            made=Max(
                Greatest(
                    Coalesce("helm_revision", 0),
                    Coalesce("rolled_back_to_revision", 0),
                )
            )
        )["made"]
        or None
    )


def _observed(target: DeploymentTarget, helm: Helm, watcher: RolloutWatcher) -> dict | None:
    """What differs between the cluster and Slipway's record, or None when nothing does."""
    name, namespace = target.helm_release_name, target.namespace
    current = helm.current(name, namespace)
    expected_revision = _expected_revision(target)
    last = target_last_change(target)
    expected_image = last.deployment.image if last else ""
    repository = target.service.image_repository
    containers = watcher.images(namespace, name)
    # The templates and their Ready pods: `kubectl set image` changes both, a mutating
    # webhook only the pods.
    images = sorted(
        {
            ref
            for container in containers
            for ref in [container.image, *(pod.image for pod in container.pods)]
            if split_image(ref)[0] == repository
        }
    )
    pods = (
        pods_off_digest(containers, repository, split_image(expected_image)[2])
        if expected_image
        else []
    )
    revision = current.revision if current else None
    differences = []
    if revision != expected_revision:
        differences.append(
            f"Helm release {name} is at revision {revision or 'none'}; Slipway's last is "
            f"{expected_revision or 'none'}"
        )
    if expected_image and (images != [expected_image] or pods):
        shown = "; pods " + ", ".join(pods[:PODS_SHOWN]) if pods else ""
        differences.append(
            f"the cluster runs {', '.join(images) or 'no image of the service'}{shown}; "
            f"Slipway deployed {expected_image}"
        )
    if not differences:
        return None
    return {
        "helm_revision": revision,
        "expected_revision": expected_revision,
        "images": images,
        "expected_image": expected_image,
        "pods": pods,
        "summary": "; ".join(differences) + ".",
    }


def _same(old: dict | None, new: dict | None) -> bool:
    strip = lambda d: {k: v for k, v in (d or {}).items() if k != "since"}  # noqa: E731
    return (old is None) == (new is None) and strip(old) == strip(new)


def target_check_drift(
    *, target: DeploymentTarget, helm: Helm, watcher: RolloutWatcher
) -> dict | None:
    """Compare, record and (on a change) audit the target's drift; returns it."""
    if Deployment.objects.filter(
        service=target.service_id, environment=target.environment_id, status__in=DEPLOYMENT_RUNNING
    ).exists():
        return target.drift  # a deployment is moving the revision right now
    drift = _observed(target, helm, watcher)
    now = timezone.now()
    with transaction.atomic():
        locked = DeploymentTarget.objects.select_for_update().get(pk=target.pk)
        changed = not _same(locked.drift, drift)
        if drift is not None:
            drift["since"] = (locked.drift or {}).get("since") if not changed else now.isoformat()
        DeploymentTarget.objects.filter(pk=target.pk).update(drift=drift, drift_checked_at=now)
        if changed:
            audit_record(
                actor=WORKER,
                action=Engine.DRIFT_DETECTED if drift else Engine.DRIFT_RESOLVED,
                target=locked,
                before=locked.drift,
                after=drift,
            )
    target.drift, target.drift_checked_at = drift, now
    return drift
