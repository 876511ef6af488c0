"""The one door to Jenkins: python-jenkins behind small dataclasses and Slipway's errors.

python-jenkins's `get_*` helpers turn every HTTP error into "does not exist", so a 503
while polling would look like a vanished build. This adapter therefore builds Jenkins's
REST paths itself and sends them through the client's `jenkins_open`/`jenkins_request`,
which keep python-jenkins's authentication, crumb handling and session, and keep the
status code, so each error maps to the right outcome (see docs/jenkins.md).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import jenkins
import requests

from doors import egress
from doors.console import decode_console
from portal.core import sizes
from portal.core.errors import DoorError
from portal.core.images import COMMIT_SHA_RE, IMAGE_REFERENCE_RE, is_digest, split_image

CORRELATION_PARAMETER = "SLIPWAY_RELEASE_ID"
# The most one answer may hold (a console chunk is read from where the last one ended).
CONSOLE_BYTES = 32 * 1024 * 1024
# How many recent builds to search for a lost correlation id.
SEARCH_DEPTH = 25


class JenkinsError(DoorError):
    """Base of what the adapter raises; `retryable` says whether trying later may help."""

    retryable = False


class JenkinsUnavailable(JenkinsError):
    """5xx, timeout or connection refused: try again later."""

    retryable = True


class JenkinsAuthFailed(JenkinsError):
    """Jenkins rejected the credentials (401) or refused the action (403)."""


class JenkinsNotFound(JenkinsError):
    """The job, queue item, build or artifact does not exist."""


class JenkinsRejected(JenkinsError):
    """Jenkins refused the request for a reason of its own (400, 409, …)."""


class JenkinsBadAnswer(JenkinsError):
    """Jenkins answered, but not with what its API promises (malformed JSON, missing keys)."""


@dataclass(frozen=True)
class TriggerResult:
    queue_id: int
    existing: bool  # Jenkins answered 303: an identical request was already queued


@dataclass(frozen=True)
class QueueStatus:
    queue_id: int
    state: str  # waiting | blocked | buildable | left | cancelled
    why: str
    build_number: int | None
    build_url: str
    parameters: dict[str, str]


@dataclass(frozen=True)
class BuildStatus:
    number: int
    url: str
    building: bool
    result: str | None
    duration_ms: int
    timestamp_ms: int
    description: str
    artifacts: list[str] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    commit: GitCommit | None = None


@dataclass(frozen=True)
class GitCommit:
    """What the build checked out, as the git plugin reports it."""

    sha: str
    committed_at: datetime | None  # None when the change set does not list it


def git_commit(data: dict[str, Any]) -> GitCommit | None:
    """The git plugin's BuildData `lastBuiltRevision`, and that commit's time from the
    build's change sets (`changeSets[].items[]` for pipelines, `changeSet.items[]` for
    freestyle jobs). None when the build reports no git data."""
    sha = ""
    for action in data.get("actions") or []:
        if isinstance(action, dict) and "lastBuiltRevision" in action:
            sha = str((action.get("lastBuiltRevision") or {}).get("SHA1") or "")
            if sha:
                break
    if not COMMIT_SHA_RE.fullmatch(sha):
        return None
    change_sets = list(data.get("changeSets") or [])
    if isinstance(data.get("changeSet"), dict):
        change_sets.append(data["changeSet"])
    for change_set in change_sets:
        for item in (change_set or {}).get("items") or []:
            if item.get("commitId") == sha and isinstance(item.get("timestamp"), int | float):
                return GitCommit(sha, datetime.fromtimestamp(item["timestamp"] / 1000, tz=UTC))
    return GitCommit(sha, None)


@dataclass(frozen=True)
class ConsoleChunk:
    text: str
    start: int
    next_offset: int
    more: bool


@dataclass(frozen=True)
class ImageReport:
    repository: str
    digest: str
    source: str  # artifact-json | artifact-text | description


def job_path(job: str) -> str:
    """'team/app' → 'job/team/job/app/' (folders), each segment URL-quoted."""
    parts = [p for p in job.split("/") if p]
    if not parts:
        raise JenkinsRejected("empty Jenkins job name")
    return "".join(f"job/{quote(part, safe='')}/" for part in parts)


def _parameters(actions: list[dict[str, Any]] | None) -> dict[str, str]:
    for action in actions or []:
        if action and "parameters" in action:
            return {p["name"]: str(p.get("value", "")) for p in action["parameters"] if p}
    return {}


def parse_image_reference(text: str, default_repository: str = "") -> ImageReport | None:
    """Find `repo@sha256:…` or a bare `sha256:…` in text (kaniko --digest-file, descriptions)."""
    match = IMAGE_REFERENCE_RE.search(text or "")
    if not match:
        return None
    repository = split_image(match.group("repository") or "")[0] or default_repository
    return ImageReport(repository, match.group("digest"), "")


class JenkinsClient:
    """Calls one Jenkins server. Every public method raises only `JenkinsError`s."""

    def __init__(
        self,
        url: str,
        username: str,
        token: str,
        timeout: float = 30,
        before_call: Callable[[], None] | None = None,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self._client = jenkins.Jenkins(self.url, username=username, password=token, timeout=timeout)
        # Every request python-jenkins sends goes through the egress door (its session is
        # the client's only HTTP path).
        egress.mount(self._client._session, deadline=timeout, max_bytes=CONSOLE_BYTES)
        # Runs before each request (the workflow extends its run's lease there).
        self._before_call = before_call or (lambda: None)

    # -- plumbing ---------------------------------------------------------------------

    def _request(self, method: str, path: str, retry_crumb: bool = True) -> requests.Response:
        request = requests.Request(method, self.url + path)
        self._before_call()
        try:
            return self._client.jenkins_request(request)
        except jenkins.NotFoundException as exc:
            raise JenkinsNotFound(f"{path} not found in Jenkins") from exc
        except jenkins.TimeoutException as exc:
            raise JenkinsUnavailable(f"Jenkins timed out: {exc}") from exc
        except jenkins.JenkinsException as exc:
            # python-jenkins folds 401/403/500 into one message that carries the status.
            message = str(exc)
            status = re.search(r"\[(\d{3})\]", message)
            code = int(status.group(1)) if status else 0
            if code == 403 and "No valid crumb" in message and retry_crumb:
                self._client.crumb = None  # the session or crumb expired: fetch a fresh one
                return self._request(method, path, retry_crumb=False)
            if code == 401:
                raise JenkinsAuthFailed("Jenkins rejected Slipway's credentials (401)") from exc
            if code == 403:
                detail = "no valid crumb" if "No valid crumb" in message else "forbidden"
                raise JenkinsAuthFailed(f"Jenkins refused the request (403: {detail})") from exc
            if code >= 500 or code == 0:
                raise JenkinsUnavailable(f"Jenkins unavailable ({code or 'error'})") from exc
            raise JenkinsRejected(message.splitlines()[0]) from exc
        except requests.HTTPError as exc:
            code = exc.response.status_code
            reason = (exc.response.text or exc.response.reason or "").strip().splitlines()
            reason_text = reason[0][: sizes.LINE] if reason else str(code)
            if code >= 500 or code == 429:
                raise JenkinsUnavailable(f"Jenkins unavailable ({code})") from exc
            raise JenkinsRejected(f"Jenkins refused ({code}): {reason_text}") from exc
        except (egress.EgressRefused, egress.EgressUntrusted) as exc:
            raise JenkinsRejected(f"Jenkins at {egress.safe_url(self.url)}: {exc}") from exc
        except egress.EgressFailed as exc:
            raise JenkinsUnavailable(f"Jenkins unreachable: {exc}") from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise JenkinsUnavailable(f"Jenkins unreachable at {self.url}") from exc
        except requests.RequestException as exc:
            raise JenkinsUnavailable(f"Jenkins request failed: {exc}") from exc

    def _json(self, path: str) -> dict[str, Any]:
        response = self._request("GET", path)
        try:
            data = response.json()
        except ValueError as exc:
            start = response.text[:80].strip().replace("\n", " ")
            raise JenkinsBadAnswer(
                f"Jenkins answered {path} with something that is not JSON ({start!r}…)"
            ) from exc
        if not isinstance(data, dict):
            raise JenkinsBadAnswer(f"Jenkins answered {path} with JSON that is not an object")
        return data

    # -- the build step ---------------------------------------------------------------

    def trigger(self, job: str, parameters: dict[str, str]) -> TriggerResult:
        """POST buildWithParameters; return the queue item (ours, or the identical one)."""
        path = f"{job_path(job)}buildWithParameters?{urlencode(parameters)}"
        try:
            response = self._request("POST", path)
        except JenkinsNotFound as exc:
            raise JenkinsNotFound(f"job {job} not found in Jenkins") from exc
        # requests follows a 303 to the existing item; its Location is in the history.
        for step in [*response.history, response]:
            location = step.headers.get("Location", "")
            match = re.search(r"/queue/item/(\d+)/?$", location)
            if match:
                return TriggerResult(int(match.group(1)), existing=step.status_code == 303)
        raise JenkinsRejected(f"Jenkins accepted the build of {job} but named no queue item")

    def queue_item(self, queue_id: int) -> QueueStatus:
        try:
            data = self._json(f"queue/item/{int(queue_id)}/api/json")
        except JenkinsNotFound as exc:
            raise JenkinsNotFound(f"queue item {queue_id} is gone (expired or unknown)") from exc
        executable = data.get("executable") or {}
        if data.get("cancelled"):
            state = "cancelled"
        elif executable.get("number"):
            state = "left"
        elif data.get("blocked"):
            state = "blocked"
        elif data.get("buildable"):
            state = "buildable"
        else:
            state = "waiting"
        return QueueStatus(
            queue_id=int(queue_id),
            state=state,
            why=data.get("why") or "",
            build_number=executable.get("number"),
            build_url=executable.get("url", ""),
            parameters=_parameters(data.get("actions")),
        )

    def find_queued(self, job: str, name: str, value: str) -> int | None:
        """The waiting queue item of `job` whose parameter `name` is `value`, if any."""
        job_name = job.strip("/").split("/")[-1]
        for item in self._json("queue/api/json").get("items", []):
            task = item.get("task") or {}
            if task.get("name") == job_name and _parameters(item.get("actions")).get(name) == value:
                return int(item["id"])
        return None

    def find_build(self, job: str, name: str, value: str) -> BuildStatus | None:
        """The recent build of `job` whose parameter `name` is `value`, if any."""
        try:
            info = self._json(f"{job_path(job)}api/json")
        except JenkinsNotFound as exc:
            raise JenkinsNotFound(f"job {job} not found in Jenkins") from exc
        for ref in (info.get("builds") or [])[:SEARCH_DEPTH]:
            build = self.build(job, ref["number"])
            if build.parameters.get(name) == value:
                return build
        return None

    def build(self, job: str, number: int) -> BuildStatus:
        path = f"{job_path(job)}{int(number)}/api/json"
        data = self._json(path)
        if "number" not in data or "building" not in data:
            raise JenkinsBadAnswer(f"Jenkins answered {path} without the build's number or state")
        return BuildStatus(
            number=int(data["number"]),
            url=data.get("url", ""),
            building=bool(data["building"]),
            result=data.get("result"),
            duration_ms=int(data.get("duration") or 0),
            timestamp_ms=int(data.get("timestamp") or 0),
            description=data.get("description") or "",
            artifacts=[a["relativePath"] for a in data.get("artifacts") or []],
            parameters=_parameters(data.get("actions")),
            commit=git_commit(data),
        )

    def console(self, job: str, number: int, start: int = 0) -> ConsoleChunk:
        """The console from byte `start`; `next_offset` is where to ask next."""
        response = self._request(
            "GET", f"{job_path(job)}{int(number)}/logText/progressiveText?start={int(start)}"
        )
        data = response.content
        more = response.headers.get("X-More-Data") == "true"
        truncated = getattr(response, "slipway_truncated", False)
        text, used = decode_console(data, final=not (more or truncated))
        try:
            size = int(response.headers.get("X-Text-Size", start + len(data)))
        except ValueError:
            size = start + len(data)
        if truncated:
            # Only the first CONSOLE_BYTES came: the next read starts after them.
            size, more = start + len(data), True
        # Offsets are bytes: the next read starts after the bytes this text stands for.
        return ConsoleChunk(
            text=text, start=start, next_offset=size - (len(data) - used), more=more
        )

    def image(
        self, job: str, build: BuildStatus, default_repository: str = ""
    ) -> ImageReport | None:
        """The image the build reports, by digest: image.json, a digest text file, or the
        description, in that order. None when none holds a valid sha256 digest."""
        base = f"{job_path(job)}{build.number}/artifact/"
        if "image.json" in build.artifacts:
            try:
                data = json.loads(self._request("GET", base + "image.json").content)
                digest = str(data.get("digest", ""))
                if is_digest(digest):
                    repo = str(data.get("image") or data.get("repository") or default_repository)
                    return ImageReport(split_image(repo)[0], digest, "artifact-json")
            except (ValueError, AttributeError, JenkinsNotFound):
                pass
        for name in build.artifacts:
            if name.endswith((".txt", "digest")) and "digest" in name:
                try:
                    text = self._request("GET", base + quote(name)).text
                except JenkinsNotFound:
                    continue
                found = parse_image_reference(text, default_repository)
                if found:
                    return ImageReport(found.repository, found.digest, "artifact-text")
        found = parse_image_reference(build.description, default_repository)
        if found:
            return ImageReport(found.repository, found.digest, "description")
        return None

    def stop(self, job: str, number: int) -> None:
        self._request("POST", f"{job_path(job)}{int(number)}/stop")

    def cancel_queue_item(self, queue_id: int) -> None:
        # Older Jenkins answers 404 even when it cancelled (JENKINS-21311).
        with contextlib.suppress(JenkinsNotFound):
            self._request("POST", f"queue/cancelItem?id={int(queue_id)}")
