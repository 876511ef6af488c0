"""Change tickets against a local receiver that checks each request's shape and answers
like ServiceNow's Table API (and like a signed webhook receiver)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from devtools.change_receiver import SN_TIME, serve
from portal.access.choices import Role
from portal.audit.models import AuditEvent
from releases.changes import change_tell
from releases.models import ChangeSystem, Deployment
from tests.factories import BuiltReleaseFactory, member_clients, service_path, succeeded_in
from tests.support.scripted import decide, request

pytestmark = pytest.mark.django_db
PASSWORD = "sn-pass-123"


@pytest.fixture
def receiver():
    server, state = serve(user="slipway", password=PASSWORD, secret="hook-secret")
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


@pytest.fixture
def world(receiver):
    url, state = receiver
    path = service_path(image_repository="reg/app")
    system = ChangeSystem.objects.create(
        environment=path.prod,
        name="ServiceNow (test)",
        kind="servicenow",
        url=url,
        username="slipway",
        secret=PASSWORD,
        assignment_group="Platform CAB",
    )
    api = member_clients(path.team, {"dev": Role.DEVELOPER, "lead1": Role.LEAD, "lead2": Role.LEAD})
    release = BuiltReleaseFactory(service=path.service, ref="v2.0.0")
    succeeded_in(release, path.beta)
    return {"url": url, "receiver": state, "system": system, "release": release, "api": api}


def _promote(world, who="dev", **body):
    return request(world["api"][who], world["release"], "prod", **body)


def _control(world, number: str, action: str, **body) -> None:
    answer = requests.post(f"{world['url']}/_receiver/changes/{number}/{action}", json=body)
    assert answer.status_code == 200, answer.text


def test_a_tickets_life_from_request_to_close(world):
    created = _promote(world)
    assert created.status_code == 201, created.content
    ticket = created.json()["change_ticket"]
    assert (ticket["number"], ticket["state"], ticket["approval"]) == (
        "CHG0030001",
        "new",
        "requested",
    )
    [opened] = world["receiver"].requests
    assert (opened["method"], opened["path"]) == ("POST", "/api/now/table/change_request")
    assert "sysparm_display_value=false" in opened["query"]
    body = opened["body"]
    assert body["type"] == "normal" and body["assignment_group"] == "Platform CAB"
    assert "App v2.0.0 to Prod" in body["short_description"]
    assert world["release"].image_digest in body["description"]
    start = datetime.strptime(body["start_date"], SN_TIME).replace(tzinfo=UTC)
    end = datetime.strptime(body["end_date"], SN_TIME).replace(tzinfo=UTC)
    assert end - start == timedelta(hours=4)
    pk = created.json()["id"]

    # The lead approves before the change is approved: refused, the request waits.
    early = decide(world["api"]["lead1"], pk)
    assert early.status_code == 409
    assert "CHG0030001 is not approved in ServiceNow (test) yet" in early.json()["detail"]
    assert Deployment.objects.get(pk=pk).status == "awaiting_approval"
    assert world["receiver"].requests[-1]["method"] == "GET"

    _control(world, "CHG0030001", "approve")
    approved = decide(world["api"]["lead1"], pk)
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "pending"
    assert approved.json()["change_ticket"]["approval"] == "approved"

    # The worker tells the change it started and how it ended.
    assert change_tell(pk, "deploying") == "implement"
    assert change_tell(pk, "succeeded") == "close"
    [change] = requests.get(f"{world['url']}/_receiver/changes").json()["changes"]
    assert (change["state"], change["close_code"]) == ("3", "successful")
    assert change["work_notes_history"] == [f"Slipway deployment #{pk}: Running helm upgrade."]
    assert f"Slipway deployment #{pk}" in change["close_notes"]
    closed = AuditEvent.objects.get(action="change.closed", target_id=str(pk))
    assert closed.after == {"number": "CHG0030001", "outcome": "successful", "state": "closed"}
    assert change_tell(pk, "failed") == "nothing to tell"  # closed once, never again


def test_a_ticket_refused_by_the_receiver_blocks_the_promotion_with_its_reason(world):
    requests.post(
        f"{world['url']}/_receiver/refuse", json={"message": "Change freeze: CAB meets Monday"}
    )
    refused = _promote(world)
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "ServiceNow (test) refused the change request, so nothing was requested: HTTP 403: "
        "Operation Failed: Change freeze: CAB meets Monday"
    )
    assert not Deployment.objects.filter(environment__slug="prod").exists()
    world["system"].secret = "wrong password"
    world["system"].save()
    unauthorised = _promote(world)
    assert unauthorised.status_code == 400
    assert "HTTP 401: User Not Authenticated" in unauthorised.json()["detail"]
    assert PASSWORD not in unauthorised.content.decode()


def test_a_rejection_cancels_the_change_and_the_window_is_kept(world):
    pk = _promote(world).json()["id"]
    late = (datetime.now(UTC) + timedelta(hours=2)).strftime(SN_TIME)
    later = (datetime.now(UTC) + timedelta(hours=3)).strftime(SN_TIME)
    _control(world, "CHG0030001", "approve")
    _control(world, "CHG0030001", "window", start=late, end=later)
    waits = decide(world["api"]["lead1"], pk)
    assert waits.status_code == 409 and "CHG0030001's window opens at" in waits.json()["detail"]
    _control(world, "CHG0030001", "reject")  # the CAB changes its mind: no approving it now
    refused = decide(world["api"]["lead1"], pk)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "Change CHG0030001 was rejected in ServiceNow (test) (approval: rejected, state: "
        "canceled), so this request cannot start: reject it here and request again for a new "
        "change."
    )
    rejected = decide(world["api"]["lead2"], pk, "reject", comment="not tonight")
    assert rejected.json()["status"] == "cancelled"
    assert change_tell(pk, "cancelled") == "cancel"
    [change] = requests.get(f"{world['url']}/_receiver/changes").json()["changes"]
    assert change["state"] == "4"


def test_an_emergency_change_is_a_leads_and_does_not_wait_for_the_ticket(world):
    refused = _promote(world, "dev", emergency_reason="payments down")
    assert refused.status_code == 403 and "Only a lead" in refused.json()["detail"]
    created = _promote(world, "lead1", emergency_reason="payments down since 02:10")
    assert created.status_code == 201, created.content
    assert created.json()["change_ticket"]["emergency"] is True
    assert world["receiver"].requests[-1]["body"]["type"] == "emergency"
    assert (
        "Emergency: payments down since 02:10."
        in world["receiver"].requests[-1]["body"]["description"]
    )
    pk = created.json()["id"]
    reads = len(world["receiver"].requests)
    approved = decide(world["api"]["lead2"], pk)
    assert approved.json()["status"] == "pending"
    assert len(world["receiver"].requests) == reads  # not read back: it does not wait
    emergency = AuditEvent.objects.get(action="change.emergency", target_id=str(pk))
    assert emergency.after["reason"] == "payments down since 02:10"


def test_the_signed_webhook_kind(world):
    system = world["system"]
    system.kind, system.url, system.secret = "webhook", f"{world['url']}/webhook", "hook-secret"
    system.save()
    created = _promote(world)
    assert created.status_code == 201, created.content
    sent = world["receiver"].requests[-1]
    assert sent["path"] == "/webhook" and sent["body"]["event"] == "create"
    assert created.json()["change_ticket"]["number"] == "CHG0030001"
    system.secret = "not the shared one"
    system.save()
    Deployment.objects.filter(pk=created.json()["id"]).update(status="cancelled")
    refused = _promote(world)
    assert refused.status_code == 400 and "HTTP 401: bad signature" in refused.json()["detail"]
    assert json.dumps(refused.json()).count("not the shared one") == 0


def test_the_demo_desk_approves_as_changes_are_made_and_keeps_them_across_a_restart(
    world, tmp_path
):
    # `make run`'s desk: a board that approves each normal change when it is made, and a
    # state file, so a change opened before a restart is started and closed after it.
    state_file = tmp_path / "changes.json"
    server, _ = serve(user="slipway", password=PASSWORD, auto_approve=True, state_file=state_file)
    system = world["system"]
    system.url = f"http://127.0.0.1:{server.server_address[1]}"
    system.save()
    created = _promote(world)
    assert created.status_code == 201, created.content
    assert created.json()["change_ticket"]["approval"] == "approved"
    pk = created.json()["id"]
    approved = decide(world["api"]["lead1"], pk)
    assert approved.status_code == 200 and approved.json()["status"] == "pending"
    server.shutdown()
    server.server_close()

    again, kept = serve(user="slipway", password=PASSWORD, state_file=state_file)
    try:
        system.url = f"http://127.0.0.1:{again.server_address[1]}"
        system.save()
        assert change_tell(pk, "deploying") == "implement"
        assert change_tell(pk, "succeeded") == "close"
        [change] = kept.changes.values()
        assert (change["number"], change["state"]) == ("CHG0030001", "3")
        # The board is the desk's setting: switched off, the next change waits for it, and
        # its number follows the ones kept.
        requests.post(f"{system.url}/_receiver/auto-approve", json={"on": True})
        off = requests.post(f"{system.url}/_receiver/auto-approve", json={"on": False})
        assert off.json() == {"auto_approve": False}
        window = datetime.now(UTC).strftime(SN_TIME)
        nxt = kept.create({"type": "normal", "short_description": "next", "description": "d",
                           "start_date": window, "end_date": window})  # fmt: skip
        assert (nxt["number"], nxt["approval"]) == ("CHG0030002", "requested")
        state_file.write_text('{"changes": ')  # cut short: the desk still starts
        broken, empty = serve(password=PASSWORD, state_file=state_file)
        broken.shutdown()
        broken.server_close()
        assert (empty.changes, empty.counter) == ({}, 30000)
    finally:
        again.shutdown()
        again.server_close()
