"""The one door for outbound HTTP: only public or allowed addresses, the address that was
checked, no redirect, one total deadline, a cap on the body, no secret in a message."""

from __future__ import annotations

import socket
import time

import pytest
from django.conf import settings as django_settings

from doors import egress
from notifications.channels import ChannelRefused, channel_create
from releases.transitions import WORKER
from tests.factories import service_path
from tests.support.http import QuietHandler, serving
from tests.support.tarpit import trickle

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed(settings):
    """Nothing allowed: the door as a production install without SLIPWAY_EGRESS_ALLOW."""
    settings.SLIPWAY_EGRESS_ALLOW = []
    return settings


def _database_port() -> int:
    return int(django_settings.DATABASES["default"]["PORT"])


INTERNAL = [
    ("database on loopback", lambda: f"http://127.0.0.1:{_database_port()}/"),
    ("cloud metadata", lambda: "http://169.254.169.254/latest/meta-data/"),
    ("a private address", lambda: "http://10.20.30.40:8080/hook"),
    ("shared address space", lambda: "http://100.64.0.7/"),
    ("IPv6 loopback", lambda: "http://[::1]:9090/"),
    ("IPv4-mapped loopback", lambda: "http://[::ffff:127.0.0.1]:6443/"),
    ("unspecified", lambda: "http://0.0.0.0:5432/"),
    ("a name resolving to loopback", lambda: "http://localhost:6379/"),
]


@pytest.mark.parametrize(("what", "url"), INTERNAL, ids=[w for w, _ in INTERNAL])
def test_internal_addresses_are_refused_before_any_connection(closed, what, url):
    with pytest.raises(egress.EgressRefused, match="is not a public address"):
        egress.request("GET", url(), deadline=2, max_bytes=1024)
    with pytest.raises(egress.EgressRefused):
        egress.check_destination(url())


@pytest.mark.parametrize(("what", "url"), INTERNAL[:4], ids=[w for w, _ in INTERNAL[:4]])
def test_a_team_admin_cannot_add_a_channel_to_an_internal_address(closed, what, url):
    path = service_path()
    with pytest.raises(ChannelRefused, match=r"Slipway will not send to this URL: .* not a public"):
        channel_create(
            team=path.team, name="x", kind="slack", url=url(), events=["deployed"], actor=WORKER
        )


def test_a_listed_host_or_network_is_allowed(settings):
    settings.SLIPWAY_EGRESS_ALLOW = ["127.0.0.0/8"]

    class Ok(QuietHandler):
        def do_GET(self):
            self.answer(200, b"fine")

    with serving(Ok) as url:
        assert egress.request("GET", url + "/", deadline=5, max_bytes=100).body == b"fine"
        settings.SLIPWAY_EGRESS_ALLOW = ["localhost"]  # by name: the name, not the address
        named = url.replace("127.0.0.1", "localhost")
        assert egress.request("GET", named + "/", deadline=5, max_bytes=100).status == 200
        with pytest.raises(egress.EgressRefused):
            egress.request("GET", url + "/", deadline=5, max_bytes=100)


class _Counting(QuietHandler):
    hits: list[str] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        self.answer(200, b"inside")


def test_a_redirect_to_loopback_is_not_followed(settings):
    settings.SLIPWAY_EGRESS_ALLOW = ["localhost"]
    _Counting.hits = []
    with serving(_Counting) as inside:

        class Redirect(QuietHandler):
            def do_GET(self):
                self.send_response(302)
                self.send_header("Location", inside + "/secret")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with serving(Redirect) as outside:
            public = outside.replace("127.0.0.1", "localhost")
            answer = egress.request("GET", public + "/", deadline=5, max_bytes=100)
            assert answer.status == 302  # the answer is the redirect itself
            # A library's session (python-jenkins, python-dxf) follows redirects: each hop
            # is checked again, and loopback by address is not allowed
            with (
                egress.session(deadline=5, max_bytes=100) as session,
                pytest.raises(egress.EgressRefused),
            ):
                session.get(public + "/")
    assert _Counting.hits == []


def test_the_address_checked_is_the_address_connected_to(settings, monkeypatch):
    """DNS rebinding: the second answer for the name points elsewhere; the door does not
    ask again, it connects to the address it checked."""
    settings.SLIPWAY_EGRESS_ALLOW = ["127.0.0.1/32"]
    real = socket.getaddrinfo
    answers = ["127.0.0.1", "10.255.255.1"]

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            host = answers.pop(0) if len(answers) > 1 else answers[0]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)

    class Ok(QuietHandler):
        def do_GET(self):
            self.answer(200, self.headers["Host"].encode())

    with serving(Ok) as url:
        port = url.rsplit(":", 1)[1]
        answer = egress.request("GET", f"http://rebind.test:{port}/", deadline=3, max_bytes=100)
    assert answer.status == 200
    assert answer.body == f"rebind.test:{port}".encode()  # the name stays in Host


def test_a_trickling_server_is_cut_at_the_total_deadline(settings):
    settings.SLIPWAY_EGRESS_ALLOW = ["127.0.0.1"]
    with trickle(interval=0.2) as port:
        started = time.monotonic()
        with pytest.raises(egress.EgressFailed, match="no complete answer within 1 s"):
            egress.request("GET", f"http://127.0.0.1:{port}/", deadline=1, max_bytes=1024)
        took = time.monotonic() - started
    assert took < 3, f"the deadline held for {took:.1f} s"


def test_the_body_read_is_capped(settings):
    settings.SLIPWAY_EGRESS_ALLOW = ["127.0.0.1"]

    class Huge(QuietHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 1024 * 1024))
            self.end_headers()
            for _ in range(50 * 16):
                self.wfile.write(b"x" * 65536)

    with serving(Huge) as url:
        answer = egress.request("GET", url + "/", deadline=10, max_bytes=100_000)
    assert answer.truncated and len(answer.body) == 100_000


def test_no_message_carries_the_url_or_its_credentials(settings):
    settings.SLIPWAY_EGRESS_ALLOW = ["127.0.0.1"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends
    url = f"http://user:pa55word@127.0.0.1:{port}/hook?key=robot-key-123"
    with pytest.raises(egress.EgressFailed) as failed:
        egress.request("POST", url, body=b"{}", deadline=2, max_bytes=10)
    assert "pa55word" not in str(failed.value) and "robot-key-123" not in str(failed.value)
    assert str(failed.value) == "could not connect"
    assert egress.safe_url(url) == f"http://127.0.0.1:{port}/hook"


class _CutShort(QuietHandler):
    """Promises 100 bytes of body, sends 10, and hangs up."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b'{"number":')
        self.wfile.flush()
        self.close_connection = True

    def do_POST(self):
        self.do_GET()


def test_a_body_cut_short_fails_at_the_door(settings):
    """urllib3's own errors while the body is read (a connection broken mid-body; a read
    that waits too long is the same kind) come out as the door's failure, which every
    caller retries, not as an error no caller expects (a Drone under load failed 5
    releases of 50 so)."""
    settings.SLIPWAY_EGRESS_ALLOW = ["127.0.0.1"]
    with serving(_CutShort) as url, pytest.raises(egress.EgressFailed, match="broken"):
        egress.request("GET", url + "/", deadline=3, max_bytes=1000)


def test_a_drone_that_breaks_off_an_answer_is_unavailable_not_an_unexpected_error(settings):
    from doors.drone import DroneClient, DroneUnavailable

    settings.SLIPWAY_EGRESS_ALLOW = ["127.0.0.1"]
    with serving(_CutShort) as url, pytest.raises(DroneUnavailable):
        DroneClient(url, "token", timeout=3).build("team/app", 1)
