"""Settings fail closed: outside local development a missing or public secret refuses to
start, with a message that says what to set."""

import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

ROOT = settings.BASE_DIR


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def _production_env() -> dict[str, str]:
    return {
        "SLIPWAY_DEV": "0",
        "SLIPWAY_PRODUCTION": "1",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "SLIPWAY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SLIPWAY_AUDIT_KEYS": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "slipway.example.com",
    }


@pytest.mark.parametrize("database", ["migrated", "not yet made"])
def test_check_deploy_is_clean_with_production_settings(database):
    """Also before the first migration (an operator's first `check --deploy`): the API
    schema, which the check builds, names today's environments only when it can ask."""
    env = _production_env()
    if database != "migrated":
        env["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/slipway_never_made"
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SECRET_KEY", settings.DEV_SECRET_KEY, "Set SECRET_KEY"),
        ("SECRET_KEY", "", "Set SECRET_KEY"),
        ("SLIPWAY_ENCRYPTION_KEYS", settings.DEV_ENCRYPTION_KEY, "Set SLIPWAY_ENCRYPTION_KEYS"),
        ("SLIPWAY_ENCRYPTION_KEYS", "", "Set SLIPWAY_ENCRYPTION_KEYS"),
        ("SLIPWAY_AUDIT_KEYS", settings.DEV_AUDIT_KEY, "Set SLIPWAY_AUDIT_KEYS"),
        ("SLIPWAY_AUDIT_KEYS", "short", "32+ characters"),
    ],
)
def test_without_the_dev_flag_a_missing_or_public_secret_refuses_to_start(variable, value, message):
    env = {**_production_env(), "SLIPWAY_PRODUCTION": "0", variable: value}
    result = _manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr and "Only SLIPWAY_DEV=1" in result.stderr


def test_the_public_development_secrets_start_only_with_the_dev_flag():
    dev_env = {"SECRET_KEY": "", "SLIPWAY_ENCRYPTION_KEYS": "", "SLIPWAY_AUDIT_KEYS": ""}
    assert _manage("check", SLIPWAY_DEV="0", **dev_env).returncode != 0
    assert _manage("check", SLIPWAY_DEV="1", **dev_env).returncode == 0


def test_a_non_postgresql_database_is_refused():
    result = _manage("check", DATABASE_URL="sqlite:///x.db")
    assert result.returncode != 0
    assert "must point at PostgreSQL" in result.stderr
