"""Watching an environment after the rollout, against a real Prometheus (scraping a real
Pushgateway where the test pushes what the service would export: request counts and errors
labelled by release), a real control plane, real helm and a real Celery worker.

A healthy release verifies and becomes promotable; an error rate above the threshold fails
verification and rolls Prod back to the last *verified* release (not the previous one);
no data is inconclusive and a lead decides; a failed re-run revokes "verified"; the
notifications carry links."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from notifications.channels import channel_create
from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.models import AuditEvent
from releases.choices import DeploymentKind
from releases.errors import PromotionRefused
from releases.insights import Period, insights
from releases.models import AnalysisMetric, AnalysisTemplate, Deployment, VerificationRun
from releases.promotion import promotion_refusal
from releases.transitions import WORKER
from tests.factories import member
from tests.notifications.test_notifications import receiver  # noqa: F401 (fixture)
from tests.support.deploy import built_release, deploy, finished, image_in, namespace
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]
# The share of a release's requests that failed, in its namespace (what the service exports).
ERROR_RATIO = (
    'sum(http_requests_total{namespace="{namespace}",release="{release}",code=~"5.."})'
    ' / sum(http_requests_total{namespace="{namespace}",release="{release}"})'
)


def template(world, prometheus, env: str, count: int = 3) -> AnalysisTemplate:
    made = AnalysisTemplate.objects.create(
        environment=world[env], name="error rate", prometheus_url=prometheus.url
    )
    AnalysisMetric.objects.create(
        template=made, name="error ratio", query=ERROR_RATIO, interval_seconds=1, count=count,
        success_condition="result < 0.05", failure_condition="result >= 0.05",
    )  # fmt: skip
    return made


def serving(world, prometheus, env: str, release, requests: int, errors: int) -> None:
    """The release in `env` has answered `requests`, `errors` of them with a 5xx."""
    ns = namespace(world, env)
    labels = f'namespace="{ns}",release="{release.pk}"'
    prometheus.push(
        f"app-{ns}-{release.pk}",
        f'http_requests_total{{{labels},code="200"}} {requests - errors}\n'
        f'http_requests_total{{{labels},code="500"}} {errors}\n',
    )
    prometheus.scraped(f'http_requests_total{{{labels},code="500"}}', str(errors))


def run_of(deployment: Deployment, timeout: float = 30) -> VerificationRun:
    """The deployment's verification run, once it ended."""

    def ended():
        run = deployment.verifications.order_by("-id").first()
        return run if run is not None and run.status != "running" else None

    return wait_until(ended, timeout, f"deployment #{deployment.pk}'s verification ending")


def test_a_healthy_release_verifies_and_only_then_becomes_promotable(world, prometheus):
    template(world, prometheus, "beta")
    release = built_release(world, 1)
    serving(world, prometheus, "beta", release, requests=1000, errors=2)
    beta = deploy(world, release, "beta")
    assert beta.status == "succeeded"
    # Measuring: rolled out, not yet verified, so not yet promotable.
    refusal = promotion_refusal(release=release, environment=world["prod"])
    assert refusal and "verif" in refusal
    run = run_of(beta)
    assert run.status == "successful", run.reason
    values = list(run.measurements.values_list("phase", "value"))
    assert values == [("successful", 0.002)] * 3
    asked = prometheus.queries()
    assert (
        ERROR_RATIO.replace("{namespace}", namespace(world, "beta")).replace(
            "{release}", str(release.pk)
        )
        in asked
    )
    assert promotion_refusal(release=release, environment=world["prod"]) is None
    assert deploy(world, release, "prod", kind="promote").status == "succeeded"


def test_failed_verification_rolls_prod_back_to_the_last_verified_release(
    world,
    prometheus,
    receiver,  # noqa: F811
):
    prod = world["prod"]
    prod.auto_rollback = True
    prod.save()
    template(world, prometheus, "prod")
    receiver.secrets["/hook"] = "hook-secret"
    channel_create(
        team=world["service"].team, name="hook", kind="webhook", url=f"{receiver.url}/hook",
        secret="hook-secret", events=["verification_failed", "rolled_back"], actor=WORKER,
    )  # fmt: skip
    good, unverified, bad = (built_release(world, n) for n in (1, 2, 3))
    serving(world, prometheus, "prod", good, requests=500, errors=0)
    serving(world, prometheus, "prod", bad, requests=500, errors=120)

    def to_prod(release) -> Deployment:
        assert deploy(world, release, "beta").status == "succeeded"
        return deploy(world, release, "prod", kind="promote", timeout=90)

    assert run_of(to_prod(good)).status == "successful"
    # Release 2 runs in Prod unverified: no data at all, and a lead lets it be.
    second = run_of(to_prod(unverified))
    assert second.status == "inconclusive", [
        (m.query, m.value, unverified.pk, good.pk, bad.pk) for m in second.measurements.all()
    ]
    # Release 3 fails: Prod goes back to release 1, the last verified, not to release 2.
    third = to_prod(bad)
    assert image_in(world, "prod").endswith(bad.image_digest)
    failed = run_of(third)
    assert failed.status == "failed"
    assert "error ratio: 1 of 1 measurements failed (limit 0)" in failed.reason
    assert failed.measurements.get().value == pytest.approx(0.24)
    wait_until(lambda: VerificationRun.objects.get(pk=failed.pk).rollback_id, 10, "rollback")
    failed.refresh_from_db()
    rollback = finished(failed.rollback, 90)
    assert (rollback.kind, rollback.release_id, rollback.status) == (
        DeploymentKind.ROLLBACK, good.pk, "succeeded",
    )  # fmt: skip
    assert image_in(world, "prod").endswith(good.image_digest)
    event = AuditEvent.objects.get(action="verification.rollback", target_id=str(third.pk))
    assert event.actor_name == "verification"
    assert f"Rolling back to release #{good.pk}" in event.after["outcome"]
    # The rollback is verified too (a fresh attempt), and both notifications link to it.
    assert run_of(rollback).status == "successful"
    # DORA: three changes to Prod, the one that failed verification counts as failed, and
    # the automatic rollback restored it.
    dora = insights(period=Period.last_days(1), team_ids=None, environment=world["prod"]).overall
    assert (dora.changes, dora.failures, dora.restored) == (3, 1, 1)
    assert dora.restore_median_hours is not None
    link = f"/releases/{bad.pk}/"

    def told():
        kinds = {r.json.get("event"): r.json for r in receiver.received}
        return kinds if {"verification_failed", "rolled_back"} <= set(kinds) else None

    said = wait_until(told, 30, "the verification and rollback notifications")
    assert said["verification_failed"]["url"].endswith(link)
    assert said["rolled_back"]["url"].endswith(link)
    assert f"Rolling back to release #{good.pk}" in said["rolled_back"]["summary"]
    assert not receiver.problems


def test_no_data_is_inconclusive_and_a_lead_decides_through_the_api(world, prometheus):
    template(world, prometheus, "beta", count=2)
    lead = member(world["service"].team, "judge", Role.LEAD)
    api = APIClient(
        HTTP_AUTHORIZATION="Bearer "
        + token_issue(user=lead, name="ci", scopes=TokenScope.values)[1]
    )
    release = built_release(world, 1)  # nothing pushed: Prometheus has no data for it
    run = run_of(deploy(world, release, "beta"))
    assert run.status == "inconclusive"
    assert set(run.measurements.values_list("phase", flat=True)) == {"error"}
    assert "no data" in run.measurements.first().detail
    refusal = promotion_refusal(release=release, environment=world["prod"])
    assert "inconclusive verification there" in refusal

    listed = api.get(reverse("api-release-verifications", args=[release.pk])).json()
    assert [(r["id"], r["status"], r["verified"]) for r in listed] == [
        (run.pk, "inconclusive", False)
    ]
    assert listed[0]["measurements"][0]["phase"] == "error"
    url = reverse("api-verification-decide", args=[run.pk, "continue"])
    assert api.post(url, {}, format="json").status_code == 400  # a reason is required
    answer = api.post(url, {"reason": "dashboards look fine"}, format="json")
    assert answer.status_code == 200, answer.content
    assert (answer.json()["judgement"], answer.json()["verified"]) == ("continue", True)
    assert api.post(url, {"reason": "again"}, format="json").status_code == 409
    assert promotion_refusal(release=release, environment=world["prod"]) is None

    # A re-run that fails revokes "verified": promotion is refused again.
    serving(world, prometheus, "beta", release, requests=100, errors=50)
    rerun = api.post(
        reverse("api-verification-decide", args=[run.pk, "rerun"]),
        {"reason": "check again with traffic"},
        format="json",
    )
    assert rerun.status_code == 200, rerun.content
    fresh = run_of(Deployment.objects.get(pk=run.deployment_id))
    assert fresh.pk == rerun.json()["id"] and fresh.status == "failed"
    with pytest.raises(PromotionRefused, match="failed its verification"):
        deploy(world, release, "prod", kind="promote")
    unknown = api.post(
        reverse("api-verification-decide", args=[fresh.pk, "bless"]), {"reason": "x"}, format="json"
    )
    assert unknown.status_code == 400
