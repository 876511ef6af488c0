"""Celery tasks of the release engine. Thin: load, check the run token, do one workflow
step, schedule the next. Every task is idempotent, so `acks_late` is safe."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from clusters.errors import ClusterError, ClusterUnreachable
from releases import services
from releases.jenkins import JenkinsError
from releases.models import Deployment, Release


def _retry_delay(retries: int) -> float:
    base = float(getattr(settings, "SLIPWAY_RETRY_BASE_SECONDS", 2.0))
    return min(base * 2**retries, 60.0)


def _retry_or_fail(task, exc: Exception, *, retryable: bool, limit: int, note, fail) -> str:
    """Retry a passing outage with backoff (telling the page), or end the run with a reason."""
    if retryable and task.request.retries < limit:
        delay = _retry_delay(task.request.retries)
        note(f"{exc}; retry {task.request.retries + 1} of {limit}", delay)
        raise task.retry(countdown=delay, exc=exc) from exc
    fail(f"{exc} (gave up after {limit} retries)" if retryable else str(exc))
    return "failed"


@shared_task(
    bind=True,
    name="releases.advance",
    queue="builds",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=120,
    time_limit=180,
)
def release_advance(self, release_id: int, run_token: str) -> str:
    """Do the next build step of a release; schedule the one after."""
    release = (
        Release.objects.select_related("service", "jenkins_server")
        .filter(pk=release_id, run_token=run_token)
        .first()
    )
    if release is None:
        return "stale"  # gone, or resumed by a newer run
    try:
        step = services.release_step(release=release, jenkins=services.jenkins_for(release))
    except JenkinsError as exc:
        return _retry_or_fail(
            self,
            exc,
            retryable=exc.retryable,
            limit=int(getattr(settings, "SLIPWAY_JENKINS_MAX_RETRIES", 8)),
            note=lambda text, delay: services.release_note_progress(
                release=release, progress=text, quiet_for=delay
            ),
            fail=lambda reason: services.release_fail(release=release, reason=reason),
        )
    if step is services.Step.WAIT:
        release_advance.apply_async((release_id, run_token), countdown=services.poll_seconds())
    elif step is services.Step.NEXT:
        release_advance.apply_async((release_id, run_token))
    return step.value


@shared_task(
    bind=True,
    name="releases.deploy",
    queue="deploys",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=240,
    time_limit=300,
)
def deployment_advance(self, deployment_id: int, run_token: str) -> str:
    """Do the next step of a deployment (helm upgrade, then watch); schedule the next."""
    deployment = (
        Deployment.objects.select_related("release", "target__cluster", "environment", "service")
        .filter(pk=deployment_id, run_token=run_token)
        .first()
    )
    if deployment is None:
        return "stale"
    try:
        step = services.deployment_step(
            deployment=deployment,
            helm=services.helm_for(deployment),
            watcher=services.rollout_watcher_for(deployment),
        )
    except ClusterError as exc:
        return _retry_or_fail(
            self,
            exc,
            retryable=isinstance(exc, ClusterUnreachable),
            limit=int(getattr(settings, "SLIPWAY_CLUSTER_MAX_RETRIES", 5)),
            note=lambda text, delay: services.deployment_note_progress(
                deployment=deployment, progress={"summary": text}, quiet_for=delay
            ),
            fail=lambda reason: services.deployment_fail(deployment=deployment, reason=reason),
        )
    if step is not services.Step.DONE:
        deployment_advance.apply_async((deployment_id, run_token))
    return step.value


@shared_task(
    name="releases.resume_stale", queue="default", acks_late=True, soft_time_limit=60, time_limit=90
)
def release_resume_stale() -> dict[str, list[int]]:
    """Periodic: resume releases and deployments whose worker died."""
    stale = float(getattr(settings, "SLIPWAY_STALE_AFTER_SECONDS", 120))
    return {
        "releases": services.release_resume_stale(stale_after_seconds=stale),
        "deployments": services.deployment_resume_stale(stale_after_seconds=stale),
    }


@worker_ready.connect
def _resume_on_start(sender=None, **kwargs) -> None:
    # A restarted worker looks for work its predecessor left behind.
    release_resume_stale.apply_async(countdown=1)
