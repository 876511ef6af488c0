"""A deployment's rollouts, one per target (cluster), in waves: which one is under way,
starting and ending one, and what a stopped deployment left where.

A deployment moves one rollout at a time, lowest wave first. The rollouts are the
record of what each cluster was given; the deployment's own status and audit events say
where the whole is (releases/transitions.py closes what is still open when it ends).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from releases.choices import ROLLOUT_DONE, RolloutStatus
from releases.live import live_deployment_detail
from releases.models import Deployment, TargetRollout

UNDER_WAY = (RolloutStatus.DEPLOYING, RolloutStatus.ROLLING_OUT, RolloutStatus.CANARY)


def deployment_rollouts(deployment: Deployment) -> list[TargetRollout]:
    """Its rollouts in wave order, each with its target and cluster."""
    return list(
        TargetRollout.objects.select_related("target__cluster")
        .filter(deployment=deployment)
        .order_by("wave", "id")
    )


def rollout_under_way(deployment: Deployment) -> TargetRollout | None:
    """The rollout being deployed or watched now (at most one)."""
    return next((r for r in deployment_rollouts(deployment) if r.status in UNDER_WAY), None)


def rollout_next(deployment: Deployment) -> TargetRollout | None:
    """The first rollout still waiting for its wave."""
    return next(
        (r for r in deployment_rollouts(deployment) if r.status == RolloutStatus.WAITING), None
    )


def rollout_update(rollout: TargetRollout, **fields) -> None:
    """Write `fields` to the rollout's row, and to the object in hand."""
    TargetRollout.objects.filter(pk=rollout.pk).update(**fields)
    for key, value in fields.items():
        setattr(rollout, key, value)
    live_deployment_detail(deployment_id=rollout.deployment_id)


def rollout_begin(rollout: TargetRollout, *, bake_seconds: int = 0) -> None:
    """Its wave has come: Helm may upgrade its cluster (after the bake time, if any)."""
    not_before = timezone.now() + timezone.timedelta(seconds=bake_seconds) if bake_seconds else None
    rollout_update(rollout, status=RolloutStatus.DEPLOYING, not_before=not_before)


def rollout_end(rollout: TargetRollout, status: str, *, reason: str = "", **fields) -> None:
    rollout_update(
        rollout, status=status, status_reason=reason, finished_at=timezone.now(), **fields
    )


def rollouts_close(deployment: Deployment, reason: str) -> None:
    """The deployment ended: what was under way failed with it, what waited is skipped."""
    open_rollouts: QuerySet[TargetRollout] = TargetRollout.objects.filter(
        deployment=deployment
    ).exclude(status__in=ROLLOUT_DONE)
    now = timezone.now()
    open_rollouts.filter(status__in=UNDER_WAY).update(
        status=RolloutStatus.FAILED, status_reason=reason, finished_at=now
    )
    open_rollouts.filter(status=RolloutStatus.WAITING).update(
        status=RolloutStatus.SKIPPED, status_reason="Not deployed: the deployment stopped."
    )


def where_it_stands(deployment: Deployment, *, release_pk: int) -> str:
    """For a deployment over several clusters that stopped: what each cluster was left
    with (`cluster-a runs release #7 (wave 1); cluster-c skipped`)."""
    rollouts = deployment_rollouts(deployment)
    if len(rollouts) < 2:
        return ""
    lines = []
    for rollout in rollouts:
        name = rollout.target.cluster.name
        if rollout.status == RolloutStatus.SUCCEEDED:
            lines.append(f"{name} runs release #{release_pk} (wave {rollout.wave})")
        elif rollout.status == RolloutStatus.SKIPPED:
            lines.append(f"{name} skipped: not deployed")
        elif rollout.status == RolloutStatus.ROLLED_BACK:
            before = _ran_before(rollout)
            lines.append(
                f"{name} rolled back: runs release #{before} again"
                if before
                else f"{name} rolled back to what it ran before"
            )
        elif rollout.status == RolloutStatus.FAILED:
            lines.append(f"{name} failed")
    return "; ".join(lines) + "."


def _ran_before(rollout: TargetRollout) -> int | None:
    """The release this rollout's target ran before its deployment (a rollback restores
    it), if Slipway put it there."""
    return (
        TargetRollout.objects.filter(
            target=rollout.target_id,
            status=RolloutStatus.SUCCEEDED,
            deployment__pk__lt=rollout.deployment_id,
        )
        .order_by("-deployment__pk")
        .values_list("deployment__release_id", flat=True)
        .first()
    )


def cluster_label(rollout: TargetRollout) -> dict:
    """What the audit events and progress of a wave name."""
    return {"cluster": rollout.target.cluster.name, "wave": rollout.wave}
