"""Shared fixtures. The services are real: PostgreSQL and Redis started by
`devtools/services.py` (make test does it), a Celery worker in its own process."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlparse, urlunparse

import django_eventstream.eventstream as _eventstream
import pytest
import redis
from django.conf import settings

from portal.celery import app as celery_app
from tests.support.asgi import AsgiLiveServer
from tests.support.worker import WorkerProcess

# Fixtures of the Jenkins emulator, the local cluster and the e2e deployment world.
pytest_plugins = [
    "tests.support.jenkins",
    "tests.support.kube",
    "tests.support.deploy",
    "tests.support.scripted",
    "tests.support.ldap",
    "tests.support.registry",
    "tests.support.prometheus",
]

# Tests get their own Redis database so a `make run` worker never takes their tasks.
TEST_REDIS_DB = 15
_redis = urlparse(settings.REDIS_URL)
TEST_REDIS_URL = urlunparse(_redis._replace(path=f"/{TEST_REDIS_DB}"))
settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = TEST_REDIS_URL
settings.CACHES["default"]["LOCATION"] = TEST_REDIS_URL
# A cache of this run's own (throttle counts, previews), shared with its worker.
TEST_CACHE_PREFIX = f"slipway-test-{uuid.uuid4().hex[:8]}"
settings.CACHES["default"]["KEY_PREFIX"] = TEST_CACHE_PREFIX
celery_app.conf.broker_url = celery_app.conf.result_backend = TEST_REDIS_URL
# Live events: one store with the test worker (the same database of Redis), so ids agree
settings.EVENTSTREAM_REDIS["db"] = TEST_REDIS_DB  # shared with EVENTSTREAM_STORAGE_CONNECTION
_eventstream.redis_client = redis.Redis(**settings.EVENTSTREAM_REDIS)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items) -> None:
    """First the tests that need no binary, then those that need helm (a worker), then
    those that need a cluster or a browser, each group in its own order: `make test`
    builds the binaries in the background meanwhile, helm first."""

    def group(item) -> int:
        names = getattr(item, "fixturenames", ())
        if "kube_binaries" in names or item.get_closest_marker("browser"):
            return 2
        return 1 if "helm_binary" in names else 0

    items.sort(key=group)  # stable: each group keeps its order


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # Outermost, so the wait for the background build is not inside the test's time limit.
    item.config.pluginmanager.get_plugin("tests.support.kube").wait_for_binaries(item)
    yield


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb):
    """The test database is made (and dropped) by the owner role, as a deployment's
    migrate Job makes the real one; the tests themselves run as the app's runtime role,
    which cannot rewrite the audit log. Between tests that commit, the database is made
    again from a template (tests/support/database.py)."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    from portal.ops.db_roles import as_owner
    from tests.support import database

    with django_db_blocker.unblock(), as_owner():
        databases = setup_databases(verbosity=0, interactive=False, keepdb=django_db_keepdb)
        name = connection.settings_dict["NAME"]
        database.make_template(name)
    database.install()
    yield
    with django_db_blocker.unblock(), as_owner():
        teardown_databases(databases, verbosity=0, keepdb=django_db_keepdb)
        database.drop_template(name)


# The tests' own servers (Jenkins emulator, registry, receivers, Prometheus) listen on
# loopback; the egress door lets Slipway call them, as SLIPWAY_EGRESS_ALLOW does for a
# company's internal Jenkins. Tests of the door itself narrow it again.
EGRESS_ALLOW = ["127.0.0.1", "localhost"]
settings.SLIPWAY_EGRESS_ALLOW = EGRESS_ALLOW

# Hashing test passwords with PBKDF2 would cost ~0.25 s per user for nothing.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# The worker runs the release engine at test speed: fast polls, quick resumes.
WORKER_ENV = {
    "SLIPWAY_POLL_SECONDS": "0.2",
    # A Jenkins that notifies is polled this rarely: a test that finishes a build with
    # notifications on finishes it because Jenkins said so.
    "SLIPWAY_POLL_FALLBACK_SECONDS": "600",
    "SLIPWAY_STALE_AFTER_SECONDS": "3",
    "SLIPWAY_RESUME_EVERY_SECONDS": "1",
    "SLIPWAY_RETRY_BASE_SECONDS": "0.3",
    "SLIPWAY_JENKINS_MAX_RETRIES": "5",
    "SLIPWAY_WATCH_BUDGET_SECONDS": "2",
    "SLIPWAY_HELM_STUCK_SECONDS": "1",
    "SLIPWAY_HELM_TIMEOUT_SECONDS": "8",
    "SLIPWAY_CLUSTER_MAX_RETRIES": "2",
    "SLIPWAY_CACHE_PREFIX": TEST_CACHE_PREFIX,
    "SLIPWAY_NOTIFY_ATTEMPTS": "3",
    "SLIPWAY_NOTIFY_BACKOFF_SECONDS": "0.2",
    "SLIPWAY_EGRESS_ALLOW": ",".join(EGRESS_ALLOW),
}


def database_url_for(name: str) -> str:
    db = settings.DATABASES["default"]
    return f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"


@pytest.fixture(scope="session")
def redis_client():
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    return client


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup,
    django_db_blocker,
    redis_client,
    tmp_path_factory,
    helm_binary,
):
    """A real worker process on the test database; tests using it need `transactional_db`.
    It finds helm through SLIPWAY_HELM, as a production worker does."""
    from django.db import connection

    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
    worker = WorkerProcess(
        database_url=database_url_for(name),
        redis_url=TEST_REDIS_URL,
        log_path=tmp_path_factory.mktemp("worker") / "worker.log",
        beat=True,
        extra_env={**WORKER_ENV, "SLIPWAY_HELM": helm_binary},
    )
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = celery_app.control.ping(timeout=1)
        if replies:
            break
    else:
        worker.stop()
        raise RuntimeError("Celery worker did not answer within 60 s:\n" + worker.log_text())
    yield worker
    worker.stop()


@pytest.fixture(autouse=True)
def _settle_runs_before_flush(request):
    """After a test whose transactions really commit (a worker or a live server saw them),
    retire its runs still in flight and wait until no other session is busy in the
    database, so the worker never holds a lock while pytest-django empties the tables."""
    if not {"transactional_db", "live_server"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("transactional_db")  # so this ends before the flush
    yield
    import uuid

    from django.db import connection

    from releases.choices import DEPLOYMENT_OPEN, RELEASE_ACTIVE
    from releases.models import Deployment, Release

    ended = {"status": "cancelled", "status_reason": "the test ended"}
    Release.objects.filter(status__in=RELEASE_ACTIVE).update(run_token=uuid.uuid4(), **ended)
    Deployment.objects.filter(status__in=DEPLOYMENT_OPEN).update(run_token=uuid.uuid4(), **ended)
    deadline = time.monotonic() + 15
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
            )
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.05)


@pytest.fixture(scope="session")
def live_server(django_db_setup):
    """pytest-django's live server, served as production serves it: ASGI under uvicorn
    (tests/support/asgi.py). Its `_live_server_helper` still gives each test that asks
    for it a transactional database."""
    server = AsgiLiveServer()
    yield server
    server.stop()
