"""The audit log: append-only in PostgreSQL itself, rewritable by no one the app runs as,
an HMAC-keyed chain whose breaks `verify_audit` names, and anchors that reveal a tail cut
off after them."""

import hashlib
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import DatabaseError

from portal.access.models import Team
from portal.audit.chain import Actor, RequestContext, audit_record, canonical_content
from portal.audit.models import AuditEvent
from portal.audit.verification import audit_head

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


def _owner_sql(*statements):
    """Run statements as the owner role (what someone with the migration credentials could
    do), in its own committed transaction."""
    db = settings.DATABASES["default"]
    owner = settings.MIGRATION_DATABASE
    dsn = f"postgresql://{owner['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for sql, params in statements:
            conn.execute(sql, params)


def test_the_suite_runs_as_a_runtime_role_that_owns_nothing():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        user, superuser = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s",
            [user],
        )
        owned = cursor.fetchone()[0]
    assert user == settings.RUNTIME_DATABASE_USER != settings.MIGRATION_DATABASE["USER"]
    assert (superuser, owned) == (False, 0)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE portal_auditevent SET action = 'x'",
        "DELETE FROM portal_auditevent",
        "TRUNCATE portal_auditevent",
        "SET slipway.test_flush = 'on'; TRUNCATE portal_auditevent",
        "ALTER TABLE portal_auditevent DISABLE TRIGGER ALL",
        "ALTER TABLE portal_auditevent DISABLE TRIGGER audit_event_no_update_delete",
        "DROP TABLE portal_auditevent",
    ],
)
def test_the_runtime_role_cannot_rewrite_the_audit_log(statement):
    _three_events()
    with (
        pytest.raises(DatabaseError, match=r"permission denied|must be owner"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        for sql in statement.split("; "):
            cursor.execute(sql)
    assert AuditEvent.objects.filter(action__startswith="test.").count() == 3


@pytest.mark.django_db(transaction=True)
def test_even_the_owner_is_refused_update_and_delete_by_the_trigger():
    events = _three_events()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        _owner_sql(("UPDATE portal_auditevent SET action = 'x' WHERE id = %s", [events[0].pk]))
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        _owner_sql(("TRUNCATE portal_auditevent", []))
    # The switch the test suite once used to empty the log is gone for the owner too
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        _owner_sql(("SET slipway.test_flush = 'on'", []), ("TRUNCATE portal_auditevent", []))


def test_slipway_has_no_flush_that_holds_the_audit_trigger_off():
    from django.core.management import get_commands

    assert get_commands()["flush"] == "django.core"


def test_events_chain_each_to_the_previous_hash_signed_with_the_newest_key():
    events = _three_events()
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert len({e.hash for e in events}) == 3
    assert {e.key_id for e in events} == {
        hashlib.sha256(
            b"slipway-audit-key\n" + settings.SLIPWAY_AUDIT_KEYS[0].encode()
        ).hexdigest()[:16]
    }


def test_verify_audit_passes_on_an_intact_chain(capsys):
    _three_events()
    call_command("verify_audit")
    assert "events verified" in capsys.readouterr().out


def _tamper(*statements):
    # Someone with the owner's credentials holds the trigger off, edits, and restores it.
    _owner_sql(
        ("ALTER TABLE portal_auditevent DISABLE TRIGGER audit_event_no_update_delete", []),
        *statements,
        ("ALTER TABLE portal_auditevent ENABLE TRIGGER audit_event_no_update_delete", []),
    )


@pytest.mark.django_db(transaction=True)
def test_verify_audit_names_the_altered_event():
    events = _three_events()
    _tamper(("UPDATE portal_auditevent SET after = '{\"n\": 99}' WHERE id = %s", [events[1].pk]))
    with pytest.raises(CommandError, match=f"event #{events[1].pk}: content does not match"):
        call_command("verify_audit")


@pytest.mark.django_db(transaction=True)
def test_an_event_rehashed_without_the_key_is_named():
    # The forger changes an event and recomputes every hash after it, the way an unkeyed
    # chain would let them: plain SHA-256, since they do not have the audit key.
    events = _three_events()
    prev = events[0].hash
    for event in events[1:]:
        event.refresh_from_db()
        if event.pk == events[1].pk:
            event.after = {"n": 99}
        forged = hashlib.sha256(
            prev.encode() + b"\n" + event.key_id.encode() + b"\n" + canonical_content(event)
        ).hexdigest()
        _tamper(
            (
                "UPDATE portal_auditevent SET after = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [psycopg.types.json.Jsonb(event.after), prev, forged, event.pk],
            )
        )
        prev = forged
    with pytest.raises(CommandError, match=f"event #{events[1].pk}: content does not match"):
        call_command("verify_audit")


@pytest.mark.django_db(transaction=True)
def test_verify_audit_names_the_event_after_a_removed_one():
    events = _three_events()
    _tamper(("DELETE FROM portal_auditevent WHERE id = %s", [events[1].pk]))
    with pytest.raises(CommandError, match=f"event #{events[2].pk}: previous-hash link broken"):
        call_command("verify_audit")


@pytest.mark.django_db(transaction=True)
def test_an_anchor_reveals_a_tail_cut_off_after_it():
    events = _three_events()
    head = audit_head()
    anchor = f"{head['last_id']}:{head['last_hash']}"
    call_command("verify_audit", "--anchor", anchor)  # intact
    _tamper(("DELETE FROM portal_auditevent WHERE id >= %s", [events[1].pk]))
    call_command("verify_audit")  # without the anchor, what is left looks whole
    with pytest.raises(
        CommandError, match=f"chain cut short: an anchor recorded event #{events[2].pk}"
    ):
        call_command("verify_audit", "--anchor", anchor)
    with pytest.raises(CommandError, match="give ID:HASH"):
        call_command("verify_audit", "--anchor", "nonsense")


@pytest.mark.django_db(transaction=True)
def test_the_daily_verification_checks_against_the_latest_published_anchor():
    from portal.audit.models import AuditCheck
    from portal.tasks import audit_anchor, verify_audit

    events = _three_events()
    audit_anchor()  # beat publishes the head: a log line and an append-only row
    assert verify_audit()["ok"] is True
    _tamper(("DELETE FROM portal_auditevent WHERE id >= %s", [events[1].pk]))
    # Nobody passes an anchor to the daily run: it finds the stored one itself
    result = verify_audit()
    assert result["ok"] is False
    check = AuditCheck.objects.first()
    assert check.reason.startswith(f"chain cut short: an anchor recorded event #{events[2].pk}")
    # and the runtime role cannot remove the anchor to hide the cut
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditanchor")


def test_an_event_signed_with_a_key_slipway_lacks_is_named(settings):
    events = _three_events()
    settings.SLIPWAY_AUDIT_KEYS = ["a-new-key-that-signed-nothing-yet-0123456789"]
    with pytest.raises(CommandError, match=f"event #{events[0].pk}: signed with key"):
        call_command("verify_audit")
    # Rotation: the new key first, the old one kept to verify older events
    settings.SLIPWAY_AUDIT_KEYS = [
        settings.SLIPWAY_AUDIT_KEYS[0],
        "dev-insecure-slipway-audit-key-0123456789abcdef",
    ]
    later = audit_record(actor=Actor.system(), action="test.rotated")
    assert later.key_id != events[0].key_id
    call_command("verify_audit")


@pytest.mark.django_db(transaction=True)
def test_eight_processes_appending_at_once_leave_one_unbroken_chain():
    # Web and worker alike write through audit_record; here eight processes at once.
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'portal.settings');"
        "django.setup();"
        "from portal.audit.chain import Actor, audit_record;"
        "[audit_record(actor=Actor.system('p'), action='test.parallel') for _ in range(25)]"
    )
    db = settings.DATABASES["default"]
    env = {
        **__import__("os").environ,
        "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    writers = [
        subprocess.Popen([sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env)
        for _ in range(8)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * 8
    assert AuditEvent.objects.filter(action="test.parallel").count() == 200
    call_command("verify_audit")


def test_event_records_actor_target_and_request_context():
    event = _three_events()[2]
    event.refresh_from_db()
    assert (event.actor_type, event.actor_name) == ("system", "slipway")
    assert (event.target_type, event.target_repr) == ("portal.Team", "T")
    assert (event.request_id, event.ip, event.user_agent) == ("r2", "10.0.0.1", "ua")
    assert event.before == {"n": 2} and event.after == {"n": 3}
