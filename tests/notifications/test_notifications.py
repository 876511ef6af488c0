"""Notifications reach each kind of channel signed as that service checks it, are retried
with backoff by a real worker, are recorded per attempt, and never hold a release."""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.urls import reverse

from notifications.channels import ChannelRefused, channel_create
from notifications.events import EventKind, event_kind
from notifications.models import Attempt, Channel
from notifications.sending import deliver
from portal.access.choices import Role
from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from releases.transitions import WORKER, deployment_fail, release_fail
from tests.factories import BuiltReleaseFactory, TeamFactory, member, service_path
from tests.notifications.receiver import Receiver
from tests.support.http import serving
from tests.support.tarpit import trickle
from tests.support.waiting import wait_until

ALL = list(EventKind.values)


@pytest.fixture
def receiver():
    made = Receiver()
    with serving(made.handler()) as made.url:
        yield made


def _channel(team, kind, url, secret="", events=ALL, name=None):
    return channel_create(
        team=team,
        name=name or kind,
        kind=kind,
        url=url,
        secret=secret,
        events=events,
        actor=WORKER,
    )


def _failed_release(path):
    release = BuiltReleaseFactory(service=path.service, status="building", image_digest="")
    release_fail(release=release, reason="Jenkins says FAILURE")
    return release, AuditEvent.objects.filter(action="release.failed").latest("id")


@pytest.mark.django_db
def test_each_channel_kind_is_signed_and_shaped_as_its_receiver_checks(receiver):
    path = service_path()
    secrets = {"/hook": "whsec-1", "/dingtalk": "SEC-ding-2"}
    receiver.secrets.update(secrets)
    channels = [
        _channel(path.team, "webhook", f"{receiver.url}/hook", secrets["/hook"]),
        _channel(path.team, "slack", f"{receiver.url}/slack/T000/B000/XXXX"),
        _channel(
            path.team, "dingtalk", f"{receiver.url}/dingtalk?access_token=tok", secrets["/dingtalk"]
        ),
        _channel(path.team, "wecom", f"{receiver.url}/wecom?key=k-1"),
    ]
    release, event = _failed_release(path)
    for channel in channels:
        attempt = deliver(channel=channel, event=event, kind="build_failed", number=1, last=False)
        assert (attempt.status, attempt.response_code) == ("sent", 200), attempt.error
    assert receiver.problems == []
    assert [r.path for r in receiver.received] == [
        "/hook",
        "/slack/T000/B000/XXXX",
        "/dingtalk",
        "/wecom",
    ]
    hook = receiver.received[0].json
    assert hook["event"] == "build_failed" and hook["release_id"] == release.pk
    assert hook["reason"] == "Jenkins says FAILURE"
    assert hook["url"].endswith(f"/releases/{release.pk}/")
    assert f"#{release.pk}" in receiver.received[1].json["text"]
    assert receiver.received[2].query["access_token"] == "tok"


@pytest.mark.django_db
def test_a_wrong_secret_is_caught_by_the_receiver(receiver):
    """The receiver's check is real: sign with another secret and it objects."""
    path = service_path()
    receiver.secrets.update({"/hook": "the-right-one", "/dingtalk": "SEC-right"})
    hook = _channel(path.team, "webhook", f"{receiver.url}/hook", "a-wrong-one")
    ding = _channel(path.team, "dingtalk", f"{receiver.url}/dingtalk", "SEC-wrong")
    _, event = _failed_release(path)
    deliver(channel=hook, event=event, kind="build_failed", number=1, last=True)
    deliver(channel=ding, event=event, kind="build_failed", number=1, last=True)
    assert receiver.problems == ["/hook: bad webhook signature", "/dingtalk: bad DingTalk sign"]


@pytest.mark.django_db
def test_dingtalk_and_wecom_refusals_in_a_200_are_failures(receiver):
    path = service_path()
    receiver.script = [(200, b'{"errcode":310000,"errmsg":"sign not match"}')]
    ding = _channel(path.team, "dingtalk", f"{receiver.url}/dingtalk", "SEC-x")
    _, event = _failed_release(path)
    attempt = deliver(channel=ding, event=event, kind="build_failed", number=2, last=False)
    assert attempt.status == "retrying"
    assert attempt.error == "errcode 310000: sign not match"


@pytest.mark.django_db
def test_bad_channels_are_refused_with_a_reason():
    path = service_path()
    with pytest.raises(ChannelRefused, match="needs a secret"):
        _channel(path.team, "webhook", "http://example.test/hook")
    with pytest.raises(ChannelRefused, match="http:// or https://"):
        _channel(path.team, "slack", "ftp://example.test/x")
    with pytest.raises(ChannelRefused, match="unknown: nonsense"):
        _channel(path.team, "slack", "https://hooks.example.test/x", events=["nonsense"])
    assert not Channel.objects.exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_a_worker_delivers_retries_with_backoff_and_a_dead_channel_holds_nothing(
    receiver, celery_worker
):
    path = service_path()
    other = TeamFactory(slug="other", name="Other")
    receiver.secrets["/hook"] = "s3cret"
    receiver.script = [(500, b"oops")]  # the first try fails, the retry succeeds
    hook = _channel(
        path.team, "webhook", f"{receiver.url}/hook", "s3cret", events=["rollout_failed"]
    )
    dead = _channel(
        path.team,
        "slack",
        f"http://127.0.0.1:{_closed_port()}/slack/tok-dead",
        events=["rollout_failed"],
    )
    _channel(path.team, "wecom", f"{receiver.url}/wecom-deployed", events=["deployed"])
    _channel(other, "wecom", f"{receiver.url}/wecom-other-team", name="other")
    release = BuiltReleaseFactory(service=path.service)
    from releases.models import Deployment

    deployment = Deployment.objects.create(
        release=release,
        environment=path.beta,
        service=path.service,
        status="pending",
        image=release.image,
    )
    assert deployment_fail(deployment=deployment, reason="rollout timed out")
    deployment.refresh_from_db()
    assert deployment.status == "failed"  # at once: nothing waits on a channel

    wait_until(
        lambda: Attempt.objects.filter(channel=dead).count() == 3, 30, "3 tries to the dead channel"
    )
    wait_until(
        lambda: Attempt.objects.filter(channel=hook, status="sent").exists(), 30, "the retry"
    )
    tries = list(
        Attempt.objects.filter(channel=hook)
        .order_by("id")
        .values_list("number", "status", "response_code")
    )
    assert tries == [(1, "retrying", 500), (2, "sent", 200)]
    dead_tries = list(
        Attempt.objects.filter(channel=dead).order_by("id").values_list("status", "error")
    )
    assert dead_tries == [("retrying", "could not connect")] * 2 + [("failed", "could not connect")]
    assert receiver.problems == []
    assert {r.path for r in receiver.received} == {
        "/hook"
    }  # not the other kinds, not the other team
    body = receiver.received[-1].json
    assert (body["event"], body["deployment_id"], body["reason"]) == (
        "rollout_failed",
        deployment.pk,
        "rollout timed out",
    )
    assert "tok-dead" not in celery_worker.log_text()


@pytest.mark.django_db(transaction=True)
def test_a_trickling_receiver_holds_one_slot_until_its_deadline_and_nothing_else(
    receiver, celery_worker
):
    # Given a team with a receiver that trickles its answer one byte at a time for ever,
    # and a good one, both told of failed builds
    from portal.tasks import ping

    path = service_path()
    with trickle(interval=0.5) as port:
        slow = _channel(path.team, "slack", f"http://127.0.0.1:{port}/slow", name="slow")
        good = _channel(path.team, "wecom", f"{receiver.url}/good", name="good")
        started = time.monotonic()
        # When a build fails
        _failed_release(path)
        # Then the good receiver hears of it while the slow one is still being read
        wait_until(lambda: receiver.received, 8, "the good receiver's message")
        assert not Attempt.objects.filter(channel=slow).exists()
        # and the default queue (resumes, expiries, anchors) still answers meanwhile
        assert ping.apply_async(("busy?",)).get(timeout=5).startswith("pong:busy?")
        # and the slow delivery ends at the deadline, recorded as a failed try
        first = wait_until(
            lambda: Attempt.objects.filter(channel=slow).first(), 20, "the slow try ending"
        )
    assert first.status == "retrying" and first.error == "no complete answer within 10 s"
    assert 9_500 <= first.duration_ms <= 12_000
    assert time.monotonic() - started < 25
    assert Attempt.objects.get(channel=good).status == "sent"


@pytest.mark.django_db
def test_team_admins_add_channels_members_read_attempts_and_the_url_is_never_shown(
    client, settings
):
    # A chat host the company allows by name (it resolves only inside its network)
    settings.SLIPWAY_EGRESS_ALLOW = [*settings.SLIPWAY_EGRESS_ALLOW, "hooks.slack.test"]
    path = service_path()
    admin = member(path.team, "boss", Role.ADMIN)
    viewer = member(path.team, "watcher", Role.VIEWER)
    page = reverse("team-notifications", args=[path.team.slug])
    add = reverse("team-channel-create", args=[path.team.slug])
    form = {
        "name": "ops",
        "kind": "slack",
        "url": "https://hooks.slack.test/services/T1/B1/SECRETPART",
        "events": ["build_failed", "deployed"],
    }

    client.force_login(viewer)
    assert client.get(page).status_code == 200
    assert client.post(add, form).status_code == 403
    assert not Channel.objects.exists()

    client.force_login(admin)
    response = client.post(add, form, follow=True)
    assert b"Channel ops added." in response.content
    channel = Channel.objects.get()
    assert channel.url.reveal().endswith("SECRETPART") and channel.events == [
        "build_failed",
        "deployed",
    ]
    assert b"SECRETPART" not in client.get(page).content
    created = AuditEvent.objects.get(action="channel.create")
    assert "SECRETPART" not in json.dumps(created.after)
    assert created.after["host"] == "hooks.slack.test"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT url FROM notifications_channel")
        assert "SECRETPART" not in cursor.fetchone()[0]  # encrypted at rest

    change = reverse("team-channel-change", args=[path.team.slug, channel.pk])
    client.post(change, {"action": "pause"})
    channel.refresh_from_db()
    assert not channel.enabled
    client.post(change, {"action": "delete"})
    assert not Channel.objects.exists()
    assert AuditEvent.objects.filter(action__in=["channel.pause", "channel.delete"]).count() == 2


@pytest.mark.django_db
def test_a_request_waiting_for_approval_is_announced_to_the_leads(receiver):
    from releases.deployments import deployment_start
    from tests.factories import succeeded_in

    path = service_path()
    dev = member(path.team, "dev", Role.DEVELOPER)
    release = BuiltReleaseFactory(service=path.service)
    succeeded_in(release, path.beta)
    channel = _channel(path.team, "wecom", f"{receiver.url}/wecom", events=["awaiting_approval"])
    deployment = deployment_start(
        release=release, environment=path.prod, actor=Actor.for_user(dev), user=dev, kind="promote"
    )
    assert deployment.status == "awaiting_approval"
    event = AuditEvent.objects.filter(action="deployment.promote").latest("id")
    assert event_kind(event) == "awaiting_approval"
    assert (
        deliver(channel=channel, event=event, kind="awaiting_approval", number=1, last=True).status
        == "sent"
    )
    text = receiver.received[0].json["markdown"]["content"]
    assert f"#{release.pk} → Prod awaits a lead's approval (asked by dev)" in text


@pytest.mark.django_db
def test_peoples_text_reaches_chat_without_mentions_or_live_links(receiver):
    # Given an override reason written to ping everyone and plant a link
    path = service_path()
    reason = "<!channel> see <https://evil.test/x|the fix> or [this](https://evil.test) @all"
    channels = {
        kind: _channel(path.team, kind, f"{receiver.url}/{kind}", events=["freeze_override"])
        for kind in ("slack", "dingtalk", "wecom")
    }
    release = BuiltReleaseFactory(service=path.service)
    from releases.models import Deployment

    deployment = Deployment.objects.create(
        release=release,
        environment=path.prod, service=path.service, status="pending", image=release.image,
    )  # fmt: skip
    from portal.audit.chain import audit_record

    event = audit_record(
        actor=Actor.system("lead"), action="freeze.override", target=deployment,
        after={"reason": reason},
    )  # fmt: skip
    for channel in channels.values():
        deliver(channel=channel, event=event, kind="freeze_override", number=1, last=True)
    slack, ding, wecom = (r.json for r in receiver.received)
    # Slack: its own escaping, so no <!channel> and no <url|label> survive as markup
    assert "<!channel>" not in slack["text"] and "&lt;!channel&gt;" in slack["text"]
    assert "<https://evil.test" not in slack["text"] and "hxxps[:]//evil.test" in slack["text"]
    # Only Slipway's own link is live
    assert slack["text"].count("<http") == 1 and "|Open in Slipway>" in slack["text"]
    for text in (ding["markdown"]["text"], wecom["markdown"]["content"]):
        assert "](https://evil.test)" not in text and "[this]" not in text
        assert "https://evil.test" not in text and "@all" not in text
        assert text.count("](http") == 1  # [Open in Slipway](…) only
