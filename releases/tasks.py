"""Celery tasks of the release engine. Thin: load, check the run token, do one workflow
step, schedule the next. Every task is idempotent, so `acks_late` is safe.

Only a passing outage is retried (Jenkins or the cluster unavailable, the database
restarting), with backoff; any other error ends the run with the error named, so no run
is ever left active for good.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError

from clusters.access import cluster_helm, cluster_watcher
from clusters.errors import ClusterError
from portal.catalog.models import BuildBackend, DeploymentTarget, Environment
from portal.core import queues, sizes
from portal.core.errors import DoorError
from portal.core.queues import Task
from releases import (
    builds,
    canary,
    changes,
    deploy_steps,
    dispatch,
    drift,
    drone_builds,
    preview,
    trains,
    transitions,
    verifying,
    waiting,
)
from releases.choices import VerificationStatus
from releases.models import Deployment, Release, VerificationRun
from releases.transitions import Step

logger = logging.getLogger(__name__)
# The database itself is away (restart, failover): retry rather than fail, since failing
# would need it too.
DATABASE_OUTAGE = (OperationalError, InterfaceError)


def _retry_delay(retries: int) -> float:
    return min(settings.SLIPWAY_RETRY_BASE_SECONDS * 2**retries, 60.0)


def _retry_or_fail(task, exc: Exception, *, retryable: bool, limit: int, note, fail) -> str:
    """Retry a passing outage with backoff (telling the page), or end the run with a reason."""
    if retryable and task.request.retries < limit:
        delay = _retry_delay(task.request.retries)
        note(f"{exc}; retry {task.request.retries + 1} of {limit}", delay)
        raise task.retry(countdown=delay, exc=exc) from exc
    fail(f"{exc} (gave up after {limit} retries)" if retryable else str(exc))
    return "failed"


def _unexpected(exc: Exception, status: str) -> str:
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"The {status} step ran past its time limit and was stopped."
    logger.exception("unexpected error in the %s step", status)
    said = str(exc)[: sizes.PARAGRAPH]
    return f"Unexpected error in the {status} step: {type(exc).__name__}: {said}"


def _database_outage(task, exc: Exception) -> None:
    raise task.retry(countdown=_retry_delay(min(task.request.retries, 5)), exc=exc) from exc


@shared_task(
    bind=True,
    name=Task.ADVANCE_RELEASE,
    queue=queues.BUILDS,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=120,
    time_limit=180,
)
def release_advance(self, release_id: int, run_token: str) -> str:
    """Do the next build step of a release; schedule the one after."""
    try:
        release = (
            Release.objects.select_related("service", "jenkins_server", "drone_server")
            .filter(pk=release_id, run_token=run_token)
            .first()
        )
        if release is None:
            return "stale"  # gone, or resumed by a newer run
        try:
            if release.build_backend == BuildBackend.DRONE:
                step = drone_builds.drone_step(
                    release=release, drone=drone_builds.drone_for(release)
                )
            else:
                step = builds.release_step(release=release, jenkins=builds.jenkins_for(release))
        except DoorError as exc:  # Jenkins, Drone, or the registry a Drone image is found in
            return _retry_or_fail(
                self,
                exc,
                retryable=exc.retryable,
                limit=settings.SLIPWAY_JENKINS_MAX_RETRIES,
                note=lambda text, delay: transitions.release_note_progress(
                    release=release, progress=text, lease=delay
                ),
                fail=lambda reason: transitions.release_fail(release=release, reason=reason),
            )
        except DATABASE_OUTAGE:
            raise
        except Exception as exc:
            transitions.release_fail(release=release, reason=_unexpected(exc, release.status))
            return "failed"
    except DATABASE_OUTAGE as exc:
        _database_outage(self, exc)
    if step is Step.WAIT:
        dispatch.advance_release(release, countdown=builds.poll_seconds(release))
    elif step is Step.NEXT:
        dispatch.advance_release(release)
    return step.value


@shared_task(
    bind=True,
    name=Task.ADVANCE_DEPLOYMENT,
    queue=queues.DEPLOYS,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=settings.SLIPWAY_HELM_TIMEOUT_SECONDS + 60,
    time_limit=settings.SLIPWAY_HELM_TIMEOUT_SECONDS + 120,
)
def deployment_advance(self, deployment_id: int, run_token: str) -> str:
    """Do the next step of a deployment (helm upgrade, then watch); schedule the next."""
    try:
        deployment = (
            Deployment.objects.select_related("release", "environment", "service__team")
            .filter(pk=deployment_id, run_token=run_token)
            .first()
        )
        if deployment is None:
            return "stale"
        try:
            step = deploy_steps.deployment_steps(
                deployment=deployment, clusters=deploy_steps.LiveClusters(deployment)
            )
        except DoorError as exc:  # the cluster, helm, or the registry
            return _retry_or_fail(
                self,
                exc,
                retryable=exc.retryable,
                limit=settings.SLIPWAY_CLUSTER_MAX_RETRIES,
                note=lambda text, delay: transitions.deployment_note_progress(
                    deployment=deployment, progress={"summary": text}, lease=delay
                ),
                fail=lambda reason: transitions.deployment_fail(
                    deployment=deployment, reason=reason
                ),
            )
        except DATABASE_OUTAGE:
            raise
        except Exception as exc:
            transitions.deployment_fail(
                deployment=deployment, reason=_unexpected(exc, deployment.status)
            )
            return "failed"
    except DATABASE_OUTAGE as exc:
        _database_outage(self, exc)
    if step is Step.WAIT:  # a wave bakes before the next cluster gets the release
        dispatch.advance_deployment(deployment, countdown=deploy_steps.wait_seconds(deployment))
    elif step is Step.NEXT:
        dispatch.advance_deployment(deployment)
    return step.value


@shared_task(
    bind=True,
    name=Task.VERIFY,
    queue=queues.ROLLOUTS,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=120,
    time_limit=180,
)
def verification_measure(self, run_id: int, run_token: str) -> str:
    """Take a verification run's due measurements; schedule the next, or end the run."""
    try:
        run = (
            VerificationRun.objects.select_related(
                "deployment__environment", "release", "service__team", "environment"
            )
            .filter(pk=run_id, run_token=run_token)
            .first()
        )
        if run is None:
            return "stale"
        try:
            wait = verifying.verification_step(run)
        except DATABASE_OUTAGE:
            raise
        except Exception as exc:  # a lead judges what could not be measured
            verifying.verification_end(
                run, VerificationStatus.INCONCLUSIVE, _unexpected(exc, "verification")
            )
            return "inconclusive"
    except DATABASE_OUTAGE as exc:
        _database_outage(self, exc)
    if wait is None:
        return "done"
    dispatch.verify(run, countdown=wait)
    return "measuring"


@shared_task(
    bind=True,
    name=Task.REMOVE_CANARY,
    queue=queues.DEPLOYS,
    acks_late=True,
    max_retries=5,
    soft_time_limit=settings.SLIPWAY_HELM_TIMEOUT_SECONDS * 2 + 60,
    time_limit=settings.SLIPWAY_HELM_TIMEOUT_SECONDS * 2 + 120,
)
def deployment_remove_canary(self, deployment_id: int) -> list[str]:
    """A deployment ended with a canary installed: weight 0, removed (retried while the
    cluster does not answer)."""
    deployment = (
        Deployment.objects.select_related("service", "release").filter(pk=deployment_id).first()
    )
    if deployment is None:
        return []
    try:
        return canary.canary_leftovers(deployment, lambda target: cluster_helm(target.cluster))
    except DoorError as exc:
        raise self.retry(countdown=_retry_delay(self.request.retries), exc=exc) from exc


@shared_task(
    bind=True,
    name=Task.CHANGE_TELL,
    queue=queues.NOTIFICATIONS,
    acks_late=True,
    max_retries=8,
    soft_time_limit=60,
    time_limit=90,
)
def deployment_change_tell(self, deployment_id: int, status: str) -> str:
    """Tell a deployment's change request it started, ended or was cancelled; retried
    while the change system does not answer (its refusal is kept on the ticket)."""
    try:
        return changes.change_tell(deployment_id, status)
    except DoorError as exc:
        if not exc.retryable:
            return f"refused: {exc}"
        raise self.retry(countdown=_retry_delay(self.request.retries), exc=exc) from exc


@shared_task(
    name=Task.ADVANCE_TRAIN,
    queue=queues.DEPLOYS,
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
)
def advance_train(train_id: int) -> str:
    """A release train's next step (it locks the train: a duplicate does nothing)."""
    return trains.train_advance(train_id)


@shared_task(
    name=Task.START_WAITING,
    queue=queues.DEPLOYS,
    acks_late=True,
    soft_time_limit=30,
    time_limit=60,
)
def deployment_start_waiting(service_id: int, environment_id: int) -> int | None:
    """An environment freed up: start the deployment waiting longest for it."""
    started = waiting.deployment_start_waiting(service_id=service_id, environment_id=environment_id)
    return started.pk if started else None


@shared_task(
    name=Task.RENDER_PREVIEW,
    queue=queues.DEPLOYS,
    soft_time_limit=settings.SLIPWAY_HELM_TIMEOUT_SECONDS + 30,
    time_limit=settings.SLIPWAY_HELM_TIMEOUT_SECONDS + 60,
)
def render_preview(release_id: int, environment_id: int) -> bool:
    """Render the manifests a promotion would change, for its confirmation (cached)."""
    release = Release.objects.select_related("service").filter(pk=release_id).first()
    environment = Environment.objects.filter(pk=environment_id).first()
    if release is None or environment is None:
        return False
    # The first wave's cluster renders it: the first to get it.
    target = (
        DeploymentTarget.objects.select_related("cluster")
        .filter(service=release.service_id, environment=environment)
        .order_by("wave", "id")
        .first()
    )
    if target is None:
        return False
    preview.render_preview(
        release=release, environment=environment, helm=cluster_helm(target.cluster)
    )
    return True


@shared_task(
    name=Task.RESUME_STALE,
    queue=queues.DEFAULT,
    acks_late=True,
    soft_time_limit=60,
    time_limit=90,
)
def release_resume_stale() -> dict[str, list[int]]:
    """Periodic: resume runs whose worker died, start what waits for a free environment,
    and expire approval requests nobody decided."""
    return {
        "releases": transitions.release_resume_stale(),
        "deployments": transitions.deployment_resume_stale(),
        "started": waiting.deployment_start_all_waiting(),
        "expired": waiting.deployment_expire_waiting(),
        "verifications": verifying.resume_stale(),
    }


@shared_task(
    name=Task.CHECK_DRIFT,
    queue=queues.DEPLOYS,
    acks_late=True,
    soft_time_limit=120,
    time_limit=180,
)
def target_check_drift(target_id: int) -> dict | None:
    """Compare one target's cluster with Slipway's record (see releases/drift.py)."""
    target = (
        DeploymentTarget.objects.select_related("service", "cluster", "environment")
        .filter(pk=target_id)
        .first()
    )
    if target is None:
        return None
    try:
        return drift.target_check_drift(
            target=target,
            helm=cluster_helm(target.cluster),
            watcher=cluster_watcher(target.cluster),
        )
    except ClusterError as exc:
        logger.warning("drift check of %s skipped: %s", target, exc)
        return None


@shared_task(name=Task.CHECK_DRIFT_ALL, queue=queues.DEFAULT, soft_time_limit=60, time_limit=90)
def check_drift_all() -> int:
    """Periodic: one drift check per target that Slipway has deployed to."""
    targets = DeploymentTarget.objects.filter(rollouts__isnull=False).distinct()
    count = 0
    for target_id in targets.values_list("pk", flat=True):
        target_check_drift.apply_async((target_id,))
        count += 1
    return count


@worker_ready.connect
def _resume_on_start(sender=None, **kwargs) -> None:
    # A restarted worker looks for work its predecessor left behind.
    release_resume_stale.apply_async(countdown=1)
