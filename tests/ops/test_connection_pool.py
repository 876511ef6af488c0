"""The web process's database connections under a burst: with DATABASE_POOL_MAX_SIZE the
requests in flight share that many connections (each used to open its own, and a burst of
200 releases exhausted PostgreSQL's max_connections into 500s); a database that refuses
is a 503 the caller may retry, never a 500."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from django.db.utils import OperationalError
from django.test import Client
from rest_framework.test import APIRequestFactory

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.web.drf import problem_exception_handler
from tests.conftest import database_url_for
from tests.factories import BuiltReleaseFactory, UserFactory, member, service_path
from tests.support.web import WebProcess


@pytest.fixture
def pooled_server(tmp_path):
    """The portal as the Procfile serves it (portal.asgi turns the pool on), with a pool of
    2 connections, on the test database."""
    web = WebProcess(
        tmp_path / "web.log",
        env={
            "DATABASE_URL": database_url_for(connection.settings_dict["NAME"]),
            "DATABASE_POOL_MAX_SIZE": "2",
            "DATABASE_POOL_TIMEOUT": "3",
            "ALLOWED_HOSTS": "127.0.0.1",
        },
    )
    yield web.url
    web.stop()


def _connections(database: str, user: str, test_pid: int) -> int:
    """The server's connections: the database's, but this test's two (its thread's, and
    the watching thread's own)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s"
            " AND pid <> pg_backend_pid() AND pid <> %s",
            [database, user, test_pid],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_api_calls_shares_the_pools_connections(pooled_server):
    token = token_issue(user=UserFactory(), name="burst", scopes=TokenScope.values)[1]
    database, user = connection.settings_dict["NAME"], connection.settings_dict["USER"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        test_pid = cursor.fetchone()[0]
    before = _connections(database, user, test_pid)
    most, done = before, threading.Event()

    def watch():
        nonlocal most
        try:
            while not done.is_set():
                most = max(most, _connections(database, user, test_pid))
                time.sleep(0.005)
        finally:
            connection.close()  # this thread's own

    watcher = threading.Thread(target=watch)
    watcher.start()

    def call(_):
        return requests.get(
            f"{pooled_server}/api/v1/releases/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).status_code

    try:
        with ThreadPoolExecutor(max_workers=30) as pool:
            statuses = list(pool.map(call, range(60)))
    finally:
        done.set()
        watcher.join()
    assert statuses == [200] * 60
    # The web process held at most its pool's two (plus none per request in flight).
    assert most - before <= 2, most - before


def test_a_database_that_refuses_is_a_503_to_retry():
    request = APIRequestFactory().get("/api/v1/releases/")
    refused = OperationalError("couldn't get a connection after 10.00 sec")
    response = problem_exception_handler(refused, {"request": request, "view": None})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.data["title"] == "Service unavailable"
    assert "try again" in response.data["detail"]
    assert "connection" not in response.data["detail"]  # the driver's words stay inside


@pytest.mark.django_db(transaction=True)
def test_open_pages_listening_hold_no_connection(pooled_server):
    """Three pages follow changes and a release's log: more streams than the pool has
    connections. An open stream gives its request's connection back (it reads Redis, not
    PostgreSQL), so the API still answers."""
    release = BuiltReleaseFactory(service=service_path().service)
    viewer = member(release.service.team, "viewer", Role.DEVELOPER)
    browser = Client()
    browser.force_login(viewer)
    cookie = {"sessionid": browser.cookies["sessionid"].value}
    token = token_issue(user=viewer, name="t", scopes=TokenScope.values)[1]
    streams = []
    try:
        for _ in range(3):
            stream = requests.get(
                f"{pooled_server}/events/?channel=changes&channel=log-{release.pk}",
                cookies=cookie, stream=True, timeout=10,
            )  # fmt: skip
            assert stream.status_code == 200
            assert b"stream-open" in next(stream.iter_content(4096))
            streams.append(stream)
        statuses = [
            requests.get(
                f"{pooled_server}/api/v1/releases/",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ).status_code
            for _ in range(5)
        ]
    finally:
        for stream in streams:
            stream.close()
    assert statuses == [200] * 5
