"""Between tests whose transactions really commit (a worker or a live server saw them),
the test database is recreated from a template made right after the migrations, instead
of being emptied: the audit log refuses TRUNCATE and DELETE whatever the session, and the
product carries no way around that (no `flush`, no trigger switch).

Sequences continue where the last test left them, so a task still queued for a row of an
earlier test never finds a row of the next one under the same id.
"""

from __future__ import annotations

import time

import psycopg
from django.conf import settings
from django.db import connections
from django.test import TransactionTestCase


def _conninfo(database: str) -> str:
    """The owner role's connection to `database` (the runtime role may not create one)."""
    source = settings.MIGRATION_DATABASE or settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        host=source["HOST"],
        port=source["PORT"],
        user=source["USER"],
        password=source.get("PASSWORD") or None,
        dbname=database,
    )


def template_name(name: str) -> str:
    return f"{name}_template"


def make_template(name: str) -> None:
    """Copy the freshly migrated test database; every later reset starts from it."""
    connections.close_all()
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{template_name(name)}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{template_name(name)}" TEMPLATE "{name}"')


def drop_template(name: str) -> None:
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{template_name(name)}" WITH (FORCE)')


def recreate(name: str) -> None:
    """Drop the test database (ending every session on it) and make it again from the
    template, its sequences moved past where they were."""
    connections.close_all()
    with psycopg.connect(_conninfo(name), autocommit=True) as old:
        positions = old.execute(
            "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences"
            " WHERE last_value IS NOT NULL"
        ).fetchall()
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
        _drop(admin, name)
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name(name)}"')
    if positions:
        with psycopg.connect(_conninfo(name), autocommit=True) as new:
            for sequence, value in positions:
                new.execute("SELECT setval(%s, %s)", [sequence, value])


def _drop(admin, name: str, patience: float = 30.0) -> None:
    """DROP … WITH (FORCE) ends the worker's sessions (the owner role holds
    pg_signal_backend locally, devtools/services.py); without that right, wait for them to
    close (the worker closes its connection after every task)."""
    try:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        return
    except psycopg.errors.InsufficientPrivilege:
        pass
    deadline = time.monotonic() + patience
    while True:
        try:
            admin.execute(f'DROP DATABASE "{name}"')
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _recreate_instead_of_flush(self: TransactionTestCase) -> None:
    for alias in self._databases_names(include_mirrors=False):
        recreate(connections[alias].settings_dict["NAME"])


def install() -> None:
    """Make Django's TransactionTestCase (which pytest-django uses) reset by recreating."""
    TransactionTestCase._fixture_teardown = _recreate_instead_of_flush
