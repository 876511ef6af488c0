"""Jenkins tells Slipway when a build starts and ends (the Notification plugin's JSON, sent
by the emulator as the plugin does), so a release moves on at once; polling stays as the
fallback, at SLIPWAY_POLL_FALLBACK_SECONDS (600 s for the test worker: a build that ends
here ended because Jenkins said so)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from portal.audit.chain import Actor
from releases.builds import job_from_url, poll_seconds, release_create
from releases.models import Release
from tests.factories import JenkinsServerFactory, ServiceFactory, UserFactory
from tests.support.jenkins import TOKEN, job_config
from tests.support.waiting import wait_until

SECRET = "notify-secret-0123456789"


@pytest.fixture
def notified(emulator, live_server):
    server = JenkinsServerFactory(
        name="ci", url=emulator.url, api_token=TOKEN, notification_secret=SECRET
    )
    hook = f"{live_server.url}/hooks/jenkins/ci?token={SECRET}"
    emulator.control("POST", "reset", {"jobs": [job_config("demo/app", duration_seconds=2.0)],
                                       "notifications": [hook]})  # fmt: skip
    yield {"service": ServiceFactory(jenkins_server=server), "emulator": emulator,
           "server": server}  # fmt: skip
    emulator.control("POST", "notifications", {"endpoints": []})


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_build_moves_on_when_jenkins_says_it_started_and_ended(notified):
    release = release_create(
        service=notified["service"], ref="main", actor=Actor.for_user(UserFactory())
    )
    built = wait_until(
        lambda: Release.objects.filter(pk=release.pk, status="built").first(),
        60, "the release built on Jenkins's word",
    )  # fmt: skip
    assert built.build_number == 1 and built.image_digest.startswith("sha256:")
    assert built.resume_count == 0  # the long waits between looks were leased, not "lost"
    sent = notified["emulator"].emulator.notifier.sent
    assert ("demo/app", 1, "STARTED") in sent and ("demo/app", 1, "COMPLETED") in sent


@pytest.mark.django_db
def test_the_hook_answers_only_its_jenkins_and_says_what_it_did(notified):
    api = APIClient()
    body = {"name": "app", "url": "job/demo/job/app/",
            "build": {"number": 7, "phase": "COMPLETED", "status": "SUCCESS"}}  # fmt: skip
    assert api.post("/hooks/jenkins/ci?token=wrong", body, format="json").status_code == 403
    assert api.post("/hooks/jenkins/ci", body, format="json").status_code == 403
    assert api.post(f"/hooks/jenkins/nope?token={SECRET}", body, format="json").status_code == 404
    bad = api.post(f"/hooks/jenkins/ci?token={SECRET}", {"build": {"phase": "X"}}, format="json")
    assert bad.status_code == 400 and "build.phase one of" in bad.content.decode()
    junk = api.post(f"/hooks/jenkins/ci?token={SECRET}", "{", content_type="application/json")
    assert junk.status_code == 400
    # A build that is none of ours is accepted and changes nothing.
    answer = api.post(f"/hooks/jenkins/ci?token={SECRET}", body, format="json")
    assert (answer.status_code, answer.json()) == (202, {"release": None})


@pytest.mark.django_db
def test_a_jenkins_without_notifications_is_polled_as_before(service):
    release = release_create(service=service, ref="main", actor=Actor.for_user(UserFactory()))
    with override_settings(SLIPWAY_POLL_SECONDS=2.0, SLIPWAY_POLL_FALLBACK_SECONDS=30.0):
        assert poll_seconds(release) == 2.0
        service.jenkins_server.notification_secret = SECRET
        service.jenkins_server.save()
        release.refresh_from_db()
        assert poll_seconds(Release.objects.get(pk=release.pk)) == 30.0


def test_the_plugins_job_url_names_the_job():
    assert job_from_url("job/demo/job/app/") == "demo/app"
    assert job_from_url("job/app") == "app"
    assert job_from_url("") == ""
