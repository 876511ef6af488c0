"""Builds: asking for a release, cancelling it, and the steps that follow it through
Jenkins to an image digest (run by the `releases.advance` task).

Built once, never rebuilt: the queue item and build number are recorded before the next
step, and a lost trigger is found again by the correlation parameter.
"""

from __future__ import annotations

import logging
import re
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from doors.jenkins import CORRELATION_PARAMETER, ConsoleChunk, JenkinsClient, JenkinsNotFound
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.catalog.models import BuildBackend, DeploymentTarget, Environment, Service
from portal.catalog.service_file import orphan_refusal
from portal.core.images import COMMIT_SHA_RE
from releases import dispatch
from releases.actions import Engine
from releases.choices import RELEASE_ACTIVE, DeploymentKind, ReleaseStatus
from releases.deployments import deployment_start
from releases.errors import Conflict, ReleaseRefused
from releases.live import live_log_grew
from releases.models import Release, ReleaseLogChunk
from releases.promotion import previous_environment
from releases.transitions import (
    WORKER,
    Step,
    lease_keeper,
    release_fail,
    release_note_progress,
    release_transition,
)

# A git branch, tag or commit. It must start with a letter or digit, so it can never
# read as an option to the git or shell step that receives it as GIT_REF.
REF_RE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/\-+@]{0,199}$")
REF_RULE = (
    "Give a branch, tag or commit: letters, digits and ._/-+@ only, starting with a letter or "
    "digit, no '..', at most 200 characters."
)
LAST_LINES = 20
logger = logging.getLogger(__name__)
LAST_LINE_CHARS = 500
# Console calls per step: a finished build's log is read to its end over several steps.
LOG_CALLS_PER_STEP = 50


def jenkins_for(release: Release) -> JenkinsClient:
    """The release's Jenkins; each call is covered by the run's lease (the client's timeout
    applies to connecting and to reading, hence twice it)."""
    server = release.jenkins_server
    return JenkinsClient(
        server.url,
        server.username,
        server.api_token.reveal(),
        timeout=server.timeout_seconds,
        before_call=lease_keeper(release, 2 * server.timeout_seconds + 1),
    )


# -- requests from users --------------------------------------------------------------


def release_create(
    *,
    service: Service,
    ref: str,
    actor: Actor,
    user=None,
    context: RequestContext | None = None,
    deploy_to: Environment | None = None,
) -> Release:
    """Ask for a build of `ref`; the worker takes it from there. With `deploy_to` (the
    "Build & deploy to Beta" button), the release deploys there once built."""
    ref = (ref or "").strip()
    if not REF_RE.match(ref):
        raise ReleaseRefused(REF_RULE)
    if service.orphaned_at:
        raise Conflict(orphan_refusal(service))
    if service.build_backend == BuildBackend.DRONE:
        if service.drone_server_id is None or not service.drone_repository:
            raise Conflict(f"{service.name} has no Drone server and repository configured.")
        backend = {"build_backend": BuildBackend.DRONE, "drone_server": service.drone_server,
                   "drone_repository": service.drone_repository}  # fmt: skip
    elif service.jenkins_server_id is None or not service.jenkins_job:
        raise Conflict(f"{service.name} has no Jenkins job configured.")
    else:
        backend = {"jenkins_server": service.jenkins_server, "jenkins_job": service.jenkins_job}
    if deploy_to is not None:
        if not DeploymentTarget.objects.filter(service=service, environment=deploy_to).exists():
            raise Conflict(f"{service.name} has no target in {deploy_to.name}.")
        if previous_environment(service, deploy_to) is not None:
            raise Conflict(
                f"A new build deploys to the first environment only; "
                f"{deploy_to.name} is reached by promotion."
            )
    with transaction.atomic():
        release = Release.objects.create(
            deploy_after_build=deploy_to,
            service=service,
            ref=ref,
            requested_by=user,
            **backend,
            image_repository=service.image_repository,
            commit_sha=ref if COMMIT_SHA_RE.fullmatch(ref) else "",
        )
        audit_record(
            actor=actor,
            action=Engine.RELEASE_CREATE,
            target=release,
            context=context,
            after={"service": service.slug, "ref": ref, "status": release.status},
        )
        dispatch.advance_release(release)
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
                raise Conflict(f"Release is already {release.get_status_display().lower()}.")
            return release
        audit_record(
            actor=actor, action=Engine.RELEASE_CANCEL_REQUESTED, target=release, context=context
        )
        dispatch.advance_release(release)
    return _reload(release)


def _reload(release: Release) -> Release:
    return Release.objects.select_related("service", "jenkins_server", "drone_server").get(
        pk=release.pk
    )


# -- the console log ------------------------------------------------------------------


def release_log_append(*, release: Release, chunk: ConsoleChunk) -> None:
    """Store a console chunk at its byte offset, once, even if two polls race."""
    if chunk.next_offset <= chunk.start:
        return
    with transaction.atomic():
        moved = Release.objects.filter(pk=release.pk, log_offset=chunk.start).update(
            log_offset=chunk.next_offset
        )
        if moved and chunk.text:
            ReleaseLogChunk.objects.create(
                release=release, offset=chunk.start, end_offset=chunk.next_offset, text=chunk.text
            )
            live_log_grew(release_id=release.pk)
    release.log_offset = chunk.next_offset if moved else _reload(release).log_offset


def release_log_text(release: Release) -> str:
    return "".join(release.log_chunks.order_by("offset").values_list("text", flat=True))


def log_tail(release: Release, lines: int = LAST_LINES) -> str:
    """The last lines of the console, each cut to a readable length."""
    texts: list[str] = []
    for text in release.log_chunks.order_by("-offset").values_list("text", flat=True):
        texts.insert(0, text)
        if "".join(texts).count("\n") > lines:
            break
    tail = "".join(texts).rstrip("\n").splitlines()[-lines:]
    return "\n".join(
        line if len(line) <= LAST_LINE_CHARS else line[:LAST_LINE_CHARS] + " …" for line in tail
    )


def _fetch_log(release: Release, jenkins: JenkinsClient) -> bool:
    """Read the console on from the stored offset; True while Jenkins has more to give."""
    for _ in range(LOG_CALLS_PER_STEP):
        chunk = jenkins.console(release.jenkins_job, release.build_number, release.log_offset)
        release_log_append(release=release, chunk=chunk)
        if not chunk.more:
            return False
        if chunk.next_offset <= chunk.start:
            return True  # nothing new yet: ask again on the next poll
    return True


# -- the build steps (run by the releases.advance task) -------------------------------


def release_step(*, release: Release, jenkins: JenkinsClient) -> Step:
    """Do the one step the release's status calls for."""
    step = {
        ReleaseStatus.REQUESTED: _step_trigger,
        ReleaseStatus.QUEUED: _step_follow_queue,
        ReleaseStatus.BUILDING: _step_poll_build,
    }.get(release.status)
    return step(release, jenkins) if step else Step.DONE


def _correlation(release: Release) -> str:
    return str(release.pk)


def release_cancelled(release: Release, reason: str, **fields) -> bool:
    return release_transition(release=release, to=ReleaseStatus.CANCELLED, reason=reason, **fields)


def _step_trigger(release: Release, jenkins: JenkinsClient) -> Step:
    if release.cancel_requested:
        release_cancelled(release, "cancelled before Jenkins was called")
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
                return record_build(release, build.number, build.url)
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
        queue_item_id=queue_id,
        progress="Queued in Jenkins",
    )
    return Step.NEXT


def record_build(release: Release, number: int, url: str) -> Step:
    release_transition(
        release=release,
        to=ReleaseStatus.BUILDING,
        build_number=number,
        build_url=url,
        build_started_at=timezone.now(),
        progress=f"Build #{number} running",
    )
    return Step.NEXT


def _step_follow_queue(release: Release, jenkins: JenkinsClient) -> Step:
    try:
        item = jenkins.queue_item(release.queue_item_id)
    except JenkinsNotFound:
        build = jenkins.find_build(
            release.jenkins_job, CORRELATION_PARAMETER, _correlation(release)
        )
        if build is not None:
            return record_build(release, build.number, build.url)
        release_fail(
            release=release,
            reason=f"Jenkins forgot queue item {release.queue_item_id} before it became a build",
        )
        return Step.DONE
    if item.state == "cancelled":
        release_cancelled(release, "the queue item was cancelled in Jenkins")
        return Step.DONE
    if item.state == "left" and item.build_number:
        return record_build(release, item.build_number, item.build_url)
    if release.cancel_requested:
        jenkins.cancel_queue_item(release.queue_item_id)
    release_note_progress(
        release=release,
        progress=item.why or "Waiting in the Jenkins queue",
        lease=release_wait(release),
    )
    return Step.WAIT


def _step_poll_build(release: Release, jenkins: JenkinsClient) -> Step:
    job, number = release.jenkins_job, release.build_number
    _fetch_log(release, jenkins)
    build = jenkins.build(job, number)
    if build.building:
        if release.cancel_requested:
            jenkins.stop(job, number)
        release_note_progress(
            release=release, progress=f"Build #{number} running", lease=release_wait(release)
        )
        return Step.WAIT
    if _fetch_log(release, jenkins):
        # The build is over but its console is not read to the end yet: read on first,
        # so a release never ends with half a log.
        release_note_progress(release=release, progress=f"Reading the log of build #{number}")
        return Step.NEXT
    if build.result == "SUCCESS":
        return _built(release, jenkins, build)
    if build.result == "ABORTED" and release.cancel_requested:
        release_cancelled(release, "build stopped on request", build_result=build.result)
        return Step.DONE
    release_transition(
        release=release,
        to=ReleaseStatus.FAILED,
        build_result=build.result or "",
        reason=f"Jenkins build #{number} ended {build.result}. Last lines:\n{log_tail(release)}",
    )
    return Step.DONE


def _built(release: Release, jenkins: JenkinsClient, build) -> Step:
    image = jenkins.image(release.jenkins_job, build, release.image_repository)
    if image is None:
        release_fail(
            release=release,
            reason=(
                f"Build #{build.number} succeeded but reported no valid sha256 digest (looked "
                "for image.json, a digest text artifact, and the build description). Slipway "
                "never deploys a tag."
            ),
        )
        return Step.DONE
    # What Jenkins checked out, for lead time (commit → Prod); kept as asked when not told.
    commit = {}
    if build.commit is not None:
        commit = {"commit_sha": build.commit.sha, "commit_time": build.commit.committed_at}
    return release_built(
        release, number=build.number, repository=image.repository, digest=image.digest,
        result=build.result, commit=commit,
    )  # fmt: skip


def release_built(
    release: Release, *, number: int, repository: str, digest: str, result: str, commit: dict
) -> Step:
    """A build (of any backend) succeeded with an image digest: the release is built (the
    image's repository checked), and deploys on if it was asked to."""
    reported = repository or release.image_repository
    expected = release.service.image_repository
    if release.service.require_image_repository and reported != expected:
        release_fail(
            release=release,
            reason=(
                f"Build #{number} reported the image {reported}@{digest}, outside "
                f"this service's repository {expected}: Slipway deploys only images from there."
            ),
        )
        return Step.DONE
    with transaction.atomic():
        if release_transition(
            release=release,
            to=ReleaseStatus.BUILT,
            **commit,
            build_result=result,
            image_digest=digest,
            image_repository=reported,
        ):
            _deploy_after_build(release)
    return Step.DONE


def _deploy_after_build(release: Release) -> None:
    """The "Build & deploy" button's second half: deploy to the first environment, or wait
    there for the deployment in flight to end."""
    if release.deploy_after_build_id is None:
        return
    requester = release.requested_by
    actor = (
        Actor(WORKER.type, str(requester.pk), f"{requester.get_username()} (after build)")
        if requester
        else WORKER
    )
    try:
        deployment_start(
            release=_reload(release),
            environment=release.deploy_after_build,
            actor=actor,
            user=requester,
            kind=DeploymentKind.DEPLOY,
            wait_if_busy=True,
        )
    except ReleaseRefused as exc:
        audit_record(
            actor=WORKER,
            action=Engine.DEPLOY_SKIPPED,
            target=release,
            after={"reason": str(exc)},
        )


def build_server(release: Release):
    """The Jenkins or Drone server that builds the release."""
    return (
        release.drone_server
        if release.build_backend == BuildBackend.DRONE
        else (release.jenkins_server)
    )


def release_wait(release: Release) -> float:
    """The lease of a run waiting for its next look: the wait and the look itself (longer
    when Jenkins notifies, so the wait is never taken for a lost worker)."""
    return poll_seconds(release) + 2 * build_server(release).timeout_seconds + 1


def poll_seconds(release: Release) -> float:
    """How long until the next look at the build: a Jenkins that notifies Slipway of
    builds is asked only as a fallback."""
    server = build_server(release)
    if getattr(server, "notification_secret", None):
        return settings.SLIPWAY_POLL_FALLBACK_SECONDS
    return settings.SLIPWAY_POLL_SECONDS


# -- Jenkins says so --------------------------------------------------------------------


def job_from_url(url: str) -> str:
    """`job/demo/job/storefront/` (the Notification plugin's `url`) → `demo/storefront`."""
    parts = [p for p in url.strip("/").split("/") if p]
    return "/".join(parts[i + 1] for i in range(0, len(parts) - 1, 2) if parts[i] == "job")


def build_notified(
    *, server, job: str, number: int | None, release_id: int | None, phase: str
) -> Release | None:
    """Jenkins's Notification plugin says a build of `job` started or ended: the release it
    builds is looked at now instead of at its next poll. Its run gets a new token (as a
    resume does), so the chain that was waiting retires and one chain goes on. Returns the
    release, or None when the build is none of ours or its release has ended."""
    active = Release.objects.filter(
        jenkins_server=server, jenkins_job=job, status__in=RELEASE_ACTIVE
    )
    release = None
    if release_id is not None:
        release = active.filter(pk=release_id).first()
    if release is None and number is not None:
        release = active.filter(build_number=number).first()
    if release is None:
        return None
    with transaction.atomic():
        moved = Release.objects.filter(
            pk=release.pk, run_token=release.run_token, status__in=RELEASE_ACTIVE
        ).update(run_token=uuid.uuid4())
        if not moved:
            return None
        release.refresh_from_db(fields=["run_token", "status"])
        dispatch.advance_release(release)
    logger.info("jenkins notified %s of build #%s of %s: release %s", phase, number, job,
                release.pk)  # fmt: skip
    return release
