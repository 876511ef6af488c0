"""Promotion gates: soak time, a Prometheus query, a checklist; refusals that say why, a
lead's override that runs and is audited."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from releases.deployments import deployment_decide, deployment_start
from releases.errors import NotPermitted
from releases.gates import GateRefused, checklist_tick
from releases.models import Deployment, GateResult, PromotionGate
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

# The error ratio a service exports, the last sample within the soak window: {window} is
# the gate's soak time. The metric's name is the test's own (one Prometheus per session).
ERROR_RATIO = 'last_over_time({metric}{{namespace="{{namespace}}",app="{{service}}"}}[{{window}}])'


@pytest.fixture
def metric() -> str:
    """This test's own metric name (Prometheus keeps every test's samples)."""
    return f"slipway_error_ratio_{uuid.uuid4().hex[:8]}"


def exported(prometheus, metric: str, value: str) -> None:
    """The service in Beta exports `value`, and Prometheus has scraped it."""
    prometheus.push(metric, f'{metric}{{namespace="beta",app="app"}} {value}\n')
    prometheus.scraped(f'{metric}{{namespace="beta",app="app"}}', value)


@pytest.fixture
def world():
    path = service_path(prod={"requires_approval": False})
    dev = member(path.team, "dev", Role.DEVELOPER)
    lead = member(path.team, "lead", Role.LEAD)
    release = BuiltReleaseFactory(service=path.service)
    in_beta = succeeded_in(release, path.beta)
    return {"path": path, "dev": dev, "lead": lead, "release": release, "beta": in_beta}


def promote(world, user, **extra) -> Deployment:
    return deployment_start(
        release=world["release"],
        environment=world["path"].prod,
        actor=Actor.for_user(user),
        user=user,
        kind="promote",
        **extra,
    )


def ran_for(world, minutes: int) -> None:
    Deployment.objects.filter(pk=world["beta"].pk).update(
        finished_at=timezone.now() - timedelta(minutes=minutes, seconds=5)
    )


@pytest.mark.django_db
def test_soak_not_reached_refuses_naming_the_time_left(world):
    PromotionGate.objects.create(
        environment=world["path"].beta, name="soak", kind="soak", soak_minutes=30
    )
    ran_for(world, 12)
    with pytest.raises(GateRefused) as refused:
        promote(world, world["dev"])
    assert "soak: has run in Beta 12 min of 30; 18 min left" in str(refused.value)
    assert not Deployment.objects.filter(environment=world["path"].prod).exists()
    result = GateResult.objects.get()
    assert (result.passed, result.release_id) == (False, world["release"].pk)

    ran_for(world, 31)
    assert promote(world, world["dev"]).status == "pending"


@pytest.mark.django_db
def test_a_bad_prometheus_value_refuses_with_the_value(world, prometheus, metric):
    gate = PromotionGate.objects.create(
        environment=world["path"].beta, name="error ratio", kind="prometheus",
        prometheus_url=prometheus.url, query=ERROR_RATIO.format(metric=metric),
        max_value=0.01, soak_minutes=15,
    )  # fmt: skip
    exported(prometheus, metric, "0.0473")
    with pytest.raises(GateRefused, match=r"error ratio: value 0\.0473, wanted ≤ 0\.01"):
        promote(world, world["dev"])
    # What Prometheus was asked (its query log): the placeholders filled in
    asked = f'last_over_time({metric}{{namespace="beta",app="app"}}[15m])'
    assert prometheus.queries().count(asked) == 1

    gate.query = f'{metric}_never_exported{{app="{{service}}"}}'
    gate.save()
    with pytest.raises(GateRefused, match="the query returned no data"):
        promote(world, world["dev"])
    gate.query = "sum(rate(http_requests_total[5m]"  # PromQL with a syntax error
    gate.save()
    with pytest.raises(GateRefused, match="Prometheus refused the query: bad_data"):
        promote(world, world["dev"])

    gate.query = ERROR_RATIO.format(metric=metric)
    gate.save()
    exported(prometheus, metric, "0.002")
    assert promote(world, world["dev"]).status == "pending"
    assert GateResult.objects.filter(passed=True).get().value == 0.002


@pytest.mark.django_db
def test_prometheus_down_refuses_rather_than_lets_through(world):
    PromotionGate.objects.create(
        environment=world["path"].beta, name="latency", kind="prometheus",
        prometheus_url="http://127.0.0.1:9", query="up", min_value=1,
    )  # fmt: skip
    with pytest.raises(GateRefused, match="Prometheus did not answer: could not connect"):
        promote(world, world["dev"])


@pytest.mark.django_db
def test_a_lead_overrides_with_a_reason_and_it_is_audited(world):
    PromotionGate.objects.create(
        environment=world["path"].beta, name="soak", kind="soak", soak_minutes=60
    )
    ran_for(world, 5)
    with pytest.raises(NotPermitted, match="Only a lead"):
        promote(world, world["dev"], gate_override="I am sure")
    deployment = promote(world, world["lead"], gate_override="hotfix for incident 42")
    assert deployment.status == "pending"
    assert deployment.gate_override["reason"] == "hotfix for incident 42"
    assert deployment.gate_override["gates"][0]["gate"] == "soak"
    event = AuditEvent.objects.get(action="gate.override")
    assert event.actor_name == "lead" and event.after["reason"] == "hotfix for incident 42"
    assert "55 min left" in event.after["gates"][0]["detail"]


@pytest.mark.django_db
def test_a_checklist_item_ticked_by_a_lead_opens_the_gate(world):
    gate = PromotionGate.objects.create(
        environment=world["path"].beta, name="QA sign-off", kind="checklist"
    )
    with pytest.raises(GateRefused, match="QA sign-off: not ticked yet"):
        promote(world, world["dev"])
    with pytest.raises(NotPermitted):
        checklist_tick(
            gate=gate,
            release=world["release"],
            user=world["dev"],
            actor=Actor.for_user(world["dev"]),
        )
    checklist_tick(
        gate=gate,
        release=world["release"],
        user=world["lead"],
        actor=Actor.for_user(world["lead"]),
        note="smoke ok",
    )
    assert AuditEvent.objects.get(action="gate.checklist_ticked").after == {
        "gate": "QA sign-off",
        "note": "smoke ok",
    }
    assert promote(world, world["dev"]).status == "pending"


@pytest.mark.django_db
def test_gates_are_checked_again_when_a_lead_approves(world):
    path = world["path"]
    path.prod.requires_approval = True
    path.prod.save()
    gate = PromotionGate.objects.create(environment=path.beta, name="QA", kind="checklist")
    checklist_tick(
        gate=gate, release=world["release"], user=world["lead"], actor=Actor.for_user(world["lead"])
    )
    waiting = promote(world, world["dev"])
    assert waiting.status == "awaiting_approval"
    gate.ticks.all().delete()  # the sign-off is withdrawn meanwhile
    other = member(path.team, "lead2", Role.LEAD)
    with pytest.raises(GateRefused, match="QA: not ticked yet"):
        deployment_decide(deployment=waiting, user=other, approve=True, actor=Actor.for_user(other))
    approved = deployment_decide(
        deployment=waiting,
        user=other,
        approve=True,
        actor=Actor.for_user(other),
        gate_override="QA by phone",
    )
    assert approved.status == "pending"


@pytest.mark.django_db
def test_the_api_shows_gates_refuses_with_409_and_takes_an_override(world):
    PromotionGate.objects.create(
        environment=world["path"].beta, name="soak", kind="soak", soak_minutes=30
    )
    ran_for(world, 10)
    release = world["release"]

    def api(user):
        token = token_issue(user=user, name="t", scopes=TokenScope.values)[1]
        return APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")

    url = f"/api/v1/releases/{release.pk}/gates?environment=prod"
    # GET shows what is stored and evaluates nothing
    unchecked = api(world["dev"]).get(url).json()
    assert unchecked["passed"] is False and unchecked["gates"][0]["passed"] is None
    assert unchecked["gates"][0]["checked_at"] is None
    assert not GateResult.objects.exists()
    # POST checks now and stores the result, which the next GET shows
    checked = api(world["dev"]).post(url).json()
    expected = {"id": checked["gates"][0]["id"], "name": "soak", "kind": "soak", "passed": False,
                "detail": "has run in Beta 10 min of 30; 20 min left", "value": None}  # fmt: skip
    assert {k: v for k, v in checked["gates"][0].items() if k != "checked_at"} == expected
    assert checked["passed"] is False and checked["from_environment"] == "beta"
    stored = api(world["dev"]).get(url).json()
    assert stored["gates"][0]["detail"] == expected["detail"] and stored["gates"][0]["checked_at"]
    assert GateResult.objects.count() == 1
    refused = api(world["dev"]).post(
        f"/api/v1/releases/{release.pk}/deployments/", {"environment": "prod"}, format="json"
    )
    assert refused.status_code == 409 and "20 min left" in refused.json()["detail"]
    made = api(world["lead"]).post(
        f"/api/v1/releases/{release.pk}/deployments/",
        {"environment": "prod", "gate_override": "customer waiting"},
        format="json",
    )
    assert made.status_code == 201, made.json()
    assert made.json()["gate_override"]["reason"] == "customer waiting"
