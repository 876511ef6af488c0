import pytest

from devtools.jenkins_emulator import JenkinsEmulator

USERS = {"slipway": {"password": "pw-123", "api_token": "11aa22bb33cc"}}


def job(name: str, **overrides) -> dict:
    base = {
        "name": name,
        "parameters": [
            {"name": "GIT_REF", "default": "main"},
            {"name": "IMAGE_REPOSITORY", "default": "registry.local/app"},
            {"name": "SLIPWAY_RELEASE_ID", "default": ""},
        ],
        "quiet_period_seconds": 0.2,
        "duration_seconds": 0.8,
        "log": ["Cloning repository", "Building image", "Pushing image"],
        "image": "registry.local/app",
    }
    return {**base, **overrides}


@pytest.fixture
def emulator():
    config = {
        "users": USERS,
        "jobs": [
            job("app"),
            job("team/api", report="artifact-text"),
            job("plain", parameters=[]),
            job("off", disabled=True),
        ],
    }
    server = JenkinsEmulator(config).start()
    yield server
    server.stop()
