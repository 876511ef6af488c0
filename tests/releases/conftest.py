import pytest

from tests.factories import JenkinsServerFactory, ServiceFactory, UserFactory
from tests.support.jenkins import TOKEN


@pytest.fixture
def service(emulator):
    """A service whose Jenkins is the emulator (builds only: no environments needed)."""
    return ServiceFactory(jenkins_server=JenkinsServerFactory(url=emulator.url, api_token=TOKEN))


@pytest.fixture
def dev():
    return UserFactory(username="dev")
