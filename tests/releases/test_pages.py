"""The service and release pages, through Django's test client on real PostgreSQL."""

import re

import pytest
from django.contrib.auth import get_user_model

from portal.access.choices import Role
from portal.audit.models import AuditEvent
from releases.models import Deployment, Release, ReleaseLogChunk
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    path = service_path(image_repository="reg/app")
    users = {
        name: member(path.team, name, role)
        for name, role in (("viewer", Role.VIEWER), ("dev", Role.DEVELOPER))
    }
    users["stranger"] = get_user_model().objects.create_user("stranger")
    return {
        "service": path.service,
        "beta": path.beta,
        "prod": path.prod,
        "jenkins": path.jenkins,
        **users,
    }


def login(client, user):
    client.force_login(user)
    return client


def test_build_and_deploy_to_beta_creates_a_release_set_to_deploy_to_beta(client, world):
    response = login(client, world["dev"]).post("/services/app/releases/", {"ref": "feature/x"})
    release = Release.objects.get()
    assert response.status_code == 302 and response.url == f"/releases/{release.pk}/"
    assert (release.ref, release.deploy_after_build, release.requested_by) == (
        "feature/x",
        world["beta"],
        world["dev"],
    )
    event = AuditEvent.objects.get(action="release.create")
    assert event.actor_name == "dev" and event.ip == "127.0.0.1"


def test_a_bad_ref_is_refused_with_a_message_and_nothing_created(client, world):
    response = login(client, world["dev"]).post(
        "/services/app/releases/", {"ref": "a b;rm"}, follow=True
    )
    assert response.status_code == 200
    assert "Give a branch, tag or commit" in response.content.decode()
    assert Release.objects.count() == 0


def test_a_viewer_sees_the_service_but_cannot_build(client, world):
    page = login(client, world["viewer"]).get("/services/app/").content.decode()
    assert "Recent releases" in page and "Build &amp; deploy" not in page
    assert client.post("/services/app/releases/", {"ref": "main"}).status_code == 403
    assert Release.objects.count() == 0


def test_a_stranger_gets_404_and_anonymous_goes_to_login(client, world):
    # A service of another team does not exist for them (a 403 would reveal it).
    assert login(client, world["stranger"]).get("/services/app/").status_code == 404
    client.logout()
    assert client.get("/services/app/").status_code == 302


def _built(world, **extra) -> Release:
    return BuiltReleaseFactory(service=world["service"], **extra)


def _succeeded_in_beta(world, release) -> Deployment:
    return succeeded_in(release, world["beta"])


def test_release_page_shows_the_image_and_offers_promotion_only_after_beta(client, world):
    release = _built(world)
    page = login(client, world["dev"]).get(f"/releases/{release.pk}/").content.decode()
    assert release.image in page
    assert "Promote to Beta" in page and "Promote to Prod" not in page
    _succeeded_in_beta(world, release)
    page = client.get(f"/releases/{release.pk}/").content.decode()
    assert "Promote to Prod" in page
    assert "kube-secret-config" not in page and "jenkins-secret-token" not in page


def test_promoting_before_beta_succeeded_is_refused_with_a_message(client, world):
    release = _built(world)
    response = login(client, world["dev"]).post(
        f"/releases/{release.pk}/deploy", {"environment": "prod"}, follow=True
    )
    assert "nothing runs in Beta yet" in response.content.decode()
    assert Deployment.objects.count() == 0


def test_unknown_environment_is_404_and_bad_kind_400(client, world):
    release = _built(world)
    login(client, world["dev"])
    assert client.post(f"/releases/{release.pk}/deploy", {"environment": "nope"}).status_code == 404
    assert (
        client.post(
            f"/releases/{release.pk}/deploy", {"environment": "beta", "kind": "x"}
        ).status_code
        == 400
    )


def test_log_fragment_returns_text_from_an_offset_and_the_next_offset(client, world):
    release = _built(world, status_reason="")
    Release.objects.filter(pk=release.pk).update(status="building")
    ReleaseLogChunk.objects.create(release=release, offset=0, end_offset=11, text="Started ✓\n")
    ReleaseLogChunk.objects.create(release=release, offset=11, end_offset=18, text="step 2\n")
    login(client, world["viewer"])
    body = client.get(f"/releases/{release.pk}/log?offset=0").content.decode()
    assert body.startswith("Started ✓\nstep 2\n")
    assert "offset=18" in body  # polls on from the end of what it has
    body = client.get(f"/releases/{release.pk}/log?offset=11").content.decode()
    assert body.startswith("step 2\n")
    assert client.get(f"/releases/{release.pk}/log?offset=x").status_code == 400


def test_dashboard_shows_what_runs_where(client, world):
    release = _built(world)
    _succeeded_in_beta(world, release)
    page = login(client, world["viewer"]).get("/").content.decode()
    assert f'href="/releases/{release.pk}/"' in page
    assert "nothing yet" in page  # prod


def _promote_to_prod(client, world, user):
    release = _built(world)
    _succeeded_in_beta(world, release)
    login(client, user).post(f"/releases/{release.pk}/deploy", {"environment": "prod"})
    return release, Deployment.objects.get(environment=world["prod"])


@pytest.fixture
def leads(world):
    return {name: member(world["service"].team, name, Role.LEAD) for name in ("lead", "lead2")}


def test_promotion_to_a_protected_environment_waits_for_another_lead(client, world, leads):
    release, deployment = _promote_to_prod(client, world, leads["lead"])
    assert deployment.status == "awaiting_approval"
    # The requester may not approve their own promotion, a developer may not either.
    page = client.get(f"/releases/{release.pk}/").content.decode()
    assert "Approve" not in page
    response = client.post(
        f"/deployments/{deployment.pk}/decide", {"decision": "approve"}, follow=True
    )
    assert "A lead other than the requester must approve" in response.content.decode()
    login(client, world["dev"]).post(
        f"/deployments/{deployment.pk}/decide", {"decision": "approve"}
    )
    deployment.refresh_from_db()
    assert deployment.status == "awaiting_approval"
    # Another lead approves: the deployment starts.
    login(client, leads["lead2"])
    assert "Approve" in client.get(f"/releases/{release.pk}/").content.decode()
    client.post(f"/deployments/{deployment.pk}/decide", {"decision": "approve"})
    deployment.refresh_from_db()
    assert deployment.status == "pending"
    assert deployment.approval.decided_by == leads["lead2"]
    assert AuditEvent.objects.filter(action="deployment.pending", actor_name="lead2").exists()


def test_a_rejected_promotion_is_cancelled_with_the_reason(client, world, leads):
    _, deployment = _promote_to_prod(client, world, leads["lead"])
    login(client, leads["lead2"]).post(
        f"/deployments/{deployment.pk}/decide", {"decision": "reject", "comment": "freeze week"}
    )
    deployment.refresh_from_db()
    assert deployment.status == "cancelled"
    assert deployment.status_reason == "rejected by lead2: freeze week"


def test_a_second_request_to_promote_names_the_one_waiting(client, world, leads):
    release, waiting = _promote_to_prod(client, world, leads["lead"])
    response = client.post(f"/releases/{release.pk}/deploy", {"environment": "prod"}, follow=True)
    assert f"already waits for Prod: deployment #{waiting.pk} requested by lead" in (
        response.content.decode()
    )
    assert Deployment.objects.filter(environment=world["prod"]).count() == 1


def test_the_requester_withdraws_a_waiting_promotion_from_the_release_page(client, world, leads):
    release, waiting = _promote_to_prod(client, world, world["dev"])
    page = client.get(f"/releases/{release.pk}/").content.decode()
    assert f'action="/deployments/{waiting.pk}/withdraw"' in page
    # A viewer sees no withdraw button and may not withdraw
    viewer_page = login(client, world["viewer"]).get(f"/releases/{release.pk}/").content.decode()
    assert "/withdraw" not in viewer_page
    client.post(f"/deployments/{waiting.pk}/withdraw")
    waiting.refresh_from_db()
    assert waiting.status == "awaiting_approval"
    login(client, world["dev"]).post(f"/deployments/{waiting.pk}/withdraw")
    waiting.refresh_from_db()
    assert (waiting.status, waiting.status_reason) == ("cancelled", "withdrawn by dev")


def test_a_double_submitted_build_form_makes_one_release(client, world):
    # Given the service page's form with its one-time token
    page = login(client, world["dev"]).get("/services/app/").content.decode()
    token = re.search(r'name="form_token" value="([0-9a-f]+)"', page).group(1)
    # When it is sent twice (a double click)
    form = {"ref": "main", "form_token": token}
    first = client.post("/services/app/releases/", form)
    second = client.post("/services/app/releases/", form)
    # Then one release exists and both answers lead to it
    release = Release.objects.get()
    assert first.url == second.url == f"/releases/{release.pk}/"
    # The same token with other values is refused, not acted on
    other = client.post(
        "/services/app/releases/", {"ref": "other", "form_token": token}, follow=True
    )
    assert "already sent" in other.content.decode()
    assert Release.objects.count() == 1


def test_a_lead_rolls_back_an_environment_in_one_click(client, world, leads):
    first, second = _built(world), _built(world)
    for release in (first, second):
        _succeeded_in_beta(world, release)
    page = login(client, world["dev"]).get("/services/app/").content.decode()
    assert "Roll back to" not in page  # developers do not roll back
    page = login(client, leads["lead"]).get("/services/app/").content.decode()
    assert f"Roll back to #{first.pk}" in page
    client.post(f"/releases/{first.pk}/deploy", {"environment": "beta", "kind": "rollback"})
    rollback = Deployment.objects.get(kind="rollback")
    assert (rollback.release, rollback.environment, rollback.status) == (
        first,
        world["beta"],
        "pending",
    )


@pytest.mark.parametrize("ref", ["--upload-pack=touch /tmp/x", "-f", "a..b", "x" * 201, " "])
def test_refs_that_could_read_as_options_or_ranges_are_refused(client, world, ref):
    response = login(client, world["dev"]).post(
        "/services/app/releases/", {"ref": ref}, follow=True
    )
    assert "Give a branch, tag or commit" in response.content.decode()
    assert Release.objects.count() == 0


@pytest.mark.parametrize("ref", ["main", "feature/x-1", "v1.2.3", "release@2026", "a" * 40])
def test_ordinary_refs_are_accepted(client, world, ref):
    login(client, world["dev"]).post("/services/app/releases/", {"ref": ref})
    assert Release.objects.get().ref == ref
