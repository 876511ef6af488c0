"""`migrate` as the owner role (MIGRATION_DATABASE_URL), then the runtime role's grants.

Django's own command does the migrating; this one only chooses who connects, so the app's
runtime role never needs to own a table."""

from django.core.management.commands.migrate import Command as DjangoMigrate

from portal.ops.db_roles import as_owner, grant_runtime


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " Runs as MIGRATION_DATABASE_URL's role when it is set."

    def handle(self, *args, **options):
        database = options["database"]
        with as_owner(database):
            super().handle(*args, **options)
            grant_runtime(database)
