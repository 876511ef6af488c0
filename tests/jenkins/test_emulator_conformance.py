"""The real python-jenkins client, unmodified, against the emulator over HTTP."""

import jenkins
import pytest
import requests

from tests.support.jenkins import USERS
from tests.support.waiting import wait_until


def client(emulator, secret: str = USERS["slipway"]["password"]) -> jenkins.Jenkins:
    return jenkins.Jenkins(emulator.url, username="slipway", password=secret, timeout=5)


def wait_for_build(server: jenkins.Jenkins, queue_id: int) -> int:
    executable = wait_until(
        lambda: server.get_queue_item(queue_id).get("executable"), 10, "a build"
    )
    return executable["number"]


def wait_done(server, job, number) -> dict:
    def done():
        info = server.get_build_info(job, number)
        return None if info["building"] else info

    return wait_until(done, 10, "the build to finish")


def test_version_whoami_and_root(emulator):
    server = client(emulator)
    # As on a secured Jenkins, anonymous requests are refused: get_version() sends no
    # credentials until another call has resolved them.
    with pytest.raises(jenkins.BadHTTPException):
        server.get_version()
    assert server.get_whoami()["id"] == "slipway"
    assert server.get_version() == "2.516.3"
    names = {j["name"] for j in server.get_info()["jobs"]}
    assert {"app", "team", "plain", "off"} <= names


def test_job_info_lists_parameter_definitions_with_defaults(emulator):
    info = client(emulator).get_job_info("app")
    definitions = info["property"][0]["parameterDefinitions"]
    assert {d["name"]: d["defaultParameterValue"]["value"] for d in definitions}[
        "GIT_REF"
    ] == "main"
    assert info["nextBuildNumber"] == 1 and info["lastBuild"] is None


def test_build_moves_through_queue_to_success_with_json_artifact(emulator):
    server = client(emulator)
    queue_id = server.build_job("app", {"GIT_REF": "abc123", "SLIPWAY_RELEASE_ID": "7"})
    item = server.get_queue_item(queue_id)
    assert item["_class"] == "hudson.model.Queue$WaitingItem"
    assert item["why"].startswith("In the quiet period")
    params = {p["name"]: p["value"] for p in item["actions"][0]["parameters"]}
    assert params == {
        "GIT_REF": "abc123",
        "IMAGE_REPOSITORY": "registry.local/demo/app",
        "SLIPWAY_RELEASE_ID": "7",
    }
    number = wait_for_build(server, queue_id)
    assert server.get_queue_item(queue_id)["_class"] == "hudson.model.Queue$LeftItem"
    running = server.get_build_info("app", number)
    assert running["building"] is True and running["result"] is None
    done = wait_done(server, "app", number)
    assert done["result"] == "SUCCESS" and done["duration"] > 0 and done["queueId"] == queue_id
    artifact = server.get_build_artifact("app", number, "image.json")
    assert artifact["image"] == "registry.local/demo/app"
    assert artifact["digest"].startswith("sha256:") and len(artifact["digest"]) == 71
    console = server.get_build_console_output("app", number)
    assert console.startswith("Started by user slipway")
    assert console.rstrip().endswith("Finished: SUCCESS")


def test_each_build_reports_its_own_digest(emulator):
    server = client(emulator)
    digests = []
    for release in ("1", "2"):
        number = wait_for_build(server, server.build_job("app", {"SLIPWAY_RELEASE_ID": release}))
        wait_done(server, "app", number)
        digests.append(server.get_build_artifact("app", number, "image.json")["digest"])
    assert digests[0] != digests[1]


def test_folders_and_text_artifact(emulator):
    server = client(emulator)
    number = wait_for_build(server, server.build_job("team/api", {"GIT_REF": "x"}))
    wait_done(server, "team/api", number)
    text = server.get_build_artifact_as_bytes("team/api", number, "image-digest.txt").decode()
    assert text.startswith("registry.local/demo/app@sha256:")
    assert server.get_build_artifact("team/api", number, "image.json") is None  # 404 → None


def test_progressive_log_headers(emulator):
    server = client(emulator)
    number = wait_for_build(server, server.build_job("app", {"SLIPWAY_RELEASE_ID": "p"}))
    url = f"{emulator.url}job/app/{number}/logText/progressiveText"
    start, text, more = 0, "", True
    while more:
        response = server.jenkins_request(requests.Request("GET", f"{url}?start={start}"))
        text += response.text
        assert int(response.headers["X-Text-Size"]) >= start
        start = int(response.headers["X-Text-Size"])
        more = response.headers.get("X-More-Data") == "true"
        if more:
            wait_until(lambda s=start: _grown(server, number, s), 10, "more console")
    assert text == server.get_build_console_output("app", number)


def _grown(server, number: int, size: int) -> bool:
    console = server.get_build_console_output("app", number).encode()
    info = server.get_build_info("app", number)
    return len(console) > size or not info["building"]


def test_stop_aborts_the_build(emulator):
    server = client(emulator)
    emulator.control(
        "POST",
        "jobs",
        {
            "name": "slow",
            "parameters": [{"name": "A"}],
            "quiet_period_seconds": 0,
            "duration_seconds": 30,
        },
    )
    number = wait_for_build(server, server.build_job("slow", {"A": "1"}))
    server.stop_build("slow", number)
    info = server.get_build_info("slow", number)
    assert info["building"] is False and info["result"] == "ABORTED"
    assert "Finished: ABORTED" in server.get_build_console_output("slow", number)


def test_cancel_queue_item(emulator):
    server = client(emulator)
    emulator.control(
        "POST", "jobs", {"name": "q", "parameters": [{"name": "A"}], "quiet_period_seconds": 30}
    )
    queue_id = server.build_job("q", {"A": "1"})
    server.cancel_queue(queue_id)
    item = server.get_queue_item(queue_id)
    assert item["cancelled"] is True and item["executable"] is None


def test_wrong_credentials_get_401(emulator):
    with pytest.raises(jenkins.JenkinsException, match=r"\[401\]"):
        client(emulator, "wrong").get_whoami()


def test_post_without_crumb_is_refused_for_password_auth(emulator):
    server = client(emulator)
    server.crumb = False  # the client believes Jenkins needs no crumb
    with pytest.raises(jenkins.JenkinsException, match="No valid crumb"):
        server.build_job("app", {"GIT_REF": "x"})


def test_api_token_auth_needs_no_crumb(emulator):
    server = client(emulator, USERS["slipway"]["api_token"])
    server.crumb = False
    assert server.build_job("app", {"GIT_REF": "y"}) > 0


def test_unknown_job_is_404(emulator):
    server = client(emulator)
    with pytest.raises(jenkins.NotFoundException):
        server.build_job("nope", {"A": "1"})
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):
        server.get_job_info("nope")


def test_parameters_to_a_plain_job_is_400_and_disabled_job_is_409(emulator):
    server = client(emulator)
    with pytest.raises(requests.HTTPError) as error:
        server.build_job("plain", {"A": "1"})
    assert error.value.response.status_code == 400
    assert "is not parameterized" in error.value.response.text
    with pytest.raises(requests.HTTPError) as error:
        server.build_job("off", {"GIT_REF": "x"})
    assert error.value.response.status_code == 409
    assert server.build_job("plain") > 0  # POST job/plain/build


def test_identical_request_gets_303_to_the_existing_item(emulator):
    server = client(emulator)
    emulator.control(
        "POST", "jobs", {"name": "q", "parameters": [{"name": "A"}], "quiet_period_seconds": 30}
    )
    first = server.build_job("q", {"A": "same"})
    response = server.jenkins_request(
        requests.Request("POST", server.build_job_url("q", {"A": "same"}))
    )
    assert response.history[0].status_code == 303
    assert response.history[0].headers["Location"].endswith(f"/queue/item/{first}/")
    # python-jenkins's build_job cannot see through the redirect:
    with pytest.raises(jenkins.EmptyResponseException):
        server.build_job("q", {"A": "same"})


def test_missing_parameters_take_their_defaults(emulator):
    server = client(emulator)
    item = server.get_queue_item(server.build_job("app", {"SLIPWAY_RELEASE_ID": "d"}))
    params = {p["name"]: p["value"] for p in item["actions"][0]["parameters"]}
    assert params["GIT_REF"] == "main"


def test_unknown_queue_item_and_build_are_errors(emulator):
    server = client(emulator)
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):
        server.get_queue_item(999)
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):
        server.get_build_info("app", 999)


def test_faults_answer_with_the_status_asked_for_then_recover(emulator):
    server = client(emulator)
    emulator.control("POST", "faults", {"path": "/me/api/json", "status": 503, "count": 2})
    for _ in range(2):
        with pytest.raises(requests.HTTPError) as error:
            server.jenkins_open(requests.Request("GET", f"{emulator.url}me/api/json"))
        assert error.value.response.status_code == 503
    assert server.get_whoami()["id"] == "slipway"


def test_blocked_item_says_which_build_is_in_progress(emulator):
    server = client(emulator)
    emulator.control(
        "POST",
        "jobs",
        {
            "name": "s",
            "parameters": [{"name": "A"}],
            "quiet_period_seconds": 0,
            "duration_seconds": 5,
        },
    )
    wait_for_build(server, server.build_job("s", {"A": "1"}))
    second = server.get_queue_item(server.build_job("s", {"A": "2"}))
    assert second["blocked"] is True
    assert second["why"].startswith("Build #1 is already in progress")
