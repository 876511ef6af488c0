"""Ending a deployment at one cluster: the clusters after it are skipped, and the reason
says what each cluster was left with (shared by the deploy steps and the canary steps)."""

from __future__ import annotations

from releases.choices import DeploymentStatus, RolloutStatus
from releases.models import Deployment, TargetRollout
from releases.rollouts import deployment_rollouts, rollout_end, rollouts_close, where_it_stands
from releases.transitions import Step, deployment_transition


def deployment_stop(
    deployment: Deployment, rollout: TargetRollout, status: str, reason: str, **fields
) -> Step:
    """End the deployment at this cluster: the rest are skipped, and the reason says what
    each cluster was left with."""
    rollout_end(rollout, status, reason=reason, **fields)
    several = len(deployment_rollouts(deployment)) > 1
    if several:
        reason = f"{rollout.target.cluster}: {reason}"
    rollouts_close(deployment, reason)
    stands = where_it_stands(deployment, release_pk=deployment.release_id)
    full = f"{reason}\n{stands}" if stands else reason
    to = (
        DeploymentStatus.ROLLED_BACK
        if status == RolloutStatus.ROLLED_BACK
        else DeploymentStatus.FAILED
    )
    deployment_transition(deployment=deployment, to=to, reason=full)
    return Step.DONE
