"""The REST API with API tokens, as a script or CI would call it."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from portal.choices import Role
from portal.models import AuditEvent
from portal.tokens import token_issue
from releases.models import Release, ReleaseLogChunk
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db
DIGEST = "sha256:" + "e" * 64


@pytest.fixture
def world():
    path = service_path(image_repository="reg/app")
    clients = {}
    for name, role in (
        ("ci", Role.DEVELOPER),
        ("lead", Role.LEAD),
        ("lead2", Role.LEAD),
        ("viewer", Role.VIEWER),
    ):
        _, raw = token_issue(user=member(path.team, name, role), name="script")
        clients[name] = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    outsider = get_user_model().objects.create_user("outsider")
    clients["outsider"] = APIClient(
        HTTP_AUTHORIZATION=f"Bearer {token_issue(user=outsider, name='x')[1]}"
    )
    return {
        "service": path.service,
        "beta": path.beta,
        "prod": path.prod,
        "jenkins": path.jenkins,
        **clients,
    }


def _built(world) -> Release:
    return BuiltReleaseFactory(service=world["service"], ref="main", image_digest=DIGEST)


def test_a_script_requests_a_build_that_deploys_to_beta(world):
    response = world["ci"].post(
        "/api/v1/services/app/releases/", {"ref": "v1.2.3", "deploy_to": "beta"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["service"], body["ref"], body["status"]) == ("app", "v1.2.3", "requested")
    assert Release.objects.get(pk=body["id"]).deploy_after_build == world["beta"]
    event = AuditEvent.objects.get(action="release.create")
    assert event.actor_type == "token" and event.actor_name == "ci (token script)"


def test_bad_input_gets_a_clear_400(world):
    client = world["ci"]
    assert client.post("/api/v1/services/app/releases/", {}, format="json").json() == {
        "ref": ["This field is required."]
    }
    response = client.post("/api/v1/services/app/releases/", {"ref": "a b"}, format="json")
    assert response.status_code == 400 and "Give a branch" in response.json()["detail"]
    response = client.post(
        "/api/v1/services/app/releases/", {"ref": "x", "deploy_to": "prod"}, format="json"
    )
    assert response.status_code == 400 and "reached by promotion" in response.json()["detail"]
    assert (
        client.post("/api/v1/services/nope/releases/", {"ref": "x"}, format="json").status_code
        == 404
    )
    assert client.get("/api/v1/releases/1/log?offset=x").status_code in (400, 404)


def test_roles_are_enforced(world):
    assert (
        world["viewer"]
        .post("/api/v1/services/app/releases/", {"ref": "x"}, format="json")
        .status_code
        == 403
    )
    assert world["outsider"].get("/api/v1/releases/").json()["results"] == []
    release = _built(world)
    assert world["outsider"].get(f"/api/v1/releases/{release.pk}/").status_code == 404
    assert (
        world["ci"]
        .post(
            f"/api/v1/releases/{release.pk}/deployments/",
            {"environment": "beta", "kind": "rollback"},
            format="json",
        )
        .status_code
        == 403
    )
    assert APIClient().get("/api/v1/releases/").status_code == 401


def test_list_filters_and_never_shows_secrets(world):
    release = _built(world)
    Release.objects.create(
        service=world["service"],
        ref="other",
        jenkins_server=world["jenkins"],
        jenkins_job="demo/app",
        image_repository="reg/app",
        status="failed",
    )
    response = world["viewer"].get("/api/v1/releases/?status=built")
    [only] = response.json()["results"]
    assert only["id"] == release.pk and only["image"] == f"reg/app@{DIGEST}"
    assert "secret" not in response.content.decode()


def test_promotion_flow_with_approval_and_busy(world):
    release = _built(world)
    url = f"/api/v1/releases/{release.pk}/deployments/"
    refused = world["ci"].post(url, {"environment": "prod"}, format="json")
    assert refused.status_code == 400 and "has not succeeded in Beta" in refused.json()["detail"]
    succeeded_in(release, world["beta"])
    created = world["lead"].post(url, {"environment": "prod"}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "awaiting_approval"
    busy = world["ci"].post(url, {"environment": "prod"}, format="json")
    assert busy.status_code == 409 and "Busy" in busy.json()["detail"]
    deployment_id = created.json()["id"]
    own = world["lead"].post(f"/api/v1/deployments/{deployment_id}/approve", {}, format="json")
    assert own.status_code == 400 and "other than the requester" in own.json()["detail"]
    approved = world["lead2"].post(
        f"/api/v1/deployments/{deployment_id}/approve", {"comment": "ok"}, format="json"
    )
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("pending", "lead2")
    assert world["ci"].get(f"/api/v1/deployments/{deployment_id}/").json()["image"] == release.image


def test_log_streams_by_offset(world):
    release = _built(world)
    Release.objects.filter(pk=release.pk).update(status="building")
    ReleaseLogChunk.objects.create(release=release, offset=0, text="one\n")
    ReleaseLogChunk.objects.create(release=release, offset=4, text="two\n")
    first = world["viewer"].get(f"/api/v1/releases/{release.pk}/log").json()
    assert first == {"text": "one\ntwo\n", "next_offset": 8, "more": True}
    later = world["viewer"].get(f"/api/v1/releases/{release.pk}/log?offset=8").json()
    assert later == {"text": "", "next_offset": 8, "more": True}


def test_cancel_a_release_not_yet_sent_to_jenkins(world):
    release = Release.objects.create(
        service=world["service"],
        ref="main",
        jenkins_server=world["jenkins"],
        jenkins_job="demo/app",
        image_repository="reg/app",
    )
    response = world["ci"].post(f"/api/v1/releases/{release.pk}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    again = world["ci"].post(f"/api/v1/releases/{release.pk}/cancel")
    assert again.status_code == 400 and "already cancelled" in again.json()["detail"]


def test_openapi_schema_is_served(world):
    schema = world["viewer"].get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/services/{slug}/releases/" in schema.content
