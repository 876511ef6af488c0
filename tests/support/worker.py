"""A real Celery worker in its own process, pointed at the test database and Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """Start, kill (SIGKILL) and restart a `celery worker` like an operator would."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        log_path: Path,
        queues: str | None = None,
        concurrency: int = 2,
        pool: str = "prefork",
        extra_env: dict[str, str] | None = None,
        beat: bool = False,
    ) -> None:
        # A worker, like the web, has only the runtime role's database URL; and never a
        # pool of connections (its prefork children would share the parent's).
        unwanted = ("MIGRATION_DATABASE_URL", "DATABASE_POOL_MAX_SIZE")
        inherited = {k: v for k, v in os.environ.items() if k not in unwanted}
        self.env = {
            **inherited,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            **(extra_env or {}),
        }
        self.queues = queues
        self.concurrency = concurrency
        self.pool = pool
        self.log_path = log_path
        self.beat = beat
        self.process: subprocess.Popen | None = None
        self._started_at_byte = 0

    def start(self) -> None:
        log = self.log_path.open("ab")
        self._started_at_byte = log.tell()  # a restart appends to the same log
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                # Without -Q a worker takes every queue the app declares (portal/queues.py).
                *(["-Q", self.queues] if self.queues else []),
                "--pool",
                self.pool,
                "--concurrency",
                str(self.concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{os.getpid()}-{time.time()}@%h",
                *(["-B", "-s", str(self.log_path.with_suffix(".beat"))] if self.beat else []),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the worker consumes its queues (its log says "ready."): a task sent before
        waits for the worker's start, which a benchmark must not count as Slipway's time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"the worker exited: {self.log_text()[-2000:]}")
            if b" ready." in self.log_path.read_bytes()[self._started_at_byte :]:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the worker was not ready in {timeout:.0f} s")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool), as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            self._wait_group_gone(self.process.pid)
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            self._wait_group_gone(self.process.pid)
        self.process = None

    @staticmethod
    def _wait_group_gone(pgid: int, timeout: float = 10) -> None:
        # Pool children outlive the main process by a moment, holding database sessions;
        # wait them out so the test database can be dropped.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
