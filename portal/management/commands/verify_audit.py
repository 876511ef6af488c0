from django.core.management.base import BaseCommand, CommandError

from portal.audit import ChainBreak, audit_verify


class Command(BaseCommand):
    help = "Walk the audit log's hash chain; name the first broken event, exit 1 if any."

    def handle(self, *args, **options):
        count = 0
        for item in audit_verify():
            if isinstance(item, ChainBreak):
                raise CommandError(
                    f"Audit chain broken at event #{item.event_id}: {item.reason}. "
                    f"{count} events before it are intact."
                )
            count += 1
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {count} events verified."))
