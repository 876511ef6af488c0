"""The release workflow: every rule about releases, and every state change.

A state change is one guarded UPDATE (`status IN allowed sources`) plus its audit
event, in one transaction. The build steps take a Jenkins adapter as an argument, so
they run the same against the real client or an in-memory one.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.audit import Actor, RequestContext, audit_record
from portal.models import Service
from releases.choices import RELEASE_ACTIVE, RELEASE_TRANSITIONS, ReleaseStatus, allowed_sources
from releases.jenkins import (
    CORRELATION_PARAMETER,
    BuildStatus,
    ConsoleChunk,
    ImageReport,
    JenkinsClient,
    JenkinsNotFound,
    QueueStatus,
    TriggerResult,
)
from releases.models import Release, ReleaseLogChunk

REF_RE = re.compile(r"^[A-Za-z0-9._/\-+@]{1,200}$")
TERMINAL = {ReleaseStatus.BUILT, ReleaseStatus.FAILED, ReleaseStatus.CANCELLED}
LAST_LINES = 20
WORKER = Actor.system("worker")


class ReleaseRefused(Exception):
    """The request cannot be honoured; the message says why, for the user."""


class Step(Enum):
    WAIT = "wait"  # ask again after a pause
    NEXT = "next"  # go on at once
    DONE = "done"  # nothing more to do


class Jenkins(Protocol):
    """What the build steps need of Jenkins (releases.jenkins.JenkinsClient has it)."""

    def trigger(self, job: str, parameters: dict[str, str]) -> TriggerResult: ...
    def queue_item(self, queue_id: int) -> QueueStatus: ...
    def find_queued(self, job: str, name: str, value: str) -> int | None: ...
    def find_build(self, job: str, name: str, value: str) -> BuildStatus | None: ...
    def build(self, job: str, number: int) -> BuildStatus: ...
    def console(self, job: str, number: int, start: int = 0) -> ConsoleChunk: ...
    def image(
        self, job: str, build: BuildStatus, default_repository: str = ""
    ) -> ImageReport | None: ...
    def stop(self, job: str, number: int) -> None: ...
    def cancel_queue_item(self, queue_id: int) -> None: ...


def jenkins_for(release: Release) -> JenkinsClient:
    server = release.jenkins_server
    return JenkinsClient(
        server.url, server.username, server.api_token.reveal(), timeout=server.timeout_seconds
    )


# -- requests from users --------------------------------------------------------------


def release_create(
    *, service: Service, ref: str, actor: Actor, user=None, context: RequestContext | None = None
) -> Release:
    """Ask for a build of `ref`; the worker takes it from there."""
    ref = (ref or "").strip()
    if not REF_RE.match(ref):
        raise ReleaseRefused(
            "Give a branch, tag or commit: letters, digits and ._/-+@ only, at most 200 characters."
        )
    if service.jenkins_server_id is None or not service.jenkins_job:
        raise ReleaseRefused(f"{service.name} has no Jenkins job configured.")
    with transaction.atomic():
        release = Release.objects.create(
            service=service,
            ref=ref,
            requested_by=user,
            jenkins_server=service.jenkins_server,
            jenkins_job=service.jenkins_job,
            image_repository=service.image_repository,
            commit_sha=ref if re.fullmatch(r"[0-9a-f]{40}", ref) else "",
        )
        audit_record(
            actor=actor,
            action="release.create",
            target=release,
            context=context,
            after={"service": service.slug, "ref": ref, "status": release.status},
        )
        _advance_on_commit(release)
    return release


def release_cancel(
    *, release: Release, actor: Actor, context: RequestContext | None = None
) -> Release:
    """Cancel a release still being built: stop the build or cancel the queue item."""
    with transaction.atomic():
        if release_transition(
            release=release,
            to=ReleaseStatus.CANCELLED,
            actor=actor,
            reason=f"cancelled by {actor.name}",
            context=context,
            only_from=[ReleaseStatus.REQUESTED],
        ):
            return _reload(release)
        updated = Release.objects.filter(
            pk=release.pk, status__in=RELEASE_ACTIVE, cancel_requested=False
        ).update(cancel_requested=True)
        if not updated:
            release = _reload(release)
            if release.status not in RELEASE_ACTIVE:
                raise ReleaseRefused(f"Release is already {release.get_status_display().lower()}.")
            return release
        audit_record(
            actor=actor, action="release.cancel_requested", target=release, context=context
        )
        _advance_on_commit(release)
    return _reload(release)


# -- state changes --------------------------------------------------------------------


def release_transition(
    *,
    release: Release,
    to: str,
    actor: Actor,
    reason: str = "",
    context: RequestContext | None = None,
    only_from: list[str] | None = None,
    **fields,
) -> bool:
    """Move a release to `to` if the transition table allows it from its current status.

    Returns False, changing nothing, when the release has moved on meanwhile.
    """
    sources = only_from or allowed_sources(RELEASE_TRANSITIONS, to)
    now = timezone.now()
    values = {"status": to, "heartbeat_at": now, **fields}
    if reason:
        values["status_reason"] = reason
    if to in TERMINAL:
        values["finished_at"] = now
        values["progress"] = ""
    with transaction.atomic():
        before = (
            Release.objects.select_for_update()
            .filter(pk=release.pk)
            .values_list("status", flat=True)
            .first()
        )
        if before not in sources:
            return False
        Release.objects.filter(pk=release.pk, status__in=sources).update(**values)
        after = {
            "status": to,
            **{k: v for k, v in fields.items() if k not in ("heartbeat_at", "build_started_at")},
        }
        if reason:
            after["reason"] = reason
        audit_record(
            actor=actor,
            action=f"release.{to}",
            target=release,
            context=context,
            before={"status": before},
            after=after,
        )
    for key, value in values.items():
        setattr(release, key, value)
    return True


def release_fail(*, release: Release, reason: str, actor: Actor = WORKER) -> bool:
    return release_transition(release=release, to=ReleaseStatus.FAILED, actor=actor, reason=reason)


def release_note_progress(*, release: Release, progress: str, quiet_for: float = 0) -> None:
    """Record what Jenkins says while we wait, and that the run is alive.

    `quiet_for`: the run will be silent that long on purpose (a retry's backoff), so its
    heartbeat is dated that far ahead and the resumer leaves it alone meanwhile.
    """
    beat = timezone.now() + timezone.timedelta(seconds=quiet_for)
    Release.objects.filter(pk=release.pk).update(progress=progress[:300], heartbeat_at=beat)


def release_log_append(*, release: Release, chunk: ConsoleChunk) -> None:
    """Store a console chunk at its offset, once, even if two polls race."""
    if chunk.next_offset <= chunk.start and not chunk.text:
        return
    with transaction.atomic():
        moved = Release.objects.filter(pk=release.pk, log_offset=chunk.start).update(
            log_offset=chunk.next_offset, heartbeat_at=timezone.now()
        )
        if moved and chunk.text:
            ReleaseLogChunk.objects.create(release=release, offset=chunk.start, text=chunk.text)
    release.log_offset = chunk.next_offset if moved else _reload(release).log_offset


def release_log_text(release: Release) -> str:
    return "".join(release.log_chunks.order_by("offset").values_list("text", flat=True))


def release_resume_stale(*, stale_after_seconds: float) -> list[int]:
    """Give a new run token to active releases whose run stopped beating, and resume them.

    A crashed worker leaves its task unacknowledged; this (run by beat, and at worker
    start) picks such releases up. The new token retires any old task still around.
    """
    import uuid

    cutoff = timezone.now() - timezone.timedelta(seconds=stale_after_seconds)
    resumed = []
    for release in Release.objects.filter(status__in=RELEASE_ACTIVE):
        last = release.heartbeat_at or release.created_at
        if last >= cutoff:
            continue
        token = uuid.uuid4()
        with transaction.atomic():
            if not Release.objects.filter(
                pk=release.pk, run_token=release.run_token, status__in=RELEASE_ACTIVE
            ).update(run_token=token, heartbeat_at=timezone.now()):
                continue
            release.run_token = token
            audit_record(
                actor=WORKER,
                action="release.resume",
                target=release,
                after={"status": release.status, "silent_since": last},
            )
            _advance_on_commit(release)
        resumed.append(release.pk)
    return resumed


def _reload(release: Release) -> Release:
    return Release.objects.select_related("service", "jenkins_server").get(pk=release.pk)


def _advance_on_commit(release: Release, countdown: float = 0) -> None:
    from releases.tasks import release_advance

    token = str(release.run_token)
    transaction.on_commit(
        lambda: release_advance.apply_async((release.pk, token), countdown=countdown)
    )


# -- the build steps (run by releases.tasks.release_advance) --------------------------


def release_step(*, release: Release, jenkins: Jenkins) -> Step:
    """Do the one step the release's status calls for."""
    step = {
        ReleaseStatus.REQUESTED: _step_trigger,
        ReleaseStatus.QUEUED: _step_follow_queue,
        ReleaseStatus.BUILDING: _step_poll_build,
    }.get(release.status)
    return step(release, jenkins) if step else Step.DONE


def _correlation(release: Release) -> str:
    return str(release.pk)


def _step_trigger(release: Release, jenkins: Jenkins) -> Step:
    if release.cancel_requested:
        release_transition(
            release=release,
            to=ReleaseStatus.CANCELLED,
            actor=WORKER,
            reason="cancelled before Jenkins was called",
        )
        return Step.DONE
    job, marker = release.jenkins_job, _correlation(release)
    queue_id = None
    if release.progress:
        # An earlier attempt may have reached Jenkins and died before recording the
        # queue item: find it by the correlation parameter instead of building twice.
        queue_id = jenkins.find_queued(job, CORRELATION_PARAMETER, marker)
        if queue_id is None:
            build = jenkins.find_build(job, CORRELATION_PARAMETER, marker)
            if build is not None:
                return _record_build(release, build.number, build.url)
    if queue_id is None:
        release_note_progress(release=release, progress="Asking Jenkins to build")
        result = jenkins.trigger(
            job,
            {
                "GIT_REF": release.ref,
                "IMAGE_REPOSITORY": release.image_repository,
                CORRELATION_PARAMETER: marker,
            },
        )
        queue_id = result.queue_id
        if result.existing:
            # 303: Jenkins merged us into an identical queued request. Identical means the
            # same correlation id, so it is ours; check rather than assume.
            item = jenkins.queue_item(queue_id)
            if item.parameters.get(CORRELATION_PARAMETER) != marker:
                release_fail(
                    release=release,
                    reason=f"Jenkins merged this build into queue "
                    f"item {queue_id} of another release",
                )
                return Step.DONE
    release_transition(
        release=release,
        to=ReleaseStatus.QUEUED,
        actor=WORKER,
        queue_item_id=queue_id,
        progress="Queued in Jenkins",
    )
    return Step.NEXT


def _record_build(release: Release, number: int, url: str) -> Step:
    release_transition(
        release=release,
        to=ReleaseStatus.BUILDING,
        actor=WORKER,
        build_number=number,
        build_url=url,
        build_started_at=timezone.now(),
        progress=f"Build #{number} running",
    )
    return Step.NEXT


def _step_follow_queue(release: Release, jenkins: Jenkins) -> Step:
    try:
        item = jenkins.queue_item(release.queue_item_id)
    except JenkinsNotFound:
        build = jenkins.find_build(
            release.jenkins_job, CORRELATION_PARAMETER, _correlation(release)
        )
        if build is not None:
            return _record_build(release, build.number, build.url)
        release_fail(
            release=release,
            reason=f"Jenkins forgot queue item {release.queue_item_id} before it became a build",
        )
        return Step.DONE
    if item.state == "cancelled":
        release_transition(
            release=release,
            to=ReleaseStatus.CANCELLED,
            actor=WORKER,
            reason="the queue item was cancelled in Jenkins",
        )
        return Step.DONE
    if item.state == "left" and item.build_number:
        return _record_build(release, item.build_number, item.build_url)
    if release.cancel_requested:
        jenkins.cancel_queue_item(release.queue_item_id)
    release_note_progress(release=release, progress=item.why or "Waiting in the Jenkins queue")
    return Step.WAIT


def _fetch_log(release: Release, jenkins: Jenkins, until_complete: bool) -> None:
    for _ in range(100):  # bounded: a finished build's log has an end
        chunk = jenkins.console(release.jenkins_job, release.build_number, release.log_offset)
        release_log_append(release=release, chunk=chunk)
        if not until_complete or not chunk.more:
            return


def _step_poll_build(release: Release, jenkins: Jenkins) -> Step:
    job, number = release.jenkins_job, release.build_number
    _fetch_log(release, jenkins, until_complete=False)
    build = jenkins.build(job, number)
    if build.building:
        if release.cancel_requested:
            jenkins.stop(job, number)
        release_note_progress(release=release, progress=f"Build #{number} running")
        return Step.WAIT
    _fetch_log(release, jenkins, until_complete=True)
    if build.result == "SUCCESS":
        image = jenkins.image(job, build, release.image_repository)
        if image is None:
            release_fail(
                release=release,
                reason=(
                    f"Build #{number} succeeded but reported no valid sha256 digest (looked for "
                    "image.json, a digest text artifact, and the build description). Slipway "
                    "never deploys a tag."
                ),
            )
            return Step.DONE
        release_transition(
            release=release,
            to=ReleaseStatus.BUILT,
            actor=WORKER,
            build_result=build.result,
            image_digest=image.digest,
            image_repository=image.repository or release.image_repository,
        )
        return Step.DONE
    if build.result == "ABORTED" and release.cancel_requested:
        release_transition(
            release=release,
            to=ReleaseStatus.CANCELLED,
            actor=WORKER,
            build_result=build.result,
            reason="build stopped on request",
        )
        return Step.DONE
    tail = "\n".join(release_log_text(release).rstrip("\n").splitlines()[-LAST_LINES:])
    release_transition(
        release=release,
        to=ReleaseStatus.FAILED,
        actor=WORKER,
        build_result=build.result or "",
        reason=f"Jenkins build #{number} ended {build.result}. Last lines:\n{tail}",
    )
    return Step.DONE


def poll_seconds() -> float:
    return float(getattr(settings, "SLIPWAY_POLL_SECONDS", 2.0))
