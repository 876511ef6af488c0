from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from portal.core.crypto import EncryptedTextField, rotate


def encrypted_fields() -> list[tuple[type, str]]:
    """Every encrypted column of every installed model, found rather than listed: a new
    secret cannot be forgotten by rotation."""
    return [
        (model, field.column)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the first key of SLIPWAY_ENCRYPTION_KEYS."

    @transaction.atomic
    def handle(self, *args, **options):
        rotated = 0
        for model, column in encrypted_fields():
            table = connection.ops.quote_name(model._meta.db_table)
            quoted = connection.ops.quote_name(column)
            # Raw SQL: the ORM would hand back the decrypted Secret, we want the ciphertext.
            select = f"SELECT id, {quoted} FROM {table} WHERE {quoted} <> ''"  # noqa: S608
            update = f"UPDATE {table} SET {quoted} = %s WHERE id = %s"  # noqa: S608
            with connection.cursor() as cursor:
                cursor.execute(select)
                for pk, token in cursor.fetchall():
                    cursor.execute(update, [rotate(token), pk])
                    rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} secrets with the newest key.")
