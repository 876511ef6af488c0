"""Prod over two real clusters, in Chromium: a promotion that failed (and was rolled back)
on cluster-b shows each cluster on the dashboard, the service page and the deployment
page, and a lead retries cluster-b from the deployment page; the worker rolls it out.
Every page is screenshotted and checked with axe-core."""

import pytest

from portal.catalog.models import DeploymentTarget
from releases.models import Deployment
from tests.browser.conftest import Pages, log_in
from tests.releases.test_waves_e2e import FAILING, promoted, runs, statuses, two  # noqa: F401
from tests.support.deploy import built_release, finished

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


def test_a_lead_sees_each_cluster_and_retries_the_one_that_failed(
    browser,
    live_server,
    shots,
    two,  # noqa: F811
):
    old, new = built_release(two, 1), built_release(two, 2)
    assert promoted(two, old).status == "succeeded"
    cluster_b = DeploymentTarget.objects.filter(pk=two["targets"]["cluster-b"].pk)
    cluster_b.update(values={"replicaCount": 2, **FAILING})
    stopped = promoted(two, new)
    assert stopped.status == "rolled_back", stopped.status_reason
    pages = Pages(shots)

    lead = log_in(browser, live_server, "wave-lead")
    pages.check(lead, "waves-dashboard")
    cell = lead.locator("td.cell.split")
    assert cell.count() == 1  # Prod: the clusters run different releases
    text = cell.inner_text()
    assert f"cluster-a: #{new.pk}" in text and f"cluster-b: #{old.pk}" in text

    lead.get_by_role("link", name=two["service"].name, exact=True).first.click()
    body = lead.locator("main").inner_text()
    assert "Its clusters run different releases" in body
    pages.check(lead, "waves-service")

    lead.goto(f"{live_server.url}/deployments/{stopped.pk}/")
    rows = lead.locator("table.grid").first.locator("tbody tr")
    assert rows.count() == 2
    assert "Succeeded" in rows.nth(0).inner_text()
    assert "rolled back" in rows.nth(1).inner_text()
    pages.check(lead, "waves-deployment")

    cluster_b.update(values={"replicaCount": 2})  # the lead fixed what made it fail
    lead.get_by_label("Why retry or skip cluster-b (recorded and audited)").fill("values fixed")
    lead.get_by_role("button", name="Retry cluster-b").click()
    lead.get_by_text("cluster-b retried: deployment #").wait_for()
    continued = Deployment.objects.exclude(pk=stopped.pk).get(release=new, environment=two["prod"])
    assert lead.url.endswith(f"/deployments/{continued.pk}/")
    assert finished(continued, 90).status == "succeeded", continued.status_reason
    assert statuses(continued) == [("cluster-b", "succeeded")]
    assert runs(two, "cluster-a") == runs(two, "cluster-b") == new.image
    lead.reload()
    pages.check(lead, "waves-continued")
