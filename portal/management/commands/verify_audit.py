import re

from django.core.management.base import BaseCommand, CommandError

from portal.audit.verification import audit_check

ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


class Command(BaseCommand):
    help = (
        "Walk the audit log's chain; name the first broken event, exit 1 if any. "
        "--anchor ID:HASH (from the logs or metrics) also detects a tail cut off after it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="ID:HASH",
            help="An anchor published earlier (audit.anchor log lines); repeat for several.",
        )

    def handle(self, *args, anchor, **options):
        anchors = []
        for text in anchor:
            match = ANCHOR.match(text.strip())
            if not match:
                raise CommandError(f"--anchor {text!r}: give ID:HASH (64 hex digits).")
            anchors.append((int(match.group(1)), match.group(2)))
        check = audit_check(trigger="command", anchors=anchors)
        if not check.ok:
            raise CommandError(
                f"Audit chain broken at event #{check.broken_event_id}: {check.reason}. "
                f"{check.events} events before it are intact."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {check.events} events verified.")
        )
