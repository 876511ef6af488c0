"""Browser fixtures: Debian's Chromium driven by Playwright, and a demo service whose
builds run on the Jenkins emulator and deploy to the test cluster."""

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.db import connections

from portal.access.choices import Role
from tests.factories import PASSWORD, JenkinsServerFactory, member, service_path
from tests.support.jenkins import TOKEN, job_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class _CspWatch:
    """The browser, with each new page's console watched for refused content."""

    def __init__(self, browser) -> None:
        self._browser = browser
        self.violations: list[str] = []

    def new_page(self, *args, **kwargs):
        page = self._browser.new_page(*args, **kwargs)
        page.on("console", self._console)
        return page

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            where = message.location or {}
            self.violations.append(
                f"{message.text} (at {where.get('url', '?')}:{where.get('lineNumber', '?')})"
            )

    def __getattr__(self, name):
        return getattr(self._browser, name)


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
        watched = _CspWatch(chromium)
        yield watched
        chromium.close()
        # Every page of every browser test runs under the Content-Security-Policy: a
        # refused inline script or style would be a page that breaks for real users.
        assert watched.violations == [], watched.violations
        # ORM reads made while Playwright's loop ran opened their own connection; close it
        # so the test database can be dropped at the end.
        connections.close_all()


@pytest.fixture
def demo(emulator, kube_cluster, request):
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
        # Namespaces of this test's own: a Helm release left by another test belongs to
        # that test's target, and Slipway rightly refuses to touch it.
        namespace_suffix=f"-{hashlib.sha1(request.node.name.encode()).hexdigest()[:8]}",
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


SERIOUS = {"serious", "critical"}


@pytest.fixture
def shots(tmp_path_factory):
    folder = Path(os.environ.get("SLIPWAY_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    print(f"\nScreenshots of every page: {folder}")


class Pages:
    """Screenshot and axe-check each page as the test walks through it."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.axe, self.count = folder, Axe(), 0

    def check(self, page, name: str) -> None:
        page.wait_for_load_state("networkidle")
        self.count += 1
        page.screenshot(path=self.folder / f"{self.count:02d}-{name}.png", full_page=True)
        violations = self.axe.run(page).response["violations"]
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} — {v['nodes'][0]['target']}"
            for v in violations
            if v["impact"] in SERIOUS
        ]
        assert not serious, f"{name}: " + "; ".join(serious)
