"""The emulator's Jenkins Notification plugin: for each build it starts and ends, it posts
the plugin's JSON (format JSON, protocol HTTP, event "all") to every configured endpoint —
`{name, display_name, url, build: {full_url, number, queue_id, phase, status, url, scm,
parameters, log, notes, artifacts}}` with phase STARTED, then COMPLETED and FINALIZED.
Each post runs on its own thread, so the emulator's clock never waits for a receiver; a
receiver that is down loses the notification (as with the real plugin)."""

from __future__ import annotations

import json
import threading
from urllib.error import URLError
from urllib.request import Request, urlopen

from devtools.jenkins_emulator.state import Build

TIMEOUT_SECONDS = 5


def payload(base_url: str, build: Build, phase: str) -> dict:
    job_path = "".join(f"job/{part}/" for part in build.job.split("/"))
    body = {
        "name": build.job.split("/")[-1],
        "display_name": build.job.split("/")[-1],
        "url": job_path,
        "build": {
            "full_url": f"{base_url}{job_path}{build.number}/",
            "number": build.number,
            "queue_id": build.queue_id,
            "phase": phase,
            "url": f"{job_path}{build.number}/",
            "scm": {"commit": build.commit.get("sha", ""), "branch": build.commit.get("ref", "")},
            "parameters": dict(build.parameters),
            "log": "",
            "notes": "",
            "artifacts": {},
        },
    }
    if phase != "STARTED":
        body["build"]["status"] = build.final_result
    return body


class Notifier:
    def __init__(self, endpoints: list[str] | None = None) -> None:
        self.endpoints: list[str] = list(endpoints or [])
        self.base_url = ""
        self.sent: list[tuple[str, int, str]] = []  # (job, number, phase) posted, for tests

    def __call__(self, phase: str, build: Build) -> None:
        for endpoint in list(self.endpoints):
            body = json.dumps(payload(self.base_url, build, phase)).encode()
            threading.Thread(
                target=self._post, args=(endpoint, body, (build.job, build.number, phase)),
                daemon=True, name="jenkins-emulator-notify",
            ).start()  # fmt: skip

    def _post(self, endpoint: str, body: bytes, what: tuple[str, int, str]) -> None:
        request = Request(endpoint, data=body, method="POST",
                          headers={"Content-Type": "application/json"})  # fmt: skip
        try:
            with urlopen(request, timeout=TIMEOUT_SECONDS):
                self.sent.append(what)
        except (URLError, OSError):
            pass  # the real plugin logs and drops it too
