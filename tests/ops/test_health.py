"""/healthz, /readyz and /metrics as a platform would probe and scrape them."""

import re

import pytest
from django.db import connection

from portal.ops.metrics import Cached
from tests.factories import BuiltReleaseFactory, UserFactory, service_path, succeeded_in


@pytest.fixture(autouse=True)
def _fresh_figures(monkeypatch):
    monkeypatch.setattr(Cached, "seconds", 0.0)


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_while_the_database_is_down_and_readyz_names_it(client, settings):
    settings.SLIPWAY_METRICS_TOKEN = "metrics-token-0123456789"
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there: PostgreSQL is "down"
    try:
        alive = client.get("/healthz")
        anonymous = client.get("/readyz")
        ready = client.get("/readyz", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}
    # Anyone learns that it is not ready; only the token's holder (or staff) learns why
    assert anonymous.status_code == 503 and anonymous.json() == {"status": "not ready"}
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"].startswith("unavailable: OperationalError")
    assert checks["redis"] == "ok"
    assert checks["migrations"] == "unknown: the database is unavailable"


@pytest.mark.django_db
def test_readyz_names_an_unreachable_redis_and_is_ready_when_all_answer(client, settings):
    assert client.get("/readyz").json() == {"status": "ready"}
    client.force_login(UserFactory(username="ops", is_staff=True))
    assert client.get("/readyz").json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "migrations": "ok"},
    }
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("unavailable: ConnectionError")


@pytest.mark.django_db
def test_metrics_are_not_public(client, settings):
    settings.SLIPWAY_METRICS_TOKEN = "metrics-token-0123456789"
    outside = {"REMOTE_ADDR": "10.9.9.9"}
    assert client.get("/metrics", **outside).status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **outside)
    assert wrong.status_code == 403
    scraped = client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789", **outside
    )
    assert scraped.status_code == 200
    assert scraped["Content-Type"].startswith("text/plain")
    settings.SLIPWAY_METRICS_ALLOW = ["10.9.0.0/16"]
    assert client.get("/metrics", **outside).status_code == 200


def test_in_production_metrics_trust_no_network_unless_told(tmp_path):
    import subprocess
    import sys

    secrets = {
        "SECRET_KEY": "k" * 60,
        "SLIPWAY_ENCRYPTION_KEYS": "Wm9vbWFuYWdlcl9iYXNlNjRfa2V5XzMyX2J5dGVzX18=",
        "SLIPWAY_AUDIT_KEYS": "a" * 40,
    }

    def allowed(**env) -> str:
        import os

        script = "from django.conf import settings; print(settings.SLIPWAY_METRICS_ALLOW)"
        return subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {script}"],
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "SLIPWAY_DEV": "0",
                 **secrets, **env},
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    assert allowed(SLIPWAY_PRODUCTION="1") == "[]"
    assert allowed(SLIPWAY_PRODUCTION="1", SLIPWAY_METRICS_ALLOW="10.0.0.0/8") == "['10.0.0.0/8']"
    assert allowed(SLIPWAY_PRODUCTION="0") == "['127.0.0.1/32', '::1/128']"


def _value(text: str, metric: str, **labels) -> float:
    """The sample `metric{labels}` of a Prometheus text exposition (0 if absent)."""
    for line in text.splitlines():
        match = re.match(r"^([a-z_:]+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != metric:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == {k: str(v) for k, v in labels.items()}:
            return float(match.group(3))
    return 0.0


@pytest.mark.django_db
def test_metrics_count_releases_deployments_durations_and_the_audit_head(client):
    path = service_path()
    release = BuiltReleaseFactory(service=path.service)
    succeeded_in(release, path.beta)
    client.get("/healthz")  # a request counted before (run alone, this test makes the first)
    text = client.get("/metrics").content.decode()
    assert _value(text, "slipway_releases_total", service="app", status="built") == 1
    assert (
        _value(
            text,
            "slipway_deployments_total",
            environment="beta",
            kind="deploy",
            service="app",
            status="succeeded",
        )
        == 1
    )
    for name in (
        "slipway_celery_queue_length",
        "slipway_audit_events",
        "slipway_build_duration_seconds_count",
        "slipway_http_requests_total",
    ):
        assert re.search(rf"^{name}", text, re.M), name
