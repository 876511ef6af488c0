"""Verification and canary steps in Chromium: a lead sees a canary at 50 % with each step's
measurements charted, promotes it from the release page, then judges an inconclusive
verification from the approvals inbox. Every page is screenshotted and checked with axe."""

import pytest

from releases.models import AnalysisMetric, AnalysisTemplate, VerificationRun
from tests.browser.conftest import Pages, log_in
from tests.releases.test_canary_e2e import (  # noqa: F401 (fixtures)
    canary_at,
    canary_world,
    promote,
    stable_in_prod,
)
from tests.releases.test_verification_e2e import run_of, serving
from tests.support.deploy import built_release, deploy, finished

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


def test_a_lead_promotes_a_canary_and_judges_an_inconclusive_run(
    browser,
    live_server,
    shots,
    canary_world,  # noqa: F811
):
    w = canary_world
    stable_in_prod(w, 1)
    new = built_release(w, 2)
    serving(w, w["prometheus"], "prod", new, requests=400, errors=2)
    deployment = promote(w, new)
    canary_at(deployment, 50, "paused")
    pages = Pages(shots)

    lead = log_in(browser, live_server, "canary-lead")
    lead.goto(f"{live_server.url}/releases/{new.pk}/")
    status = lead.locator("#status")
    assert "Canary: 50 % of the traffic" in status.inner_text()
    assert "canary step 1 (10 %)" in status.inner_text()
    assert lead.locator("figure.chart svg circle").count() == 4  # 2 steps, 2 measurements each
    pages.check(lead, "canary-paused")
    lead.get_by_label(f"Why (canary of deployment #{deployment.pk})").fill("looks healthy")
    lead.get_by_role("button", name="Promote canary").click()
    lead.get_by_text("canary promoted").wait_for()
    assert finished(deployment, 90).status == "succeeded"

    # An inconclusive verification in Beta (its query finds no data) waits in the inbox.
    template = AnalysisTemplate.objects.create(
        environment=w["beta"], name="latency", prometheus_url=w["prometheus"].url
    )
    AnalysisMetric.objects.create(
        template=template, name="p99 latency", query='max(nothing{release="{release}"})',
        count=1, success_condition="result < 0.3",
    )  # fmt: skip
    third = built_release(w, 3)
    run = run_of(deploy(w, third, "beta"))
    assert run.status == "inconclusive"
    lead.goto(f"{live_server.url}/approvals/")
    assert "Verifications to judge" in lead.locator("main").inner_text()
    judged = lead.locator("section[aria-labelledby^=judge-]")
    assert judged.count() == 1, judged.all_inner_texts()
    pages.check(lead, "judgement-inbox")
    lead.get_by_label(f"Why (verification #{run.pk})").fill("latency dashboards are fine")
    judged.get_by_role("button", name="Continue").click()
    lead.get_by_text("judged good").wait_for()
    assert VerificationRun.objects.get(pk=run.pk).judgement == "continue"
    pages.check(lead, "judged")
