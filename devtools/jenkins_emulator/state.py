"""The emulated Jenkins's state: jobs, queue items and builds, moved on by a clock.

Time drives everything, as in Jenkins: an item waits out its quiet period, waits for an
executor (or for the job's running build when the job does not allow concurrent builds),
becomes a build, and the build prints its log lines over its duration and finishes.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RESULTS = {"SUCCESS", "UNSTABLE", "FAILURE", "NOT_BUILT", "ABORTED"}
REPORTS = {"artifact-json", "artifact-text", "description", "none"}


@dataclass
class JobConfig:
    """One job as the config file describes it."""

    name: str
    parameters: list[dict[str, str]] = field(default_factory=list)
    quiet_period_seconds: float = 0.5
    duration_seconds: float = 2.0
    result: str = "SUCCESS"
    # Console lines: text, or {"base64": …} for raw bytes (NUL, invalid UTF-8, anything).
    log: list[str | dict[str, str]] = field(
        default_factory=lambda: ["Building...", "Pushing image..."]
    )
    # At most this many console bytes per progressiveText answer (0: all there is), so a
    # test can make a chunk end in the middle of a character.
    max_chunk_bytes: int = 0
    image: str = "registry.local/app"
    report: str = "artifact-json"
    digest: str | None = None
    disabled: bool = False
    concurrent: bool = False
    # The git data Jenkins's git plugin reports, per GIT_REF: {"main": {"sha": …,
    # "timestamp": epoch seconds, "message": …}}. A ref not listed gets a commit made up
    # from the ref's name, committed a minute before the build was queued.
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"job {data.get('name')!r}: unknown keys {sorted(unknown)}")
        job = cls(**data)
        if job.result not in RESULTS:
            raise ValueError(f"job {job.name!r}: result must be one of {sorted(RESULTS)}")
        if job.report not in REPORTS:
            raise ValueError(f"job {job.name!r}: report must be one of {sorted(REPORTS)}")
        for param in job.parameters:
            if "name" not in param:
                raise ValueError(f"job {job.name!r}: every parameter needs a name")
        for line in job.log:
            if isinstance(line, dict):
                base64.b64decode(line["base64"], validate=True)
            elif not isinstance(line, str):
                raise ValueError(f"job {job.name!r}: a log line is text or {{'base64': …}}")
        return job


def _commit_for(job: JobConfig, ref: str, queued: float) -> dict[str, Any]:
    given = job.commits.get(ref)
    if given is not None:
        return {"ref": ref, "message": f"commit on {ref}", **given}
    sha = ref if len(ref) == 40 else hashlib.sha1(f"{job.name}:{ref}".encode()).hexdigest()
    return {"ref": ref, "sha": sha, "timestamp": queued - 60, "message": f"commit on {ref}"}


@dataclass
class Build:
    job: str
    number: int
    queue_id: int
    parameters: dict[str, str]
    user: str
    started: float
    duration: float
    result: str
    lines: list[str | dict[str, str]]
    digest: str
    image: str
    report: str
    finished: float | None = None
    final_result: str | None = None
    aborted_by: str | None = None
    commit: dict[str, Any] = field(default_factory=dict)  # sha, timestamp, message, ref

    def building(self, now: float) -> bool:
        return self.finished is None or now < self.finished

    def console(self, now: float) -> bytes:
        out = [f"Started by user {self.user}".encode()]
        out += [f"[Slipway emulator] {k}={v}".encode() for k, v in sorted(self.parameters.items())]
        end = self.finished if self.finished is not None else self.started + self.duration
        span = max(end - self.started, 1e-6)
        for index, line in enumerate(self.lines):
            shows_at = self.started + span * (index + 1) / (len(self.lines) + 1)
            if (self.aborted_by is None or shows_at <= end) and now >= shows_at:
                out.append(self.expand(line))
        if not self.building(now):
            if self.aborted_by:
                out.append(f"Aborted by {self.aborted_by}".encode())
            if self.final_result in ("SUCCESS", "UNSTABLE"):
                out.append(self.report_line().encode())
            out.append(f"Finished: {self.final_result}".encode())
        return b"\n".join(out) + b"\n"

    def expand(self, line: str | dict[str, str]) -> bytes:
        """Print parameters the way a shell step would ($GIT_REF → main); raw bytes as is."""
        if isinstance(line, dict):
            return base64.b64decode(line["base64"])
        for key, value in sorted(self.parameters.items(), key=lambda kv: -len(kv[0])):
            line = line.replace(f"${key}", value)
        return line.encode()

    def report_line(self) -> str:
        return {
            "artifact-json": "Archiving artifacts: image.json",
            "artifact-text": "Archiving artifacts: image-digest.txt",
            "description": f"Set build description: image {self.image}@{self.digest}",
            "none": "No image reported",
        }[self.report]

    def artifacts(self, now: float) -> dict[str, bytes]:
        if self.building(now) or self.final_result not in ("SUCCESS", "UNSTABLE"):
            return {}
        if self.report == "artifact-json":
            body = f'{{"image": "{self.image}", "digest": "{self.digest}"}}\n'
            return {"image.json": body.encode()}
        if self.report == "artifact-text":
            return {"image-digest.txt": f"{self.image}@{self.digest}\n".encode()}
        return {}

    def description(self, now: float) -> str | None:
        if (
            self.report == "description"
            and not self.building(now)
            and self.final_result in ("SUCCESS", "UNSTABLE")
        ):
            return f"image {self.image}@{self.digest}"
        return None


@dataclass
class QueueItem:
    id: int
    job: str
    parameters: dict[str, str]
    user: str
    queued: float
    ready_at: float
    cancelled: bool = False
    left_at: float | None = None
    build_number: int | None = None


class JenkinsState:
    """All mutable state, behind one lock; `tick()` moves it to the present."""

    def __init__(
        self, jobs: list[JobConfig], executors: int = 2, left_item_ttl_seconds: float = 300.0
    ) -> None:
        self.lock = threading.RLock()
        # Told of each build's phase (STARTED, COMPLETED, FINALIZED): the Notification plugin.
        self.on_build: Callable[[str, Build], None] = lambda phase, build: None
        self.executors = executors
        self.left_item_ttl = left_item_ttl_seconds
        self.reset(jobs)

    def reset(self, jobs: list[JobConfig] | None = None) -> None:
        with self.lock:
            if jobs is not None:
                self.jobs: dict[str, JobConfig] = {job.name: job for job in jobs}
            self.queue: dict[int, QueueItem] = {}
            self.builds: dict[str, dict[int, Build]] = {name: {} for name in self.jobs}
            self.next_build: dict[str, int] = {name: 1 for name in self.jobs}
            self.next_queue_id = 1
            self.requests_seen = 0

    def set_job(self, job: JobConfig) -> None:
        with self.lock:
            self.jobs[job.name] = job
            self.builds.setdefault(job.name, {})
            self.next_build.setdefault(job.name, 1)

    # -- queue ------------------------------------------------------------------------

    def schedule(self, job: str, parameters: dict[str, str], user: str) -> tuple[QueueItem, bool]:
        """Queue a build; an identical waiting item is returned instead (created=False)."""
        with self.lock:
            self.tick()
            for item in self.queue.values():
                if item.left_at is None and item.job == job and item.parameters == parameters:
                    return item, False
            now = time.time()
            item = QueueItem(
                id=self.next_queue_id,
                job=job,
                parameters=parameters,
                user=user,
                queued=now,
                ready_at=now + self.jobs[job].quiet_period_seconds,
            )
            self.next_queue_id += 1
            self.queue[item.id] = item
            return item, True

    def cancel(self, item_id: int) -> bool:
        with self.lock:
            self.tick()
            item = self.queue.get(item_id)
            if item is None or item.left_at is not None:
                return False
            item.cancelled = True
            item.left_at = time.time()
            return True

    def running(self, now: float) -> list[Build]:
        return [b for builds in self.builds.values() for b in builds.values() if b.building(now)]

    def why(self, item: QueueItem, now: float) -> str | None:
        if item.left_at is not None:
            return None
        if now < item.ready_at:
            return f"In the quiet period. Expires in {item.ready_at - now:.1f} sec"
        job = self.jobs[item.job]
        if not job.concurrent:
            for build in self.builds[item.job].values():
                if build.building(now):
                    eta = build.started + build.duration - now
                    return (
                        f"Build #{build.number} is already in progress (ETA: {max(eta, 0):.0f} sec)"
                    )
        if len(self.running(now)) >= self.executors:
            return "Waiting for next available executor"
        return None

    def tick(self) -> None:
        """Finish due builds, start ready items, forget items left long ago."""
        with self.lock:
            now = time.time()
            for builds in self.builds.values():
                for build in builds.values():
                    if build.finished is None and now >= build.started + build.duration:
                        build.finished = build.started + build.duration
                        build.final_result = build.result
                        self._ended(build)
            for item in sorted(self.queue.values(), key=lambda i: i.id):
                if item.left_at is None and self.why(item, now) is None:
                    self._start(item, now)
            for item_id in [
                i.id
                for i in self.queue.values()
                if i.left_at is not None and now - i.left_at > self.left_item_ttl
            ]:
                del self.queue[item_id]

    def _start(self, item: QueueItem, now: float) -> None:
        job = self.jobs[item.job]
        number = self.next_build[item.job]
        self.next_build[item.job] += 1
        digest = (
            job.digest
            or "sha256:"
            + hashlib.sha256(f"{job.name}#{number}#{uuid.uuid4()}".encode()).hexdigest()
        )
        self.builds[item.job][number] = Build(
            job=item.job,
            number=number,
            queue_id=item.id,
            parameters=item.parameters,
            user=item.user,
            started=now,
            duration=job.duration_seconds,
            result=job.result,
            lines=list(job.log),
            digest=digest,
            image=job.image,
            report=job.report,
            commit=_commit_for(job, item.parameters.get("GIT_REF", "main"), item.queued),
        )
        item.left_at = now
        item.build_number = number
        self.on_build("STARTED", self.builds[item.job][number])

    def _ended(self, build: Build) -> None:
        self.on_build("COMPLETED", build)
        self.on_build("FINALIZED", build)

    def stop(self, job: str, number: int, user: str) -> Build | None:
        with self.lock:
            self.tick()
            build = self.builds.get(job, {}).get(number)
            if build is None:
                return None
            now = time.time()
            if build.building(now):
                build.finished = now
                build.final_result = "ABORTED"
                build.aborted_by = user
                self._ended(build)
            return build
