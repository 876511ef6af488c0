"""The release workflow: every rule about releases, and every state change.

A state change is one guarded UPDATE (`status IN allowed sources`) plus its audit
event, in one transaction. The steps take their adapters (JenkinsClient, Helm,
RolloutWatcher) as arguments, so a test can hand them an in-memory stand-in.
"""

from __future__ import annotations

import re
from enum import Enum

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters.errors import HelmFailed
from clusters.helm import Helm, image_values
from clusters.rollout import RolloutWatcher
from portal.audit import Actor, RequestContext, audit_record
from portal.models import DeploymentTarget, Environment, Service
from releases.choices import (
    DEPLOYMENT_ACTIVE,
    DEPLOYMENT_RUNNING,
    DEPLOYMENT_TRANSITIONS,
    RELEASE_ACTIVE,
    RELEASE_TRANSITIONS,
    DeploymentStatus,
    ReleaseStatus,
    allowed_sources,
)
from releases.jenkins import (
    CORRELATION_PARAMETER,
    ConsoleChunk,
    JenkinsClient,
    JenkinsNotFound,
)
from releases.models import Approval, Deployment, Release, ReleaseLogChunk

# A git branch, tag or commit. It must start with a letter or digit, so it can never
# read as an option to the git or shell step that receives it as GIT_REF.
REF_RE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._/\-+@]{0,199}$")
TERMINAL = {ReleaseStatus.BUILT, ReleaseStatus.FAILED, ReleaseStatus.CANCELLED}
LAST_LINES = 20
WORKER = Actor.system("worker")


class ReleaseRefused(Exception):
    """The request cannot be honoured; the message says why, for the user."""


class DeploymentBusy(ReleaseRefused):
    """Another deployment of this service is in flight in this environment."""


class Step(Enum):
    WAIT = "wait"  # ask again after a pause
    NEXT = "next"  # go on at once
    DONE = "done"  # nothing more to do


def jenkins_for(release: Release) -> JenkinsClient:
    server = release.jenkins_server
    return JenkinsClient(
        server.url, server.username, server.api_token.reveal(), timeout=server.timeout_seconds
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
        raise ReleaseRefused(
            "Give a branch, tag or commit: letters, digits and ._/-+@ only, starting with a "
            "letter or digit, no '..', at most 200 characters."
        )
    if service.jenkins_server_id is None or not service.jenkins_job:
        raise ReleaseRefused(f"{service.name} has no Jenkins job configured.")
    if deploy_to is not None:
        if not DeploymentTarget.objects.filter(service=service, environment=deploy_to).exists():
            raise ReleaseRefused(f"{service.name} has no target in {deploy_to.name}.")
        if _previous_environment(service, deploy_to) is not None:
            raise ReleaseRefused(
                f"A new build deploys to the first environment only; "
                f"{deploy_to.name} is reached by promotion."
            )
    with transaction.atomic():
        release = Release.objects.create(
            deploy_after_build=deploy_to,
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
    terminal = {"finished_at": timezone.now(), "progress": ""} if to in TERMINAL else {}
    return _guarded_transition(
        release,
        to=to,
        actor=actor,
        reason=reason,
        context=context,
        sources=only_from or allowed_sources(RELEASE_TRANSITIONS, to),
        fields={**fields, **terminal},
        unaudited=("build_started_at", "finished_at", "progress"),
    )


def _guarded_transition(
    row,
    *,
    to: str,
    actor: Actor,
    reason: str,
    context: RequestContext | None,
    sources: list[str],
    fields: dict,
    unaudited: tuple[str, ...],
) -> bool:
    """One conditional UPDATE (status IN sources) and its audit event, in one transaction.
    Shared by releases and deployments; the row's label names the audit action."""
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
        after = {"status": to, **{k: v for k, v in fields.items() if k not in unaudited}}
        if reason:
            after["reason"] = reason
        audit_record(
            actor=actor,
            action=f"{model._meta.model_name}.{to}",
            target=row,
            context=context,
            before={"status": before},
            after=after,
        )
    for key, value in values.items():
        setattr(row, key, value)
    return True


def _cancelled(release: Release, reason: str, **fields) -> bool:
    return release_transition(
        release=release, to=ReleaseStatus.CANCELLED, actor=WORKER, reason=reason, **fields
    )


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
    return _resume_stale(Release, RELEASE_ACTIVE, stale_after_seconds, _advance_on_commit)


def _resume_stale(model, statuses, stale_after_seconds: float, schedule) -> list[int]:
    import uuid

    cutoff = timezone.now() - timezone.timedelta(seconds=stale_after_seconds)
    resumed = []
    for row in model.objects.filter(status__in=statuses):
        last = row.heartbeat_at or row.created_at
        if last >= cutoff:
            continue
        token = uuid.uuid4()
        with transaction.atomic():
            if not model.objects.filter(
                pk=row.pk, run_token=row.run_token, status__in=statuses
            ).update(run_token=token, heartbeat_at=timezone.now()):
                continue  # another resumer got there first
            row.run_token = token
            audit_record(
                actor=WORKER,
                action=f"{model._meta.model_name}.resume",
                target=row,
                after={"status": row.status, "silent_since": last},
            )
            schedule(row)
        resumed.append(row.pk)
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


def _step_trigger(release: Release, jenkins: JenkinsClient) -> Step:
    if release.cancel_requested:
        _cancelled(release, "cancelled before Jenkins was called")
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


def _step_follow_queue(release: Release, jenkins: JenkinsClient) -> Step:
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
        _cancelled(release, "the queue item was cancelled in Jenkins")
        return Step.DONE
    if item.state == "left" and item.build_number:
        return _record_build(release, item.build_number, item.build_url)
    if release.cancel_requested:
        jenkins.cancel_queue_item(release.queue_item_id)
    release_note_progress(release=release, progress=item.why or "Waiting in the Jenkins queue")
    return Step.WAIT


def _fetch_log(release: Release, jenkins: JenkinsClient, until_complete: bool) -> None:
    for _ in range(100):  # bounded: a finished build's log has an end
        chunk = jenkins.console(release.jenkins_job, release.build_number, release.log_offset)
        release_log_append(release=release, chunk=chunk)
        if not until_complete or not chunk.more:
            return


def _step_poll_build(release: Release, jenkins: JenkinsClient) -> Step:
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
        if release_transition(
            release=release,
            to=ReleaseStatus.BUILT,
            actor=WORKER,
            build_result=build.result,
            image_digest=image.digest,
            image_repository=image.repository or release.image_repository,
        ):
            _deploy_after_build(release)
        return Step.DONE
    if build.result == "ABORTED" and release.cancel_requested:
        _cancelled(release, "build stopped on request", build_result=build.result)
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


def _deploy_after_build(release: Release) -> None:
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
        )
    except ReleaseRefused as exc:
        audit_record(
            actor=WORKER,
            action="release.deploy_skipped",
            target=release,
            after={"reason": str(exc)},
        )


def poll_seconds() -> float:
    return float(getattr(settings, "SLIPWAY_POLL_SECONDS", 2.0))


# == deployments ======================================================================

DEPLOYMENT_TERMINAL = {
    DeploymentStatus.SUCCEEDED,
    DeploymentStatus.FAILED,
    DeploymentStatus.ROLLED_BACK,
    DeploymentStatus.CANCELLED,
}


def helm_for(deployment: Deployment) -> Helm:
    cluster = deployment.target.cluster
    return Helm(cluster.kubeconfig.reveal(), cluster.context)


def rollout_watcher_for(deployment: Deployment) -> RolloutWatcher:
    cluster = deployment.target.cluster
    return RolloutWatcher(cluster.kubeconfig.reveal(), cluster.context)


def _previous_environment(service: Service, environment: Environment) -> Environment | None:
    return (
        Environment.objects.filter(targets__service=service, order__lt=environment.order)
        .order_by("-order")
        .first()
    )


def release_promotion_target(*, release: Release) -> Environment | None:
    """Where a built release may go next: the first environment on its service's path
    that it has not succeeded in yet (the order deployment_start enforces)."""
    if release.status != ReleaseStatus.BUILT:
        return None
    done = set(
        release.deployments.filter(status=DeploymentStatus.SUCCEEDED).values_list(
            "environment_id", flat=True
        )
    )
    path = Environment.objects.filter(targets__service=release.service_id).order_by("order")
    return next((environment for environment in path if environment.pk not in done), None)


def deployment_start(
    *,
    release: Release,
    environment: Environment,
    actor: Actor,
    user=None,
    kind: str = "deploy",
    context: RequestContext | None = None,
) -> Deployment:
    """Deploy a built release to an environment: the same image digest, never a rebuild.

    Promotion rule: a release reaches an environment only after it succeeded in the one
    before it (by order). A rollback redeploys a release that once succeeded there.
    """
    if release.status != ReleaseStatus.BUILT:
        raise ReleaseRefused(
            f"Release #{release.pk} is {release.get_status_display().lower()}, "
            "not built: only a built release can be deployed."
        )
    target = (
        DeploymentTarget.objects.select_related("cluster")
        .filter(service=release.service_id, environment=environment)
        .first()
    )
    if target is None:
        raise ReleaseRefused(f"{release.service.name} has no target in {environment.name}.")
    succeeded = Deployment.objects.filter(release=release, status=DeploymentStatus.SUCCEEDED)
    if kind == "rollback":
        if not succeeded.filter(environment=environment).exists():
            raise ReleaseRefused(
                f"Release #{release.pk} never succeeded in {environment.name}; "
                "a rollback goes back to a release that did."
            )
    else:
        before = _previous_environment(release.service, environment)
        if before is not None and not succeeded.filter(environment=before).exists():
            raise ReleaseRefused(
                f"Release #{release.pk} has not succeeded in {before.name} yet; "
                f"promote it to {environment.name} once it has."
            )
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(
                release=release,
                target=target,
                environment=environment,
                service=release.service,
                requested_by=user,
                kind=kind,
                image=release.image,
                # Protected environments wait for a lead; a lead's rollback does not.
                status=DeploymentStatus.AWAITING_APPROVAL
                if environment.requires_approval and kind != "rollback"
                else DeploymentStatus.PENDING,
            )
            audit_record(
                actor=actor,
                action=f"deployment.{kind}",
                target=deployment,
                context=context,
                after={
                    "release": release.pk,
                    "environment": environment.slug,
                    "image": release.image,
                    "status": deployment.status,
                },
            )
            if deployment.status == DeploymentStatus.PENDING:
                _deploy_on_commit(deployment)
    except IntegrityError as exc:
        active = Deployment.objects.filter(
            service=release.service, environment=environment, status__in=DEPLOYMENT_ACTIVE
        ).first()
        raise DeploymentBusy(
            f"Busy: deployment #{active.pk if active else '?'} of {release.service.name} to "
            f"{environment.name} is still in flight."
        ) from exc
    return deployment


def deployment_role_needed(kind: str) -> str:
    """Developers deploy and promote; rolling an environment back is a lead's call."""
    from portal.choices import Role

    return Role.LEAD if kind == "rollback" else Role.DEVELOPER


def deployment_may_decide(*, deployment: Deployment, user) -> str | None:
    """Why `user` may not approve or reject this deployment, or None if they may."""
    from portal.choices import Role
    from portal.permissions import has_role

    if deployment.status != DeploymentStatus.AWAITING_APPROVAL:
        return f"Deployment #{deployment.pk} is not awaiting approval."
    if not has_role(user, deployment.service, Role.LEAD):
        return f"Only a lead of {deployment.service.team} may approve."
    if deployment.requested_by_id == user.pk:
        return "A lead other than the requester must approve."
    return None


def deployment_decide(
    *,
    deployment: Deployment,
    user,
    approve: bool,
    actor: Actor,
    comment: str = "",
    context: RequestContext | None = None,
) -> Deployment:
    """A lead approves (the deployment starts) or rejects (it is cancelled)."""
    refusal = deployment_may_decide(deployment=deployment, user=user)
    if refusal:
        raise ReleaseRefused(refusal)
    with transaction.atomic():
        to = DeploymentStatus.PENDING if approve else DeploymentStatus.CANCELLED
        reason = "" if approve else f"rejected by {user.get_username()}: {comment}".strip(": ")
        if not deployment_transition(
            deployment=deployment, to=to, actor=actor, reason=reason, context=context
        ):
            raise ReleaseRefused(f"Deployment #{deployment.pk} was decided meanwhile.")
        Approval.objects.create(
            deployment=deployment, decided_by=user, approved=approve, comment=comment[:500]
        )
        if approve:
            _deploy_on_commit(deployment)
    return deployment


def deployment_transition(
    *,
    deployment: Deployment,
    to: str,
    actor: Actor = WORKER,
    reason: str = "",
    context: RequestContext | None = None,
    **fields,
) -> bool:
    """Move a deployment along the transition table; False if it moved on meanwhile."""
    terminal = {"finished_at": timezone.now()} if to in DEPLOYMENT_TERMINAL else {}
    return _guarded_transition(
        deployment,
        to=to,
        actor=actor,
        reason=reason,
        context=context,
        sources=allowed_sources(DEPLOYMENT_TRANSITIONS, to),
        fields={**fields, **terminal},
        unaudited=("progress", "started_at", "finished_at"),
    )


def deployment_note_progress(
    *, deployment: Deployment, progress: dict, quiet_for: float = 0
) -> None:
    beat = timezone.now() + timezone.timedelta(seconds=quiet_for)
    Deployment.objects.filter(pk=deployment.pk).update(progress=progress, heartbeat_at=beat)


def deployment_fail(*, deployment: Deployment, reason: str) -> bool:
    return deployment_transition(deployment=deployment, to=DeploymentStatus.FAILED, reason=reason)


def _deploy_on_commit(deployment: Deployment) -> None:
    from releases.tasks import deployment_advance

    token = str(deployment.run_token)
    transaction.on_commit(lambda: deployment_advance.apply_async((deployment.pk, token)))


def _marker(deployment: Deployment) -> str:
    return f"slipway deployment {deployment.pk}"


def deployment_values(deployment: Deployment) -> list[dict]:
    """Helm values, later ones winning: chart defaults of the service, the environment's
    target values, then the image pinned by digest."""
    release = deployment.release
    return [
        deployment.service.default_values or {},
        deployment.target.values or {},
        image_values(release.image_repository, release.image_digest),
    ]


def deployment_step(*, deployment: Deployment, helm: Helm, watcher: RolloutWatcher) -> Step:
    """Do the one step the deployment's status calls for."""
    step = {
        DeploymentStatus.PENDING: _step_prepare,
        DeploymentStatus.DEPLOYING: _step_upgrade,
        DeploymentStatus.ROLLING_OUT: _step_watch,
    }.get(deployment.status)
    return step(deployment, helm, watcher) if step else Step.DONE


def _stuck_after() -> timezone.timedelta:
    return timezone.timedelta(seconds=float(getattr(settings, "SLIPWAY_HELM_STUCK_SECONDS", 600)))


def _recover(deployment: Deployment, helm: Helm, older_than) -> None:
    target = deployment.target
    recovery = helm.recover_stuck(
        release=target.helm_release_name, namespace=target.namespace, older_than=older_than
    )
    if recovery:
        audit_record(
            actor=WORKER,
            action="helm.recovered",
            target=deployment,
            after={
                "action": recovery.action,
                "from_revision": recovery.from_revision,
                "from_status": recovery.from_status,
                "to_revision": recovery.to_revision,
            },
        )


def _step_prepare(deployment: Deployment, helm: Helm, watcher: RolloutWatcher) -> Step:
    target = deployment.target
    _recover(deployment, helm, _stuck_after())
    current = helm.current(target.helm_release_name, target.namespace)
    previous = current.revision if current and current.status == "deployed" else None
    deployment_transition(
        deployment=deployment,
        to=DeploymentStatus.DEPLOYING,
        previous_revision=previous,
        started_at=timezone.now(),
    )
    return Step.NEXT


def _step_upgrade(deployment: Deployment, helm: Helm, watcher: RolloutWatcher) -> Step:
    target, release = deployment.target, deployment.release
    made = helm.find_revision(target.helm_release_name, target.namespace, _marker(deployment))
    if made is not None and made.status.startswith("pending-"):
        # Our own earlier helm run was killed mid-way: clear it, then upgrade again.
        _recover(deployment, helm, timezone.timedelta(0))
        made = None
    if made is None:
        made = helm.upgrade(
            release=target.helm_release_name,
            namespace=target.namespace,
            chart=deployment.service.chart,
            values=deployment_values(deployment),
            description=f"{_marker(deployment)}: release #{release.pk} {release.image}",
            version=deployment.service.chart_version or None,
        )
    deployment_transition(
        deployment=deployment, to=DeploymentStatus.ROLLING_OUT, helm_revision=made.revision
    )
    return Step.NEXT


def _step_watch(deployment: Deployment, helm: Helm, watcher: RolloutWatcher) -> Step:
    target = deployment.target
    deadline = deployment.started_at + timezone.timedelta(
        seconds=deployment.environment.rollout_timeout_seconds
    )
    budget = max(0.0, min(watch_budget_seconds(), (deadline - timezone.now()).total_seconds()))
    # Silent on purpose while watching: keep the resumer away for the budget.
    deployment_note_progress(deployment=deployment, progress=deployment.progress, quiet_for=budget)
    progress = watcher.watch(
        target.namespace,
        target.helm_release_name,
        budget,
        on_progress=lambda p: deployment_note_progress(deployment=deployment, progress=p.as_dict()),
    )
    deployment_note_progress(deployment=deployment, progress=progress.as_dict())
    if progress.complete:
        deployment_transition(deployment=deployment, to=DeploymentStatus.SUCCEEDED)
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


def watch_budget_seconds() -> float:
    return float(getattr(settings, "SLIPWAY_WATCH_BUDGET_SECONDS", 20.0))


def deployment_resume_stale(*, stale_after_seconds: float) -> list[int]:
    """As release_resume_stale, for deployments a worker was running."""
    return _resume_stale(Deployment, DEPLOYMENT_RUNNING, stale_after_seconds, _deploy_on_commit)
