"""Change management and the catalog in Chromium: QA (outside the team) approves from the
inbox, counted for its rule; a lead makes and approves a release train; a platform admin
previews a catalog sync. Every page is screenshotted and checked with axe."""

import pytest
from django.contrib.auth.models import Group

from portal.access.choices import Role
from portal.audit.chain import Actor
from portal.catalog.models import CatalogSource, DeploymentTarget
from releases.deployments import deployment_start
from releases.models import ApprovalPolicy, ApprovalRule, ApprovalVote, ReleaseTrain
from tests.browser.conftest import Pages, log_in
from tests.factories import (
    BuiltReleaseFactory,
    ServiceFactory,
    UserFactory,
    allow,
    member,
    service_path,
    succeeded_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world():
    path = service_path(slug="shop", name="Shop")
    web = ServiceFactory(slug="web", name="Web", team=path.team)
    for environment in (path.beta, path.prod):
        allow(DeploymentTarget.objects.create(
            service=web, environment=environment, cluster=path.cluster,
            namespace=f"{environment.slug}-web", helm_release_name="web",
        ))  # fmt: skip
    dev = member(path.team, "dev", Role.DEVELOPER)
    member(path.team, "lead", Role.LEAD)
    qa = Group.objects.create(name="qa")
    UserFactory(username="quinn").groups.add(qa)
    policy = ApprovalPolicy.objects.create(environment=path.prod, team=path.team, name="Prod")
    ApprovalRule.objects.create(policy=policy, name="Team lead", role=Role.LEAD, order=1)
    ApprovalRule.objects.create(policy=policy, name="QA", group=qa, order=2)
    releases = []
    for service in (path.service, web):
        release = BuiltReleaseFactory(service=service, ref=f"{service.slug}-2")
        succeeded_in(release, path.beta)
        releases.append(release)
    waiting = deployment_start(
        release=releases[0], environment=path.prod, kind="promote", user=dev,
        actor=Actor.for_user(dev),
    )  # fmt: skip
    return {"deployment": waiting, "releases": releases}


def test_qa_approves_a_lead_runs_a_train_an_admin_previews_a_sync(
    browser, live_server, shots, world
):
    pages = Pages(shots)
    quinn = log_in(browser, live_server, "quinn")
    quinn.goto(f"{live_server.url}/approvals/")
    assert "QA" in quinn.locator("main").inner_text()
    pages.check(quinn, "inbox-qa")
    deployment = world["deployment"]
    quinn.get_by_label(f"Count my approval for (deployment #{deployment.pk})").select_option("QA")
    quinn.get_by_role("button", name="Approve").click()
    quinn.get_by_text("is counted; it waits for the policy").wait_for()
    assert ApprovalVote.objects.get(deployment=deployment).represented_as == "QA"

    lead = log_in(browser, live_server, "lead")
    lead.goto(f"{live_server.url}/releases/{deployment.release_id}/")
    assert "QA 1/1" in lead.locator("#status").inner_text()
    pages.check(lead, "release-with-rules")
    lead.goto(f"{live_server.url}/trains/")
    pages.check(lead, "trains")
    lead.get_by_label("Name").fill("Tuesday train")
    lead.get_by_label("To").select_option("prod")
    lead.get_by_label("Place of Shop").fill("1")
    lead.get_by_label("Place of Web").fill("2")
    lead.get_by_role("button", name="Make the train").click()
    lead.get_by_text("made.").wait_for()
    train = ReleaseTrain.objects.get(name="Tuesday train")
    assert [m.release_id for m in train.members.order_by("position")] == [
        r.pk for r in world["releases"]
    ]
    pages.check(lead, "train")

    admin = UserFactory(username="platform", is_superuser=True, is_staff=True)
    CatalogSource.objects.create(name="shop repos", repositories="git://127.0.0.1:9/shop.git")
    page = log_in(browser, live_server, admin.username)
    page.goto(f"{live_server.url}/catalog/")
    page.get_by_role("button", name="Preview sync").click()
    page.get_by_text("Preview of shop repos").wait_for()
    assert "git://127.0.0.1:9/shop.git" in page.locator("main").inner_text()
    pages.check(page, "catalog-preview")
