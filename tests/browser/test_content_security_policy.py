"""Every page is served with a Content-Security-Policy that allows no inline script or
style, and still works: the promote dialog opens and closes, the API docs load. (The
browser fixture fails any test whose pages had content refused.)"""

import pytest

from tests.browser.conftest import log_in
from tests.factories import BuiltReleaseFactory, succeeded_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_pages_work_under_a_policy_without_inline_script(browser, live_server, demo):
    release = BuiltReleaseFactory(service=demo)
    succeeded_in(release, demo.targets.get(environment__slug="beta").environment)
    page = log_in(browser, live_server, "dev")
    response = page.goto(f"{live_server.url}/releases/{release.pk}/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    # The promote dialog opens as a modal (static/js/slipway.js, not an inline script) …
    page.get_by_role("link", name="Promote to Prod").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert dialog.evaluate("d => d.open && d.matches(':modal')")
    # … and Cancel closes it without leaving the page
    dialog.get_by_role("link", name="Cancel").click()
    dialog.wait_for(state="hidden")
    assert page.url.endswith(f"/releases/{release.pk}/")


def test_the_api_docs_load_under_the_policy(browser, live_server):
    page = browser.new_page()
    response = page.goto(f"{live_server.url}/api/docs/")
    assert "content-security-policy" in response.headers
    page.get_by_text("Slipway API").first.wait_for(timeout=30_000)
    page.locator(".opblock").first.wait_for(timeout=30_000)  # the endpoints rendered
