"""A lead's word on a deployment that stopped at a cluster: retry that cluster, or skip it
and go on with the clusters after it.

Either way the stopped deployment stays as it ended (history is never rewritten): a new
deployment of the same release goes on with the chosen clusters, in their waves, through
every check a deployment passes (path rule, freeze, gates, the environment's slot). It is
a lead's decision already, so it waits for no other approval. Both are audited on the
stopped deployment, with the lead's reason and the deployment that continues it.
"""

from __future__ import annotations

from django.db import transaction

from portal.access.choices import Role
from portal.access.permissions import has_role
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.core import sizes
from releases.actions import Engine
from releases.choices import DeploymentStatus, RolloutStatus
from releases.deployments import deployment_start
from releases.errors import Conflict, NotPermitted, ReleaseRefused
from releases.models import Deployment, TargetRollout
from releases.rollouts import deployment_rollouts

RETRY, SKIP = "retry", "skip"
# A cluster a lead may retry: its rollout failed, was rolled back, or was skipped.
RETRYABLE = (RolloutStatus.FAILED, RolloutStatus.ROLLED_BACK, RolloutStatus.SKIPPED)
STOPPED = (DeploymentStatus.FAILED, DeploymentStatus.ROLLED_BACK)


def _refusal(deployment: Deployment, user) -> ReleaseRefused | None:
    if not has_role(user, deployment.service, Role.LEAD):
        return NotPermitted(
            f"Only a lead of {deployment.service.team} may retry or skip a cluster."
        )
    if deployment.status not in STOPPED:
        return Conflict(
            f"Deployment #{deployment.pk} is {deployment.get_status_display().lower()}: only a "
            "deployment that stopped at a cluster can be retried or continued."
        )
    newer = (
        Deployment.objects.filter(
            service=deployment.service_id,
            environment=deployment.environment_id,
            pk__gt=deployment.pk,
        )
        .order_by("pk")
        .first()
    )
    if newer is not None:
        return Conflict(
            f"Deployment #{newer.pk} went to {deployment.environment.name} since: retry or "
            "skip from the latest deployment there."
        )
    return None


def _after(rollouts: list[TargetRollout], rollout: TargetRollout) -> list[TargetRollout]:
    """The clusters after this one that the stop left untouched."""
    return [r for r in rollouts if r.wave > rollout.wave and r.status == RolloutStatus.SKIPPED]


def wave_choices(*, deployment: Deployment, rollout: TargetRollout, user) -> tuple[bool, bool]:
    """(may retry, may skip) this cluster of this deployment, for the page's buttons."""
    if rollout.status not in RETRYABLE or _refusal(deployment, user) is not None:
        return False, False
    return True, bool(_after(deployment_rollouts(deployment), rollout))


def deployment_cluster_decide(
    *,
    deployment: Deployment,
    cluster: str,
    action: str,
    reason: str,
    user,
    actor: Actor,
    context: RequestContext | None = None,
) -> Deployment:
    """Retry `cluster` (and go on with the clusters after it), or skip it (go on with the
    ones after it). Returns the deployment that goes on."""
    refusal = _refusal(deployment, user)
    if refusal:
        raise refusal
    if action not in (RETRY, SKIP):
        raise ReleaseRefused(f"Unknown action {action!r}: retry or skip.")
    reason = reason.strip()[: sizes.LINE]
    if not reason:
        raise ReleaseRefused("Say why (it is recorded and audited).")
    rollouts = deployment_rollouts(deployment)
    rollout = next((r for r in rollouts if r.target.cluster.name == cluster), None)
    if rollout is None:
        names = ", ".join(r.target.cluster.name for r in rollouts)
        raise ReleaseRefused(f"Deployment #{deployment.pk} has no cluster {cluster!r} ({names}).")
    if rollout.status not in RETRYABLE:
        raise Conflict(
            f"{cluster} {rollout.get_status_display().lower()} in deployment #{deployment.pk}: "
            "only a cluster that failed or was skipped can be retried or skipped."
        )
    rest = _after(rollouts, rollout)
    go_on = ([rollout] if action == RETRY else []) + rest
    if not go_on:
        raise Conflict(
            f"No cluster comes after {cluster}: there is nothing to go on with. (Retry it, or "
            "leave it as it is.)"
        )
    with transaction.atomic():
        continued = deployment_start(
            release=deployment.release,
            environment=deployment.environment,
            actor=actor,
            user=user,
            kind=deployment.kind,
            context=context,
            targets=[r.target for r in go_on],
            continues=deployment,
        )
        audit_record(
            actor=actor,
            action=Engine.CLUSTER_RETRIED if action == RETRY else Engine.CLUSTER_SKIPPED,
            target=deployment,
            context=context,
            after={
                "cluster": cluster,
                "reason": reason,
                "continued_by": continued.pk,
                "clusters": [r.target.cluster.name for r in go_on],
            },
        )
    return continued
