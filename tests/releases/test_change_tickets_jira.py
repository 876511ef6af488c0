"""Change tickets in Jira Service Management, against a local desk (devtools/jsm_receiver)
that answers JSM's and Jira's REST APIs with their shapes and checks each request: a
change request's life from the promotion to its close, a refusal with Jira's words, a
declined approval, an emergency change, settings an admin left incomplete."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.core.exceptions import ValidationError

from devtools.jsm_receiver import (
    CHANGE_TYPE,
    JIRA_TIME,
    PLANNED_END,
    PLANNED_START,
    REQUEST_TYPE_ID,
    SERVICE_DESK_ID,
    serve,
)
from doors.changes import ChangeRefused
from portal.access.choices import Role
from portal.audit.models import AuditEvent
from releases.changes import change_tell
from releases.models import ChangeSystem, ChangeTicket, Deployment
from tests.factories import BuiltReleaseFactory, member_clients, service_path, succeeded_in
from tests.support.scripted import decide, request

pytestmark = pytest.mark.django_db
TOKEN = "jira-api-token-4e1"
SETTINGS = {"service_desk_id": SERVICE_DESK_ID, "request_type_id": REQUEST_TYPE_ID,
            "planned_start_field": PLANNED_START, "planned_end_field": PLANNED_END,
            "change_type_field": CHANGE_TYPE}  # fmt: skip


@pytest.fixture
def world():
    server, desk = serve(email="slipway@acme.test", token=TOKEN)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    path = service_path(image_repository="reg/app")
    system = ChangeSystem(environment=path.prod, name="Jira (test)", kind="jira", url=url,
                          username="slipway@acme.test", secret=TOKEN, jira=SETTINGS)  # fmt: skip
    system.full_clean()
    system.save()
    api = member_clients(path.team, {"dev": Role.DEVELOPER, "lead1": Role.LEAD, "lead2": Role.LEAD})
    release = BuiltReleaseFactory(service=path.service, ref="v3.1.0")
    succeeded_in(release, path.beta)
    yield {"url": url, "desk": desk, "system": system, "release": release, "api": api}
    server.shutdown()


def _promote(world, who="dev", **body):
    return request(world["api"][who], world["release"], "prod", **body)


def _approve(world, pk: int, who="lead1"):
    return decide(world["api"][who], pk)


def _control(world, key: str, action: str, **body) -> None:
    answer = requests.post(f"{world['url']}/_receiver/requests/{key}/{action}", json=body)
    assert answer.status_code == 200, answer.text


def test_a_jira_change_requests_life_from_promotion_to_close(world):
    created = _promote(world)
    assert created.status_code == 201, created.content
    ticket = created.json()["change_ticket"]
    assert (ticket["number"], ticket["state"], ticket["approval"]) == (
        "CHG-1", "Awaiting CAB approval", "requested",
    )  # fmt: skip
    opened, issue, approvals = world["desk"].requests[:3]
    assert (opened["method"], opened["path"]) == ("POST", "/rest/servicedeskapi/request")
    fields = opened["body"]["requestFieldValues"]
    assert "App v3.1.0 to Prod" in fields["summary"]
    assert world["release"].image_digest in fields["description"]
    assert fields[CHANGE_TYPE] == {"value": "Normal"}
    start = datetime.strptime(fields[PLANNED_START], JIRA_TIME)
    assert datetime.strptime(fields[PLANNED_END], JIRA_TIME) - start == timedelta(hours=4)
    assert (issue["path"], approvals["path"]) == (
        "/rest/api/2/issue/CHG-1", "/rest/servicedeskapi/request/CHG-1/approval",
    )  # fmt: skip
    pk = created.json()["id"]

    early = _approve(world, pk)
    assert early.status_code == 409
    assert "Change CHG-1 is not approved in Jira (test) yet (approval: requested, state: " \
           "Awaiting CAB approval)" in early.json()["detail"]  # fmt: skip
    assert Deployment.objects.get(pk=pk).status == "awaiting_approval"

    _control(world, "CHG-1", "approve")
    approved = _approve(world, pk)
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "pending"
    assert approved.json()["change_ticket"]["state"] == "Awaiting implementation"

    assert change_tell(pk, "deploying") == "implement"
    assert change_tell(pk, "succeeded") == "close"
    [held] = requests.get(f"{world['url']}/_receiver/issues").json()["issues"]
    assert held["status"] == "Completed"
    assert [c["body"] for c in held["comments"]] == [
        f"Slipway deployment #{pk}: Running helm upgrade.",
        f"Slipway deployment #{pk}: Succeeded.",
    ]
    taken = [r["body"]["transition"]["id"] for r in world["desk"].requests
             if r["method"] == "POST" and r["path"].endswith("/transitions")]  # fmt: skip
    assert taken == ["31", "41"]  # Implement, then Complete: found by where they lead
    closed = AuditEvent.objects.get(action="change.closed", target_id=str(pk))
    assert closed.after == {"number": "CHG-1", "outcome": "successful", "state": "Completed"}


def test_a_request_jira_refuses_blocks_the_promotion_with_jiras_words(world):
    requests.post(f"{world['url']}/_receiver/refuse", json={"message": "Change freeze until 5 Jan"})
    refused = _promote(world)
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "Jira (test) refused the change request, so nothing was requested: HTTP 403: "
        "Change freeze until 5 Jan"
    )
    world["system"].jira = {**SETTINGS, "planned_end_field": "customfield_99999"}
    world["system"].save()
    unknown = _promote(world)
    assert unknown.status_code == 400
    assert "customfield_99999: Field 'customfield_99999' cannot be set" in unknown.json()["detail"]
    world["system"].jira, world["system"].secret = SETTINGS, "not the token"
    world["system"].save()
    unauthorised = _promote(world)
    assert unauthorised.status_code == 400
    assert "HTTP 401: Client must be authenticated" in unauthorised.json()["detail"]
    assert not Deployment.objects.filter(environment__slug="prod").exists()


def test_a_declined_change_keeps_the_request_waiting_and_its_window_is_read(world):
    pk = _promote(world).json()["id"]
    later = datetime.now(UTC) + timedelta(hours=2)
    _control(world, "CHG-1", "approve")
    _control(world, "CHG-1", "window", start=later.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
             end=(later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000"))  # fmt: skip
    waits = _approve(world, pk)
    assert waits.status_code == 409
    assert f"CHG-1's window opens at {later:%Y-%m-%d %H:%M} UTC" in waits.json()["detail"]

    second = BuiltReleaseFactory(service=world["release"].service, ref="v3.2.0")
    succeeded_in(second, world["release"].service.targets.get(environment__slug="beta").environment)
    Deployment.objects.filter(pk=pk).update(status="cancelled")
    world["release"] = second
    other = _promote(world).json()["id"]
    _control(world, "CHG-2", "decline")
    declined = _approve(world, other)
    assert declined.status_code == 409
    assert (
        "(approval: rejected, state: Declined), so this request cannot start"
        in (declined.json()["detail"])
    )
    rejected = decide(world["api"]["lead2"], other, "reject", comment="CAB said no")
    assert rejected.json()["status"] == "cancelled"
    # Jira offers a declined change no way to Canceled: it stays as the CAB left it.
    with pytest.raises(ChangeRefused, match="Jira offers CHG-2 no transition to Canceled now"):
        change_tell(other, "cancelled")
    ticket = ChangeTicket.objects.get(deployment_id=other)
    assert "(offered: none)" in ticket.last_error and ticket.state == "Declined"


def test_an_emergency_change_in_jira(world):
    created = _promote(world, "lead1", emergency_reason="checkout down since 02:10")
    assert created.status_code == 201, created.content
    sent = world["desk"].requests[0]["body"]["requestFieldValues"]
    assert sent[CHANGE_TYPE] == {"value": "Emergency"}
    assert "Emergency: checkout down since 02:10." in sent["description"]
    pk = created.json()["id"]
    approved = _approve(world, pk, "lead2")
    assert approved.json()["status"] == "pending"
    assert change_tell(pk, "deploying") == "implement"
    assert change_tell(pk, "failed") == "close"
    [held] = requests.get(f"{world['url']}/_receiver/issues").json()["issues"]
    assert held["status"] == "Failed"


def test_jira_settings_are_checked_when_saved(world):
    system = world["system"]
    system.jira = {"service_desk_id": "4", "planned_start": "customfield_1",
                   "statuses": {"implement": "In progress", "done": "Done"}}  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        system.full_clean()
    said = " ".join(refused.value.messages)
    assert "missing request_type_id, planned_start_field, planned_end_field" in said
    assert "unknown planned_start" in said
    system.jira = {**SETTINGS, "statuses": {"implement": "In progress", "done": "Done"}}
    with pytest.raises(ValidationError, match="statuses: unknown done"):
        system.full_clean()
    system.jira = {**SETTINGS, "statuses": {"implement": "In progress"}}
    settings = system.jira_settings()
    assert (settings.status("implement"), settings.status("successful")) == (
        "In progress", "Completed",
    )  # fmt: skip
    system.jira = {}
    system.save()  # saved around the admin's checks: refused when used, with the reason
    refused = _promote(world)
    assert refused.status_code == 400
    assert "its Jira settings are incomplete: missing service_desk_id" in refused.json()["detail"]
