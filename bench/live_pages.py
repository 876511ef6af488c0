"""How long a change takes to reach open pages, measured in Chromium: a release page open
in several tabs, each on its own event stream from the ASGI server (uvicorn, as
production runs it), while deployments of that release move one after another."""

from __future__ import annotations

import shutil
import time

from bench.measure import Figure
from tests.support.asgi import AsgiLiveServer

TABS = 5
CHANGES = 20


def run(progress) -> Figure:
    import os

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from playwright.sync_api import sync_playwright

    from portal.access.choices import Role
    from portal.access.models import Membership, Team
    from portal.catalog.models import Environment, JenkinsServer, Service
    from releases.choices import DeploymentStatus
    from releases.models import Deployment, Release
    from releases.transitions import deployment_transition

    # Playwright's sync API keeps an event loop on this thread; the ORM calls here are
    # plain synchronous code (Django's documented escape hatch).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    settings.SLIPWAY_LIVE_FALLBACK_SECONDS = 600  # only an event can explain a change
    run = int(time.time())  # a run of its own, also over a reused seed
    team = Team.objects.create(slug=f"live-{run}", name=f"Live {run}")
    service = Service.objects.create(
        slug=f"live-pages-{run}", name=f"Live pages {run}", team=team,
        jenkins_server=JenkinsServer.objects.first(), jenkins_job="apps/live",
        chart="oci://registry.local/charts/app", image_repository="registry.local/apps/live",
    )  # fmt: skip
    watcher = get_user_model().objects.create_user(f"bench-live-{run}")
    Membership.objects.create(team=team, user=watcher, role=Role.VIEWER)
    prod = Environment.objects.get(slug="prod")
    releases = [
        Release.objects.create(
            service=service,
            ref=f"live-{n}",
            status="built",
            jenkins_server=service.jenkins_server,
            jenkins_job=service.jenkins_job,
            image_repository=service.image_repository,
            image_digest="sha256:" + f"{n:064x}",
        )
        for n in range(CHANGES)
    ]
    waiting = [
        Deployment.objects.create(
            release=r,
            environment=prod,
            service=service,
            status=DeploymentStatus.AWAITING_APPROVAL,
            image=r.image,
        )
        for r in releases
    ]
    client = Client()
    client.force_login(watcher)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    server = AsgiLiveServer()  # the same uvicorn server the test suite uses
    seconds: list[float] = []
    progress(f"{CHANGES} changes, each watched in {TABS} Chromium tabs over server-sent events")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu"],
            )
            context = browser.new_context()
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": server.url}]
            )
            for deployment in waiting:
                tabs = [context.new_page() for _ in range(TABS)]
                for tab in tabs:
                    tab.goto(f"{server.url}/releases/{deployment.release_id}/")
                    tab.wait_for_selector("body[data-live-state='open']", timeout=15_000)
                assert deployment_transition(deployment=deployment, to=DeploymentStatus.CANCELLED)
                changed = time.monotonic()
                for tab in tabs:
                    tab.locator("#status .badge.cancelled").wait_for(timeout=30_000)
                    seconds.append(time.monotonic() - changed)
                for tab in tabs:
                    tab.close()
            browser.close()
    finally:
        server.stop()
    figure = Figure(
        f"a change → an open page ({TABS} tabs × {CHANGES} changes, Chromium)",
        [s * 1000 for s in seconds],
        goal="p95 ≤ 2 s",
    )
    figure.extra = {"p50_s": round(figure.median / 1000, 3), "p95_s": round(figure.p95 / 1000, 3)}
    return figure
