"""The image and the compose file, checked without a Docker engine (none runs here)."""

from pathlib import Path

import yaml
from django.conf import settings
from dockerfile_parse import DockerfileParser

from portal.core import queues

ROOT = Path(settings.BASE_DIR)


def test_the_dockerfile_builds_in_stages_and_runs_as_a_user_with_a_healthcheck():
    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    froms = [value for kind, value in instructions if kind == "FROM"]
    assert len(froms) == 3 and all(":" in f.split()[0] for f in froms)  # pinned bases
    final = instructions[max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM") :]
    users = [value for kind, value in final if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(kind == "HEALTHCHECK" and "/healthz" in value for kind, value in final)
    assert any(kind == "COPY" and "--from=helm" in value for kind, value in final)
    assert not any(kind == "ADD" for kind, _ in instructions)
    assert "version.version=v3." in parser.content  # helm stamped for pyhelm3


def test_the_dockerignore_keeps_local_state_and_secrets_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".git", ".venv", ".local", ".env"):
        assert path in ignored


def test_compose_migrates_first_checks_health_and_keeps_the_emulator_for_demos():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert "MIGRATION_DATABASE_URL" in migrate["environment"]
    for name in ("web", "worker", "beat"):
        service = services[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert "MIGRATION_DATABASE_URL" not in service.get("environment", {})
        assert service["env_file"] == ["deploy/compose/slipway.env"]
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("postgres", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"]
    assert services["jenkins-emulator"]["profiles"] == ["demo"]
    assert "--without-heartbeat" in services["worker"]["command"]
    assert (ROOT / "deploy" / "compose" / "slipway.env.example").exists()


def queue_pools(commands: list[list[str]]) -> dict[str, str]:
    """Each queue of the `celery worker` commands given, with the pool that consumes it;
    fails when a queue is consumed twice."""
    pools: dict[str, str] = {}
    for command in commands:
        queues = command[command.index("-Q") + 1].split(",")
        pool = command[command.index("--pool") + 1]
        for queue in queues:
            assert queue not in pools, f"{queue} consumed twice"
            pools[queue] = pool
    return pools


# What each queue waits on decides its pool (docs/operations.md).
SIZED_BY_WAIT = {
    "builds": "threads", "rollouts": "threads", "notifications": "threads",
    "deploys": "prefork", "default": "prefork",
}  # fmt: skip


def test_every_queue_runs_on_the_pool_made_for_what_it_waits_on():
    assert set(SIZED_BY_WAIT) == set(queues.ALL)
    procfile = [
        line.split(":", 1)[1].split()
        for line in (ROOT / "Procfile").read_text().splitlines()
        if " worker " in line
    ]
    assert queue_pools(procfile) == SIZED_BY_WAIT
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    compose = [
        s["command"] for s in services.values() if s.get("command", [None])[3:4] == ["worker"]
    ]
    assert queue_pools(compose) == SIZED_BY_WAIT
