"""A GET never writes or calls out; what calls out (a gate check asks Prometheus, a manifest
preview runs helm) is a POST, a few times a minute per user; overriding a freeze or a gate
needs the `approve` scope."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.catalog.models import Freeze
from releases import preview
from releases.models import Deployment, GateResult, PromotionGate
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db
WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest.fixture
def world(prometheus):
    """Prod gated on a query of Beta's error ratio in a real Prometheus (0.001: it passes);
    `asked()` counts the times Prometheus answered the gate's query."""
    metric = f"slipway_errors_{uuid.uuid4().hex[:8]}"
    prometheus.push(metric, f'{metric}{{app="app"}} 0.001\n')
    prometheus.scraped(f'{metric}{{app="app"}}', "0.001")
    query = f'max({metric}{{app="app"}})'
    path = service_path(prod={"requires_approval": False})
    release = BuiltReleaseFactory(service=path.service)
    succeeded_in(release, path.beta)
    PromotionGate.objects.create(
        environment=path.beta, name="errors", kind="prometheus",
        prometheus_url=prometheus.url, query=query, max_value=0.01,
    )  # fmt: skip
    return {
        "path": path,
        "release": release,
        "asked": lambda: prometheus.queries().count(query),
        "fail": lambda: (
            prometheus.push(metric, f'{metric}{{app="app"}} 0.5\n'),
            prometheus.scraped(query, "0.5"),
        ),
        "dev": member(path.team, "dev", Role.DEVELOPER),
        "lead": member(path.team, "lead", Role.LEAD),
        "viewer": member(path.team, "viewer", Role.VIEWER),
    }


def _writes(queries) -> list[str]:
    # A token's "last used" (at most once a minute) is the sign-in bookkeeping of the
    # API, like a session's last_login: not a side effect of what was read.
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(WRITES) and '"last_used_at"' not in q["sql"]
    ]


def test_reading_the_release_its_confirmation_and_gates_writes_nothing_calls_nothing(client, world):
    release, prod = world["release"], world["path"].prod
    client.force_login(world["dev"])
    token = token_issue(user=world["dev"], name="r", scopes=[TokenScope.READ])[1]
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    with CaptureQueriesContext(connection) as queries:
        pages = [
            client.get(f"/releases/{release.pk}/"),
            client.get(f"/releases/{release.pk}/status"),
            client.get(f"/releases/{release.pk}/confirm?environment=prod"),
            client.get(f"/releases/{release.pk}/confirm/manifests?environment=prod"),
            api.get(f"/api/v1/releases/{release.pk}/gates?environment=prod"),
            api.get(f"/api/v1/releases/{release.pk}/"),
        ]
    assert [p.status_code for p in pages] == [200] * 6
    assert _writes(queries.captured_queries) == []
    assert world["asked"]() == 0  # no gate was evaluated
    assert not GateResult.objects.exists()
    # and no worker was asked to render manifests
    assert not preview.manifest_diff(release=release, environment=prod).asked


def test_checking_gates_and_rendering_previews_are_posts_limited_per_user(client, world, settings):
    settings.SLIPWAY_CHECK_RATE = "3/m"
    release = world["release"]
    token = token_issue(user=world["dev"], name="d", scopes=TokenScope.values)[1]
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/api/v1/releases/{release.pk}/gates?environment=prod"
    # django-ratelimit counts in fixed windows: a burst that straddles one's end starts
    # afresh, so the clock holds still while each burst is counted.
    with time_machine.travel(timezone.now(), tick=False):
        answers = [api.post(url) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].json()["gates"][0]["passed"] is True
    assert int(answers[3]["Retry-After"]) > 0
    assert world["asked"]() == 3
    # The page's manifest preview: a viewer may not ask for one, a developer a few times
    client.force_login(world["viewer"])
    manifests = f"/releases/{release.pk}/confirm/manifests?environment=prod&kind=promote"
    assert client.post(manifests, HTTP_HX_REQUEST="true").status_code == 403
    client.force_login(world["lead"])
    with time_machine.travel(timezone.now(), tick=False):
        codes = [client.post(manifests, HTTP_HX_REQUEST="true").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert preview.manifest_diff(release=release, environment=world["path"].prod).asked


def test_a_deploy_scoped_token_cannot_override_a_freeze_or_a_gate(world):
    release, path = world["release"], world["path"]
    world["fail"]()  # the gate fails
    Freeze.objects.create(
        environment=path.prod, team=path.team, reason="quarter end", created_by=world["lead"],
        starts_at=timezone.now() - timedelta(hours=1), ends_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    deploy_only = token_issue(
        user=world["lead"], name="ci", scopes=[TokenScope.READ, TokenScope.DEPLOY]
    )[1]
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {deploy_only}")
    url = f"/api/v1/releases/{release.pk}/deployments/"
    for override in ({"freeze_override": "urgent"}, {"gate_override": "urgent"}):
        refused = api.post(url, {"environment": "prod", **override}, format="json")
        assert refused.status_code == 403, refused.json()
        assert "Overriding a freeze or a gate needs the 'approve' scope" in refused.json()["detail"]
    assert not Deployment.objects.filter(environment=path.prod).exists()
    # The same lead with an approve-scoped token may
    full = token_issue(user=world["lead"], name="lead", scopes=TokenScope.values)[1]
    made = APIClient(HTTP_AUTHORIZATION=f"Bearer {full}").post(
        url,
        {"environment": "prod", "freeze_override": "urgent", "gate_override": "urgent"},
        format="json",
    )
    assert made.status_code == 201, made.json()
