"""SIGKILL the worker mid-release; after a restart the release completes with one build."""

import pytest

from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from portal.catalog.models import JenkinsServer
from releases.builds import release_create, release_log_text
from tests.support.jenkins import builds_for, job_config
from tests.support.releases import wait_for_release
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _kill_restart_and_finish(celery_worker, emulator, release):
    celery_worker.kill()
    celery_worker.start()
    release = wait_for_release(release, timeout=60)
    assert release.status == "built", release.status_reason
    assert len(builds_for(emulator, release)) == 1
    assert AuditEvent.objects.filter(action="release.resume", target_id=str(release.pk)).exists()
    return release


def test_worker_killed_while_following_the_queue(celery_worker, emulator, service, dev):
    emulator.control("POST", "jobs", job_config("demo/app", quiet_period_seconds=4))
    release = release_create(service=service, ref="main", actor=Actor.for_user(dev))
    wait_for_release(release, statuses={"queued"})
    release = _kill_restart_and_finish(celery_worker, emulator, release)
    assert release.queue_item_id is not None


def test_worker_killed_while_polling_the_build(celery_worker, emulator, service, dev):
    emulator.control(
        "POST",
        "jobs",
        job_config("demo/app", duration_seconds=5, log=[f"line {n}" for n in range(20)]),
    )
    release = release_create(service=service, ref="main", actor=Actor.for_user(dev))
    wait_for_release(release, statuses={"building"})
    release = _kill_restart_and_finish(celery_worker, emulator, release)
    # The log is whole and in order, with no chunk stored twice.
    log = release_log_text(release)
    assert [f"line {n}" in log for n in range(20)] == [True] * 20
    assert log.count("line 7\n") == 1


def test_a_run_whose_worker_is_lost_again_and_again_fails_as_worker_lost(
    celery_worker, emulator, service, dev
):
    # Given a long build, and Jenkins calls short enough that a lost run's lease ends soon
    JenkinsServer.objects.update(timeout_seconds=1)
    emulator.control("POST", "jobs", job_config("demo/app", duration_seconds=600))
    release = release_create(service=service, ref="main", actor=Actor.for_user(dev))
    wait_for_release(release, statuses={"building"})
    # When its worker is killed six times, each time after the run was resumed
    for kill in range(1, 7):
        celery_worker.kill()
        celery_worker.start()
        if kill < 6:
            wait_until(lambda n=kill: _reloaded(release).resume_count == n, 60, f"resume {kill}")
    # Then the sixth loss fails it, saying so, instead of resuming it for ever
    release = wait_for_release(release, timeout=60)
    assert release.status == "failed"
    assert release.status_reason.startswith("Worker lost 6 times; gave up (SLIPWAY_MAX_RESUMES=5)")
    assert (
        AuditEvent.objects.filter(action="release.resume", target_id=str(release.pk)).count() == 5
    )


def _reloaded(release):
    release.refresh_from_db()
    return release
