"""A real Prometheus for the tests (Debian's `prometheus`, installed by `make test`) that
scrapes a real Pushgateway (`prometheus-pushgateway`) every second: a test pushes the
metrics a service would export, waits until Prometheus has them, and the gates query
Prometheus's own HTTP API. Every query Prometheus answered is in its query log."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from devtools.services import free_port

CONFIG = """global:
  scrape_interval: 1s
  evaluation_interval: 1s
  query_log_file: {query_log}
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{pushgateway_port}"]
"""


@dataclass
class LocalPrometheus:
    root: Path
    port: int = field(default_factory=free_port)
    pushgateway_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def query_log(self) -> Path:
        return self.root / "queries.log"

    def start(self) -> LocalPrometheus:
        config = self.root / "prometheus.yml"
        config.write_text(
            CONFIG.format(query_log=self.query_log, pushgateway_port=self.pushgateway_port)
        )
        log = (self.root / "processes.log").open("ab")
        for command in (
            [
                shutil.which("prometheus-pushgateway") or "prometheus-pushgateway",
                f"--web.listen-address=127.0.0.1:{self.pushgateway_port}",
                # Debian's default persists every push to /var/lib/prometheus, shared by
                # every run: a test would read an earlier run's metrics.
                f"--persistence.file={self.root / 'pushgateway.data'}",
            ],
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
        ):
            self.processes.append(subprocess.Popen(command, stdout=log, stderr=log))
        for url in (f"http://127.0.0.1:{self.pushgateway_port}/-/ready", f"{self.url}/-/ready"):
            self._wait(lambda url=url: requests.get(url, timeout=2).ok, f"{url} ready")
        return self

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)

    @staticmethod
    def _wait(check, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"Prometheus: no {what} within {timeout} s")

    def push(self, job: str, metrics: str) -> None:
        """Replace `job`'s metrics on the Pushgateway (the text exposition format)."""
        answer = requests.put(
            f"http://127.0.0.1:{self.pushgateway_port}/metrics/job/{job}",
            data=metrics.encode(),
            timeout=5,
        )
        answer.raise_for_status()

    def value(self, query: str) -> str | None:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5)
        result = answer.json()["data"]["result"]
        return result[0]["value"][1] if result else None

    def scraped(self, query: str, value: str) -> None:
        """Wait until `query` answers `value`: Prometheus has scraped what was pushed."""
        self._wait(lambda: self.value(query) == value, f"{query} = {value}")

    def queries(self) -> list[str]:
        """The queries Prometheus answered, oldest first (its query log)."""
        if not self.query_log.exists():
            return []
        lines = self.query_log.read_text().splitlines()
        return [json.loads(line)["params"]["query"] for line in lines if line.strip()]


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory):
    if not shutil.which("prometheus") or not shutil.which("prometheus-pushgateway"):
        pytest.fail(
            "prometheus or prometheus-pushgateway is missing: `make test` installs Debian's"
        )
    server = LocalPrometheus(tmp_path_factory.mktemp("prometheus")).start()
    yield server
    server.stop()
