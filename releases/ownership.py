"""Whose a Helm release is: a target touches only the release it owns (its label on the
release), or one a platform admin let it adopt (see portal/catalog/targets.py)."""

from __future__ import annotations

from clusters.helm import Helm, Ownership
from portal.catalog.models import DeploymentTarget
from portal.catalog.targets import OWNER_LABEL, owner_value, release_key


def ownership_refusal(target: DeploymentTarget, helm: Helm) -> str | None:
    """Why the target may not touch its Helm release: another target owns it, or it was
    installed outside Slipway and no platform admin adopted it."""
    state = helm.ownership(
        target.helm_release_name, target.namespace, label=OWNER_LABEL, owner=owner_value(target)
    )
    if state in (Ownership.OURS, Ownership.ABSENT):
        return None
    if target.adopted_release == release_key(target):
        return None  # a platform admin took it over for this target (audited)
    where = (
        f"Helm release {target.helm_release_name} in namespace {target.namespace} on cluster "
        f"{target.cluster}"
    )
    if state == Ownership.OTHER:
        return (
            f"{where} belongs to another Slipway target: a target never upgrades, rolls back "
            "or uninstalls a release it does not own. (If that target is gone, a platform "
            "admin may adopt the release for this one.)"
        )
    return (
        f"{where} exists but Slipway did not install it; a platform admin may adopt it for "
        f"{target.service} in {target.environment} (team page), audited."
    )
