from tests.releases.conftest import emulator, jenkins_emulator  # noqa: F401 (fixtures)
