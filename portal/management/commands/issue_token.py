from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.access.choices import TokenScope
from portal.access.tokens import DEFAULT_SCOPES, TokenRefused, token_issue
from portal.audit.chain import Actor


class Command(BaseCommand):
    help = "Print a new API token for USER (shown once; only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label to recognise the token.")
        parser.add_argument(
            "--scope",
            action="append",
            choices=TokenScope.values,
            help=f"What it may do (repeat for several; default: {' and '.join(DEFAULT_SCOPES)}).",
        )
        parser.add_argument(
            "--expires-days",
            type=int,
            default=settings.SLIPWAY_TOKEN_DAYS,
            help=f"Days until the token expires (default: {settings.SLIPWAY_TOKEN_DAYS}).",
        )

    def handle(self, *args, username, name, scope, expires_days, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if expires_days <= 0:
            raise CommandError("--expires-days must be positive.")
        try:
            _, raw = token_issue(
                user=user,
                name=name,
                scopes=scope or DEFAULT_SCOPES,
                expires_at=timezone.now() + timedelta(days=expires_days),
                actor=Actor.system("manage.py issue_token"),
            )
        except TokenRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(raw)
