import subprocess
import sys

from django.conf import settings

from devtools import services


def test_services_up_twice_reuses_the_running_instances():
    first = services.read_env_file()
    result = subprocess.run(
        [sys.executable, "-m", "devtools.services", "up"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout or "from the environment" in result.stdout
    assert services.read_env_file() == first
    assert services.url_answers(first["DATABASE_URL"]) and services.url_answers(first["REDIS_URL"])


def test_a_checkout_under_a_0700_home_starts_its_own_postgresql_and_redis(tmp_path):
    import os
    import shutil
    from pathlib import Path

    # Given a copy of the checkout inside a folder only root may enter (like /root)
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o700)
    clone = home / "slipway"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in listed:
        source = Path(settings.BASE_DIR) / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}

    def run(*args):
        return subprocess.run(
            [sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True, timeout=180
        )

    try:
        # When it starts its services and migrates
        up = run("-m", "devtools.services", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        migrated = run("manage.py", "migrate", "--no-input", "-v", "0")
        # Then PostgreSQL runs as the postgres user from a folder that user may enter,
        # tied to this checkout, and the portal's schema is in it
        assert migrated.returncode == 0, migrated.stderr
        data = Path(os.readlink(clone / ".local" / "pg"))
        assert data.parent == Path("/var/lib/postgresql/slipway")
        assert data.name.startswith("slipway-") and (data / "data" / "PG_VERSION").exists()
        check = run("manage.py", "migrate", "--check")
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        down = run("-m", "devtools.services", "down")
        shutil.rmtree(os.path.realpath(clone / ".local" / "pg"), ignore_errors=True)
    assert down.returncode == 0, down.stderr
