from django.core.management.base import BaseCommand
from django.db import connection, transaction

from clusters.models import Cluster
from notifications.models import Channel
from portal.crypto import rotate
from portal.models import JenkinsServer


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the first key of SLIPWAY_ENCRYPTION_KEYS."

    @transaction.atomic
    def handle(self, *args, **options):
        rotated = 0
        for model, field in (
            (Cluster, "kubeconfig"),
            (JenkinsServer, "api_token"),
            (Channel, "url"),
            (Channel, "secret"),
        ):
            table = connection.ops.quote_name(model._meta.db_table)
            column = connection.ops.quote_name(field)
            # Raw SQL: the ORM would hand back the decrypted Secret, we want the ciphertext.
            select = f"SELECT id, {column} FROM {table} WHERE {column} <> ''"  # noqa: S608
            update = f"UPDATE {table} SET {column} = %s WHERE id = %s"  # noqa: S608
            with connection.cursor() as cursor:
                cursor.execute(select)
                for pk, token in cursor.fetchall():
                    cursor.execute(update, [rotate(token), pk])
                    rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} secrets with the newest key.")
