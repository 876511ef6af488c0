"""Open pages update themselves in Chromium when a release or deployment moves: the
release page's status, the dashboard row and the top bar's approvals count, pushed over
server-sent events; a page whose stream is blocked falls back to polling.

Polling is set to five minutes while the stream is open, so only an event can explain a
page that changes within the wait; the seconds each change took to show are printed."""

from __future__ import annotations

import time

import pytest

from portal.access.choices import Role
from releases.choices import DeploymentStatus
from releases.models import Deployment
from releases.transitions import deployment_transition
from tests.browser.conftest import log_in
from tests.factories import BuiltReleaseFactory, member, service_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_MS = 10_000  # well under the five minutes of polling


@pytest.fixture
def shop(settings):
    settings.SLIPWAY_LIVE_FALLBACK_SECONDS = 300
    path = service_path(slug="shop", name="Shop")
    member(path.team, "dev", Role.DEVELOPER)
    member(path.team, "lead", Role.LEAD)
    return path


def _awaiting(path) -> Deployment:
    release = BuiltReleaseFactory(service=path.service, requested_by=None)
    return Deployment.objects.create(
        release=release,
        environment=path.prod,
        service=path.service,
        status=DeploymentStatus.AWAITING_APPROVAL,
        image=release.image,
    )


def _cancel(deployment: Deployment) -> float:
    assert deployment_transition(deployment=deployment, to=DeploymentStatus.CANCELLED)
    return time.monotonic()


def test_release_page_dashboard_and_count_follow_a_change_without_polling(
    browser, live_server, shop
):
    waiting = _awaiting(shop)
    release = waiting.release
    lead = log_in(browser, live_server, "lead")
    lead.locator("#approvals-count .count").wait_for()
    lead.goto(f"{live_server.url}/releases/{release.pk}/")
    status = lead.locator("#status tr:has-text('Prod') .badge")
    assert status.inner_text() == "Awaiting approval"
    dev = log_in(browser, live_server, "dev")
    row = dev.locator("#dashboard-rows tr:has-text('Shop')")
    assert "1 waiting" in row.inner_text()
    for page in (lead, dev):
        page.wait_for_selector("body[data-live-state='open']", timeout=WAIT_MS)

    changed = _cancel(waiting)

    lead.locator("#status tr:has-text('Prod') .badge.cancelled").wait_for(timeout=WAIT_MS)
    on_release_page = time.monotonic() - changed
    lead.locator("#approvals-count .count").wait_for(state="detached", timeout=WAIT_MS)
    # A locator, not wait_for_function: Playwright polls a string predicate through eval,
    # which the pages' Content-Security-Policy refuses whenever the first look is false.
    dev.locator("#dashboard-rows tr:has-text('Shop')", has_text="1 waiting").wait_for(
        state="detached", timeout=WAIT_MS
    )
    on_dashboard = time.monotonic() - changed
    print(f"\nchange → release page {on_release_page:.2f} s, → dashboard {on_dashboard:.2f} s")


def test_a_page_whose_stream_is_blocked_polls_instead(browser, live_server, shop, settings):
    settings.SLIPWAY_LIVE_FALLBACK_SECONDS = 1
    waiting = _awaiting(shop)
    lead = log_in(browser, live_server, "lead")
    # A proxy that refuses the stream
    lead.route("**/events/**", lambda route: route.abort())
    lead.goto(f"{live_server.url}/releases/{waiting.release_id}/")
    lead.wait_for_selector("body[data-live-state='polling']", timeout=WAIT_MS)
    _cancel(waiting)
    lead.locator("#status tr:has-text('Prod') .badge.cancelled").wait_for(timeout=WAIT_MS)
