from django.core.management.base import BaseCommand, CommandError

from portal.audit import audit_check


class Command(BaseCommand):
    help = "Walk the audit log's hash chain; name the first broken event, exit 1 if any."

    def handle(self, *args, **options):
        check = audit_check(trigger="command")
        if not check.ok:
            raise CommandError(
                f"Audit chain broken at event #{check.broken_event_id}: {check.reason}. "
                f"{check.events} events before it are intact."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {check.events} events verified.")
        )
