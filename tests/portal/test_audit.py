import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from portal.audit import Actor, RequestContext, audit_record
from portal.models import AuditEvent, Team

pytestmark = pytest.mark.django_db


def _three_events():
    team = Team.objects.create(slug="t", name="T")
    return [
        audit_record(
            actor=Actor.system(),
            action=f"test.{n}",
            target=team,
            before={"n": n},
            after={"n": n + 1},
            context=RequestContext(request_id=f"r{n}", ip="10.0.0.1", user_agent="ua"),
        )
        for n in range(3)
    ]


def test_update_of_an_audit_event_is_refused_by_postgresql():
    event = _three_events()[0]
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE portal_auditevent SET action = 'x' WHERE id = %s", [event.pk])
    event.refresh_from_db()
    assert event.action == "test.0"


def test_delete_of_an_audit_event_is_refused_by_postgresql():
    events = _three_events()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=events[1].pk).delete()
    assert AuditEvent.objects.count() == 3


def test_events_chain_each_to_the_previous_hash():
    events = _three_events()
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert len({e.hash for e in events}) == 3


def test_verify_audit_passes_on_an_intact_chain(capsys):
    _three_events()
    call_command("verify_audit")
    assert "3 events verified" in capsys.readouterr().out


def _tamper(sql: str, params: list) -> None:
    # Someone with owner rights disables the trigger, edits, and re-enables it.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE portal_auditevent DISABLE TRIGGER audit_event_no_update_delete")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER audit_event_no_update_delete")


def test_verify_audit_names_the_altered_event():
    events = _three_events()
    _tamper("UPDATE portal_auditevent SET after = '{\"n\": 99}' WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match=f"event #{events[1].pk}: content does not match"):
        call_command("verify_audit")


def test_verify_audit_names_the_event_after_a_removed_one():
    events = _three_events()
    _tamper("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError, match=f"event #{events[2].pk}: previous-hash link broken"):
        call_command("verify_audit")


def test_event_records_actor_target_and_request_context():
    event = _three_events()[2]
    event.refresh_from_db()
    assert (event.actor_type, event.actor_name) == ("system", "slipway")
    assert (event.target_type, event.target_repr) == ("portal.Team", "T")
    assert (event.request_id, event.ip, event.user_agent) == ("r2", "10.0.0.1", "ua")
    assert event.before == {"n": 2} and event.after == {"n": 3}
