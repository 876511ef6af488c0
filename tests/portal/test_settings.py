import os
import subprocess
import sys

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
        "SLIPWAY_PRODUCTION": "1",
        "DEBUG": "0",
        "SECRET_KEY": Fernet.generate_key().decode() + Fernet.generate_key().decode(),
        "SLIPWAY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "slipway.example.com",
    }


def test_check_deploy_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **_production_env())
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_the_default_secret_key():
    env = _production_env()
    result = _manage("check", **{**env, "SECRET_KEY": settings.DEV_SECRET_KEY})
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_production_refuses_the_development_encryption_key():
    env = {**_production_env(), "SLIPWAY_ENCRYPTION_KEYS": settings.DEV_ENCRYPTION_KEY}
    result = _manage("check", **env)
    assert result.returncode != 0
    assert "SLIPWAY_ENCRYPTION_KEYS" in result.stderr


def test_a_non_postgresql_database_is_refused():
    result = _manage("check", DATABASE_URL="sqlite:///x.db")
    assert result.returncode != 0
    assert "must point at PostgreSQL" in result.stderr
