"""A person's path through the real pages in Chromium: log in, Build & deploy to Beta,
watch the log stream and the rollout finish, promote to Prod, a second lead approves.

Everything behind the pages is real: the live Django server, a Celery worker process,
the Jenkins emulator over HTTP, helm and a real control plane whose pods kwok runs.
"""

import pytest

from tests.browser.conftest import log_in
from tests.support.jenkins import builds_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


def test_build_deploy_promote_and_approve_through_the_pages(
    browser, live_server, demo, emulator, tmp_path
):
    # Given a developer on the service page
    page = log_in(browser, live_server, "dev")
    page.get_by_role("link", name="Shop").click()

    # When they click "Build & deploy to Beta"
    page.get_by_label("Branch, tag or commit").fill("feature/checkout")
    page.get_by_role("button", name="Build & deploy to Beta").click()

    # Then the log streams in while Jenkins builds, and Beta ends up running the build
    page.get_by_text("compiling module 3").wait_for()
    page.get_by_text("Finished: SUCCESS").wait_for()
    page.locator("#status .badge.succeeded").wait_for()
    page.screenshot(path=tmp_path / "beta.png", full_page=True)
    release_url = page.url
    [build] = builds_for(emulator, demo.releases.get())
    assert build["digest"] in page.locator("#status").inner_text()

    # When they promote to Prod, it waits for a lead other than them
    page.get_by_role("link", name="Promote to Prod…").click()
    page.get_by_role("dialog").get_by_role("button", name="Request promotion to Prod").click()
    page.get_by_text("Awaiting approval").first.wait_for()
    assert page.get_by_role("button", name="Approve").count() == 0

    # Then the lead approves, and Prod rolls out the same image
    lead = log_in(browser, live_server, "lead")
    lead.goto(release_url)
    lead.get_by_role("button", name="Approve").click()
    lead.locator("#status tr:has-text('Prod') .badge.succeeded").wait_for()
    images = demo.deployments.values_list("image", flat=True)
    assert len(set(images)) == 1 and build["digest"] in images[0]

    # And the dashboard shows the release in both environments
    lead.goto(live_server.url + "/")
    release_id = demo.releases.get().pk
    assert lead.locator(f"a[href='/releases/{release_id}/']").count() == 2


def test_a_double_click_on_build_makes_one_release_and_one_build(
    browser, live_server, demo, emulator
):
    import time

    from django.db import connection

    from portal.audit.chain import AUDIT_LOCK_KEY

    page = log_in(browser, live_server, "dev")
    page.goto(f"{live_server.url}/services/{demo.slug}/")
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    # A person's second click, 0.3 s after the first, while the first is still out (a
    # Playwright click would wait for the pending navigation; a person does not).
    page.evaluate(
        """() => {
            const button = document.querySelector('form.build button');
            button.form.addEventListener(
                'submit', () => setTimeout(() => button.click(), 300), {once: true});
        }"""
    )
    # Given a server slow to answer (the first request waits on the audit log's lock)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [AUDIT_LOCK_KEY])
    try:
        # When the button is clicked twice
        page.get_by_role("button", name="Build & deploy to Beta").click(no_wait_after=True)
        deadline = time.monotonic() + 15
        while len(posts) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert len(posts) == 2, posts
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [AUDIT_LOCK_KEY])
    # Then the page lands on the one release, built once
    page.wait_for_url("**/releases/*/")
    page.get_by_text("Finished: SUCCESS").wait_for()
    [release] = demo.releases.all()
    assert page.url.endswith(f"/releases/{release.pk}/")
    assert len(builds_for(emulator, release)) == 1
