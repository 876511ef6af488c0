"""A real Celery worker process, the Jenkins emulator over HTTP, PostgreSQL, Redis."""

import pytest

from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from portal.catalog.models import JenkinsServer
from releases.builds import release_cancel, release_create, release_log_text
from tests.support.jenkins import builds_for, job_config
from tests.support.releases import wait_for_release
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def _create(service, dev, ref="main"):
    return release_create(service=service, ref=ref, actor=Actor.for_user(dev), user=dev)


def test_release_is_built_with_the_emulators_digest_and_its_whole_log(emulator, service, dev):
    release = wait_for_release(_create(service, dev, "feature/x"))

    assert release.status == "built", release.status_reason
    [build] = builds_for(emulator, release)
    assert release.image_digest == build["digest"]
    assert release.image == f"registry.local/demo/app@{build['digest']}"
    assert (release.build_number, release.queue_item_id) == (build["number"], 1)
    assert build["parameters"]["GIT_REF"] == "feature/x"
    log = release_log_text(release)
    assert log.startswith("Started by user slipway") and "Building image ✓" in log
    assert log.rstrip().endswith("Finished: SUCCESS")
    actions = list(
        AuditEvent.objects.filter(
            target_id=str(release.pk), target_type="releases.Release"
        ).values_list("action", flat=True)
    )
    assert actions == ["release.create", "release.queued", "release.building", "release.built"]


@pytest.mark.parametrize("result", ["FAILURE", "ABORTED", "UNSTABLE"])
def test_unsuccessful_build_fails_the_release_with_the_last_log_lines(
    emulator, service, dev, result
):
    emulator.control(
        "POST", "jobs", job_config("demo/app", result=result, log=[f"step {n}" for n in range(30)])
    )
    release = wait_for_release(_create(service, dev))

    assert release.status == "failed"
    assert release.build_result == result
    assert f"ended {result}" in release.status_reason
    assert "step 29" in release.status_reason and "step 5\n" not in release.status_reason
    assert release.image_digest == ""


@pytest.mark.parametrize("report", ["artifact-text", "description"])
def test_digest_is_read_from_a_text_artifact_or_the_description(emulator, service, dev, report):
    emulator.control("POST", "jobs", job_config("demo/app", report=report))
    release = wait_for_release(_create(service, dev))
    assert release.status == "built", release.status_reason
    assert release.image_digest == builds_for(emulator, release)[0]["digest"]


def test_success_without_a_digest_fails_the_release(emulator, service, dev):
    emulator.control("POST", "jobs", job_config("demo/app", report="none"))
    release = wait_for_release(_create(service, dev))
    assert release.status == "failed"
    assert "no valid sha256 digest" in release.status_reason


def test_jenkins_5xx_for_a_while_then_recovering_yields_exactly_one_build(emulator, service, dev):
    for path, status in (
        ("buildWithParameters", 503),
        ("/queue/item/", 500),
        (r"/\d+/api/json", 503),
    ):
        emulator.control("POST", "faults", {"path": path, "status": status, "count": 2})
    release = wait_for_release(_create(service, dev))
    assert release.status == "built", release.status_reason
    assert len(builds_for(emulator, release)) == 1
    assert emulator.control("GET", "state")["faults"] == []  # every fault was hit


def test_a_lost_trigger_response_is_found_again_not_built_twice(emulator, service, dev):
    # Jenkins takes the request but answers after the client gave up (timeout 1 s).
    JenkinsServer.objects.update(timeout_seconds=1)
    emulator.control(
        "POST", "faults", {"path": "buildWithParameters", "delay_response": 2.5, "count": 1}
    )
    release = wait_for_release(_create(service, dev))
    assert release.status == "built", release.status_reason
    assert len(builds_for(emulator, release)) == 1


def test_jenkins_unavailable_for_good_fails_with_a_clear_reason(emulator, service, dev):
    emulator.control("POST", "faults", {"path": "buildWithParameters", "status": 503, "count": 100})
    release = wait_for_release(_create(service, dev), timeout=60)
    assert release.status == "failed"
    assert "Jenkins unavailable (503)" in release.status_reason
    assert "gave up after 5 retries" in release.status_reason


def test_bad_credentials_fail_at_once_with_a_clear_reason(emulator, service, dev):
    JenkinsServer.objects.update(api_token="wrong")
    release = wait_for_release(_create(service, dev), timeout=15)
    assert release.status == "failed"
    assert release.status_reason == "Jenkins rejected Slipway's credentials (401)"
    assert "retry" not in release.progress


def test_unknown_job_fails_naming_the_job(emulator, service, dev):
    service.jenkins_job = "demo/ghost"
    service.save()
    release = wait_for_release(_create(service, dev), timeout=15)
    assert release.status == "failed"
    assert "job demo/ghost not found in Jenkins" in release.status_reason


def test_cancel_while_building_stops_the_build(emulator, service, dev):
    emulator.control("POST", "jobs", job_config("demo/app", duration_seconds=30))
    release = wait_for_release(_create(service, dev), statuses={"building"})
    release_cancel(release=release, actor=Actor.for_user(dev))
    release = wait_for_release(release, timeout=20)
    assert release.status == "cancelled"
    assert builds_for(emulator, release)[0]["result"] == "ABORTED"


def test_cancel_while_queued_cancels_the_queue_item(emulator, service, dev):
    emulator.control("POST", "jobs", job_config("demo/app", quiet_period_seconds=30))
    release = wait_for_release(_create(service, dev), statuses={"queued"})
    release_cancel(release=release, actor=Actor.for_user(dev))
    release = wait_for_release(release, timeout=20)
    assert release.status == "cancelled"
    assert builds_for(emulator, release) == []


def test_queue_why_is_shown_while_waiting(emulator, service, dev):
    emulator.control("POST", "jobs", job_config("demo/app", quiet_period_seconds=5))
    release = wait_for_release(_create(service, dev), statuses={"queued"})

    def says_why():
        release.refresh_from_db()
        return release.progress.startswith("In the quiet period")

    wait_until(says_why, 10, "Jenkins's queue reason on the release")


def _b64(data: bytes) -> dict:
    import base64

    return {"base64": base64.b64encode(data).decode()}


def test_a_log_with_nul_bytes_invalid_utf8_and_a_1mb_line_ends_and_reads_back(
    emulator, service, dev, client
):
    # Given a build whose console holds what PostgreSQL text cannot, and a 1 MB line
    long_line = "x" * 1_000_000
    emulator.control(
        "POST",
        "jobs",
        job_config(
            "demo/app",
            log=["before", _b64(b"nul\x00byte"), _b64(b"bad \xff\xfe utf8"), long_line, "after"],
        ),
    )
    # When it is built
    release = wait_for_release(_create(service, dev), timeout=60)
    # Then it ends built, and its log reads back whole, the strange bytes replaced
    assert release.status == "built", release.status_reason
    log = release_log_text(release)
    assert "nul\ufffdbyte\nbad \ufffd\ufffd utf8\n" in log
    assert f"\n{long_line}\nafter\n" in log
    assert log.rstrip().endswith("Finished: SUCCESS")
    # And the byte offsets match Jenkins's: the next read starts at the console's size
    build = builds_for(emulator, release)[0]
    console = _console_bytes(emulator, build["number"])
    release.refresh_from_db()
    assert release.log_offset == len(console)
    client.force_login(dev)
    from portal.access.models import Membership

    Membership.objects.create(team=service.team, user=dev, role="viewer")
    fragment = client.get(f"/releases/{release.pk}/log?offset=0").content.decode()
    assert "nul\ufffdbyte" in fragment


def _console_bytes(emulator, number: int) -> bytes:
    """The console as Jenkins serves it, through the client Slipway uses."""
    from doors.jenkins import JenkinsClient, job_path
    from tests.support.jenkins import TOKEN

    client = JenkinsClient(emulator.url, "slipway", TOKEN)
    return client._request("GET", f"{job_path('demo/app')}{number}/consoleText").content


def test_a_character_split_across_console_chunks_is_reassembled(emulator, service, dev):
    # Given Jenkins hands the console out 5 bytes at a time, cutting characters in two
    lines = ["ünïcödé ✓ 日本語 ok", "€€€€€ done"]
    emulator.control("POST", "jobs", job_config("demo/app", log=lines, max_chunk_bytes=5))
    release = wait_for_release(_create(service, dev), timeout=60)
    assert release.status == "built", release.status_reason
    # Then the stored text is exactly the console, character for character
    build = builds_for(emulator, release)[0]
    assert release_log_text(release) == _console_bytes(emulator, build["number"]).decode()
    assert release.log_chunks.count() > 10


def test_a_malformed_jenkins_answer_fails_the_release_with_the_reason(emulator, service, dev):
    emulator.control(
        "POST", "faults", {"path": r"/\d+/api/json", "body": "<html>proxy error", "count": 100}
    )
    release = wait_for_release(_create(service, dev), timeout=30)
    assert release.status == "failed"
    assert "with something that is not JSON ('<html>proxy error'" in release.status_reason


def test_a_303_into_another_releases_queue_item_fails_this_release(emulator, service, dev):
    # Given another release waits in Jenkins's queue as item 1
    emulator.control("POST", "jobs", job_config("demo/app", quiet_period_seconds=30))
    first = wait_for_release(_create(service, dev), statuses={"queued"})
    assert first.queue_item_id == 1
    # When Jenkins answers our trigger with 303 to that item
    emulator.control(
        "POST",
        "faults",
        {
            "path": "buildWithParameters",
            "status": 303,
            "headers": {"Location": f"{emulator.url}queue/item/1/"},
        },
    )
    second = wait_for_release(_create(service, dev, "other"), timeout=20)
    # Then this release fails naming the merge, and no build of it exists
    assert second.status == "failed"
    assert second.status_reason == "Jenkins merged this build into queue item 1 of another release"
    assert builds_for(emulator, second) == []


def test_jenkins_forgetting_the_queue_item_fails_the_release(emulator, service, dev):
    emulator.control("POST", "jobs", job_config("demo/app", quiet_period_seconds=30))
    release = wait_for_release(_create(service, dev), statuses={"queued"})
    emulator.control("POST", "faults", {"path": r"/queue/item/\d+/api/json", "status": 404})
    release = wait_for_release(release, timeout=20)
    assert release.status == "failed"
    assert release.status_reason == (
        f"Jenkins forgot queue item {release.queue_item_id} before it became a build"
    )


def test_an_unexpected_error_in_a_step_fails_the_release_naming_it(emulator, service, dev):
    # Given Jenkins answers a queue item with JSON of the wrong shape
    emulator.control("POST", "jobs", job_config("demo/app", quiet_period_seconds=30))
    emulator.control(
        "POST", "faults", {"path": r"/queue/item/\d+/api/json", "body": '{"executable": "7"}'}
    )
    release = wait_for_release(_create(service, dev), timeout=30)
    # Then the release ends failed with the error named, not active for ever
    assert release.status == "failed"
    assert release.status_reason.startswith(
        "Unexpected error in the queued step: AttributeError: 'str' object has no attribute"
    )


def test_the_built_commit_and_its_time_come_from_jenkins_git_data(emulator, service, dev):
    """lastBuiltRevision of the git plugin's BuildData, and the matching changeSets item."""
    sha = "3f" * 20
    emulator.control(
        "POST",
        "jobs",
        job_config("demo/app", commits={"v2.1": {"sha": sha, "timestamp": 1_790_000_000.5}}),
    )
    release = wait_for_release(_create(service, dev, "v2.1"))
    assert release.status == "built", release.status_reason
    assert release.commit_sha == sha
    assert release.commit_time.timestamp() == 1_790_000_000.5
    built = AuditEvent.objects.get(target_id=str(release.pk), action="release.built")
    assert built.after["commit_sha"] == sha


def test_a_build_reporting_an_image_outside_the_services_repository_fails(emulator, service, dev):
    service.require_image_repository = True
    service.save()
    emulator.control("POST", "jobs", job_config("demo/app", image="evil.example.com/x/app"))
    release = wait_for_release(_create(service, dev))
    assert release.status == "failed"
    assert "reported the image evil.example.com/x/app@sha256:" in release.status_reason
    assert f"outside this service's repository {service.image_repository}" in release.status_reason
    assert release.image_digest == ""
