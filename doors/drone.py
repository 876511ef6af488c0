"""The door to Drone (the API of drone/drone v2, `handler/api/`), for building only.

- start: `POST /api/repos/{owner}/{name}/builds?branch=&commit=&KEY=VALUE` answers the build
  at once (its `number`; no queue item as in Jenkins); extra query parameters become the
  build's `params` (Slipway sends its release id as SLIPWAY_RELEASE, to find a build again);
- follow: `GET …/builds/{number}` (status, `stages[].steps[]`), `GET …/builds?page=` (the
  newest builds, to find one by its params);
- step logs: `GET …/builds/{number}/logs/{stage}/{step}`, a JSON array of `{pos, out,
  time}` lines (404 until Drone has stored them);
- cancel: `DELETE …/builds/{number}`.

Drone's `promote` and `rollback` re-run the pipeline without checking that the parent
passed (and answer 501 in the Apache-licensed build), so Slipway never calls them.
Drone has no artifacts API: the image digest comes from a log line (`SLIPWAY_IMAGE=
repo@sha256:…`, see docs/builds.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import requests

from doors import egress
from portal.core.errors import DoorError

CORRELATION_PARAMETER = "SLIPWAY_RELEASE"
IMAGE_LINE = re.compile(r"SLIPWAY_IMAGE=([^\s@]+)@(sha256:[0-9a-f]{64})\b")
# Drone's statuses (core/status.go) and what they mean for a release.
RUNNING = ("pending", "running", "blocked", "waiting_on_dependencies")
PASSED = "success"


class DroneError(DoorError):
    retryable = False


class DroneUnavailable(DroneError):
    """Drone did not answer, or answered 5xx: try again later."""

    retryable = True


class DroneAuthFailed(DroneError):
    pass


class DroneNotFound(DroneError):
    pass


class DroneRejected(DroneError):
    """A 4xx other than 401/403/404: Drone refused what was asked, with its message."""


@dataclass(frozen=True)
class DroneStep:
    stage: int
    number: int
    name: str
    status: str
    exit_code: int
    error: str = ""


@dataclass(frozen=True)
class DroneBuild:
    number: int
    status: str
    error: str
    after: str  # the commit built
    ref: str
    link: str
    params: dict[str, str]
    timestamp: int  # when the commit was made (Drone's hook timestamp)
    created: int
    started: int
    finished: int
    steps: list[DroneStep] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status in RUNNING


@dataclass(frozen=True)
class DroneImage:
    repository: str
    digest: str


def image_from_log(text: str) -> DroneImage | None:
    """The last `SLIPWAY_IMAGE=repo@sha256:…` line a build printed."""
    found = IMAGE_LINE.findall(text)
    if not found:
        return None
    repository, digest = found[-1]
    return DroneImage(repository, digest)


def _build(data: dict) -> DroneBuild:
    try:
        steps = [
            DroneStep(
                stage=int(stage["number"]), number=int(step["number"]), name=str(step["name"]),
                status=str(step["status"]), exit_code=int(step.get("exit_code") or 0),
                error=str(step.get("error") or ""),
            )
            for stage in data.get("stages") or []
            for step in stage.get("steps") or []
        ]  # fmt: skip
        return DroneBuild(
            number=int(data["number"]), status=str(data["status"]),
            error=str(data.get("error") or ""), after=str(data.get("after") or ""),
            ref=str(data.get("ref") or ""), link=str(data.get("link") or ""),
            params={str(k): str(v) for k, v in (data.get("params") or {}).items()},
            timestamp=int(data.get("timestamp") or 0),
            created=int(data.get("created") or 0), started=int(data.get("started") or 0),
            finished=int(data.get("finished") or 0), steps=steps,
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise DroneError(f"Drone answered a build Slipway cannot read ({exc})") from exc


class DroneClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        before_call: Callable[[], None] | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.before_call = before_call
        self.session = egress.mount(requests.Session(), deadline=timeout, max_bytes=8 << 20)
        self.session.headers.update({"Authorization": f"Bearer {token}"})

    def _repo(self, repository: str) -> str:
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise DroneRejected(f"{repository!r} is not a Drone repository (owner/name)")
        return f"/api/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def _call(self, method: str, path: str, **kwargs):
        if self.before_call is not None:
            self.before_call()
        try:
            response = self.session.request(
                method, self.base + path, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except (requests.RequestException, egress.EgressError) as exc:
            raise DroneUnavailable(f"Drone did not answer: {exc}") from exc
        if response.status_code >= 500:
            raise DroneUnavailable(f"Drone answered HTTP {response.status_code}")
        if response.status_code in (401, 403):
            raise DroneAuthFailed("Drone refused the token (check the Drone server's token)")
        if response.status_code == 404:
            raise DroneNotFound(_message(response) or "not found in Drone")
        if response.status_code >= 400:
            raise DroneRejected(
                f"Drone refused it (HTTP {response.status_code}): {_message(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise DroneUnavailable("Drone answered something that is not JSON") from exc

    def trigger(self, repository: str, *, branch: str, commit: str = "",
                params: dict[str, str]) -> DroneBuild:  # fmt: skip
        """Start a build of `branch` (or `commit`); the build comes back at once."""
        query = {"branch": branch, **({"commit": commit} if commit else {}), **params}
        return _build(self._call("POST", f"{self._repo(repository)}/builds", params=query))

    def build(self, repository: str, number: int) -> DroneBuild:
        return _build(self._call("GET", f"{self._repo(repository)}/builds/{number}"))

    def find_build(
        self, repository: str, key: str, value: str, pages: int = 3
    ) -> DroneBuild | None:
        """The newest build whose params say key=value (a trigger that was sent but not
        recorded), among the newest pages of builds."""
        for page in range(1, pages + 1):
            listed = self._call("GET", f"{self._repo(repository)}/builds", params={"page": page})
            if not listed:
                return None
            for item in listed:
                if (item.get("params") or {}).get(key) == value:
                    return self.build(repository, int(item["number"]))
        return None

    def step_log(self, repository: str, number: int, stage: int, step: int) -> list[str] | None:
        """A step's stored lines, or None while Drone has none yet."""
        try:
            lines = self._call(
                "GET", f"{self._repo(repository)}/builds/{number}/logs/{stage}/{step}"
            )
        except DroneNotFound:
            return None
        if not isinstance(lines, list):
            raise DroneError("Drone answered a log that is not a list of lines")
        ordered = sorted((line for line in lines if isinstance(line, dict)),
                         key=lambda line: int(line.get("pos") or 0))  # fmt: skip
        return [str(line.get("out", "")) for line in ordered]

    def step_live(
        self, repository: str, number: int, stage: int, step: int, *, seconds: float = 1.0
    ) -> list[str]:
        """The lines a running step has printed so far, from Drone's log stream
        (`GET /api/stream/{owner}/{name}/{number}/{stage}/{step}`, server-sent events that
        replay the step's lines, then follow): read for at most `seconds`."""
        if self.before_call is not None:
            self.before_call()
        repo = self._repo(repository).removeprefix("/api/repos")
        url = f"{self.base}/api/stream{repo}/{number}/{stage}/{step}"
        live = egress.session(deadline=seconds, max_bytes=1 << 20, partial=True)
        live.headers.update(self.session.headers)
        try:
            with live:
                answer = live.get(url, timeout=(self.timeout, seconds))
        except (requests.RequestException, egress.EgressError):
            return []  # no stream now: the stored log follows anyway
        if answer.status_code != 200:
            return []
        lines = []
        for raw in answer.content.decode("utf-8", "replace").split("\n"):
            if raw.startswith("data: ") and raw != "data: eof":
                try:
                    lines.append(str(json.loads(raw[len("data: ") :]).get("out", "")))
                except (ValueError, AttributeError):
                    continue
        return lines

    def cancel(self, repository: str, number: int) -> None:
        try:
            self._call("DELETE", f"{self._repo(repository)}/builds/{number}")
        except DroneRejected as exc:
            if "409" not in str(exc):  # already finished: nothing to cancel
                raise


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message", "")) if isinstance(body, dict) else json.dumps(body)[:200]
