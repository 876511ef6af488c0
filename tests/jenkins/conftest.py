import pytest

from devtools.jenkins_emulator import JenkinsEmulator
from tests.support.jenkins import USERS, job_config


@pytest.fixture
def emulator():
    """A fresh emulator per conformance test, with jobs in a folder, plain and disabled."""
    config = {
        "users": USERS,
        "jobs": [
            job_config("app"),
            job_config("team/api", report="artifact-text"),
            job_config("plain", parameters=[]),
            job_config("off", disabled=True),
        ],
    }
    server = JenkinsEmulator(config).start()
    yield server
    server.stop()
