"""Builds through Drone: the steps that follow a release from `POST …/builds` to an image
digest (run by the same `releases.advance` task as Jenkins builds). Everything after
"built, digest known" is shared with Jenkins (builds.release_built).

Where Drone differs from Jenkins, and what Slipway does about it:

- Drone answers the build at once (no queue item): the release goes straight to
  *building*; Drone's `pending` shows as its progress.
- A trigger that reached Drone but was not recorded is found again by its params
  (`SLIPWAY_RELEASE=<release id>`), as Jenkins builds are by their correlation parameter.
- Logs are per step: a running step's lines come from Drone's log stream (server-sent
  events that replay the step's lines, then follow; read for a second per look), a
  finished step's from its stored log; each line is appended to the release's log once
  (`log_cursor` counts them per step), under a `--- step <name>` header, with byte offsets
  like Jenkins's console.
- No artifacts API: the digest is the last `SLIPWAY_IMAGE=repo@sha256:…` line the build
  printed (docs/builds.md) or, without one, the digest the service's registry gives the
  image tagged with the built commit. No digest, no release: Slipway never deploys a tag.
- Statuses: success → built; failure and error → failed with the failed step and the last
  lines; killed → cancelled when Slipway asked, failed otherwise; declined and skipped →
  failed with Drone's word; blocked → waits (someone must approve it in Drone).
"""

from __future__ import annotations

from datetime import UTC, datetime

from doors.drone import (
    CORRELATION_PARAMETER,
    DroneBuild,
    DroneClient,
    DroneImage,
    image_from_log,
)
from doors.jenkins import ConsoleChunk
from doors.registry import ImageNotFound, image_digest_by_tag
from portal.catalog.registries import registry_access
from releases.builds import (
    log_tail,
    record_build,
    release_built,
    release_cancelled,
    release_log_append,
    release_log_text,
    release_wait,
)
from releases.choices import ReleaseStatus
from releases.models import Release
from releases.transitions import Step, lease_keeper, release_note_progress, release_transition

FINISHED_STEP = ("success", "failure", "error", "killed")


def drone_for(release: Release) -> DroneClient:
    server = release.drone_server
    return DroneClient(
        server.url,
        server.token.reveal(),
        timeout=server.timeout_seconds,
        before_call=lease_keeper(release, 2 * server.timeout_seconds + 1),
    )


def drone_step(*, release: Release, drone: DroneClient) -> Step:
    step = {ReleaseStatus.REQUESTED: _step_trigger, ReleaseStatus.BUILDING: _step_poll}.get(
        release.status
    )
    return step(release, drone) if step else Step.DONE


def _link(release: Release, number: int) -> str:
    return f"{release.drone_server.url.rstrip('/')}/{release.drone_repository}/{number}"


def _step_trigger(release: Release, drone: DroneClient) -> Step:
    if release.cancel_requested:
        release_cancelled(release, "cancelled before Drone was called")
        return Step.DONE
    marker = str(release.pk)
    if release.progress:
        # An earlier attempt may have started a build and died before recording it.
        found = drone.find_build(release.drone_repository, CORRELATION_PARAMETER, marker)
        if found is not None:
            return record_build(release, found.number, _link(release, found.number))
    release_note_progress(release=release, progress="Asking Drone to build")
    params = {CORRELATION_PARAMETER: marker, "GIT_REF": release.ref,
              "IMAGE_REPOSITORY": release.image_repository}  # fmt: skip
    commit = release.commit_sha if release.commit_sha == release.ref else ""
    build = drone.trigger(
        release.drone_repository, branch="" if commit else release.ref, commit=commit,
        params=params,
    )  # fmt: skip
    return record_build(release, build.number, _link(release, build.number))


def _append(release: Release, text: str) -> None:
    size = len(text.encode())
    release_log_append(release=release, chunk=ConsoleChunk(
        text=text, start=release.log_offset, next_offset=release.log_offset + size, more=False,
    ))  # fmt: skip


def _read_logs(release: Release, drone: DroneClient, build: DroneBuild) -> None:
    """Each step's lines into the release log, once and in step order: a running step's
    lines as Drone streams them, the rest from its stored log when it ends."""
    cursor = {key: dict(value) for key, value in (release.log_cursor or {}).items()}
    for step in build.steps:
        key = f"{step.stage}/{step.number}"
        seen = cursor.get(key, {"lines": 0, "done": False})
        if seen["done"] or step.status not in (*FINISHED_STEP, "running"):
            continue
        if step.status == "running":
            lines = drone.step_live(release.drone_repository, build.number, step.stage,
                                    step.number)  # fmt: skip
        else:
            lines = drone.step_log(release.drone_repository, build.number, step.stage, step.number)
            if lines is None:
                continue
        new = lines[seen["lines"] :]
        text = "".join(line if line.endswith("\n") else line + "\n" for line in new)
        if key not in cursor:
            text = f"--- step {step.name}\n" + text
        done = step.status in FINISHED_STEP
        if done and step.status != "success":
            text += f"--- step {step.name} ended {step.status} (exit code {step.exit_code})\n"
        if text:
            _append(release, text)
        cursor[key] = {"lines": max(seen["lines"], len(lines)), "done": done}
        Release.objects.filter(pk=release.pk).update(log_cursor=cursor)
        release.log_cursor = cursor


def _step_poll(release: Release, drone: DroneClient) -> Step:
    number = release.build_number
    build = drone.build(release.drone_repository, number)
    _read_logs(release, drone, build)
    if build.running:
        if release.cancel_requested:
            drone.cancel(release.drone_repository, number)
        running = next((s.name for s in build.steps if s.status == "running"), None)
        progress = {
            "blocked": f"Drone build #{number} is blocked: someone must approve it in Drone",
            "pending": f"Drone build #{number} pending",
        }.get(build.status, f"Drone build #{number}: step {running or '…'} running")
        release_note_progress(release=release, progress=progress, lease=release_wait(release))
        return Step.WAIT
    if any(not release.log_cursor.get(f"{s.stage}/{s.number}", {}).get("done")
           for s in build.steps if s.status in FINISHED_STEP):  # fmt: skip
        release_note_progress(release=release, progress=f"Reading the logs of build #{number}")
        return Step.WAIT
    if build.status == "success":
        return _built(release, build)
    if build.status == "killed" and release.cancel_requested:
        release_cancelled(release, "build stopped on request", build_result=build.status)
        return Step.DONE
    release_transition(
        release=release,
        to=ReleaseStatus.FAILED,
        build_result=build.status,
        reason=_failure(release, build),
    )
    return Step.DONE


def _failure(release: Release, build: DroneBuild) -> str:
    failed = next((s for s in build.steps if s.status in ("failure", "error")), None)
    said = {
        "killed": "was killed in Drone",
        "declined": "was declined in Drone",
        "skipped": "was skipped by Drone (its pipeline's conditions)",
        "error": f"ended in error: {build.error or (failed.error if failed else '')}",
    }.get(build.status, "failed")
    where = f" at step {failed.name} (exit code {failed.exit_code})" if failed else ""
    return f"Drone build #{build.number} {said}{where}. Last lines:\n{log_tail(release)}"


def _built(release: Release, build: DroneBuild) -> Step:
    image = image_from_log(release_log_text(release))
    if image is None:
        image = _image_tagged_with_commit(release, build)
    if image is None:
        registry = release.service.registry
        if registry is None:
            where = "and the service has no registry to find its image by commit tag"
        elif not build.after:
            where = f"and Drone named no commit to find its image by in registry {registry.name}"
        else:
            where = (
                f"and registry {registry.name} has no {release.image_repository} tagged with "
                f"commit {build.after[:12]} ({', '.join(_commit_tags(build.after))})"
            )
        release_transition(
            release=release,
            to=ReleaseStatus.FAILED,
            build_result=build.status,
            reason=(
                f"Drone build #{build.number} succeeded but printed no SLIPWAY_IMAGE=repo@sha256:… "
                f"line, {where} (docs/builds.md). Slipway never deploys a tag."
            ),
        )
        return Step.DONE
    commit = {}
    if build.after:
        commit["commit_sha"] = build.after
    if build.timestamp:
        commit["commit_time"] = datetime.fromtimestamp(build.timestamp, UTC)
    return release_built(
        release, number=build.number, repository=image.repository, digest=image.digest,
        result=build.status, commit=commit,
    )  # fmt: skip


def _commit_tags(sha: str) -> list[str]:
    """The tags a pipeline names an image by its commit with, most exact first: the whole
    SHA, then the 12 and 7 characters (`${DRONE_COMMIT_SHA:0:12}`, git's short form)."""
    return list(dict.fromkeys(tag for tag in (sha, sha[:12], sha[:7]) if tag))


def _image_tagged_with_commit(release: Release, build: DroneBuild) -> DroneImage | None:
    """Drone has no artifacts API: without a SLIPWAY_IMAGE line, the image is the one the
    service's registry holds tagged with the commit Drone built, read as its digest now (a
    tag moves; the digest recorded here is what Beta and Prod get). Raises when the registry
    does not answer (retried) or refuses Slipway."""
    registry = release.service.registry
    if registry is None or not build.after:
        return None
    access = registry_access(registry)
    for tag in _commit_tags(build.after):
        try:
            digest = image_digest_by_tag(
                registry=access, image_repository=release.image_repository, tag=tag
            )
        except ImageNotFound:
            continue
        _append(release, f"--- {release.image_repository}:{tag} is {digest} in {registry.name}\n")
        return DroneImage(release.image_repository, digest)
    return None
