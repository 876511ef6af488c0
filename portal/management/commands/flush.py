"""`flush` as the owner role, with the audit log's append-only trigger held off meanwhile.

Only the owner can do this (the runtime role may not TRUNCATE or touch triggers): it is
how the test suite empties its database between tests, and never part of running the
portal."""

from django.core.management.commands.flush import Command as DjangoFlush
from django.db import connections

from portal.db_roles import AUDIT_TABLE, as_owner

TRIGGER = "audit_event_no_truncate"


class Command(DjangoFlush):
    def handle(self, *args, **options):
        database = options["database"]
        with as_owner(database):
            with connections[database].cursor() as cursor:
                cursor.execute(f"ALTER TABLE {AUDIT_TABLE} DISABLE TRIGGER {TRIGGER}")
            try:
                super().handle(*args, **options)
            finally:
                with connections[database].cursor() as cursor:
                    cursor.execute(f"ALTER TABLE {AUDIT_TABLE} ENABLE TRIGGER {TRIGGER}")
