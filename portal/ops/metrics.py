"""Prometheus metrics: per-process request metrics (multiprocess mode under gunicorn) and
figures read from the database and Redis when scraped, which hold for the whole
deployment (every web pod reports the same, wherever a worker did the work).

Apps add their own collectors with `add_collector` (the release engine does, in
releases/metrics.py), so the core imports nothing of theirs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

import redis
from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily

from portal.audit.reads import last_check
from portal.audit.verification import audit_head
from portal.core import queues

_PROCESS = CollectorRegistry(auto_describe=True)
HTTP_REQUESTS = Counter(
    "slipway_http_requests_total",
    "Requests answered, by view and status.",
    ["view", "method", "status"],
    registry=_PROCESS,
)
HTTP_DURATION = Histogram(
    "slipway_http_request_duration_seconds",
    "Time to answer a request, by view.",
    ["view"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=_PROCESS,
)
_COLLECTORS: list = []


def add_collector(collector) -> None:
    """Register a collector (an object with `collect()`) for /metrics."""
    _COLLECTORS.append(collector)


def observe_request(view: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(view or "unmatched", method, str(status)).inc()
    HTTP_DURATION.labels(view or "unmatched").observe(seconds)


def registry() -> CollectorRegistry:
    """What /metrics shows: every process's request metrics and the collectors' figures."""
    combined = CollectorRegistry(auto_describe=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(combined)
    else:
        combined.register(HTTP_REQUESTS)
        combined.register(HTTP_DURATION)
    for collector in _COLLECTORS:
        combined.register(collector)
    return combined


class Cached:
    """A collector whose figures are computed at most every `seconds` in this process, so
    frequent scrapes never weigh on the database."""

    seconds = 10.0

    def __init__(self, compute: Callable[[], list]) -> None:
        self._compute = compute
        self._at = 0.0
        self._families: list = []

    def collect(self) -> Iterable:
        if time.monotonic() - self._at > self.seconds:
            self._families = self._compute()
            self._at = time.monotonic()
        return self._families

    def describe(self) -> list:
        return []


def _core_families() -> list:
    families = []
    queue = GaugeMetricFamily(
        "slipway_celery_queue_length", "Tasks waiting in each Celery queue.", labels=["queue"]
    )
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
    try:
        for name in queues.ALL:
            queue.add_metric([name], client.llen(name))
        families.append(queue)
    except redis.RedisError:
        pass  # the broker is away: /readyz says so; the other figures still count
    finally:
        client.close()
    head = audit_head()
    events = GaugeMetricFamily(
        "slipway_audit_events", "Events in the audit chain (its head: an anchor over time)."
    )
    events.add_metric([], head["count"])
    last = GaugeMetricFamily("slipway_audit_last_event_id", "Id of the chain's last event.")
    last.add_metric([], head["last_id"])
    families += [events, last]
    check = last_check()
    if check is not None:
        when = GaugeMetricFamily(
            "slipway_audit_last_verification_timestamp_seconds",
            "When the audit chain was last verified.",
        )
        when.add_metric([], check.finished_at.timestamp())
        ok = GaugeMetricFamily(
            "slipway_audit_last_verification_ok", "1 if the last verification found it intact."
        )
        ok.add_metric([], 1 if check.ok else 0)
        families += [when, ok]
    return families


add_collector(Cached(_core_families))
