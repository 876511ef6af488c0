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
