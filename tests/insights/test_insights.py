"""Delivery metrics over seeded history match values computed by hand, through the page,
the API and the CSV, in a constant number of queries."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.catalog.models import DeploymentTarget, Service
from releases.models import Deployment
from tests.factories import BuiltReleaseFactory, ServiceFactory, TeamFactory, member, service_path

P0 = datetime(2026, 10, 1, tzinfo=UTC)
PERIOD = {"since": "2026-10-01", "until": "2026-10-14"}  # two weeks, until included


def at(days: float, hour: float) -> datetime:
    return P0 + timedelta(days=days, hours=hour)


def change(service, env, *, finished, status="succeeded", kind="promote", committed=None):
    release = BuiltReleaseFactory(service=service, commit_time=committed)
    deployment = Deployment.objects.create(
        release=release,
        environment=env,
        service=service,
        kind=kind,
        status=status,
        image=release.image,
        finished_at=finished,
    )
    Deployment.objects.filter(pk=deployment.pk).update(created_at=finished - timedelta(minutes=5))
    return deployment


@pytest.fixture
def history():
    path = service_path()
    a = path.service
    b = ServiceFactory(slug="billing", name="Billing", team=TeamFactory(slug="u", name="Team U"))
    for env in (path.beta, path.prod):
        DeploymentTarget.objects.create(
            service=b, environment=env, cluster=path.cluster, namespace=env.slug,
            helm_release_name="billing",
        )  # fmt: skip
    prod = path.prod
    # Service a: leads 2 h, 24 h, 1 h; A2 rolled back 1.5 h later (a failure restored in
    # 1.5 h), A3 failed and A4 restored it 2 h later.
    change(a, prod, finished=at(1, 10), committed=at(1, 8))
    change(a, prod, finished=at(2, 12), committed=at(1, 12))
    change(a, prod, finished=at(2, 13.5), kind="rollback")
    change(a, prod, finished=at(5, 9), status="failed", committed=at(5, 7))
    change(a, prod, finished=at(5, 11), committed=at(5, 10))
    change(a, prod, finished=at(-1, 0), committed=at(-1, -1))  # before the period
    change(a, path.beta, finished=at(3, 0), committed=at(2, 0))  # not the last environment
    # Service b: lead 6 h; B2 rolled back, nothing succeeded after it.
    change(b, prod, finished=at(3, 10), committed=at(3, 4))
    change(b, prod, finished=at(4, 10), status="rolled_back", committed=at(4, 9))
    return path, b


def rows_by(body_rows, scope):
    return {r["name"]: r for r in body_rows if r["scope"] == scope}


@pytest.mark.django_db
def test_the_four_metrics_match_hand_computed_values(history):
    path, b = history
    lead = member(path.team, "lead", Role.LEAD)
    member(b.team, "lead", Role.LEAD)
    api = APIClient(
        HTTP_AUTHORIZATION=f"Bearer {token_issue(user=lead, name='t', scopes=[TokenScope.READ])[1]}"
    )
    body = api.get("/api/v1/insights/", PERIOD).json()
    assert body["environment"] == "prod"
    overall = rows_by(body["rows"], "overall")["All services"]
    assert overall == {
        "scope": "overall", "name": "All services", "team": "", "service": "",
        "deployments": 4, "per_week": 2.0, "changes": 6, "failures": 3, "failure_rate": 0.5,
        "lead_time_median_hours": 4.0,  # of 1, 2, 6, 24
        "lead_time_p90_hours": 18.6,  # 6 + 0.7 * (24 - 6)
        "restore_median_hours": 1.75,  # of 1.5 and 2
        "restored": 2,
    }  # fmt: skip
    services = rows_by(body["rows"], "service")
    assert (
        services["app"]["deployments"],
        services["app"]["changes"],
        services["app"]["failures"],
    ) == (3, 4, 2)
    assert services["app"]["lead_time_median_hours"] == 2.0
    assert services["app"]["lead_time_p90_hours"] == 19.6  # 2 + 0.8 * (24 - 2)
    assert services["app"]["restore_median_hours"] == 1.75
    assert services["billing"]["failure_rate"] == 0.5
    assert services["billing"]["lead_time_median_hours"] == 6.0
    assert services["billing"]["restore_median_hours"] is None  # never restored
    teams = rows_by(body["rows"], "team")
    assert teams["t"]["deployments"] == 3 and teams["u"]["deployments"] == 1
    weeks = [(w["week"][:10], w["deployments"], w["failures"]) for w in body["weeks"]]
    assert weeks == [("2026-09-28", 3, 1), ("2026-10-05", 1, 2)]


@pytest.mark.django_db
def test_each_caller_sees_only_their_teams(history):
    path, _ = history
    lead = member(path.team, "lead", Role.LEAD)  # team t only
    api = APIClient(
        HTTP_AUTHORIZATION=f"Bearer {token_issue(user=lead, name='t', scopes=[TokenScope.READ])[1]}"
    )
    body = api.get("/api/v1/insights/", PERIOD).json()
    assert set(rows_by(body["rows"], "service")) == {"app"}
    assert rows_by(body["rows"], "overall")["All services"]["deployments"] == 3
    assert api.get("/api/v1/insights/", {**PERIOD, "service": "billing"}).json()["rows"] == []
    bad = api.get("/api/v1/insights/", {"since": "2026-10-14", "until": "14.10.2026"})
    assert bad.status_code == 400
    assert bad["Content-Type"].startswith("application/problem+json")
    # Two dates in either order are a period (the answer says which).
    backwards = api.get("/api/v1/insights/", {"since": "2026-10-14", "until": "2026-10-01"})
    assert backwards.json()["since"][:10] == "2026-10-01"


@pytest.mark.django_db
def test_page_and_csv_in_constant_queries(client, history):
    path, b = history
    lead = member(path.team, "lead", Role.LEAD)
    member(b.team, "lead", Role.LEAD)
    client.force_login(lead)
    page = client.get("/insights/", PERIOD)
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html and "Change failure rate" in html
    assert "18.6" in html and "50%" in html
    exported = list(
        csv.reader(
            io.StringIO(client.get("/insights/", {**PERIOD, "format": "csv"}).content.decode())
        )
    )
    header, overall = exported[1], exported[2]
    assert dict(zip(header, overall, strict=True))["lead_time_p90_hours"] == "18.6"

    with CaptureQueriesContext(connection) as small:
        client.get("/insights/", PERIOD)
    for n in range(40):  # ten times the history
        change(
            Service.objects.get(slug="billing"),
            path.prod,
            finished=at(6 + n / 10, 1),
            committed=at(6, 0),
        )
    with CaptureQueriesContext(connection) as large:
        client.get("/insights/", PERIOD)
    assert len(large) == len(small)
