"""Every state change of releases and deployments, and the liveness of their runs.

A state change is one guarded UPDATE (`status IN allowed sources`, from the transition
tables in choices.py) plus its audit event, in one transaction. A run proves it is alive
through `heartbeat_at`: before each call to Jenkins, Helm or Kubernetes it takes a lease
that covers that call (its timeout), so a run is resumed only when it has been silent
for `SLIPWAY_STALE_AFTER_SECONDS` beyond its last lease (see docs/deployments.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from enum import Enum

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from portal.audit.actions import Action
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.core import sizes
from releases import dispatch
from releases.actions import DEPLOYMENT_STATUS, RELEASE_STATUS, Engine
from releases.choices import (
    CANARY_LIVE,
    DEPLOYMENT_RUNNING,
    DEPLOYMENT_TERMINAL,
    DEPLOYMENT_TRANSITIONS,
    RELEASE_ACTIVE,
    RELEASE_TERMINAL,
    RELEASE_TRANSITIONS,
    DeploymentStatus,
    ReleaseStatus,
    allowed_sources,
)
from releases.live import live_changed, live_decisions_changed
from releases.models import ChangeTicket, Deployment, Release, TargetRollout, TrainMember
from releases.rollouts import rollouts_close

WORKER = Actor.system("worker")
# The moves a deployment's change request is told of (releases/changes.py).
CHANGE_TOLD = (
    DeploymentStatus.DEPLOYING,
    DeploymentStatus.SUCCEEDED,
    DeploymentStatus.FAILED,
    DeploymentStatus.ROLLED_BACK,
    DeploymentStatus.CANCELLED,
)


class Step(Enum):
    """What a run's task does after one step."""

    WAIT = "wait"  # ask again after a pause
    NEXT = "next"  # go on at once
    DONE = "done"  # nothing more to do


def _guarded_transition(
    row: models.Model,
    *,
    to: str,
    action: Action,
    actor: Actor,
    reason: str,
    context: RequestContext | None,
    sources: list[str],
    fields: dict,
    unaudited: tuple[str, ...],
    note: dict | None = None,
) -> bool:
    """One conditional UPDATE (status IN sources) and its audit event, in one transaction.
    Shared by releases and deployments; `action` is the status's audit action. `note`
    adds to the audit event what is not a field of the row (an approver's comment)."""
    model = type(row)
    values = {"status": to, "heartbeat_at": timezone.now(), **fields}
    if reason:
        values["status_reason"] = reason
    with transaction.atomic():
        before = (
            model.objects.select_for_update()
            .filter(pk=row.pk)
            .values_list("status", flat=True)
            .first()
        )
        if before not in sources:
            return False
        model.objects.filter(pk=row.pk, status__in=sources).update(**values)
        after = {
            "status": to,
            **{k: v for k, v in fields.items() if k not in unaudited},
            **(note or {}),
        }
        if reason:
            after["reason"] = reason
        audit_record(
            actor=actor,
            action=action,
            target=row,
            context=context,
            before={"status": before},
            after=after,
        )
    for key, value in values.items():
        setattr(row, key, value)
    _tell_pages(row, before, to)
    return True


def _tell_pages(row: models.Model, before: str, to: str) -> None:
    if isinstance(row, Deployment):
        live_changed(service_id=row.service_id, release_id=row.release_id, deployment_id=row.pk)
        if DeploymentStatus.AWAITING_APPROVAL in (before, to):
            live_decisions_changed()
    else:
        live_changed(service_id=row.service_id, release_id=row.pk)


def release_transition(
    *,
    release: Release,
    to: str,
    actor: Actor = WORKER,
    reason: str = "",
    context: RequestContext | None = None,
    only_from: list[str] | None = None,
    **fields,
) -> bool:
    """Move a release to `to` if the transition table allows it from its current status.

    Returns False, changing nothing, when the release has moved on meanwhile.
    """
    final = {"finished_at": timezone.now(), "progress": ""} if to in RELEASE_TERMINAL else {}
    return _guarded_transition(
        release,
        to=to,
        action=RELEASE_STATUS[to],
        actor=actor,
        reason=reason,
        context=context,
        sources=only_from or allowed_sources(RELEASE_TRANSITIONS, to),
        fields={**fields, **final},
        unaudited=("build_started_at", "finished_at", "progress"),
    )


def deployment_transition(
    *,
    deployment: Deployment,
    to: str,
    actor: Actor = WORKER,
    reason: str = "",
    context: RequestContext | None = None,
    note: dict | None = None,
    **fields,
) -> bool:
    """Move a deployment along the transition table; False if it moved on meanwhile.

    A deployment that ends frees its environment: the next one waiting there starts.
    """
    final = {"finished_at": timezone.now()} if to in DEPLOYMENT_TERMINAL else {}
    moved = _guarded_transition(
        deployment,
        to=to,
        action=DEPLOYMENT_STATUS[to],
        actor=actor,
        reason=reason,
        context=context,
        sources=allowed_sources(DEPLOYMENT_TRANSITIONS, to),
        fields={**fields, **final},
        unaudited=("progress", "started_at", "finished_at"),
        note=note,
    )
    if moved and to in CHANGE_TOLD and ChangeTicket.objects.filter(deployment=deployment).exists():
        dispatch.change_tell(deployment, to)
    if moved and final and TrainMember.objects.filter(deployment=deployment).exists():
        dispatch.advance_train_of(deployment)
    if moved and final:
        # Whatever cluster was still under way ends with it; the waves after are skipped.
        rollouts_close(deployment, reason or f"The deployment ended: {to}.")
        dispatch.start_waiting(deployment.service_id, deployment.environment_id)
        if TargetRollout.objects.filter(deployment=deployment, canary__phase__in=CANARY_LIVE):
            # Ended with a canary still installed (an unexpected error, say): it goes.
            dispatch.remove_canary(deployment)
    return moved


def release_fail(*, release: Release, reason: str, actor: Actor = WORKER) -> bool:
    return release_transition(release=release, to=ReleaseStatus.FAILED, actor=actor, reason=reason)


def deployment_fail(*, deployment: Deployment, reason: str) -> bool:
    return deployment_transition(deployment=deployment, to=DeploymentStatus.FAILED, reason=reason)


# -- liveness -------------------------------------------------------------------------


def _lease_until(lease: float) -> timezone.datetime:
    return timezone.now() + timezone.timedelta(seconds=lease)


def release_note_progress(*, release: Release, progress: str, lease: float = 0) -> None:
    """Record what Jenkins says while we wait, and that the run is alive for `lease` s
    more (a call about to be made, or a retry's backoff)."""
    progress = progress[: sizes.LINE]
    Release.objects.filter(pk=release.pk).update(
        progress=progress, heartbeat_at=_lease_until(lease)
    )
    if progress != release.progress:
        release.progress = progress
        live_changed(service_id=release.service_id, release_id=release.pk)


def deployment_note_progress(*, deployment: Deployment, progress: dict, lease: float = 0) -> None:
    Deployment.objects.filter(pk=deployment.pk).update(
        progress=progress, heartbeat_at=_lease_until(lease)
    )
    if progress != deployment.progress:
        deployment.progress = progress
        live_changed(service_id=deployment.service_id, release_id=deployment.release_id,
                     deployment_id=deployment.pk)  # fmt: skip


def heartbeat(row: Release | Deployment, lease: float) -> None:
    """The run is alive and about to call out for at most `lease` seconds."""
    type(row).objects.filter(pk=row.pk).update(heartbeat_at=_lease_until(lease))


def lease_keeper(row: Release | Deployment, lease: float) -> Callable[[], None]:
    """A `before_call` hook for an adapter: each call first extends the run's lease to
    cover it. One write a second at most: each lease outlasts the call it covers."""
    last = [0.0]

    def alive() -> None:
        if time.monotonic() - last[0] >= 1.0:
            heartbeat(row, lease)
            last[0] = time.monotonic()

    return alive


def _resume_stale(
    model: type[Release] | type[Deployment],
    statuses,
    *,
    action: Action,
    fail: Callable[[models.Model, str], bool],
    schedule: Callable[[models.Model], None],
) -> list[int]:
    """Give a new run token to runs whose lease ran out, and schedule them again; a run
    lost more than SLIPWAY_MAX_RESUMES times fails instead of looping for ever.

    A crashed worker leaves its task unacknowledged; this (run by beat, and at worker
    start) picks such runs up. The new token retires any old task still around.
    """
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.SLIPWAY_STALE_AFTER_SECONDS)
    stale = model.objects.filter(status__in=statuses).filter(
        models.Q(heartbeat_at__lt=cutoff)
        | models.Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    resumed = []
    for row in stale:
        lost = row.resume_count + 1
        if lost > settings.SLIPWAY_MAX_RESUMES:
            fail(
                row,
                f"Worker lost {lost} times; gave up (SLIPWAY_MAX_RESUMES="
                f"{settings.SLIPWAY_MAX_RESUMES}). The last step was {row.status}.",
            )
            continue
        token = uuid.uuid4()
        with transaction.atomic():
            if not model.objects.filter(
                pk=row.pk, run_token=row.run_token, status__in=statuses
            ).update(run_token=token, heartbeat_at=timezone.now(), resume_count=lost):
                continue  # another resumer got there first
            row.run_token = token
            audit_record(
                actor=WORKER,
                action=action,
                target=row,
                after={"status": row.status, "silent_since": row.heartbeat_at, "times": lost},
            )
            schedule(row)
        resumed.append(row.pk)
    return resumed


def release_resume_stale() -> list[int]:
    """Resume releases whose worker died while building."""
    return _resume_stale(
        Release,
        RELEASE_ACTIVE,
        action=Engine.RELEASE_RESUME,
        fail=lambda row, reason: release_fail(release=row, reason=reason),
        schedule=dispatch.advance_release,
    )


def deployment_resume_stale() -> list[int]:
    """Resume deployments whose worker died while deploying."""
    return _resume_stale(
        Deployment,
        DEPLOYMENT_RUNNING,
        action=Engine.DEPLOYMENT_RESUME,
        fail=lambda row, reason: deployment_fail(deployment=row, reason=reason),
        schedule=dispatch.advance_deployment,
    )
