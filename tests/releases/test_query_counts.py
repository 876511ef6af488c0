"""Pages and API pages read a fixed number of queries, whatever the history behind them
(the timings are bench/'s job; these are the counts that make them hold)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from clusters.models import Cluster
from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.chain import Actor, audit_record
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def path():
    return service_path(image_repository="reg/app")


def _history(path, releases: int) -> None:
    """`releases` more releases, each deployed to Beta and promoted to Prod, audited."""
    lead = path.service.team.memberships.first().user
    for n in range(releases):
        release = BuiltReleaseFactory(service=path.service, ref=f"r{n}")
        for environment in (path.beta, path.prod):
            deployment = succeeded_in(release, environment)
            audit_record(
                actor=Actor.for_user(lead), action="deployment.succeeded", target=deployment
            )
        audit_record(actor=Actor.for_user(lead), action="release.built", target=release)


def _count(client, url: str) -> tuple[int, dict | None]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    body = response.json() if response["Content-Type"].startswith("application/json") else None
    return len(captured), body


@pytest.mark.parametrize("url", ["/", "/services/app/", "/history/", "/audit/"])
def test_pages_read_as_many_queries_with_60_releases_as_with_1(client, path, url):
    lead = member(path.team, "lead", Role.LEAD)
    client.force_login(lead)
    _history(path, 1)
    short, _ = _count(client, url)
    _history(path, 59)
    long, _ = _count(client, url)
    assert short == long, f"{url}: {short} queries with 1 release, {long} with 60"


API_PAGES = [
    "/api/v1/releases/",
    "/api/v1/releases/?service=app&status=built",
    "/api/v1/deployments/",
    "/api/v1/deployments/?environment=prod&kind=deploy",
    "/api/v1/audit-events/",
    "/api/v1/audit-events/?target_type=releases.Release&target_id=1",
]


def test_history_and_audit_api_pages_read_at_most_8_queries_and_a_deep_page_like_the_first(path):
    lead = member(path.team, "lead", Role.LEAD)
    raw = token_issue(user=lead, name="ci", scopes=TokenScope.values)[1]
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    api.get("/api/v1/me")  # the token's "last used" is written at most once a minute
    _history(path, 120)
    for url in API_PAGES:
        first, body = _count(api, url)
        assert first <= 8, f"{url}: {first} queries"
        pages = 0
        while body.get("next") and pages < 3:
            deeper, body = _count(api, body["next"])
            assert deeper == first, f"{url}: page {pages + 2} reads {deeper}, the first {first}"
            pages += 1
        if url in ("/api/v1/releases/", "/api/v1/deployments/", "/api/v1/audit-events/"):
            assert pages >= 2, f"{url}: expected pages deep in history to follow"


def test_history_api_pages_decrypt_no_secret(path, monkeypatch):
    """A page of 50 releases reads each deployment's clusters: their kubeconfigs (and a
    change system's secret) stay in the database, not decrypted row by row into a
    request that never shows them."""
    import portal.core.crypto as crypto

    lead = member(path.team, "lead", Role.LEAD)
    raw = token_issue(user=lead, name="ci", scopes=TokenScope.values)[1]
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    _history(path, 3)
    assert Cluster.objects.get(pk=path.cluster.pk).kubeconfig.reveal(), "it has one"
    decrypted = []
    real = crypto.decrypt
    monkeypatch.setattr(crypto, "decrypt", lambda token: decrypted.append(1) or real(token))
    for url in ("/api/v1/releases/", "/api/v1/deployments/"):
        response = api.get(url)
        assert response.status_code == 200
        clusters = [c["cluster"] for d in _deployments(url, response.json()) for c in d["clusters"]]
        assert path.cluster.name in clusters
    assert decrypted == []


def _deployments(url: str, body: dict) -> list[dict]:
    if "releases" in url:
        return [d for release in body["results"] for d in release["deployments"]]
    return body["results"]
