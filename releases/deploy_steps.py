"""The steps of a running deployment (run by the `releases.deploy` task): check the path
rule again, then for each of its targets (clusters), wave after wave: recover a stuck Helm
release, render on that cluster and verify the image, `helm upgrade`, watch the rollout,
verify what the pods run; stop at the first cluster that fails (the rest are skipped).

Each Helm revision Slipway makes carries its deployment's marker in its description, so a
retried or resumed step finds the revision it already made instead of upgrading twice.
The steps take their adapters through `clusters` (helm and the watcher for a target), so
a test can hand them in-memory stand-ins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clusters.access import cluster_helm, cluster_watcher
from clusters.errors import HelmFailed
from clusters.helm import Helm, helm_deadline_seconds
from clusters.rollout import REQUEST_TIMEOUT_SECONDS, RolloutWatcher
from doors.registry import image_check
from portal.audit.chain import audit_record
from portal.catalog.freezes import active_freeze, describe
from portal.catalog.models import DeploymentTarget
from portal.catalog.registries import registry_access
from portal.catalog.targets import OWNER_LABEL, owner_value, target_refusal
from releases import canary
from releases.actions import Engine
from releases.choices import DEPLOYMENT_WATCHING, DeploymentStatus, RolloutStatus
from releases.deploy_values import deployment_values
from releases.models import Deployment, TargetRollout
from releases.ownership import ownership_refusal
from releases.promotion import deployment_refusal
from releases.rollouts import (
    cluster_label,
    deployment_rollouts,
    rollout_begin,
    rollout_end,
    rollout_next,
    rollout_under_way,
    rollout_update,
)
from releases.stopping import deployment_stop
from releases.transitions import (
    WORKER,
    Step,
    deployment_fail,
    deployment_note_progress,
    deployment_transition,
    lease_keeper,
)
from releases.verification import cluster_refusal, manifest_containers, rendered_refusal
from releases.verifying import verification_begin

# While a wave bakes, how often the run looks at the clock again.
BAKE_POLL_SECONDS = 5


def wait_seconds(deployment: Deployment) -> float:
    """How long a step that waits (Step.WAIT) sleeps before the next look."""
    if deployment.status == DeploymentStatus.CANARY:
        return canary.CANARY_POLL_SECONDS
    return BAKE_POLL_SECONDS


class Clusters(Protocol):
    """Helm and the rollout watcher for one target's cluster."""

    def helm(self, target: DeploymentTarget) -> Helm: ...

    def watcher(self, target: DeploymentTarget) -> RolloutWatcher: ...


@dataclass
class LiveClusters:
    """The real adapters, each call covered by the deployment's lease (helm is stopped at
    its deadline, so the lease outlasts it)."""

    deployment: Deployment

    helms: dict[int, Helm] = field(default_factory=dict)

    def helm(self, target: DeploymentTarget) -> Helm:
        """One Helm per target for this run: the upgrade uses what the checks before it
        have just read (the release's newest revision)."""
        if target.pk not in self.helms:
            lease = helm_deadline_seconds(settings.SLIPWAY_HELM_TIMEOUT_SECONDS) + 2
            self.helms[target.pk] = cluster_helm(
                target.cluster, lease_keeper(self.deployment, lease)
            )
        return self.helms[target.pk]

    def watcher(self, target: DeploymentTarget) -> RolloutWatcher:
        return cluster_watcher(
            target.cluster, lease_keeper(self.deployment, REQUEST_TIMEOUT_SECONDS + 2)
        )


def marker(deployment: Deployment) -> str:
    return f"slipway deployment {deployment.pk}"


def deployment_step(*, deployment: Deployment, clusters: Clusters) -> Step:
    """Do the one step the deployment's status calls for."""
    step = {
        DeploymentStatus.PENDING: _step_prepare,
        DeploymentStatus.DEPLOYING: _step_upgrade,
        DeploymentStatus.ROLLING_OUT: _step_watch,
        DeploymentStatus.CANARY: lambda d, c: canary.canary_step(d, c.helm, c.watcher),
    }.get(deployment.status)
    return step(deployment, clusters) if step else Step.DONE


def deployment_steps(*, deployment: Deployment, clusters: Clusters) -> Step:
    """The step the deployment's status calls for, and the next while it is helm's work
    too: its checks, then its upgrade, in one run. A deployment takes a helm slot once, in
    the order its build ended, instead of going to the back of the queue between its
    checks and its upgrade (50 releases at once: the upgrade step started 28 s after the
    build's end at the median, behind every other deployment's checks)."""
    on_helm_pool = deployment.status not in DEPLOYMENT_WATCHING
    token = deployment.run_token
    while True:
        step = deployment_step(deployment=deployment, clusters=clusters)
        if step is not Step.NEXT or not on_helm_pool:
            return step
        deployment.refresh_from_db()
        if deployment.run_token != token:
            return Step.DONE  # resumed or cancelled meanwhile: the newer run goes on
        if deployment.status in DEPLOYMENT_WATCHING:
            return step  # watching, on the rollouts queue


def _recover(
    deployment: Deployment,
    rollout: TargetRollout,
    helm: Helm,
    older_than: timezone.timedelta,
    history: list | None = None,
) -> bool:
    """Clear a release helm left pending; whether anything was done (the history read
    before is then out of date)."""
    target = rollout.target
    recovery = helm.recover_stuck(
        release=target.helm_release_name, namespace=target.namespace, older_than=older_than,
        history=history,
    )  # fmt: skip
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
                **cluster_label(rollout),
            },
        )
    return recovery is not None


def _step_prepare(deployment: Deployment, clusters: Clusters) -> Step:
    # The environment before may have moved on since the request was made or approved.
    refusal = deployment_refusal(
        release=deployment.release, environment=deployment.environment, kind=deployment.kind
    )
    freeze = active_freeze(deployment.service, deployment.environment)
    if refusal is None and freeze is not None and deployment.freeze_override is None:
        refusal = f"{describe(freeze)}. A lead may override it with a reason."
    rollouts = deployment_rollouts(deployment)
    # Every cluster is checked before any is touched: grants may have been narrowed since
    # a target was saved; a release may have an owner other than its target.
    for rollout in rollouts:
        target = rollout.target
        refusal = (
            refusal or target_refusal(target) or ownership_refusal(target, clusters.helm(target))
        )
    if refusal or not rollouts:
        deployment_fail(
            deployment=deployment,
            reason=f"Refused when starting: {refusal or 'it has no target to deploy to.'}",
        )
        return Step.DONE
    registry = deployment.service.registry
    if registry is not None:
        # Raises: missing → the deployment fails with the reason; no answer → retried.
        image_check(
            registry=registry_access(registry),
            image_repository=deployment.release.image_repository,
            digest=deployment.release.image_digest,
        )
    first = rollouts[0]
    rollout_begin(first)
    deployment_transition(
        deployment=deployment,
        to=DeploymentStatus.DEPLOYING,
        started_at=timezone.now(),
        note=_waves_note(rollouts, first),
    )
    return Step.NEXT


def _waves_note(rollouts: list[TargetRollout], current: TargetRollout) -> dict | None:
    """What an audit event of a deployment over several clusters says of its wave."""
    if len(rollouts) < 2:
        return None
    return {**cluster_label(current), "waves": len(rollouts)}


def _step_upgrade(deployment: Deployment, clusters: Clusters) -> Step:
    rollout = rollout_under_way(deployment)
    if rollout is None:
        deployment_fail(deployment=deployment, reason="No cluster's rollout is under way.")
        return Step.DONE
    if rollout.not_before and timezone.now() < rollout.not_before:
        wait = (rollout.not_before - timezone.now()).total_seconds()
        deployment_note_progress(
            deployment=deployment,
            progress={
                "summary": f"Baking: {rollout.target.cluster} gets the release at "
                f"{timezone.localtime(rollout.not_before):%H:%M:%S} (in {wait:.0f} s)",
                **cluster_label(rollout),
            },
            lease=min(wait, BAKE_POLL_SECONDS) + REQUEST_TIMEOUT_SECONDS,
        )
        return Step.WAIT
    target, release, service = rollout.target, deployment.release, deployment.service
    helm = clusters.helm(target)
    # One read of helm's history serves the three questions before an upgrade: is a
    # revision left pending (helm killed), which revision runs now (to roll back to), did
    # an earlier run of this step already make ours (a worker lost after helm ran).
    # A first attempt right after its checks needs no helm run for it: the ownership
    # check has just listed the release's newest revision (or its absence).
    history = (
        helm.history_as_listed(target.helm_release_name, target.namespace)
        if rollout.started_at is None
        else None
    )
    if history is None:
        history = helm.history_or_empty(target.helm_release_name, target.namespace)
    if rollout.started_at is None:
        stuck = timezone.timedelta(seconds=settings.SLIPWAY_HELM_STUCK_SECONDS)
        if _recover(deployment, rollout, helm, stuck, history):
            history = helm.history_or_empty(target.helm_release_name, target.namespace)
        current = history[-1] if history else None
        rollout_update(
            rollout,
            previous_revision=current.revision if current and current.deployed else None,
            started_at=timezone.now(),
        )
    if canary.wanted(deployment, rollout):
        return canary.canary_start(deployment, rollout, helm)
    values = deployment_values(release, target)
    sent = deployment_values(release, target, reveal_secrets=True)
    made = helm.find_revision(
        target.helm_release_name, target.namespace, marker(deployment), history=history
    )
    if made is not None and made.pending:
        # Our own earlier helm run was killed mid-way: clear it, then upgrade again.
        _recover(deployment, rollout, helm, timezone.timedelta(0))
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
            return deployment_stop(deployment, rollout, RolloutStatus.FAILED, refusal)
        made = helm.upgrade(
            release=target.helm_release_name,
            namespace=target.namespace,
            chart=service.chart,
            values=sent,
            description=f"{marker(deployment)}: release #{release.pk} {release.image}",
            version=service.chart_version or None,
            labels={OWNER_LABEL: owner_value(target)},
        )
    rollout_update(
        rollout, status=RolloutStatus.ROLLING_OUT, helm_revision=made.revision, values=values
    )
    deployment_transition(
        deployment=deployment,
        to=DeploymentStatus.ROLLING_OUT,
        note={
            "helm_revision": made.revision,
            **(_waves_note(deployment_rollouts(deployment), rollout) or {}),
        },
    )
    return Step.NEXT


def _step_watch(deployment: Deployment, clusters: Clusters) -> Step:
    rollout = rollout_under_way(deployment)
    if rollout is None:
        deployment_fail(deployment=deployment, reason="No cluster's rollout is under way.")
        return Step.DONE
    target, release = rollout.target, deployment.release
    timeout = deployment.environment.rollout_timeout_seconds
    deadline = (rollout.started_at or deployment.started_at) + timezone.timedelta(seconds=timeout)
    budget = max(
        0.0,
        min(settings.SLIPWAY_WATCH_BUDGET_SECONDS, (deadline - timezone.now()).total_seconds()),
    )
    # Silent on purpose while watching: the lease covers the budget and one more request.
    lease = budget + REQUEST_TIMEOUT_SECONDS + 2
    deployment_note_progress(deployment=deployment, progress=deployment.progress, lease=lease)
    label = cluster_label(rollout) if len(deployment_rollouts(deployment)) > 1 else {}
    watcher = clusters.watcher(target)
    progress = watcher.watch(
        target.namespace,
        target.helm_release_name,
        budget,
        on_progress=lambda p: deployment_note_progress(
            deployment=deployment, progress=p.as_dict() | label, lease=lease
        ),
    )
    seen = progress.as_dict() | label
    deployment_note_progress(deployment=deployment, progress=seen)
    if progress.complete and progress.no_workload:
        # Nothing runs a container: helm applying the chart is the whole rollout (the
        # progress's summary says so on the pages and in the API).
        rollout_end(rollout, RolloutStatus.SUCCEEDED, progress=seen, verified_images=[])
        return _next_wave(deployment, rollout)
    if progress.complete:
        images = watcher.images(target.namespace, target.helm_release_name)
        refusal = cluster_refusal(images, release.image_repository, release.image_digest)
        if refusal:
            return _rollout_failed(deployment, rollout, clusters, f"Verification failed: {refusal}")
        canary.canary_remove(deployment, rollout, clusters.helm(target))
        rollout_end(
            rollout,
            RolloutStatus.SUCCEEDED,
            progress=seen,
            verified_images=[image.as_dict() for image in images],
        )
        return _next_wave(deployment, rollout)
    if progress.failed:
        reason = f"Rollout failed.\n{progress.failure_reason()}"
    elif timezone.now() >= deadline:
        reason = f"Rollout not finished after {timeout} s: {progress.summary()}"
    else:
        return Step.NEXT  # budget spent, deadline not reached: watch again
    rollout_update(rollout, progress=seen)
    return _rollout_failed(deployment, rollout, clusters, reason)


def _next_wave(deployment: Deployment, done: TargetRollout) -> Step:
    """A cluster rolled out: the next one's wave comes (after the bake time), or the
    deployment succeeded everywhere."""
    following = rollout_next(deployment)
    rollouts = deployment_rollouts(deployment)
    if len(rollouts) > 1:
        audit_record(
            actor=WORKER,
            action=Engine.CLUSTER_ROLLED_OUT,
            target=deployment,
            after={**cluster_label(done), "helm_revision": done.helm_revision},
        )
    if following is None:
        with transaction.atomic():  # a success and its verification run, or neither
            if deployment_transition(deployment=deployment, to=DeploymentStatus.SUCCEEDED):
                verification_begin(deployment)
        return Step.DONE
    rollout_begin(following, bake_seconds=deployment.environment.bake_seconds)
    deployment_transition(
        deployment=deployment,
        to=DeploymentStatus.DEPLOYING,
        note=_waves_note(rollouts, following),
    )
    return Step.NEXT


def _rollout_failed(
    deployment: Deployment, rollout: TargetRollout, clusters: Clusters, reason: str
) -> Step:
    target = rollout.target
    # A promoted canary held all the traffic while the stable release was upgraded: it goes
    # (weight 0, removed) whatever becomes of the stable release.
    reason = canary.canary_discard(deployment, rollout, clusters.helm(target), reason)
    if deployment.environment.auto_rollback and rollout.previous_revision:
        try:
            made = clusters.helm(target).rollback(
                release=target.helm_release_name,
                namespace=target.namespace,
                revision=rollout.previous_revision,
            )
        except HelmFailed as exc:
            return deployment_stop(
                deployment,
                rollout,
                RolloutStatus.FAILED,
                f"{reason}\nAutomatic rollback failed too: {exc}",
            )
        return deployment_stop(
            deployment,
            rollout,
            RolloutStatus.ROLLED_BACK,
            f"{reason}\nRolled back to revision {rollout.previous_revision} "
            f"(now revision {made.revision}).",
            rolled_back_to_revision=made.revision,
        )
    return deployment_stop(deployment, rollout, RolloutStatus.FAILED, reason)
