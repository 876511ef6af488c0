from django.db import migrations

# Lock the chain and read its head in one round trip. A VOLATILE PL/pgSQL function takes a
# fresh snapshot for each statement in it, so the SELECT after the lock sees the event the
# previous holder committed (one plain statement doing both would read an older snapshot).
CREATE = """
CREATE OR REPLACE FUNCTION slipway_audit_lock_head(lock_key bigint) RETURNS varchar
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN (SELECT hash FROM portal_auditevent ORDER BY id DESC LIMIT 1);
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("portal", "0006_keyed_audit")]

    operations = [
        migrations.RunSQL(CREATE, "DROP FUNCTION IF EXISTS slipway_audit_lock_head(bigint);"),
    ]
