"""A lead's day through the real pages in Chromium: a developer builds, deploys to Beta
and asks for Prod through the promote dialog; a second lead finds it in the inbox,
approves with a comment, follows the timeline, and checks the dashboard and the audit
trail. Every page is screenshotted into one folder and checked with axe-core.

Set SLIPWAY_SCREENSHOTS to keep the screenshots somewhere (docs/screenshots is made so).
"""

import csv
import io
from pathlib import Path

import pytest

from portal.access.choices import Role
from tests.browser.conftest import Pages, log_in
from tests.factories import member
from tests.support.jenkins import builds_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


def test_a_lead_approves_a_promotion_found_in_the_inbox(
    browser, live_server, demo, emulator, shots
):
    member(demo.team, "lead2", Role.LEAD)
    pages = Pages(shots)

    # A developer builds and deploys to Beta
    dev = log_in(browser, live_server, "dev")
    pages.check(dev, "dashboard-empty")
    dev.get_by_role("link", name="Shop").click()
    pages.check(dev, "service")
    dev.get_by_role("button", name="Build & deploy to Beta").click()
    dev.locator("#status .badge.succeeded").wait_for()
    dev.get_by_text("Finished: SUCCESS").wait_for()
    [build] = builds_for(emulator, demo.releases.get())
    digest = build["digest"]
    pages.check(dev, "release-in-beta")

    # They open the promote dialog: it names the digest and what Prod runs now
    dev.get_by_role("link", name="Promote to Prod…").click()
    dialog = dev.get_by_role("dialog")
    dialog.wait_for()
    assert digest in dialog.inner_text()
    assert "Prod runs now" in dialog.inner_text() and "nothing yet" in dialog.inner_text()
    dialog.locator("pre.diff").nth(1).wait_for()  # the worker rendered the manifests
    pages.check(dev, "promote-dialog")
    dialog.get_by_role("button", name="Request promotion to Prod").click()
    dev.get_by_text("Awaiting approval").first.wait_for()

    # A second lead finds it in the inbox (badge 1) and approves with a comment
    lead = log_in(browser, live_server, "lead2")
    assert lead.get_by_role("link", name="Approvals").inner_text().split() == ["Approvals", "1"]
    lead.get_by_role("link", name="Approvals").click()
    pages.check(lead, "approvals-inbox")
    lead.get_by_label("Comment on deployment").fill("ship it, checked Beta")
    lead.get_by_role("button", name="Approve").click()
    lead.get_by_text("Nothing waits for your decision").wait_for()

    # The timeline shows the approval and Prod's rollout
    release = demo.releases.get()
    lead.goto(f"{live_server.url}/releases/{release.pk}/")
    lead.locator("#status tr:has-text('Prod') .badge.succeeded").wait_for()
    timeline = lead.locator("ol.timeline").inner_text()
    assert "Approved — lead2" in timeline and "ship it, checked Beta" in timeline
    assert "Prod deployment" in timeline and "Rolled out" in timeline
    pages.check(lead, "release-in-prod")

    # The dashboard shows the same digest in Beta and in Prod
    lead.goto(f"{live_server.url}/")
    cells = lead.locator("tr:has-text('Shop') td.cell")
    assert cells.count() == 2
    assert all(digest[7:19] in cells.nth(n).inner_text() for n in range(2))
    pages.check(lead, "dashboard")

    # The audit page, filtered to the release, lists the request, approval and both
    # deployments; its CSV downloads
    lead.goto(f"{live_server.url}/releases/{release.pk}/")
    lead.locator("#audit summary").click()
    lead.get_by_role("link", name="Open in the audit log").click()
    actions = lead.locator("td code").all_inner_texts()
    for action in ("release.create", "deployment.deploy", "deployment.promote"):
        assert action in actions
    assert actions.count("deployment.succeeded") == 2
    assert "deployment.pending" in actions  # the approval
    pages.check(lead, "audit-filtered")
    with lead.expect_download() as download:
        lead.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert {"release.create", "deployment.promote", "deployment.pending"} <= {
        r["action"] for r in rows
    }
    lead.goto(f"{live_server.url}/history/")
    pages.check(lead, "history")

    # Insights count the promotion to Prod; the team's notifications page reads clean
    lead.goto(f"{live_server.url}/insights/")
    assert "1 deployment\n" in lead.locator("section.cards").inner_text() + "\n"
    assert lead.locator("figure.chart svg rect.week.ok").count() >= 1
    pages.check(lead, "insights")
    lead.goto(f"{live_server.url}/teams/{demo.team.slug}/notifications/")
    pages.check(lead, "notifications")

    # Usable at 375 px: nothing but the tables scrolls sideways
    phone = browser.new_page(viewport={"width": 375, "height": 800})
    phone.context.add_cookies(lead.context.cookies())
    for path in ("/", f"/releases/{release.pk}/", "/approvals/", "/history/", "/insights/"):
        phone.goto(live_server.url + path)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width} px wide at 375"
    pages.check(phone, "dashboard-375")
