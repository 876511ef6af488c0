"""Requests racing each other over real HTTP (the live server answers each in its own
thread and database connection): the same request sent many times at once acts once."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from clusters.models import Cluster
from portal.access.choices import Role
from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from releases.deployments import deployment_start
from releases.models import Approval, Deployment, Release
from tests.factories import (
    BuiltReleaseFactory,
    JenkinsServerFactory,
    member,
    member_token,
    service_path,
    succeeded_in,
)
from tests.support.jenkins import TOKEN, builds_for
from tests.support.releases import wait_for_release
from tests.support.tarpit import kubeconfig_for, tarpit

pytestmark = pytest.mark.django_db(transaction=True)


def _all_at_once(calls: list) -> list[requests.Response]:
    """Run the calls in threads released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _post(live_server, token: str, path: str, body: dict, **headers):
    return lambda: requests.post(
        live_server.url + path,
        json=body,
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=60,
    )


@pytest.mark.parametrize("protected", [True, False])
def test_twenty_identical_promotions_at_once_make_one_deployment(live_server, protected):
    path = service_path(prod={"requires_approval": protected})
    release = BuiltReleaseFactory(service=path.service)
    succeeded_in(release, path.beta)
    token = member_token(path.team, "ci", Role.DEVELOPER)
    url = f"/api/v1/releases/{release.pk}/deployments/"
    with tarpit() as port:
        # A cluster that never answers, so an accepted deployment stays in flight even if
        # a worker picks it up while the other requests arrive.
        Cluster.objects.update(kubeconfig=kubeconfig_for(port))
        answers = _all_at_once([_post(live_server, token, url, {"environment": "prod"})] * 20)
    codes = sorted(response.status_code for response in answers)
    assert codes == [201] + [409] * 19
    [accepted] = Deployment.objects.filter(environment=path.prod)
    named = (
        f"Release #{release.pk} already waits for Prod: deployment #{accepted.pk}"
        if protected
        else f"Prod is busy with deployment #{accepted.pk} (release #{release.pk}) by ci"
    )
    refusals = [r.json()["detail"] for r in answers if r.status_code == 409]
    assert all(detail.startswith(named) for detail in refusals), refusals[0]


def test_ten_approvals_at_once_by_two_leads_make_one_decision(live_server):
    path = service_path()
    release = BuiltReleaseFactory(service=path.service)
    succeeded_in(release, path.beta)
    requester = member(path.team, "ci", Role.DEVELOPER)
    waiting = deployment_start(
        release=release,
        environment=path.prod,
        kind="promote",
        user=requester,
        actor=Actor.for_user(requester),
    )
    leads = [member_token(path.team, name, Role.LEAD) for name in ("lead", "lead2")]
    url = f"/api/v1/deployments/{waiting.pk}/approve"
    answers = _all_at_once(
        [_post(live_server, leads[n % 2], url, {"comment": f"ok {n}"}) for n in range(10)]
    )
    assert sorted(r.status_code for r in answers) == [200] + [409] * 9
    assert Approval.objects.filter(deployment=waiting).count() == 1
    assert (
        AuditEvent.objects.filter(action="deployment.pending", target_id=str(waiting.pk)).count()
        == 1
    )
    waiting.refresh_from_db()
    assert waiting.status != "awaiting_approval"  # started (a worker may already run it)


@pytest.mark.usefixtures("celery_worker")
def test_the_same_idempotency_key_ten_times_at_once_builds_once(live_server, emulator):
    path = service_path(jenkins_server=JenkinsServerFactory(url=emulator.url, api_token=TOKEN))
    token = member_token(path.team, "ci", Role.DEVELOPER)
    call = _post(
        live_server,
        token,
        "/api/v1/services/app/releases/",
        {"ref": "main", "deploy_to": "beta"},
        **{"Idempotency-Key": "deploy-main-42"},
    )
    answers = _all_at_once([call] * 10)
    assert [r.status_code for r in answers] == [201] * 10
    assert len({r.json()["id"] for r in answers}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == 9
    release = wait_for_release(Release.objects.get())
    assert release.status == "built", release.status_reason
    assert len(builds_for(emulator, release)) == 1
    assert len(emulator.control("GET", "state")["jobs"]["demo/app"]["builds"]) == 1
