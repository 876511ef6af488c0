"""Pages learn of changes from a server-sent event stream (portal/web/live.py): a change
of a release or deployment reaches a listening stream as topics, a reconnect with
Last-Event-ID gets what it missed, and nobody listens where they may not look.

The stream is read over HTTP from the ASGI live server (uvicorn), as a browser reads it.
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings
from django.test import Client

from portal.access.choices import Role
from releases.choices import DeploymentStatus
from releases.models import Deployment
from releases.transitions import deployment_transition
from tests.factories import BuiltReleaseFactory, ServiceFactory, TeamFactory, member, service_path

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    path = service_path(slug="shop", name="Shop")
    other = ServiceFactory(slug="ledger", name="Ledger", team=TeamFactory(slug="finance"))
    dev = member(path.team, "dev", Role.DEVELOPER)
    release = BuiltReleaseFactory(service=path.service)
    hidden = BuiltReleaseFactory(service=other)
    waiting = Deployment.objects.create(
        release=release,
        environment=path.prod,
        service=path.service,
        status=DeploymentStatus.AWAITING_APPROVAL,
        image=release.image,
    )
    return {"dev": dev, "release": release, "hidden": hidden, "waiting": waiting}


def _session(user) -> requests.Session:
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set(
        settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    return session


class Stream:
    """An open event stream, its events parsed on a thread as they arrive (http.client,
    whose socket the test can shut at once, as a browser's tab closing does)."""

    def __init__(self, session: requests.Session, url: str, **headers) -> None:
        where = urlsplit(url)
        self.connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
        self.connection.request(
            "GET",
            f"{where.path}?{where.query}",
            headers={"Accept": "text/event-stream", "Cookie": cookie, **headers},
        )
        self.response = self.connection.getresponse()
        self.status_code = self.response.status
        self.headers = dict(self.response.getheaders())
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event: dict = {}
        try:
            while line := self.response.readline():
                line = line.decode().rstrip("\r\n")
                if not line:
                    if event:
                        self.events.put(event)
                    event = {}
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    event[field] = value.strip()
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed by the test

    def next(self, kind: str, timeout: float = 15) -> dict:
        while True:
            event = self.events.get(timeout=timeout)
            if event.get("event") == kind:
                return event

    def close(self) -> None:
        self.connection.sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()


def _cancel(deployment: Deployment) -> None:
    assert deployment_transition(deployment=deployment, to=DeploymentStatus.CANCELLED)


def test_a_deployment_that_moves_reaches_an_open_stream_as_topics(live_server, world):
    session = _session(world["dev"])
    stream = Stream(session, f"{live_server.url}/events/?channel=changes&channel=approvals")
    try:
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        stream.next("stream-open")
        _cancel(world["waiting"])
        heard = [json.loads(stream.next("change")["data"]) for _ in range(2)]
    finally:
        stream.close()
    by_channel = {event["channel"]: event["topics"] for event in heard}
    release, deployment = world["release"], world["waiting"]
    assert set(by_channel["changes"]) == {
        f"service-{release.service_id}",
        f"release-{release.pk}",
        f"deployment-{deployment.pk}",
    }
    # It was awaiting approval: every top bar's count may have changed
    assert by_channel["approvals"] == ["approvals"]


def test_a_reconnect_with_last_event_id_gets_what_it_missed_and_nothing_twice(live_server, world):
    release = world["release"]
    prod = world["waiting"].environment
    later = []
    for _ in range(2):
        another = BuiltReleaseFactory(service=release.service)
        later.append(
            Deployment.objects.create(
                release=another,
                environment=prod,
                service=release.service,
                status=DeploymentStatus.QUEUED,
                image=another.image,
            )
        )
    session = _session(world["dev"])
    url = f"{live_server.url}/events/?channel=changes"
    stream = Stream(session, url)
    stream.next("stream-open")
    _cancel(world["waiting"])
    seen = stream.next("change")
    stream.close()
    # While the page is away, two more deployments move
    for deployment in later:
        _cancel(deployment)
    resumed = Stream(session, url, **{"Last-Event-ID": seen["id"]})
    try:
        missed = [json.loads(resumed.next("change")["data"]) for _ in range(2)]
        with pytest.raises(queue.Empty):
            resumed.next("change", timeout=1.5)
    finally:
        resumed.close()
    assert [
        f"deployment-{d.pk}" in event["topics"] for event, d in zip(missed, later, strict=True)
    ] == [True, True]
    assert f"deployment-{world['waiting'].pk}" not in missed[0]["topics"]


def test_nobody_listens_where_they_may_not_look(live_server, world):
    session = _session(world["dev"])
    events = f"{live_server.url}/events/"
    mine, hidden = world["release"].pk, world["hidden"].pk
    # A release of their team's: its console; another team's: refused, by name
    own = session.get(f"{events}?channel=log-{mine}", stream=True, timeout=10)
    assert own.status_code == 200
    own.close()
    other = session.get(f"{events}?channel=log-{hidden}", timeout=10)
    assert other.status_code == 403 and f"log-{hidden}" in other.json()["detail"]
    # Signed out: refused
    assert requests.get(f"{events}?channel=changes", timeout=10).status_code == 403
    # Bad input: a clear 400, never a stream error or a 500
    for query, says in (
        ("", "channel"),
        ("?channel=team-1", "Unknown channel"),
        ("?channel=changes&recover=true", "Unknown parameter"),
        ("?channel=changes&es-meta=x", "Unknown parameter"),
        ("?" + "&".join(f"channel=log-{n}" for n in range(11)), "channel"),
    ):
        answer = session.get(f"{events}{query}", timeout=10)
        assert answer.status_code == 400, query
        assert says in answer.text, (query, answer.text)
