"""Every page is served with a Content-Security-Policy that allows no inline script or
style, and still works: the promote dialog opens and closes, the API reference reads. (The
browser fixture fails any test whose pages had content refused.)"""

import pytest

from tests.browser.conftest import Pages, log_in
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


def test_the_api_reference_reads_the_schema_and_passes_axe(browser, live_server, shots):
    """/api/docs/ is a page like the others (served by the portal, no script, no inline
    style): every operation with its parameters, bounds and answers, checked by axe."""
    page = browser.new_page()
    response = page.goto(f"{live_server.url}/api/docs/")
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    assert page.evaluate("document.documentElement.lang") == "en"
    releases = page.locator("article#api_v1_services_releases_create")
    assert releases.get_by_role("heading").inner_text() == "POST /api/v1/services/{slug}/releases/"
    assert "pattern ^(?!.*\\.\\.)" in releases.get_by_role("table", name="Body").inner_text()
    answers = releases.get_by_role("table", name="Answers").inner_text()
    assert "201" in answers and "409" in answers and "application/problem+json" in answers
    page_size = page.locator("article#api_v1_releases_list").get_by_role("row", name="page_size")
    assert "integer, 1 to 200" in page_size.inner_text()
    Pages(shots).check(page, "api-reference")
