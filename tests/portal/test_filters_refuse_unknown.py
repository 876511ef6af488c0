"""A list filtered by a value the server does not know answers 400 naming the values it
knows (never an empty page that reads as "nothing there")."""

import pytest
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    path = service_path()
    succeeded_in(BuiltReleaseFactory(service=path.service), path.beta)
    lead = member(path.team, "lead", Role.LEAD)
    return APIClient(
        HTTP_AUTHORIZATION=f"Bearer {token_issue(user=lead, name='t', scopes=TokenScope.values)[1]}"
    )


@pytest.mark.parametrize(
    ("url", "field", "named"),
    [
        ("/api/v1/audit-events/?target_type=no-such-type", "target_type", "releases.Deployment"),
        ("/api/v1/deployments/?environment=nowhere", "environment", "beta, prod"),
        ("/api/v1/deployments/?kind=sideways", "kind", "deploy, promote, rollback"),
        ("/api/v1/releases/?status=lost", "status", "built"),
    ],
)
def test_an_unknown_filter_value_is_refused_naming_the_known_ones(api, url, field, named):
    answer = api.get(url)
    assert answer.status_code == 400
    assert answer["Content-Type"] == "application/problem+json"
    [message] = answer.json()["errors"][field]
    value = url.rsplit("=", 1)[1]
    assert message.startswith(f"Unknown value {value}: one of ") and named in message


def test_a_known_value_filters(api):
    assert api.get("/api/v1/audit-events/?target_type=releases.Deployment").status_code == 200
    assert len(api.get("/api/v1/deployments/?environment=beta").json()["results"]) == 1
    assert api.get("/api/v1/deployments/?environment=prod").json()["results"] == []
