"""Beta over three clusters, in Chromium: a deployment stopped (and rolled back) at
cluster-b shows each
cluster on the dashboard, the service page and the deployment page, and a lead retries
cluster-b from the deployment page. Helm and the watcher are in memory (the rules are the
workflow's; tests/releases/test_waves_e2e.py has them on real clusters); the pages are
real, screenshotted and checked with axe-core."""

import pytest

from portal.access.choices import Role
from portal.audit.chain import Actor
from releases.deployments import deployment_start
from releases.models import Deployment
from tests.browser.conftest import Pages, log_in
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in
from tests.releases.test_waves import Log, clusters_for, spread
from tests.support.fake_clusters import DIGEST, run_to_end

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_sees_each_cluster_and_retries_the_one_that_failed(browser, live_server, shots):
    path = service_path(
        slug="shop", name="Shop", image_repository="reg/app", beta={"auto_rollback": True}
    )
    targets = spread(path, path.beta)
    lead_user = member(path.team, "lead", Role.LEAD)
    old = BuiltReleaseFactory(service=path.service, ref="v1")
    new = BuiltReleaseFactory(service=path.service, ref="v2", image_digest=DIGEST)
    succeeded_in(old, path.beta)
    stopped = run_to_end(
        deployment_start(
            release=new, environment=path.beta, actor=Actor.for_user(lead_user), user=lead_user
        ),
        clusters=clusters_for(targets, Log(), failing={"cluster-b"}),
    )
    assert stopped.status == "rolled_back"
    pages = Pages(shots)

    lead = log_in(browser, live_server, "lead")
    pages.check(lead, "waves-dashboard")
    cell = lead.locator("td.cell.split")
    assert cell.count() == 1  # Beta: the clusters run different releases
    text = cell.inner_text()
    assert "cluster-a" in text and "cluster-b" in text

    lead.get_by_role("link", name="Shop").first.click()
    body = lead.locator("main").inner_text()
    assert f"#{new.pk}" in body and f"#{old.pk}" in body
    for name in ("cluster-a", "cluster-b", "cluster-c"):
        assert name in body
    pages.check(lead, "waves-service")

    lead.goto(f"{live_server.url}/deployments/{stopped.pk}/")
    rows = lead.locator("table.grid").first.locator("tbody tr")
    assert rows.count() == 3
    assert "Succeeded" in rows.nth(0).inner_text()
    assert "Rolled back" in rows.nth(1).inner_text() and "Skipped" in rows.nth(2).inner_text()
    pages.check(lead, "waves-deployment")

    lead.get_by_label("Why retry or skip cluster-b (recorded and audited)").fill("node pool back")
    lead.get_by_role("button", name="Retry cluster-b").click()
    lead.get_by_text("cluster-b retried: deployment #").wait_for()
    continued = Deployment.objects.exclude(pk=stopped.pk).get(release=new)
    assert lead.url.endswith(f"/deployments/{continued.pk}/")
    assert [r.target.cluster.name for r in continued.rollouts.order_by("wave")] == [
        "cluster-b",
        "cluster-c",
    ]
    pages.check(lead, "waves-continued")
