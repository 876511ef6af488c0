"""Running Slipway for real, end to end: JSON logs that follow a click into the worker and
hold no secret, metrics that move with real work, and a worker that outlives its broker
and its database restarting."""

import io
import json
import logging
import subprocess
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection, connections
from rest_framework.test import APIClient

from clusters.models import Cluster
from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.models import AuditEvent
from portal.catalog.models import DeploymentTarget
from portal.ops.metrics import Cached
from releases.models import Release
from tests.factories import member
from tests.ops.test_health import _value
from tests.support.deploy import finished
from tests.support.jenkins import TOKEN, job_config
from tests.support.releases import wait_for_release
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


@pytest.fixture
def ci(world, emulator):
    jenkins = world["jenkins"]
    jenkins.url, jenkins.username, jenkins.api_token = emulator.url, "slipway", TOKEN
    jenkins.save()
    user = member(world["service"].team, "ci", Role.DEVELOPER)
    raw = token_issue(user=user, name="ci", scopes=TokenScope.values)[1]
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _build_and_deploy(ci, request_id: str = "") -> Release:
    headers = {"HTTP_X_REQUEST_ID": request_id} if request_id else {}
    response = ci.post(
        "/api/v1/services/app/releases/",
        {"ref": "main", "deploy_to": "beta"},
        format="json",
        **headers,
    )
    assert response.status_code == 201, response.content
    release = wait_for_release(Release.objects.get(pk=response.json()["id"]), timeout=90)
    assert release.status == "built", release.status_reason
    deployment = finished(wait_until(release.deployments.first, 30, "the Beta deployment"), 90)
    assert deployment.status == "succeeded", deployment.status_reason
    return release


@pytest.fixture
def web_log():
    """What the web side (this process) logs, formatted as the portal formats it."""
    formatter = next(
        h.formatter
        for h in logging.getLogger().handlers
        if type(h.formatter).__name__ == "ProcessorFormatter"
    )
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)
    yield buffer
    logging.getLogger().removeHandler(handler)


def test_json_logs_carry_the_request_id_into_the_worker_and_hold_no_secret(
    ci, web_log, celery_worker, kube_cluster
):
    request_id = f"flow-{uuid.uuid4().hex[:12]}"
    worker_log_start = len(celery_worker.log_text())
    release = _build_and_deploy(ci, request_id)

    web_lines = [json.loads(line) for line in web_log.getvalue().splitlines() if line.strip()]
    [request] = [
        e for e in web_lines if e.get("event") == "request" and e.get("request_id") == request_id
    ]
    assert (request["method"], request["status"]) == ("POST", 201)
    worker_lines = celery_worker.log_text()[worker_log_start:].splitlines()
    events = [json.loads(line) for line in worker_lines if line.startswith("{")]
    assert events, "the worker logs JSON"
    tasks = [e for e in events if e.get("event") == "task" and e.get("request_id") == request_id]
    assert {e["task"] for e in tasks} >= {"releases.advance", "releases.deploy"}
    # The audit events the worker wrote for this release carry the click's request id.
    worker_events = AuditEvent.objects.filter(
        target_type="releases.Release", target_id=str(release.pk), action="release.built"
    )
    assert worker_events.get().request_id == request_id
    # No secret anywhere: the kubeconfig's token, the Jenkins token, stored ciphertext.
    with connection.cursor() as cursor:
        cursor.execute("SELECT kubeconfig FROM clusters_cluster LIMIT 1")
        ciphertext = cursor.fetchone()[0]
    everything = web_log.getvalue() + "\n".join(worker_lines)
    for secret in (kube_cluster.token, TOKEN, ciphertext, ciphertext[:40]):
        assert secret not in everything


def test_metrics_move_after_a_real_build_and_deployment(ci, client, monkeypatch):
    monkeypatch.setattr(Cached, "seconds", 0.0)

    def scrape():
        return client.get("/metrics").content.decode()

    before = scrape()
    _build_and_deploy(ci)
    after = scrape()
    built = {"service": "app", "status": "built"}
    assert _value(after, "slipway_releases_total", **built) == (
        _value(before, "slipway_releases_total", **built) + 1
    )
    deployed = {"service": "app", "environment": "beta", "kind": "deploy", "status": "succeeded"}
    assert _value(after, "slipway_deployments_total", **deployed) == (
        _value(before, "slipway_deployments_total", **deployed) + 1
    )
    assert _value(after, "slipway_build_duration_seconds_count") == (
        _value(before, "slipway_build_duration_seconds_count") + 1
    )
    assert _value(after, "slipway_rollout_duration_seconds_count", environment="beta") == (
        _value(before, "slipway_rollout_duration_seconds_count", environment="beta") + 1
    )


# -- broker and database blips ---------------------------------------------------------


def _restart_redis() -> None:
    url = redis.Redis.from_url(settings.REDIS_URL)
    port = url.connection_pool.connection_kwargs["port"]
    config = url.config_get("dir")["dir"]
    url.shutdown(nosave=True)
    wait_until(lambda: not _answers(port), 10, "redis to stop")
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            config,
            "--pidfile",
            f"{config}/pid",
            "--logfile",
            f"{config}/log",
        ],
        check=True,
    )
    wait_until(lambda: _answers(port), 10, "redis to answer again")


def _answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _restart_postgres() -> None:
    from devtools.services import as_postgres, pg_bindir, pg_dir

    directory = pg_dir()
    # The server's output goes to its log: a pipe it inherited would never close.
    command = [str(pg_bindir() / "pg_ctl"), "-D", str(directory / "data"), "-m", "fast"]
    command += ["-l", str(directory / "log"), "-w", "restart"]
    result = as_postgres(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert result.returncode == 0, (directory / "log").read_text()[-2000:]
    connections.close_all()  # this process's sessions died with it


def _while(status_wanted: str, release_or_deployment):
    def reached():
        release_or_deployment.refresh_from_db()
        return release_or_deployment.status == status_wanted

    wait_until(reached, 60, f"status {status_wanted}")


@pytest.mark.parametrize(
    "restart", [_restart_redis, _restart_postgres], ids=["redis", "postgresql"]
)
def test_the_worker_outlives_a_restart_during_a_build_and_during_a_rollout(
    ci, emulator, world, celery_worker, restart
):
    emulator.control("POST", "jobs", job_config("demo/app", duration_seconds=4))
    DeploymentTarget.objects.filter(environment=world["beta"]).update(
        values={"simulate": "slow-start", "startSeconds": 6}
    )
    response = ci.post(
        "/api/v1/services/app/releases/", {"ref": "main", "deploy_to": "beta"}, format="json"
    )
    release = Release.objects.get(pk=response.json()["id"])
    _while("building", release)
    restart()  # during the build
    release = wait_for_release(release, timeout=120)
    assert release.status == "built", release.status_reason
    deployment = wait_until(release.deployments.first, 60, "the Beta deployment")
    _while("rolling_out", deployment)
    restart()  # during the rollout
    deployment = finished(deployment, 120)
    assert deployment.status == "succeeded", deployment.status_reason
    assert celery_worker.process.poll() is None, celery_worker.log_text()[-3000:]
    assert "Unrecoverable error" not in celery_worker.log_text()
    assert Cluster.objects.exists()
