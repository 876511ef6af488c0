"""The network-bound queues run on a threads pool in production (Procfile, compose, chart):
a worker started that way carries several releases' build steps at once to the end, each
built once, with its log whole."""

import pytest
from django.db import connection

from portal.audit.chain import Actor
from releases.builds import release_create, release_log_text
from tests.conftest import TEST_REDIS_URL, WORKER_ENV, database_url_for
from tests.factories import JenkinsServerFactory, ServiceFactory
from tests.support.jenkins import TOKEN, builds_for, job_config
from tests.support.releases import wait_for_release
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def threads_worker(celery_worker, helm_binary, tmp_path):
    """The suite's worker stepped aside (it takes every queue) for a threads-pool one."""
    celery_worker.stop()
    worker = WorkerProcess(
        database_url=database_url_for(connection.settings_dict["NAME"]),
        redis_url=TEST_REDIS_URL,
        log_path=tmp_path / "threads-worker.log",
        queues="builds,rollouts,notifications,deploys,default",
        pool="threads",
        concurrency=8,
        extra_env={**WORKER_ENV, "SLIPWAY_HELM": helm_binary},
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        celery_worker.start()


def test_a_threads_pool_carries_several_builds_at_once(threads_worker, emulator, dev):
    jenkins = JenkinsServerFactory(url=emulator.url, api_token=TOKEN)
    services = [
        ServiceFactory(slug=f"net{n}", jenkins_server=jenkins, jenkins_job=f"demo/net{n}")
        for n in range(4)
    ]
    for service in services:
        emulator.control(
            "POST", "jobs",
            job_config(service.jenkins_job, duration_seconds=3, log=[f"{service.slug} step {n}"
                                                                    for n in range(5)]),
        )  # fmt: skip
    releases = [
        release_create(service=service, ref="main", actor=Actor.for_user(dev))
        for service in services
    ]
    for release in releases:
        release = wait_for_release(release, timeout=90)
        assert release.status == "built", (release.status_reason, threads_worker.log_text())
        assert len(builds_for(emulator, release, job=release.service.jenkins_job)) == 1
        log = release_log_text(release)
        assert all(log.count(f"{release.service.slug} step {n}\n") == 1 for n in range(5))
    assert "concurrency: 8 (thread)" in threads_worker.log_text()
