"""Verification on the pages: the release page charts every measurement and offers a lead
re-run, skip and (when inconclusive) continue or roll back; the approvals inbox asks a lead
to judge inconclusive runs and the top bar counts them. The measurements come from a real
Prometheus (no data for this release: inconclusive)."""

from __future__ import annotations

import pytest

from notifications.events import event_kind
from notifications.messages import message_for
from portal.access.choices import Role
from portal.audit.models import AuditEvent
from releases.models import AnalysisMetric, AnalysisTemplate, VerificationRun
from releases.promotion import promotion_refusal
from releases.verifying import verification_begin, verification_step
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def inconclusive(prometheus):
    path = service_path()
    template = AnalysisTemplate.objects.create(
        environment=path.beta, name="errors", prometheus_url=prometheus.url
    )
    AnalysisMetric.objects.create(
        template=template, name="error ratio", count=2, interval_seconds=0, inconclusive_limit=1,
        query='sum(http_requests_total{release="{release}",code=~"5.."})',
        success_condition="result < 0.05", failure_condition="result >= 0.05",
    )  # fmt: skip
    release = BuiltReleaseFactory(service=path.service)
    run = verification_begin(succeeded_in(release, path.beta))
    assert verification_step(run) == 0.0  # one measured (no data), the next is due now
    run.refresh_from_db()
    assert run.status == "running"
    assert verification_step(run) is None
    run.refresh_from_db()
    return {
        "path": path,
        "release": release,
        "run": run,
        "lead": member(path.team, "lead", Role.LEAD),
        "dev": member(path.team, "dev", Role.DEVELOPER),
    }


def test_the_release_page_charts_each_measurement_and_a_lead_judges_it(client, inconclusive):
    run, release = inconclusive["run"], inconclusive["release"]
    assert run.status == "inconclusive"
    assert "2 of 2 measurements inconclusive or without data (limit 1)" in run.reason
    client.force_login(inconclusive["dev"])
    page = client.get(f"/releases/{release.pk}/").content.decode()
    assert "Verification" in page and "Inconclusive" in page
    assert page.count('<circle cx="') == 2 and "the query returned no data" in page
    assert f'action="/verifications/{run.pk}/decide"' not in page  # a developer may not
    assert client.post(f"/verifications/{run.pk}/decide", {"action": "continue",
                       "reason": "mine"}).status_code == 403  # fmt: skip

    client.force_login(inconclusive["lead"])
    page = client.get(f"/releases/{release.pk}/").content.decode()
    assert f'action="/verifications/{run.pk}/decide"' in page
    assert 'value="continue"' in page and 'value="rollback"' in page
    inbox = client.get("/approvals/").content.decode()
    assert "Verifications to judge" in inbox and f"/releases/{release.pk}/" in inbox
    assert inbox.count(f'action="/verifications/{run.pk}/decide"') == 1
    assert 'aria-label="1 waiting for you"' in inbox
    # No reason, no decision: the page says why
    said = client.post(f"/verifications/{run.pk}/decide", {"action": "continue"}, follow=True)
    assert "a reason is required" in said.content.decode()
    assert VerificationRun.objects.get(pk=run.pk).judgement == ""
    assert "inconclusive verification" in promotion_refusal(
        release=release, environment=inconclusive["path"].prod
    )
    answer = client.post(
        f"/verifications/{run.pk}/decide",
        {"action": "continue", "reason": "dashboards fine", "next": "/approvals/"},
    )
    assert answer.url == "/approvals/"
    assert VerificationRun.objects.get(pk=run.pk).judgement == "continue"
    event = AuditEvent.objects.get(action="verification.judged")
    assert event.after == {"run": run.pk, "judgement": "continue", "reason": "dashboards fine"}
    assert promotion_refusal(release=release, environment=inconclusive["path"].prod) is None
    inbox = client.get("/approvals/").content.decode()
    assert "Verifications to judge" not in inbox and "waiting for you" not in inbox
    bad = client.post(f"/verifications/{run.pk}/decide", {"action": "bless", "reason": "x"})
    assert bad.status_code == 400


def test_an_inconclusive_run_is_announced_with_a_link_to_the_inbox(inconclusive):
    event = AuditEvent.objects.get(action="verification.inconclusive")
    assert event_kind(event) == "judgement"
    message = message_for(event, "judgement")
    assert message.link.endswith("/approvals/")
    assert "verification inconclusive" in message.summary
    assert "a lead decides in the approvals inbox" in message.summary
