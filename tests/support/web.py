"""Slipway's web process, and the other servers it talks to, each in a process of its own
as production runs them (the bench's concurrent releases, the connection-pool tests):
started, waited for until they answer, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

from devtools.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def process_answering(
    command: list[str], log: Path, ready_url: str, env: dict | None = None, timeout: float = 60
) -> subprocess.Popen:
    """`command` in a process of its own (its output in `log`), once `ready_url` answers."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env or dict(os.environ),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(command[:3])} exited: {log.read_text()[-2000:]}")
        try:
            with urlopen(ready_url, timeout=2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{' '.join(command[:3])} did not answer {ready_url} in {timeout:.0f} s")


def process_stopped(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class WebProcess:
    """The portal as `make run` serves it: uvicorn over portal.asgi (which gives it its
    pool of database connections), with the runtime role's database URL only."""

    def __init__(self, log: Path, *, workers: int = 1, env: dict[str, str] | None = None):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        inherited = {k: v for k, v in os.environ.items() if k != "MIGRATION_DATABASE_URL"}
        self.process = process_answering(
            [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--no-access-log",
             "--log-level", "warning"],
            log,
            f"{self.url}/healthz",
            {**inherited, "DJANGO_SETTINGS_MODULE": "portal.settings", **(env or {})},
        )  # fmt: skip

    def stop(self) -> None:
        process_stopped(self.process)
