"""The pages a team lead lives in: dashboard, history, approvals inbox, audit, promotion
confirmation, error pages. Real PostgreSQL through Django's test client."""

import csv
import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.access.choices import Role
from portal.access.models import Team
from portal.audit.chain import Actor, audit_record
from portal.audit.models import AuditCheck, AuditEvent
from portal.catalog.models import DeploymentTarget, Environment, Service
from releases.deployments import deployment_start
from releases.models import Deployment, Release, TargetRollout
from tests.factories import (
    BuiltReleaseFactory,
    ClusterFactory,
    JenkinsServerFactory,
    member,
    service_path,
    succeeded_in,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    path = service_path(image_repository="reg/app")
    users = {
        name: member(path.team, name, role)
        for name, role in (
            ("viewer", Role.VIEWER),
            ("dev", Role.DEVELOPER),
            ("lead", Role.LEAD),
            ("lead2", Role.LEAD),
        )
    }
    users["outsider"] = get_user_model().objects.create_user("outsider")
    return {"path": path, "service": path.service, **users}


def login(client, user):
    client.force_login(user)
    return client


def _grow(world, count: int, start: int = 0) -> None:
    """`count` more services of the team, each in Beta and Prod with some history."""
    path = world["path"]
    jenkins, cluster = JenkinsServerFactory(), ClusterFactory()
    services = Service.objects.bulk_create(
        Service(
            slug=f"svc-{n}",
            name=f"Service {n:03d}",
            team=path.team,
            jenkins_server=jenkins,
            jenkins_job="demo/app",
            chart="charts/demo-service",
            image_repository=f"reg/svc-{n}",
        )
        for n in range(start, start + count)
    )
    targets = DeploymentTarget.objects.bulk_create(
        DeploymentTarget(
            service=s, environment=e, cluster=cluster, namespace=e.slug, helm_release_name=s.slug
        )
        for s in services
        for e in (path.beta, path.prod)
    )
    releases = Release.objects.bulk_create(
        Release(
            service=s,
            ref="main",
            status="built",
            jenkins_server=jenkins,
            jenkins_job="demo/app",
            image_repository=s.image_repository,
            image_digest="sha256:" + f"{s.pk:064x}",
            requested_by=world["dev"],
        )
        for s in services
    )
    now = timezone.now()
    made = Deployment.objects.bulk_create(
        Deployment(
            release=r,
            environment=t.environment,
            service=t.service,
            status="succeeded",
            image=r.image,
            requested_by=world["dev"],
            started_at=now,
            finished_at=now,
        )
        for r, t in zip(releases, targets[::2], strict=True)
    )
    TargetRollout.objects.bulk_create(
        TargetRollout(deployment=d, target=t, status="succeeded", helm_revision=1, finished_at=now)
        for d, t in zip(made, targets[::2], strict=True)
    )


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries)


@pytest.mark.parametrize(
    "url",
    ["/", "/?today=1&q=Service", "/?failing=1", "/?page=2", "/history/",
     "/history/?view=releases", "/approvals/", "/audit/"],
)  # fmt: skip
def test_lead_pages_read_as_many_queries_for_200_services_as_for_10(client, world, url):
    login(client, world["lead"])
    _grow(world, 10)
    few = _queries(client, url)
    _grow(world, 190, start=10)
    many = _queries(client, url)
    assert few == many, f"{url}: {few} queries for 10 services, {many} for 200"


def _grow_wide(world, count: int, start: int) -> None:
    """`count` more services in Beta, Staging and Prod, Prod on two clusters (two
    waves), each running a release everywhere: the bench's shape, ten times the last."""
    path = world["path"]
    staging = Environment.objects.get_or_create(
        slug="staging", defaults={"name": "Staging", "order": 3}
    )[0]
    jenkins = JenkinsServerFactory()
    main = ClusterFactory(slug=f"main-{start}", name=f"main-{start}")
    eu, us = (ClusterFactory(slug=f"{r}-{start}", name=f"{r}-{start}") for r in ("eu", "us"))
    places = [(path.beta, main, 1), (staging, main, 1), (path.prod, eu, 1), (path.prod, us, 2)]
    services = Service.objects.bulk_create(
        Service(
            slug=f"wide-{n}", name=f"Wide {n:04d}", team=path.team, jenkins_server=jenkins,
            jenkins_job="demo/app", chart="charts/demo-service", image_repository=f"reg/w-{n}",
        )
        for n in range(start, start + count)
    )  # fmt: skip
    targets = DeploymentTarget.objects.bulk_create(
        DeploymentTarget(
            service=s, environment=e, cluster=c, wave=w, namespace=e.slug,
            helm_release_name=s.slug,
        )
        for s in services
        for e, c, w in places
    )  # fmt: skip
    releases = Release.objects.bulk_create(
        Release(
            service=s, ref="main", status="built", jenkins_server=jenkins,
            jenkins_job="demo/app", image_repository=s.image_repository,
            image_digest="sha256:" + f"{s.pk:064x}", requested_by=world["dev"],
        )
        for s in services
    )  # fmt: skip
    now = timezone.now()
    release_of = {r.service_id: r for r in releases}
    deployments = Deployment.objects.bulk_create(
        Deployment(
            release=release_of[s.pk], environment=e, service=s, status="succeeded",
            image=release_of[s.pk].image, requested_by=world["dev"], started_at=now,
            finished_at=now,
        )
        for s in services
        for e in (path.beta, staging, path.prod)
    )  # fmt: skip
    deployment_of = {(d.service_id, d.environment_id): d for d in deployments}
    TargetRollout.objects.bulk_create(
        TargetRollout(
            deployment=deployment_of[(t.service_id, t.environment_id)], target=t, wave=t.wave,
            status="succeeded", helm_revision=1, finished_at=now,
        )
        for t in targets
    )  # fmt: skip


@pytest.mark.parametrize("url", ["/", "/?q=Wide", "/?today=1", "/?failing=1", "/?page=40"])
def test_the_dashboard_reads_as_many_queries_at_2000_services_times_3_as_at_10(client, world, url):
    login(client, world["lead"])
    _grow_wide(world, 10, start=0)
    few = _queries(client, url)
    _grow_wide(world, 1990, start=10)
    many = _queries(client, url)
    assert few == many, f"{url}: {few} queries for 10 services x 3, {many} for 2,000 x 3"
    page = client.get("/").content.decode()
    assert "2,001 services, page 1 of 41." in page or "2001 services, page 1 of 41." in page
    assert page.count('<th scope="row">') == 50


def test_the_dashboard_shows_fifty_services_a_page_never_all(client, world):
    login(client, world["lead"])
    _grow(world, 120)  # and the world's own App: 121
    first = client.get("/").content.decode()
    assert "121 services, page 1 of 3." in first
    assert "Service 048" in first and "Service 049" not in first  # App, then 49 more
    assert 'href="?page=2" rel="next"' in first and 'rel="prev"' not in first
    last = client.get("/?page=3").content.decode()
    assert "Service 099" in last and "Service 119" in last and "Service 098" not in last
    assert 'rel="next"' not in last
    searched = client.get("/?q=Service+11&page=1").content.decode()
    assert "10 services." in searched and "page 1 of" not in searched  # 110 to 119
    assert 'href="?q=Service+11&amp;page=2"' not in searched


def test_the_dashboard_filters_what_changed_today_and_what_is_failing(client, world):
    login(client, world["lead"])
    _grow(world, 4)
    path = world["path"]
    quiet, failed, recovered = (Service.objects.get(slug=f"svc-{n}") for n in (1, 2, 3))
    Deployment.objects.filter(service=quiet).update(
        created_at=timezone.now() - timezone.timedelta(days=3)
    )
    for service, statuses in ((failed, ["failed"]), (recovered, ["rolled_back", "succeeded"])):
        release = Release.objects.get(service=service)
        for status in statuses:
            Deployment.objects.create(
                release=release, environment=path.beta, service=service, status=status,
                image=release.image, requested_by=world["dev"],
            )  # fmt: skip
    today = client.get("/?today=1").content.decode()
    assert "Service 000" in today and "Service 001" not in today
    failing = client.get("/?failing=1").content.decode()
    assert "1 service." in failing and "Service 002" in failing
    assert client.get("/?failing=1&today=1&team=nobody").status_code == 200
    assert "No service matches." in client.get("/?failing=1&q=Service+003").content.decode()


def test_the_dashboard_shows_what_runs_where_with_who_when_and_what_is_ready(client, world):
    service = world["service"]
    r1, r2 = (
        BuiltReleaseFactory(service=service, ref="r1"),
        BuiltReleaseFactory(service=service, ref="r2"),
    )
    succeeded_in(r1, world["path"].prod)
    beta = succeeded_in(r2, world["path"].beta)
    Deployment.objects.filter(pk=beta.pk).update(requested_by=world["dev"])
    DeploymentTarget.objects.filter(environment=world["path"].beta).update(
        drift={"summary": "Helm release app is at revision 3; Slipway's last is 2."}
    )
    page = login(client, world["viewer"]).get("/").content.decode()
    row = page[page.index('href="/services/app/"') :]
    # Beta runs r2, by dev, and it is ready for Prod (which runs r1); Beta has drift
    assert f'href="/releases/{r2.pk}/">#{r2.pk}</a> <span class="muted">r2</span>' in row
    assert r2.image_digest[7:19] in row and "dev," in row
    assert "ready for Prod" in row and 'class="mark drift"' in row
    assert f'href="/releases/{r1.pk}/">#{r1.pk}</a>' in row


def test_the_dashboard_filters_by_team_and_name_and_an_outsider_sees_nothing(client, world):
    other = Team.objects.create(slug="other", name="Other team")
    Service.objects.create(
        slug="billing", name="Billing", team=other, chart="x", image_repository="r"
    )
    member(other, "lead", Role.LEAD)
    login(client, world["lead"])
    both = client.get("/").content.decode()
    assert "Billing" in both and ">App<" in both
    only_other = client.get("/?team=other").content.decode()
    assert "Billing" in only_other and ">App<" not in only_other
    searched = client.get("/?q=bill").content.decode()
    assert "Billing" in searched and ">App<" not in searched
    outsider = login(client, world["outsider"]).get("/").content.decode()
    assert "Billing" not in outsider and ">App<" not in outsider
    assert "No services of your teams yet" in outsider


def _history(world):
    service, path = world["service"], world["path"]
    old = BuiltReleaseFactory(service=service, ref="old", requested_by=world["dev"])
    new = BuiltReleaseFactory(service=service, ref="new", requested_by=world["lead"])
    d_old = succeeded_in(old, path.beta)
    d_new = succeeded_in(new, path.beta)
    ten_days_ago = timezone.now() - timezone.timedelta(days=10)
    Deployment.objects.filter(pk=d_old.pk).update(
        requested_by=world["dev"],
        created_at=ten_days_ago,
        started_at=ten_days_ago,
        finished_at=ten_days_ago + timezone.timedelta(seconds=42),
    )
    Deployment.objects.filter(pk=d_new.pk).update(requested_by=world["lead"], status="failed")
    return old, new, d_old, d_new


def test_history_filters_by_environment_status_person_and_date(client, world):
    old, new, d_old, d_new = _history(world)
    login(client, world["viewer"])

    def ids(query):
        page = client.get(f"/history/?{query}").content.decode()
        return [int(i) for i in re.findall(r'href="/deployments/(\d+)/">#', page)]

    assert ids("") == [d_new.pk, d_old.pk]
    assert ids("environment=prod") == []
    assert ids("status=failed") == [d_new.pk]
    assert ids("person=dev") == [d_old.pk]
    since = (timezone.now() - timezone.timedelta(days=1)).date().isoformat()
    assert ids(f"since={since}") == [d_new.pk]
    builds = client.get("/history/?view=releases&person=lead").content.decode()
    assert f'href="/releases/{new.pk}/">#{new.pk}' in builds
    assert f'href="/releases/{old.pk}/"' not in builds
    bad = client.get("/history/?since=yesterday").content.decode()
    assert "Enter a date as YYYY-MM-DD." in bad


def test_history_pages_by_id_both_ways(client, world, settings):
    from releases import history

    releases = [BuiltReleaseFactory(service=world["service"]) for _ in range(5)]
    login(client, world["viewer"])
    history.PAGE_SIZE, saved = 2, history.PAGE_SIZE
    try:
        first = client.get("/history/?view=releases").content.decode()
        older = re.search(r'before=(\d+)">Older', first).group(1)
        second = client.get(f"/history/?view=releases&before={older}").content.decode()
        newer = re.search(r'after=(\d+)">← Newer', second).group(1)
        back = client.get(f"/history/?view=releases&after={newer}").content.decode()
    finally:
        history.PAGE_SIZE = saved

    def shown(page):
        return [int(i) for i in re.findall(r'href="/releases/(\d+)/">#', page)]

    newest_first = [r.pk for r in reversed(releases)]
    assert shown(first) == newest_first[:2]
    assert shown(second) == newest_first[2:4]
    assert shown(back) == newest_first[:2]


def test_history_csv_streams_every_matching_row_with_headers(client, world):
    _history(world)
    response = login(client, world["viewer"]).get("/history/?format=csv&person=dev")
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="slipway-deployments-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["service"], r["environment"], r["requested_by"], r["ref"]) for r in rows] == [
        ("app", "beta", "dev", "old")
    ]
    assert rows[0]["rollout_seconds"] == "42.0"
    outsider = login(client, world["outsider"]).get("/history/?format=csv")
    assert len(b"".join(outsider.streaming_content).decode().splitlines()) == 1  # header only


def test_the_inbox_lists_what_the_caller_may_decide_and_decides_inline(client, world):
    release = BuiltReleaseFactory(service=world["service"])
    succeeded_in(release, world["path"].beta)
    waiting = deployment_start(
        release=release,
        environment=world["path"].prod,
        kind="promote",
        user=world["lead"],
        actor=Actor.for_user(world["lead"]),
    )
    # The requester and a developer find nothing to decide; the other lead does (badge 1)
    assert (
        "Nothing waits for your decision"
        in login(client, world["lead"]).get("/approvals/").content.decode()
    )
    developer = login(client, world["dev"]).get("/approvals/").content.decode()
    assert "Nothing waits" in developer and "Approve" not in developer
    inbox = login(client, world["lead2"]).get("/approvals/").content.decode()
    assert f'action="/deployments/{waiting.pk}/decide"' in inbox
    assert 'aria-label="1 waiting for you">1</span>' in inbox
    response = client.post(
        f"/deployments/{waiting.pk}/decide",
        {"decision": "approve", "comment": "ship it", "next": "/approvals/"},
    )
    assert response.url == "/approvals/"
    waiting.refresh_from_db()
    assert (waiting.status, waiting.approval.comment) == ("pending", "ship it")
    assert "Nothing waits" in client.get("/approvals/").content.decode()


def test_the_audit_page_filters_pages_and_exports(client, world):
    service = world["service"]
    for n in range(3):
        audit_record(actor=Actor.for_user(world["lead"]), action=f"test.step{n}", target=service)
    audit_record(actor=Actor.system(), action="other.thing", target=service)
    AuditCheck.objects.create(
        started_at=timezone.now(), finished_at=timezone.now(), ok=True, events=4, trigger="beat"
    )
    login(client, world["viewer"])
    page = client.get("/audit/?action=test.&actor=lead").content.decode()
    assert page.count("<code>test.step") == 3 and "other.thing" not in page
    assert "intact" in page and "4 events checked" in page
    assert "Verify now" not in page  # admins only
    target = client.get(f"/audit/?target_type=portal.Service&target_id={service.pk}")
    assert target.content.decode().count("portal.Service") >= 4
    response = client.get("/audit/?format=csv&action=test.")
    assert response["Content-Disposition"].startswith('attachment; filename="slipway-audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["test.step2", "test.step1", "test.step0"]
    assert rows[0]["hash"] == AuditEvent.objects.get(action="test.step2").hash
    lines = b"".join(client.get("/audit/?format=jsonl&action=other").streaming_content)
    [event] = [json.loads(line) for line in lines.decode().splitlines()]
    assert event["action"] == "other.thing" and event["actor_name"] == "slipway"
    # Someone outside the team sees none of the team's events
    outsider = login(client, world["outsider"]).get("/audit/").content.decode()
    assert "test.step" not in outsider
    assert client.post("/audit/verify").status_code == 403


def test_each_release_deployment_and_service_has_its_audit(client, world):
    release = BuiltReleaseFactory(service=world["service"])
    deployment = deployment_start(
        release=release,
        environment=world["path"].beta,
        user=world["dev"],
        actor=Actor.for_user(world["dev"]),
    )
    login(client, world["viewer"])
    assert "deployment.deploy" in client.get(f"/releases/{release.pk}/").content.decode()
    assert "deployment.deploy" in client.get(f"/deployments/{deployment.pk}/").content.decode()
    assert "deployment.deploy" in client.get("/services/app/audit/").content.decode()
    assert login(client, world["outsider"]).get(f"/deployments/{deployment.pk}/").status_code == 404


def test_the_release_timeline_shows_each_step_with_who_and_how_long(client, world):
    release = BuiltReleaseFactory(service=world["service"])
    succeeded_in(release, world["path"].beta)
    prod = deployment_start(
        release=release,
        environment=world["path"].prod,
        kind="promote",
        user=world["dev"],
        actor=Actor.for_user(world["dev"]),
    )
    from releases.deployments import deployment_decide

    deployment_decide(
        deployment=prod,
        user=world["lead"],
        approve=True,
        comment="looks good",
        actor=Actor.for_user(world["lead"]),
    )
    page = login(client, world["viewer"]).get(f"/releases/{release.pk}/").content.decode()
    timeline = page[page.index('<ol class="timeline">') :]
    assert "Promote requested (waits for approval)" in timeline
    assert 'Approved</strong> <span class="muted">— lead' in timeline
    assert "“looks good”" in timeline
    assert re.search(r"\+\d+\.\d s", timeline)  # how long the request waited


def test_the_promote_confirmation_names_the_digest_what_prod_runs_and_the_values_diff(
    client, world
):
    service = world["service"]
    r1, r2, r3 = (BuiltReleaseFactory(service=service, ref=f"r{n}") for n in (1, 2, 3))
    prod = succeeded_in(r1, world["path"].prod)
    Deployment.objects.filter(pk=prod.pk).update(requested_by=world["lead"])
    prod.rollouts.update(
        values=[
            {"replicaCount": 2},
            {"image": {"repository": "reg/app", "digest": r1.image_digest}},
        ]
    )
    succeeded_in(r3, world["path"].beta)
    login(client, world["dev"])
    page = client.get(f"/releases/{r3.pk}/confirm?environment=prod&kind=promote")
    text = page.content.decode()
    assert page.status_code == 200 and "<!doctype html>" in text  # a plain page without JS
    assert r3.image in text
    assert f'href="/releases/{r1.pk}/">#{r1.pk}</a> (r1)' in text and "by lead" in text
    assert f'href="/releases/{r2.pk}/">#{r2.pk}</a> r2' in text  # built in between
    assert f'<span class="del">-  digest: {r1.image_digest}</span>' in text
    assert f'<span class="add">+  digest: {r3.image_digest}</span>' in text
    assert '<span class="del">-replicaCount: 2</span>' in text
    assert "Request promotion to Prod" in text
    # The same as an HTMX dialog
    dialog = client.get(
        f"/releases/{r3.pk}/confirm?environment=prod&kind=promote", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert dialog.startswith("<dialog") and "Request promotion to Prod" in dialog
    # A release Beta does not run is refused in the dialog, with nothing to confirm
    refused = client.get(f"/releases/{r2.pk}/confirm?environment=prod").content.decode()
    assert "is not what Beta runs now" in refused and "Request promotion" not in refused


def test_rollback_gets_the_same_confirmation_and_only_leads_see_it(client, world):
    service = world["service"]
    r1, r2 = BuiltReleaseFactory(service=service), BuiltReleaseFactory(service=service)
    succeeded_in(r1, world["path"].beta)
    succeeded_in(r2, world["path"].beta)
    url = f"/releases/{r1.pk}/confirm?environment=beta&kind=rollback"
    assert login(client, world["dev"]).get(url).status_code == 403
    page = login(client, world["lead"]).get(url).content.decode()
    assert "Roll Beta back to release" in page and "Roll back Beta" in page


def test_error_pages_say_what_to_do(client, world):
    login(client, world["viewer"])
    missing = client.get("/releases/999999/")
    assert missing.status_code == 404
    assert "belongs to a team you are not in" in missing.content.decode()
    forbidden = client.post("/services/app/releases/", {"ref": "main"})
    assert forbidden.status_code == 403
    body = forbidden.content.decode()
    assert "You need the developer role in Team T for this." in body
    assert "Ask a lead or an admin" in body
    api = client.get("/api/v1/nope")
    assert api.status_code == 404 and api["Content-Type"] == "application/problem+json"


def test_every_input_of_the_pages_has_a_label(client, world):
    release = BuiltReleaseFactory(service=world["service"])
    succeeded_in(release, world["path"].beta)
    login(client, world["lead"])
    for url in (
        "/",
        "/history/",
        "/approvals/",
        "/audit/",
        "/services/app/",
        f"/releases/{release.pk}/",
    ):
        page = client.get(url).content.decode()
        for field in re.findall(r"<(?:input|select|textarea)\b[^>]*>", page):
            if 'type="hidden"' in field:
                continue
            field_id = re.search(r'id="([^"]+)"', field)
            assert field_id and f'for="{field_id.group(1)}"' in page, f"{url}: {field}"


def test_nothing_is_loaded_from_a_cdn(client, world):
    login(client, world["lead"])
    for url in ("/", "/api/docs/"):
        page = client.get(url).content.decode()
        assert not re.search(r'(src|href)="https?://', page), url
