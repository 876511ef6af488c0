import time

import pytest
from django.contrib.auth import get_user_model

from clusters.models import Cluster
from devtools.jenkins_emulator import JenkinsEmulator
from portal.models import JenkinsServer, Service, Team
from releases.choices import RELEASE_ACTIVE
from releases.models import Release

TOKEN = "tok-0123456789"


def job_config(name: str, **overrides) -> dict:
    return {
        "name": name,
        "parameters": [
            {"name": "GIT_REF", "default": "main"},
            {"name": "IMAGE_REPOSITORY", "default": ""},
            {"name": "SLIPWAY_RELEASE_ID", "default": ""},
        ],
        "quiet_period_seconds": 0.2,
        "duration_seconds": 1.0,
        "log": ["Cloning repository", "Building image ✓", "Pushing image"],
        "image": "registry.local/demo/app",
        **overrides,
    }


@pytest.fixture(scope="session")
def jenkins_emulator():
    server = JenkinsEmulator(
        {
            "users": {"slipway": {"password": "pw", "api_token": TOKEN}},
            "jobs": [job_config("demo/app")],
        }
    ).start()
    yield server
    server.stop()


@pytest.fixture
def emulator(jenkins_emulator):
    jenkins_emulator.control("POST", "reset", {"jobs": [job_config("demo/app")]})
    return jenkins_emulator


@pytest.fixture
def service(emulator, django_user_model):
    team = Team.objects.create(slug="demo", name="Demo")
    jenkins = JenkinsServer.objects.create(
        name="emulator", url=emulator.url, username="slipway", api_token=TOKEN, timeout_seconds=5
    )
    Cluster.objects.create(slug="c", name="C", kubeconfig="x")
    return Service.objects.create(
        slug="app",
        name="App",
        team=team,
        jenkins_server=jenkins,
        jenkins_job="demo/app",
        chart="charts/demo-service",
        image_repository="registry.local/demo/app",
    )


@pytest.fixture
def dev(django_user_model):
    return get_user_model().objects.create_user("dev", password="pw-dev-123456")


def wait_for_release(release: Release, statuses=None, timeout: float = 40) -> Release:
    """Poll the database until the release leaves the active statuses (or reaches one given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        release.refresh_from_db()
        if (statuses and release.status in statuses) or (
            not statuses and release.status not in RELEASE_ACTIVE
        ):
            return release
        time.sleep(0.1)
    raise AssertionError(f"release still {release.status} ({release.progress}) after {timeout}s")


def builds_for(emulator, release: Release, job: str = "demo/app") -> list[dict]:
    state = emulator.control("GET", "state")
    return [
        b
        for b in state["jobs"][job]["builds"]
        if b["parameters"].get("SLIPWAY_RELEASE_ID") == str(release.pk)
    ]
