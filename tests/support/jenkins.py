"""The Jenkins emulator for tests: job configs and fixtures (registered in tests/conftest.py)."""

from __future__ import annotations

import pytest

from devtools.jenkins_emulator import JenkinsEmulator
from releases.models import Release

IMAGE = "registry.local/demo/app"
TOKEN = "tok-0123456789"
USERS = {"slipway": {"password": "pw-123", "api_token": TOKEN}}


def job_config(name: str, **overrides) -> dict:
    """A job that takes Slipway's three parameters, builds in a second and reports image.json."""
    return {
        "name": name,
        "parameters": [
            {"name": "GIT_REF", "default": "main"},
            {"name": "IMAGE_REPOSITORY", "default": IMAGE},
            {"name": "SLIPWAY_RELEASE_ID", "default": ""},
        ],
        "quiet_period_seconds": 0.2,
        "duration_seconds": 1.0,
        "log": ["Cloning repository", "Building image ✓", "Pushing image"],
        "image": IMAGE,
        **overrides,
    }


@pytest.fixture(scope="session")
def jenkins_emulator():
    """One emulator for the session, in this process on a free port."""
    server = JenkinsEmulator({"users": USERS, "jobs": [job_config("demo/app")]}).start()
    yield server
    server.stop()


@pytest.fixture
def emulator(jenkins_emulator):
    """The emulator, reset to the one job demo/app (tests add or change jobs as they need)."""
    jenkins_emulator.control("POST", "reset", {"jobs": [job_config("demo/app")]})
    return jenkins_emulator


def builds_for(emulator, release: Release, job: str = "demo/app") -> list[dict]:
    state = emulator.control("GET", "state")
    return [
        b
        for b in state["jobs"][job]["builds"]
        if b["parameters"].get("SLIPWAY_RELEASE_ID") == str(release.pk)
    ]
