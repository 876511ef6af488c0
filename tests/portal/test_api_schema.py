"""schemathesis over the OpenAPI schema, as a developer's script would call the API:
generated requests to every operation, no 5xx, and every answer as the schema says."""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis import checks

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
CASES: list[str] = []
MINIMUM_CASES = 1000


@pytest.fixture
def developer_token(db):
    """A developer of a team with a service, a release in Beta and a token (in the test's
    own transaction, rolled back after each operation's examples)."""
    path = service_path(slug="app")
    release = BuiltReleaseFactory(service=path.service)
    succeeded_in(release, path.beta)
    user = member(path.team, "schemathesis", Role.DEVELOPER)
    return token_issue(user=user, name="schemathesis", scopes=TokenScope.values)[1]


@pytest.fixture(autouse=True)
def _in_the_test_transaction(settings):
    """Calls through the WSGI app, as Django's test client makes them: the request does not
    close the test's database connection, and no rate limit gets in the way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    settings.SLIPWAY_API_RATE = "1000000/min"
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_its_schema_says(case, developer_token):
    CASES.append(case.operation.label)
    response = case.call(headers={"Authorization": f"Bearer {developer_token}"})
    case.validate_response(response, checks=CHECKS)


def test_at_least_a_thousand_cases_were_generated():
    assert len(CASES) >= MINIMUM_CASES, f"{len(CASES)} cases over {len(set(CASES))} operations"
