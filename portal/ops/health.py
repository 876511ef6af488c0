"""Liveness, readiness and metrics for the platform Slipway runs on.

- /healthz: the process answers (no database: a database outage must not restart pods).
- /readyz: the database, Redis and the migrations are there; 503 when not. What each
  check found only for staff or the metrics token (it names hosts and roles).
- /metrics: Prometheus. Not public: a bearer token (SLIPWAY_METRICS_TOKEN) or a client
  address in SLIPWAY_METRICS_ALLOW (loopback by default, nothing in production unless set).
  Per-process request metrics are collected in multiprocess mode under gunicorn
  (PROMETHEUS_MULTIPROC_DIR); the release engine's figures are read from the database at
  scrape time (portal/metrics.py), so every web pod reports the same, wherever the worker
  that did the work ran.
"""

from __future__ import annotations

import hmac
import ipaddress

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from portal.core import sizes
from portal.ops.metrics import registry


def healthz(request):
    """The process answers."""
    return JsonResponse({"status": "ok"})


def _database() -> str:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _migrations() -> str:
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        return f"{len(plan)} not applied: {names}"
    return "ok"


def _redis() -> str:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def readyz(request):
    """Ready to serve: the database, Redis and every migration are there. Anyone learns
    whether (the status code and word); what each check found (host, role, error) only
    staff or the metrics token's holder."""
    checks = {}
    for name, check in (("database", _database), ("redis", _redis)):
        try:
            checks[name] = check()
        except Exception as exc:
            checks[name] = (
                f"unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][: sizes.QUOTE]}"
            )
    if checks["database"] == "ok":
        try:
            checks["migrations"] = _migrations()
        except Exception as exc:
            checks["migrations"] = f"unknown: {type(exc).__name__}"
    else:
        checks["migrations"] = "unknown: the database is unavailable"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "not ready"}
    if _has_metrics_token(request) or (request.user.is_authenticated and request.user.is_staff):
        body["checks"] = checks
    return JsonResponse(body, status=200 if ready else 503)


def _has_metrics_token(request) -> bool:
    token = settings.SLIPWAY_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(header, f"Bearer {token}")


def _allowed(request) -> bool:
    if _has_metrics_token(request):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.SLIPWAY_METRICS_ALLOW
    )


def metrics(request):
    if not _allowed(request):
        return HttpResponse(
            "Metrics need the metrics token (Authorization: Bearer …) or an allowed address.\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
