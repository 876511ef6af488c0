"""The API refuses exactly what its schema says it refuses: numbers out of range or not
numbers, dates not written YYYY-MM-DD, values a filter does not know (the schema, made per
request, names today's), keys and texts the server could not take; and what the schema
allows, it answers (an insights period in any order or length)."""

import pytest
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.catalog.models import Environment
from releases.choices import ReleaseStatus
from releases.models import Release
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    path = service_path(slug="app")
    succeeded_in(BuiltReleaseFactory(service=path.service), path.beta)
    lead = member(path.team, "lead", Role.LEAD)
    token = token_issue(user=lead, name="t", scopes=TokenScope.values)[1]
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")


def _parameter(schema: dict, path: str, name: str) -> dict:
    [found] = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
    return found


@pytest.mark.parametrize(
    ("url", "field", "message"),
    [
        ("/api/v1/releases/?page_size=0", "page_size", "A whole number from 1 to 200."),
        ("/api/v1/releases/?page_size=201", "page_size", "A whole number from 1 to 200."),
        ("/api/v1/releases/?page_size=ten", "page_size", "A whole number from 1 to 200."),
        (
            "/api/v1/audit-events/?format=csv&page_size=%25",
            "page_size",
            "A whole number from 1 to 200.",
        ),
        ("/api/v1/services/?offset=-1", "offset", "A whole number from 0 to 1000000."),
        ("/api/v1/services/?limit=1.5", "limit", "A whole number from 1 to 200."),
        ("/api/v1/deployments/?since=2026-1-5", "since", "Enter a date as YYYY-MM-DD."),
        ("/api/v1/audit-events/?until=12/03/2026", "until", "Enter a date as YYYY-MM-DD."),
        ("/api/v1/insights/?since=2026-02-30", "since", "Enter a date as YYYY-MM-DD."),
    ],
)
def test_what_the_schema_does_not_allow_is_refused_naming_the_rule(api, url, field, message):
    answer = api.get(url)
    assert answer.status_code == 400 and answer["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"] == {field: [message]}


def test_a_date_as_the_schema_writes_it_filters(api):
    assert len(api.get("/api/v1/deployments/?since=2000-01-01").json()["results"]) == 1
    assert api.get("/api/v1/deployments/?since=2999-01-01").json()["results"] == []
    assert api.get("/api/v1/deployments/?since=").status_code == 200  # empty: not given


def test_the_schema_names_the_values_the_server_knows_today(api):
    schema = api.get("/api/schema/?format=json").json()
    environment = _parameter(schema, "/api/v1/deployments/", "environment")
    assert environment["schema"]["enum"] == ["beta", "prod"]
    assert environment["allowEmptyValue"] is True
    Environment.objects.create(slug="staging", name="Staging", order=5)
    schema = api.get("/api/schema/?format=json").json()
    assert "staging" in _parameter(schema, "/api/v1/deployments/", "environment")["schema"]["enum"]
    assert (
        "releases.Deployment"
        in (_parameter(schema, "/api/v1/audit-events/", "target_type")["schema"]["enum"])
    )
    assert _parameter(schema, "/api/v1/releases/", "page_size")["schema"] == {
        "type": "integer", "minimum": 1, "maximum": 200,
    }  # fmt: skip
    assert _parameter(schema, "/api/v1/insights/", "since")["schema"]["format"] == "date"
    release_input = schema["components"]["schemas"]["ReleaseInputRequest"]["properties"]["ref"]
    assert release_input["pattern"].startswith("^(?!.*\\.\\.)")
    train = schema["components"]["schemas"]["TrainInputRequest"]["properties"]
    assert train["releases"]["uniqueItems"] is True
    assert train["name"]["pattern"] == "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"  # not blank
    post = schema["paths"]["/api/v1/services/{slug}/releases/"]["post"]
    [key] = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["schema"] == {"type": "string", "minLength": 1, "maxLength": 255,
                             "pattern": "^[!-~]{1,255}$"}  # fmt: skip


def test_an_insights_period_in_any_order_or_length_is_answered_with_the_period_used(api):
    backwards = api.get("/api/v1/insights/?since=2026-03-31&until=2026-03-01").json()
    assert (backwards["since"][:10], backwards["until"][:10]) == ("2026-03-01", "2026-04-01")
    long = api.get("/api/v1/insights/?since=2000-01-01&until=2026-03-01").json()
    assert (long["since"][:10], long["until"][:10]) == ("2024-03-01", "2026-03-02")
    future = api.get("/api/v1/insights/?since=9999-12-30&until=9999-12-31")
    assert future.status_code == 200  # an end after today is today


def test_a_state_that_refuses_answers_409_not_400(api):
    release = Release.objects.get()
    ended = api.post(f"/api/v1/releases/{release.pk}/cancel")
    assert ended.status_code == 409 and ended.json()["detail"] == "Release is already built."
    release.status = ReleaseStatus.CANCELLED
    release.save(update_fields=["status"])
    deploy = api.post(
        f"/api/v1/releases/{release.pk}/deployments/", {"environment": "prod"}, format="json"
    )
    assert deploy.status_code == 409 and "only a built release" in deploy.json()["detail"]


def test_a_key_bound_to_another_request_answers_409(api):
    url = "/api/v1/services/app/releases/"
    assert api.post(url, {"ref": "main"}, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
    other = api.post(url, {"ref": "v2"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert other.status_code == 409 and "different request" in other.json()["detail"]
