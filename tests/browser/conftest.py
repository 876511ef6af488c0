"""Browser fixtures: Debian's Chromium driven by Playwright, and a demo service whose
builds run on the Jenkins emulator and deploy to the test cluster."""

import shutil
from pathlib import Path

import pytest
from django.db import connections

from portal.choices import Role
from tests.factories import PASSWORD, JenkinsServerFactory, member, service_path
from tests.support.jenkins import TOKEN, job_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM reads
    # are still plain synchronous code (Django's documented escape hatch for this case).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()
        # ORM reads made while Playwright's loop ran opened their own connection; close it
        # so the test database can be dropped at the end.
        connections.close_all()


@pytest.fixture
def demo(emulator, kube_cluster):
    emulator.control(
        "POST",
        "jobs",
        job_config(
            "demo/app", duration_seconds=3, log=[f"compiling module {n}" for n in range(12)]
        ),
    )
    path = service_path(
        slug="shop",
        name="Shop",
        namespace_suffix="-browser",
        jenkins_server=JenkinsServerFactory(url=emulator.url, api_token=TOKEN),
        cluster={"kubeconfig": kube_cluster.kubeconfig()},
    )
    for name, role in (("dev", Role.DEVELOPER), ("lead", Role.LEAD)):
        member(path.team, name, role)
    return path.service


def log_in(browser, live_server, name):
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(live_server.url + "/")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    return page
