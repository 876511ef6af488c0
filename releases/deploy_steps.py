"""The steps of a running deployment (run by the `releases.deploy` task): check the path
rule again, recover a stuck Helm release, verify the rendered image, `helm upgrade`, watch
the rollout, verify what the cluster runs.

Each Helm revision Slipway makes carries its deployment's marker in its description, so a
retried or resumed step finds the revision it already made instead of upgrading twice.
The steps take their adapters as arguments, so a test can hand them in-memory stand-ins.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from clusters.access import cluster_helm, cluster_watcher
from clusters.errors import HelmFailed
from clusters.helm import Helm, Ownership, helm_deadline_seconds
from clusters.rollout import REQUEST_TIMEOUT_SECONDS, RolloutWatcher
from doors.registry import image_check
from portal.audit.chain import audit_record
from portal.catalog.environment_config import variable_values
from portal.catalog.freezes import active_freeze, describe
from portal.catalog.registries import registry_access
from portal.catalog.targets import OWNER_LABEL, owner_value, release_key, target_refusal
from portal.core.images import is_digest, render_image_values, tag_for
from releases.actions import Engine
from releases.choices import DeploymentStatus
from releases.models import Deployment
from releases.promotion import deployment_refusal
from releases.transitions import (
    WORKER,
    Step,
    deployment_fail,
    deployment_note_progress,
    deployment_transition,
    lease_keeper,
)
from releases.verification import cluster_refusal, manifest_containers, rendered_refusal


def helm_for(deployment: Deployment) -> Helm:
    """Helm for the deployment's cluster; each helm run is covered by the run's lease (helm
    is stopped at its deadline, so the lease outlasts it)."""
    lease = helm_deadline_seconds(settings.SLIPWAY_HELM_TIMEOUT_SECONDS) + 2
    return cluster_helm(deployment.target.cluster, lease_keeper(deployment, lease))


def rollout_watcher_for(deployment: Deployment) -> RolloutWatcher:
    return cluster_watcher(
        deployment.target.cluster, lease_keeper(deployment, REQUEST_TIMEOUT_SECONDS + 2)
    )


def deployment_values(deployment: Deployment, *, reveal_secrets: bool = False) -> list[dict]:
    """Helm values, later ones winning: the service's defaults, the environment's target
    values, the environment's variables, then the image by digest, placed where the
    service's image values say. Secret variables are fingerprints unless `reveal_secrets`
    (only for helm itself: what Slipway records and shows never holds them)."""
    release, service = deployment.release, deployment.service
    if not is_digest(release.image_digest):
        raise HelmFailed(
            f"refusing to deploy without a sha256 digest (got {release.image_digest!r})"
        )
    return [
        service.default_values or {},
        deployment.target.values or {},
        variable_values(deployment.target, reveal=reveal_secrets),
        render_image_values(
            service.image_values,
            repository=release.image_repository,
            digest=release.image_digest,
            tag=tag_for(release.ref),
        ),
    ]


def marker(deployment: Deployment) -> str:
    return f"slipway deployment {deployment.pk}"


def deployment_step(*, deployment: Deployment, helm: Helm, watcher: RolloutWatcher) -> Step:
    """Do the one step the deployment's status calls for."""
    step = {
        DeploymentStatus.PENDING: _step_prepare,
        DeploymentStatus.DEPLOYING: _step_upgrade,
        DeploymentStatus.ROLLING_OUT: _step_watch,
    }.get(deployment.status)
    return step(deployment, helm, watcher) if step else Step.DONE


def _recover(deployment: Deployment, helm: Helm, older_than: timezone.timedelta) -> None:
    target = deployment.target
    recovery = helm.recover_stuck(
        release=target.helm_release_name, namespace=target.namespace, older_than=older_than
    )
    if recovery:
        audit_record(
            actor=WORKER,
            action=Engine.HELM_RECOVERED,
            target=deployment,
            after={
                "action": recovery.action,
                "from_revision": recovery.from_revision,
                "from_status": recovery.from_status,
                "to_revision": recovery.to_revision,
            },
        )


def ownership_refusal(deployment: Deployment, helm: Helm) -> str | None:
    """Why the target may not touch its Helm release: another target owns it, or it was
    installed outside Slipway and no platform admin adopted it."""
    target = deployment.target
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
        f"{deployment.service} in {deployment.environment} (team page), audited."
    )


def _step_prepare(deployment: Deployment, helm: Helm, watcher: RolloutWatcher) -> Step:
    # The environment before may have moved on since the request was made or approved.
    refusal = deployment_refusal(
        release=deployment.release, environment=deployment.environment, kind=deployment.kind
    )
    freeze = active_freeze(deployment.service, deployment.environment)
    if refusal is None and freeze is not None and deployment.freeze_override is None:
        refusal = f"{describe(freeze)}. A lead may override it with a reason."
    # Grants may have been narrowed since the target was saved; the release may have an
    # owner other than this target.
    refusal = refusal or target_refusal(deployment.target) or ownership_refusal(deployment, helm)
    if refusal:
        deployment_fail(deployment=deployment, reason=f"Refused when starting: {refusal}")
        return Step.DONE
    registry = deployment.service.registry
    if registry is not None:
        # Raises: missing → the deployment fails with the reason; no answer → retried.
        image_check(
            registry=registry_access(registry),
            image_repository=deployment.release.image_repository,
            digest=deployment.release.image_digest,
        )
    target = deployment.target
    _recover(deployment, helm, timezone.timedelta(seconds=settings.SLIPWAY_HELM_STUCK_SECONDS))
    current = helm.current(target.helm_release_name, target.namespace)
    previous = current.revision if current and current.deployed else None
    deployment_transition(
        deployment=deployment,
        to=DeploymentStatus.DEPLOYING,
        previous_revision=previous,
        started_at=timezone.now(),
    )
    return Step.NEXT


def _step_upgrade(deployment: Deployment, helm: Helm, watcher: RolloutWatcher) -> Step:
    target, release, service = deployment.target, deployment.release, deployment.service
    values = deployment_values(deployment)
    sent = deployment_values(deployment, reveal_secrets=True)
    made = helm.find_revision(target.helm_release_name, target.namespace, marker(deployment))
    if made is not None and made.pending:
        # Our own earlier helm run was killed mid-way: clear it, then upgrade again.
        _recover(deployment, helm, timezone.timedelta(0))
        made = None
    if made is None:
        # Rendered by the target cluster (its version, its API groups): what the upgrade
        # below applies, checked before anything changes.
        manifests = helm.render(
            release=target.helm_release_name,
            namespace=target.namespace,
            chart=service.chart,
            values=sent,
            version=service.chart_version or None,
        )
        refusal = rendered_refusal(
            manifest_containers(manifests), release.image_repository, release.image_digest
        )
        if refusal:
            deployment_fail(deployment=deployment, reason=refusal)
            return Step.DONE
        made = helm.upgrade(
            release=target.helm_release_name,
            namespace=target.namespace,
            chart=service.chart,
            values=sent,
            description=f"{marker(deployment)}: release #{release.pk} {release.image}",
            version=service.chart_version or None,
            labels={OWNER_LABEL: owner_value(target)},
        )
    deployment_transition(
        deployment=deployment,
        to=DeploymentStatus.ROLLING_OUT,
        helm_revision=made.revision,
        values=values,
    )
    return Step.NEXT


def _step_watch(deployment: Deployment, helm: Helm, watcher: RolloutWatcher) -> Step:
    target, release = deployment.target, deployment.release
    deadline = deployment.started_at + timezone.timedelta(
        seconds=deployment.environment.rollout_timeout_seconds
    )
    budget = max(
        0.0,
        min(settings.SLIPWAY_WATCH_BUDGET_SECONDS, (deadline - timezone.now()).total_seconds()),
    )
    # Silent on purpose while watching: the lease covers the budget and one more request.
    lease = budget + REQUEST_TIMEOUT_SECONDS + 2
    deployment_note_progress(deployment=deployment, progress=deployment.progress, lease=lease)
    progress = watcher.watch(
        target.namespace,
        target.helm_release_name,
        budget,
        on_progress=lambda p: deployment_note_progress(
            deployment=deployment, progress=p.as_dict(), lease=lease
        ),
    )
    deployment_note_progress(deployment=deployment, progress=progress.as_dict())
    if progress.complete and progress.no_workload:
        # Nothing runs a container: helm applying the chart is the whole deployment (the
        # progress's summary says so on the pages and in the API).
        deployment_transition(
            deployment=deployment, to=DeploymentStatus.SUCCEEDED, verified_images=[]
        )
        return Step.DONE
    if progress.complete:
        images = watcher.images(target.namespace, target.helm_release_name)
        refusal = cluster_refusal(images, release.image_repository, release.image_digest)
        if refusal:
            return _rollout_failed(deployment, helm, f"Verification failed: {refusal}")
        deployment_transition(
            deployment=deployment,
            to=DeploymentStatus.SUCCEEDED,
            verified_images=[image.as_dict() for image in images],
        )
        return Step.DONE
    if progress.failed:
        reason = f"Rollout failed.\n{progress.failure_reason()}"
    elif timezone.now() >= deadline:
        reason = (
            f"Rollout not finished after {deployment.environment.rollout_timeout_seconds}"
            f" s: {progress.summary()}"
        )
    else:
        return Step.NEXT  # budget spent, deadline not reached: watch again
    return _rollout_failed(deployment, helm, reason)


def _rollout_failed(deployment: Deployment, helm: Helm, reason: str) -> Step:
    target = deployment.target
    if deployment.environment.auto_rollback and deployment.previous_revision:
        try:
            made = helm.rollback(
                release=target.helm_release_name,
                namespace=target.namespace,
                revision=deployment.previous_revision,
            )
        except HelmFailed as exc:
            deployment_fail(
                deployment=deployment, reason=f"{reason}\nAutomatic rollback failed too: {exc}"
            )
            return Step.DONE
        deployment_transition(
            deployment=deployment,
            to=DeploymentStatus.ROLLED_BACK,
            rolled_back_to_revision=made.revision,
            reason=f"{reason}\nRolled back to revision {deployment.previous_revision} "
            f"(now revision {made.revision}).",
        )
        return Step.DONE
    deployment_fail(deployment=deployment, reason=reason)
    return Step.DONE
