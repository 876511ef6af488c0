"""Freezes, scoped tokens, throttling, the API's lists, team administration from the
portal, and the audit of every access change."""

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from devtools.services import free_port
from portal.access.choices import TokenScope
from portal.access.models import ApiToken, Membership
from portal.access.tokens import token_issue
from portal.audit.models import AuditEvent
from portal.catalog.models import DeploymentTarget, Freeze, NamespaceGrant
from releases.models import Deployment
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"


@pytest.fixture
def world():
    path = service_path()
    users = {
        name: member(path.team, name, name if name != "lead2" else "lead")
        for name in ("viewer", "developer", "lead", "lead2", "admin")
    }
    clients = {}
    for name, user in users.items():
        raw = token_issue(user=user, name="t", scopes=TokenScope.values)[1]
        clients[name] = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    release = BuiltReleaseFactory(service=path.service)
    succeeded_in(release, path.beta)
    return {"path": path, "users": users, "api": clients, "release": release}


def _freeze(world, *, starts=-1, ends=2, **extra) -> dict:
    now = timezone.now()
    body = {
        "team": world["path"].team.slug,
        "starts_at": (now + timedelta(hours=starts)).isoformat(),
        "ends_at": (now + timedelta(hours=ends)).isoformat(),
        "reason": "Black Friday",
        **extra,
    }
    response = world["api"]["lead"].post("/api/v1/environments/prod/freezes/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_promotion_during_a_freeze_is_refused_naming_it(world):
    freeze = _freeze(world)
    url = f"/api/v1/releases/{world['release'].pk}/deployments/"
    refused = world["api"]["developer"].post(url, {"environment": "prod"}, format="json")
    assert refused.status_code == 409 and refused["Content-Type"] == PROBLEM
    detail = refused.json()["detail"]
    assert "Prod is frozen for Team T's services until" in detail
    assert f"(freeze #{freeze['id']} by lead: Black Friday)" in detail
    assert "A lead may override it with a reason" in detail
    # A developer's override is not enough
    denied = world["api"]["developer"].post(
        url, {"environment": "prod", "freeze_override": "urgent"}, format="json"
    )
    assert denied.status_code == 403 and "Only a lead may override" in denied.json()["detail"]
    assert not Deployment.objects.filter(environment=world["path"].prod).exists()


def test_a_leads_override_with_a_reason_runs_and_is_audited(world):
    _freeze(world)
    response = world["api"]["lead"].post(
        f"/api/v1/releases/{world['release'].pk}/deployments/",
        {"environment": "prod", "freeze_override": "security fix CVE-2026-1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["freeze_override"]["reason"] == "security fix CVE-2026-1"
    assert body["freeze_override"]["by"] == "lead"
    event = AuditEvent.objects.get(action="freeze.override", target_id=str(body["id"]))
    assert event.after["reason"] == "security fix CVE-2026-1"
    # The approval of a frozen request needs no second override: it was given
    approved = world["api"]["lead2"].post(
        f"/api/v1/deployments/{body['id']}/approve", {}, format="json"
    )
    assert approved.status_code == 200 and approved.json()["status"] == "pending"


def test_after_the_window_a_promotion_runs(world):
    freeze = _freeze(world, starts=-3, ends=1)
    Freeze.objects.filter(pk=freeze["id"]).update(ends_at=timezone.now() - timedelta(minutes=1))
    response = world["api"]["developer"].post(
        f"/api/v1/releases/{world['release'].pk}/deployments/",
        {"environment": "prod"},
        format="json",
    )
    assert response.status_code == 201


def test_freezes_are_listed_deleted_and_audited_and_site_wide_ones_are_for_admins(world):
    freeze = _freeze(world)
    listed = world["api"]["viewer"].get("/api/v1/environments/prod/freezes/").json()
    assert [f["id"] for f in listed["results"]] == [freeze["id"]] and listed["results"][0]["active"]
    site_wide = world["api"]["admin"].post(
        "/api/v1/environments/prod/freezes/",
        {"ends_at": (timezone.now() + timedelta(hours=1)).isoformat(), "reason": "all"},
        format="json",
    )
    assert site_wide.status_code == 403 and "site admin" in site_wide.json()["detail"]
    deleted = world["api"]["lead"].delete(f"/api/v1/environments/prod/freezes/{freeze['id']}/")
    assert deleted.status_code == 204
    assert list(
        AuditEvent.objects.filter(action__startswith="freeze.").values_list("action", flat=True)
    ) == [
        "freeze.create",
        "freeze.delete",
    ]
    bad = world["api"]["lead"].post(
        "/api/v1/environments/prod/freezes/",
        {"team": "t", "ends_at": (timezone.now() - timedelta(hours=1)).isoformat(), "reason": "x"},
        format="json",
    )
    assert bad.status_code == 400 and "end after it starts" in bad.json()["detail"]


def test_a_freeze_shows_on_the_dashboard_and_the_service_page(client, world):
    _freeze(world)
    client.force_login(world["users"]["viewer"])
    assert 'class="mark freeze"' in client.get("/").content.decode()
    page = client.get("/services/app/").content.decode()
    assert "frozen</span> until" in page and "Black Friday" in page
    api = world["api"]["viewer"].get("/api/v1/services/app/").json()
    prod = next(e for e in api["environments"] if e["environment"] == "prod")
    assert prod["freeze"]["reason"] == "Black Friday" and prod["freeze"]["by"] == "lead"


def test_a_lead_overrides_a_freeze_in_the_promote_confirmation(client, world):
    _freeze(world)
    client.force_login(world["users"]["lead"])
    page = client.get(f"/releases/{world['release'].pk}/confirm?environment=prod").content.decode()
    assert "Why deploy during the freeze" in page
    client.post(
        f"/releases/{world['release'].pk}/deploy",
        {"environment": "prod", "kind": "promote", "freeze_override": "hotfix"},
    )
    assert (
        Deployment.objects.get(environment=world["path"].prod).freeze_override["reason"] == "hotfix"
    )
    client.force_login(world["users"]["developer"])
    page = client.get(f"/releases/{world['release'].pk}/confirm?environment=prod").content.decode()
    assert "Only a lead may override it" in page and "Request promotion" not in page


def test_a_read_scoped_token_lists_but_cannot_build_and_an_expired_one_is_refused(world):
    user = world["users"]["developer"]
    token, raw = token_issue(user=user, name="reader", scopes=[TokenScope.READ])
    reader = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert reader.get("/api/v1/releases/").status_code == 200
    refused = reader.post("/api/v1/services/app/releases/", {"ref": "main"}, format="json")
    assert refused.status_code == 403 and refused["Content-Type"] == PROBLEM
    assert "lacks the 'deploy' scope" in refused.json()["detail"]
    deployer = APIClient(
        HTTP_AUTHORIZATION=f"Bearer {token_issue(user=world['users']['lead'], name='d')[1]}"
    )
    waiting = (
        world["api"]["developer"]
        .post(
            f"/api/v1/releases/{world['release'].pk}/deployments/",
            {"environment": "prod"},
            format="json",
        )
        .json()
    )
    no_approve = deployer.post(f"/api/v1/deployments/{waiting['id']}/approve", {}, format="json")
    assert no_approve.status_code == 403 and "'approve' scope" in no_approve.json()["detail"]
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = reader.get("/api/v1/releases/")
    assert expired.status_code == 401 and expired["Content-Type"] == PROBLEM


def test_tokens_default_to_90_days_and_the_command_takes_scopes(world, capsys):
    from django.core.management import call_command

    token, _ = token_issue(user=world["users"]["viewer"], name="x")
    assert timedelta(days=89) < token.expires_at - timezone.now() <= timedelta(days=90)
    assert token.scopes == ["deploy", "read"]
    call_command("issue_token", "viewer", "--name", "ro", "--scope", "read")
    raw = capsys.readouterr().out.strip()
    made = ApiToken.objects.get(name="ro")
    assert raw.startswith("slw_") and made.scopes == ["read"]


def test_the_tokens_page_creates_once_lists_and_revokes(client, world):
    user = world["users"]["viewer"]
    client.force_login(user)
    response = client.post("/tokens/new", {"name": "laptop", "scopes": ["read"], "days": "30"})
    assert response.status_code == 302
    page = client.get("/tokens/").content.decode()
    token = ApiToken.objects.get(user=user, name="laptop")
    assert "is shown this once" in page and token.prefix in page
    shown = page.split('<pre class="log" tabindex="0">')[1].split("</pre>")[0]
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {shown}").get("/api/v1/me").status_code == 200
    again = client.get("/tokens/").content.decode()
    assert shown not in again and "laptop" in again  # listed, never shown again
    client.post(f"/tokens/{token.pk}/revoke")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert list(
        AuditEvent.objects.filter(
            target_type="portal.ApiToken", target_id=str(token.pk)
        ).values_list("action", flat=True)
    ) == ["api_token.issue", "api_token.revoke"]
    other = token_issue(user=world["users"]["lead"], name="theirs")[0]
    assert client.post(f"/tokens/{other.pk}/revoke").status_code == 404


def test_requests_per_token_are_throttled_with_retry_after(world, settings):
    settings.SLIPWAY_API_RATE = "3/min"
    client = world["api"]["viewer"]
    answers = [client.get("/api/v1/me").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = client.get("/api/v1/me")
    assert limited["Content-Type"] == PROBLEM and int(limited["Retry-After"]) > 0
    assert world["api"]["lead"].get("/api/v1/me").status_code == 200  # another token


def test_the_rate_is_a_sliding_window_and_says_when_to_come_back(world, settings):
    """The previous minute's requests count for the part of it still within a minute:
    5 a minute, all 5 in the last second of one minute, the next request one second into
    the next is refused until 48 s of that minute have slid out of reach."""
    settings.SLIPWAY_API_RATE = "5/min"
    client = world["api"]["viewer"]
    start = (int(timezone.now().timestamp()) // 60 + 1) * 60  # a minute's start
    with time_machine.travel(start + 59, tick=False):
        assert [client.get("/api/v1/me").status_code for _ in range(5)] == [200] * 5
    with time_machine.travel(start + 61, tick=False):
        refused = client.get("/api/v1/me")
        assert refused.status_code == 429
        assert refused["Retry-After"] == "11"  # 59 s left, less 48 s of the previous minute
    with time_machine.travel(start + 72, tick=False):
        assert client.get("/api/v1/me").status_code == 200
    # A minute full already: the rest of it, and a fifth of the next for one of its five
    # to slide out.
    lead = world["api"]["lead"]
    with time_machine.travel(start + 130, tick=False):
        assert [lead.get("/api/v1/me").status_code for _ in range(5)] == [200] * 5
        assert lead.get("/api/v1/me")["Retry-After"] == "62"
    with time_machine.travel(start + 180 + 11, tick=False):
        assert lead.get("/api/v1/me").status_code == 429
    with time_machine.travel(start + 180 + 12, tick=False):
        assert lead.get("/api/v1/me").status_code == 200


def test_the_api_answers_when_redis_does_not(world, settings):
    """The rate cannot be counted: the request is let through, not failed."""
    from portal.web import api_defaults

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    api_defaults._redis.cache_clear()
    try:
        assert world["api"]["viewer"].get("/api/v1/me").status_code == 200
    finally:
        api_defaults._redis.cache_clear()


def test_the_api_lists_keep_their_query_count_and_filter(world):
    path = world["path"]
    client = world["api"]["viewer"]

    def queries(url):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, response.content
        return len(captured)

    urls = [
        "/api/v1/services/",
        "/api/v1/releases/",
        "/api/v1/deployments/",
        "/api/v1/audit-events/",
    ]
    client.get("/api/v1/me")  # the token's "last used" is written at most once a minute
    before = {url: queries(url) for url in urls}
    for n in range(30):
        release = BuiltReleaseFactory(service=path.service, ref=f"r{n}")
        succeeded_in(release, path.beta)
    from tests.factories import ServiceFactory

    for n in range(10):
        ServiceFactory(slug=f"s{n}", name=f"S{n}", team=path.team, jenkins_server=path.jenkins)
    assert {url: queries(url) for url in urls} == before
    filtered = client.get(
        "/api/v1/deployments/?environment=beta&status=succeeded&kind=deploy"
    ).json()
    assert len(filtered["results"]) == 31
    assert client.get("/api/v1/deployments/?environment=prod").json()["results"] == []
    page = client.get("/api/v1/releases/?page_size=10").json()
    assert len(page["results"]) == 10 and page["next"]
    whole = client.get("/api/v1/releases/?page_size=200").json()
    assert len(whole["results"]) == 31  # at most 200 a page; there are 31
    refused = client.get("/api/v1/releases/?page_size=100000")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"page_size": ["A whole number from 1 to 200."]}


def test_the_audit_events_api_filters_and_streams_csv(world):
    client = world["api"]["lead"]
    release = world["release"]
    response = client.get(
        "/api/v1/audit-events/?target_type=releases.Deployment&action=deployment."
    )
    assert response.status_code == 200
    _freeze(world)
    csv_response = client.get("/api/v1/audit-events/?format=csv&action=freeze.")
    assert csv_response.streaming and csv_response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(csv_response.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["freeze.create"]
    assert rows[0]["actor_name"] == "lead (token t)" and "Black Friday" in rows[0]["after"]
    # Outside the team, the team's events are not there
    from tests.factories import UserFactory

    outsider = UserFactory(username="outsider")
    raw = token_issue(user=outsider, name="o")[1]
    other = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}").get(
        "/api/v1/audit-events/?action=freeze."
    )
    assert other.json()["results"] == []
    assert release.pk


def test_a_team_admin_manages_members_and_targets_from_the_portal(client, world):
    admin, lead = world["users"]["admin"], world["users"]["lead"]
    newcomer = get_user_model().objects.create_user("newcomer")
    client.force_login(lead)
    assert (
        client.post("/teams/t/members", {"username": "newcomer", "role": "viewer"}).status_code
        == 403
    )
    client.force_login(admin)
    client.post("/teams/t/members", {"username": "newcomer", "role": "viewer"})
    client.post("/teams/t/members", {"username": "newcomer", "role": "developer"})
    membership = Membership.objects.get(user=newcomer)
    assert membership.role == "developer"
    client.post(f"/teams/t/members/{membership.pk}/remove")
    assert not Membership.objects.filter(user=newcomer).exists()
    target = DeploymentTarget.objects.get(environment=world["path"].beta)
    # Inside what a platform admin granted the team for Beta on that cluster
    NamespaceGrant.objects.create(
        cluster=target.cluster,
        team=target.service.team,
        pattern="beta-*",
        environment=target.environment,
    )
    client.post(
        f"/teams/t/targets/{target.pk}",
        {
            f"t{target.pk}-service": target.service_id,
            f"t{target.pk}-environment": target.environment_id,
            f"t{target.pk}-cluster": target.cluster_id,
            f"t{target.pk}-namespace": "beta-moved",
            f"t{target.pk}-helm_release_name": target.helm_release_name,
            f"t{target.pk}-values": '{"replicaCount": 3}',
        },
    )
    target.refresh_from_db()
    assert (target.namespace, target.values) == ("beta-moved", {"replicaCount": 3})
    actions = AuditEvent.objects.filter(action__startswith="membership.", actor_name="admin")
    assert list(actions.values_list("action", flat=True)) == [
        "membership.create",
        "membership.change",
        "membership.delete",
    ]
    change = AuditEvent.objects.get(action="deploymenttarget.change")
    assert change.before == {"namespace": "beta", "values": {}}
    assert change.after == {"namespace": "beta-moved", "values": {"replicaCount": 3}}


def test_admin_changes_to_roles_and_users_are_audited(client, world):
    root = get_user_model().objects.create_superuser("root", password="pw-root-123456")
    client.force_login(root)
    team = world["path"].team
    viewer = world["users"]["viewer"]
    membership = Membership.objects.get(user=viewer)
    form = {
        "slug": team.slug,
        "name": team.name,
        "memberships-TOTAL_FORMS": "2",
        "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": str(membership.pk),
        "memberships-0-team": str(team.pk),
        "memberships-0-user": str(viewer.pk),
        "memberships-0-role": "lead",
        "memberships-0-source": "manual",
        "memberships-1-team": str(team.pk),
        "memberships-1-user": str(get_user_model().objects.create_user("nina").pk),
        "memberships-1-role": "viewer",
        "memberships-1-source": "manual",
    }
    response = client.post(f"/admin/portal/team/{team.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    change = AuditEvent.objects.get(action="membership.change")
    assert (change.before, change.after) == ({"role": "viewer"}, {"role": "lead"})
    assert AuditEvent.objects.get(action="membership.create").after["user"] is not None
    user_form = {
        "username": "viewer",
        "is_active": "on",
        "is_superuser": "on",
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    response = client.post(f"/admin/auth/user/{viewer.pk}/change/", user_form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert AuditEvent.objects.filter(
        action="user.superuser_grant", target_id=str(viewer.pk)
    ).exists()
    change = AuditEvent.objects.get(action="user.change")
    assert change.after["is_superuser"] is True and "password" not in change.after


def test_sign_in_sign_out_and_failures_are_audited_with_the_address(client, world):
    user = world["users"]["viewer"]
    user.set_password("pw-viewer-123456")
    user.save()
    client.post("/login/", {"username": "viewer", "password": "nope"}, REMOTE_ADDR="10.1.2.3")
    client.post("/login/", {"username": "viewer", "password": "pw-viewer-123456"})
    client.post("/logout/")
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert (failed.ip, failed.after) == ("10.1.2.3", {"username": "viewer"})
    assert "nope" not in str(failed.after)
    assert AuditEvent.objects.filter(action="auth.login", actor_name="viewer").exists()
    assert AuditEvent.objects.filter(action="auth.logout", actor_name="viewer").exists()
