import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from releases.evidence import verify


class Command(BaseCommand):
    help = "Check a saved release evidence file: was it altered since Slipway signed it?"

    def add_arguments(self, parser):
        parser.add_argument("file", help="A JSON file from GET /api/v1/releases/<id>/evidence")

    def handle(self, *args, file, **options):
        try:
            document = json.loads(Path(file).read_text())
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}") from exc
        except ValueError as exc:
            raise CommandError(f"{file} is not JSON: {exc}") from exc
        check = verify(document)
        if not check.valid:
            raise CommandError(check.message)
        self.stdout.write(check.message)
