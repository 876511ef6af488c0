"""A Jenkins emulator: a real HTTP server speaking enough of Jenkins's REST API that the
unmodified python-jenkins client works against it. See docs/jenkins-emulator.md."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from devtools.jenkins_emulator.server import make_server

__all__ = ["JenkinsEmulator"]


class JenkinsEmulator:
    """Run the emulator in a thread of this process (tests) on a free loopback port."""

    def __init__(
        self, config: dict[str, Any] | str | Path, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not isinstance(config, dict):
            config = json.loads(Path(config).read_text())
        self.server = make_server(config, host, port)
        self.emulator = self.server.emulator
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> JenkinsEmulator:
        serve = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="jenkins-emulator"
        )
        # The clock moves builds on even when nobody asks (as Jenkins's executors do).
        tick = threading.Thread(target=self._tick, daemon=True, name="jenkins-emulator-clock")
        self._threads = [serve, tick]
        for thread in self._threads:
            thread.start()
        return self

    def _tick(self) -> None:
        while not self._stopping.wait(0.1):
            self.emulator.state.tick()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def control(self, method: str, path: str, payload: dict | None = None) -> dict:
        """Call the control API over HTTP, as another process would."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = Request(
            f"{self.url}_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def wait_until(self, predicate, timeout: float = 30.0) -> dict:
        """Poll /_emulator/state until predicate(state) holds."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.control("GET", "state")
            if predicate(state) or time.monotonic() > deadline:
                return state
            time.sleep(0.1)
