"""The two PostgreSQL roles: the owner (migrations, and nothing else) and the app's
runtime role, which owns nothing and may only SELECT and INSERT audit events.

`as_owner()` points a connection at the owner's credentials for a while (migrations, and
the tests' clean-up); `grant_runtime()` gives the runtime role what it needs after each
migration, and on the audit table no more than SELECT and INSERT.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings
from django.db import connections

# Append-only for the runtime role: the events and the anchors that pin their head.
APPEND_ONLY_TABLES = ("portal_auditevent", "portal_auditanchor")


def owner_credentials() -> dict | None:
    """USER and PASSWORD of the owner role, or None when only one role is configured."""
    owner = settings.MIGRATION_DATABASE
    if not owner or owner.get("USER") == runtime_role():
        return None
    return {"USER": owner["USER"], "PASSWORD": owner.get("PASSWORD", "")}


@contextlib.contextmanager
def as_owner(alias: str = "default") -> Iterator[None]:
    """Use the owner's credentials on `alias` (same server and database) for a while."""
    credentials = owner_credentials()
    if credentials is None:
        yield
        return
    connection = connections[alias]
    saved = {key: connection.settings_dict.get(key) for key in credentials}
    connection.close()
    connection.settings_dict.update(credentials)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


def runtime_role() -> str:
    """The app's role, as configured (connections may be lent to the owner meanwhile)."""
    return settings.RUNTIME_DATABASE_USER


def grant_runtime(alias: str = "default") -> None:
    """Give the runtime role what the app needs; on the audit table SELECT and INSERT
    only. Idempotent; run as the owner after migrations."""
    if owner_credentials() is None:
        return
    role = connections[alias].ops.quote_name(runtime_role())
    with connections[alias].cursor() as cursor:
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        for table in APPEND_ONLY_TABLES:
            cursor.execute(
                f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {table} FROM {role}"
            )
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
