"""One emulated Jenkins's shared state: its users, jobs, queue and builds, the sessions its
crumbs are tied to, and the faults a test asked it to play."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from devtools.jenkins_emulator.notifications import Notifier
from devtools.jenkins_emulator.state import JenkinsState, JobConfig


@dataclass
class Fault:
    """For the next `count` requests whose path matches: wait `delay` seconds, then answer
    `status` (with `body` and `headers`, if given) instead of handling the request; or
    handle it and hold the answer back `delay_response` seconds (the request took effect,
    the client may have given up). `body` alone answers 200 with it (a malformed reply)."""

    path: str
    status: int | None = None
    delay: float = 0.0
    delay_response: float = 0.0
    count: int = 1
    method: str | None = None
    body: str | None = None
    headers: dict[str, str] | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and re.search(self.path, path)


class Emulator:
    """Shared state of one emulated Jenkins, used by its request handlers."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.users: dict[str, dict[str, str]] = config.get("users", {})
        self.state = JenkinsState(
            [JobConfig.from_dict(job) for job in config.get("jobs", [])],
            executors=int(config.get("executors", 2)),
            left_item_ttl_seconds=float(config.get("left_item_ttl_seconds", 300)),
        )
        # The Notification plugin: where each build's start and end is posted.
        self.notifier = Notifier(config.get("notifications", []))
        self.state.on_build = self.notifier
        self.salt = secrets.token_bytes(16)
        self.sessions: dict[str, str] = {}
        self.faults: list[Fault] = []
        self.lock = threading.Lock()

    def crumb_for(self, session: str, user: str) -> str:
        return hmac.new(self.salt, f"{session}:{user}".encode(), hashlib.sha256).hexdigest()

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(method, path):
                    fault.count -= 1
                    return fault
        return None
