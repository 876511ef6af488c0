"""Make the audit log append-only in PostgreSQL itself: UPDATE, DELETE and TRUNCATE fail,
whatever the client (the ORM, psql, a bug)."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION slipway_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_no_update_delete
    BEFORE UPDATE OR DELETE ON portal_auditevent
    FOR EACH ROW EXECUTE FUNCTION slipway_audit_append_only();

CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON portal_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION slipway_audit_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON portal_auditevent;
DROP TRIGGER IF EXISTS audit_event_no_update_delete ON portal_auditevent;
DROP FUNCTION IF EXISTS slipway_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("portal", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
