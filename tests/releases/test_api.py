"""The REST API with API tokens, as a script or CI would call it."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.models import AuditEvent
from releases.models import Deployment, Release, ReleaseLogChunk
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db
DIGEST = "sha256:" + "e" * 64
PROBLEM = "application/problem+json"


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
        _, raw = token_issue(
            user=member(path.team, name, role), name="script", scopes=TokenScope.values
        )
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


def _built(world, ref="main") -> Release:
    return BuiltReleaseFactory(service=world["service"], ref=ref)


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["type"].startswith("urn:slipway:problem:")
    return body


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


def test_bad_input_gets_a_clear_problem(world):
    client = world["ci"]
    body = _problem(client.post("/api/v1/services/app/releases/", {}, format="json"), 400)
    assert body["errors"] == {"ref": ["This field is required."]}
    response = client.post("/api/v1/services/app/releases/", {"ref": "a b"}, format="json")
    assert _problem(response, 400)["errors"]["ref"][0].startswith("Give a branch")
    response = client.post(
        "/api/v1/services/app/releases/", {"ref": "x", "deploy_to": "prod"}, format="json"
    )
    assert "reached by promotion" in _problem(response, 409)["detail"]
    _problem(client.post("/api/v1/services/nope/releases/", {"ref": "x"}, format="json"), 404)
    release = _built(world)
    body = _problem(client.get(f"/api/v1/releases/{release.pk}/log?offset=x"), 400)
    assert body["errors"] == {"offset": ["A whole number, 0 or more."]}
    _problem(client.get(f"/api/v1/releases/{release.pk}/log?offset=-4"), 400)


def test_deeply_nested_or_oversized_bodies_are_refused_not_500(world, settings):
    client = world["ci"]
    nested = "[" * 50_000 + "]" * 50_000
    response = client.post(
        "/api/v1/services/app/releases/", nested, content_type="application/json"
    )
    assert "nested" in _problem(response, 400)["detail"]
    response = client.post(
        "/api/v1/services/app/releases/", "[" * 40 + "]" * 40, content_type="application/json"
    )
    assert "deeper than 32" in _problem(response, 400)["detail"]
    settings.SLIPWAY_API_MAX_BODY_BYTES = 1000
    big = '{"ref": "main", "pad": "' + "x" * 2000 + '"}'
    response = client.post("/api/v1/services/app/releases/", big, content_type="application/json")
    assert "larger than 1000 bytes" in _problem(response, 413)["detail"]
    response = client.post("/api/v1/services/app/releases/", "{", content_type="application/json")
    assert "JSON parse error" in _problem(response, 400)["detail"]
    assert Release.objects.count() == 0


def test_roles_are_enforced(world):
    _problem(
        world["viewer"].post("/api/v1/services/app/releases/", {"ref": "x"}, format="json"), 403
    )
    release = _built(world)
    _problem(world["outsider"].get(f"/api/v1/releases/{release.pk}/"), 404)
    _problem(world["outsider"].get("/api/v1/services/app/"), 404)
    body = _problem(
        world["ci"].post(
            f"/api/v1/releases/{release.pk}/deployments/",
            {"environment": "beta", "kind": "rollback"},
            format="json",
        ),
        403,
    )
    assert "lead" in body["detail"]
    _problem(APIClient().get("/api/v1/releases/"), 401)


def test_an_outsider_lists_nothing_though_other_teams_have_releases(world):
    # Given releases of a team the outsider is not in
    _built(world, "a"), _built(world, "b")
    # Then the outsider's list is empty, while a member sees both
    assert world["outsider"].get("/api/v1/releases/").json()["results"] == []
    assert len(world["viewer"].get("/api/v1/releases/").json()["results"]) == 2


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
    assert only["id"] == release.pk and only["image"] == release.image
    assert "secret" not in response.content.decode()


def test_promotion_flow_with_approval(world):
    release = _built(world)
    url = f"/api/v1/releases/{release.pk}/deployments/"
    refused = _problem(world["ci"].post(url, {"environment": "prod"}, format="json"), 409)
    assert "nothing runs in Beta yet" in refused["detail"]
    succeeded_in(release, world["beta"])
    created = world["lead"].post(url, {"environment": "prod"}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "awaiting_approval"
    deployment_id = created.json()["id"]
    own = world["lead"].post(f"/api/v1/deployments/{deployment_id}/approve", {}, format="json")
    assert "other than the requester" in _problem(own, 403)["detail"]
    by_developer = world["ci"].post(
        f"/api/v1/deployments/{deployment_id}/approve", {}, format="json"
    )
    assert "Only a lead" in _problem(by_developer, 403)["detail"]
    approved = world["lead2"].post(
        f"/api/v1/deployments/{deployment_id}/approve", {"comment": "ok"}, format="json"
    )
    assert approved.status_code == 200
    body = approved.json()
    assert (body["status"], body["approved_by"], body["decision_comment"]) == (
        "pending",
        "lead2",
        "ok",
    )
    assert world["ci"].get(f"/api/v1/deployments/{deployment_id}/").json()["image"] == release.image


def test_a_second_request_for_the_same_release_and_environment_names_the_first(world):
    release = _built(world)
    succeeded_in(release, world["beta"])
    url = f"/api/v1/releases/{release.pk}/deployments/"
    first = world["lead"].post(url, {"environment": "prod"}, format="json").json()
    again = _problem(world["ci"].post(url, {"environment": "prod"}, format="json"), 409)
    assert (
        f"already waits for Prod: deployment #{first['id']} requested by lead" in (again["detail"])
    )
    assert Deployment.objects.count() == 2  # the Beta record and one request


def test_a_waiting_approval_holds_nothing_a_leads_rollback_runs_at_once(world):
    # Given R1 in Beta and Prod, R2 in Beta, and R2's promotion waiting for approval
    r1, r2 = _built(world, "r1"), _built(world, "r2")
    (
        succeeded_in(r1, world["beta"]),
        succeeded_in(r1, world["prod"]),
        succeeded_in(r2, world["beta"]),
    )
    waiting = world["ci"].post(
        f"/api/v1/releases/{r2.pk}/deployments/", {"environment": "prod"}, format="json"
    )
    assert waiting.json()["status"] == "awaiting_approval"
    # When a lead rolls Prod back, it starts at once (no approval, no 409)
    rollback = world["lead"].post(
        f"/api/v1/releases/{r1.pk}/deployments/",
        {"environment": "prod", "kind": "rollback"},
        format="json",
    )
    assert rollback.status_code == 201 and rollback.json()["status"] == "pending"
    # Then approving the waiting promotion while Prod is busy answers 409 and it keeps waiting
    busy = world["lead2"].post(
        f"/api/v1/deployments/{waiting.json()['id']}/approve", {}, format="json"
    )
    detail = _problem(busy, 409)["detail"]
    assert f"Prod is busy with deployment #{rollback.json()['id']}" in detail
    assert "keeps waiting" in detail
    assert Deployment.objects.get(pk=waiting.json()["id"]).status == "awaiting_approval"


def test_promotion_refused_when_beta_moved_on_and_approval_rechecks(world):
    # Given R2's promotion waits while Beta runs R2
    r1, r2 = _built(world, "r1"), _built(world, "r2")
    succeeded_in(r1, world["beta"]), succeeded_in(r2, world["beta"])
    waiting = (
        world["ci"]
        .post(f"/api/v1/releases/{r2.pk}/deployments/", {"environment": "prod"}, format="json")
        .json()
    )
    # When Beta is rolled back to R1
    rollback = succeeded_in(r1, world["beta"])
    Deployment.objects.filter(pk=rollback.pk).update(kind="rollback")
    # Then R2 cannot be promoted (not as "busy") and the waiting request cannot be approved
    refused = _problem(
        world["ci"].post(
            f"/api/v1/releases/{r2.pk}/deployments/", {"environment": "prod"}, format="json"
        ),
        409,
    )["detail"]
    assert f"Release #{r2.pk} is not what Beta runs now: Beta runs release #{r1.pk} (r1," in refused
    assert "busy" not in refused
    approval = _problem(
        world["lead2"].post(f"/api/v1/deployments/{waiting['id']}/approve", {}, format="json"), 409
    )
    assert "not what Beta runs now" in approval["detail"]
    assert Deployment.objects.get(pk=waiting["id"]).status == "awaiting_approval"


def test_the_requester_withdraws_then_a_new_request_is_accepted(world):
    release = _built(world)
    succeeded_in(release, world["beta"])
    url = f"/api/v1/releases/{release.pk}/deployments/"
    first = world["ci"].post(url, {"environment": "prod"}, format="json").json()
    # Another developer may not withdraw it; the requester may
    _problem(world["viewer"].post(f"/api/v1/deployments/{first['id']}/cancel"), 403)
    withdrawn = world["ci"].post(f"/api/v1/deployments/{first['id']}/cancel")
    assert withdrawn.status_code == 200
    assert (withdrawn.json()["status"], withdrawn.json()["status_reason"]) == (
        "cancelled",
        "withdrawn by ci",
    )
    again = world["ci"].post(f"/api/v1/deployments/{first['id']}/cancel")
    assert "only a waiting or pending deployment" in _problem(again, 409)["detail"]
    assert world["ci"].post(url, {"environment": "prod"}, format="json").status_code == 201
    assert AuditEvent.objects.filter(
        action="deployment.cancelled", target_id=str(first["id"]), actor_name="ci (token script)"
    ).exists()


def test_a_lead_withdraws_a_pending_deployment(world):
    release = _built(world)
    pending = (
        world["ci"]
        .post(f"/api/v1/releases/{release.pk}/deployments/", {"environment": "beta"}, format="json")
        .json()
    )
    assert pending["status"] == "pending"
    response = world["lead"].post(f"/api/v1/deployments/{pending['id']}/cancel")
    assert response.json()["status"] == "cancelled"


def test_log_streams_by_byte_offset(world):
    release = _built(world)
    Release.objects.filter(pk=release.pk).update(status="building")
    ReleaseLogChunk.objects.create(release=release, offset=0, end_offset=4, text="one\n")
    # Bytes Jenkins sent that were not text: stored replaced, the offset still counts bytes.
    ReleaseLogChunk.objects.create(release=release, offset=4, end_offset=9, text="t\ufffdo\n")
    first = world["viewer"].get(f"/api/v1/releases/{release.pk}/log").json()
    assert first == {"text": "one\nt\ufffdo\n", "next_offset": 9, "more": True}
    later = world["viewer"].get(f"/api/v1/releases/{release.pk}/log?offset=9").json()
    assert later == {"text": "", "next_offset": 9, "more": True}


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
    assert "already cancelled" in _problem(again, 409)["detail"]


def test_the_same_idempotency_key_replays_the_first_answer(world):
    client, url = world["ci"], "/api/v1/services/app/releases/"
    first = client.post(url, {"ref": "main"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(url, {"ref": "main"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Release.objects.count() == 1
    other = client.post(url, {"ref": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert "different request" in _problem(other, 409)["detail"]
    # Keys are per caller: another user's same key is a new request.
    lead = world["lead"].post(url, {"ref": "main"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert lead.status_code == 201 and Release.objects.count() == 2


def test_an_error_answer_is_replayed_too_and_a_bad_key_is_refused(world):
    client, url = world["ci"], "/api/v1/services/app/releases/"
    first = client.post(url, {"ref": "a b"}, format="json", HTTP_IDEMPOTENCY_KEY="bad-ref")
    again = client.post(url, {"ref": "a b"}, format="json", HTTP_IDEMPOTENCY_KEY="bad-ref")
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json() and again["Content-Type"] == PROBLEM
    body = _problem(
        client.post(url, {"ref": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="é" * 3), 400
    )
    assert "Idempotency-Key" in body["errors"]


def test_service_api_shows_what_runs_where(world):
    r1 = _built(world, "r1")
    deployment = succeeded_in(r1, world["beta"])
    body = world["viewer"].get("/api/v1/services/app/").json()
    beta, prod = body["environments"]
    assert (beta["environment"], beta["running"]["release"], beta["running"]["digest"]) == (
        "beta",
        r1.pk,
        r1.image_digest,
    )
    assert beta["running"]["deployment"] == deployment.pk and beta["drift"] is None
    assert prod["running"] is None


def test_openapi_schema_is_served(world):
    schema = world["viewer"].get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/services/{slug}/releases/" in schema.content
    assert b"/api/v1/deployments/{id}/cancel" in schema.content
