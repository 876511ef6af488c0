"""Release trains: three services' releases to Prod in order, one approval (a lead of
each team by default), stopping at the first failure and saying what ran where."""

import pytest
from click.testing import CliRunner
from django.test import Client
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.models import AuditEvent
from portal.catalog.models import DeploymentTarget
from releases.models import Deployment, ReleaseTrain
from releases.trains import train_advance
from slipway_cli.main import cli
from tests.factories import (
    BuiltReleaseFactory,
    ServiceFactory,
    TeamFactory,
    allow,
    member,
    service_path,
    succeeded_in,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    path = service_path(slug="shop", name="Shop")
    services = [path.service]
    for slug in ("payments", "search"):
        service = ServiceFactory(
            slug=slug, name=slug.title(), team=TeamFactory(slug=slug, name=slug.title())
        )
        for environment in (path.beta, path.prod):
            allow(
                DeploymentTarget.objects.create(
                    service=service,
                    environment=environment,
                    cluster=path.cluster,
                    namespace=f"{environment.slug}-{slug}",
                    helm_release_name=slug,
                )
            )
        services.append(service)
    people = {}
    api = {}
    for service in services:
        lead = member(service.team, f"lead-{service.slug}", Role.LEAD)
        people[lead.username] = lead
    dev = member(services[0].team, "dev", Role.DEVELOPER)
    for service in services[1:]:
        member(service.team, "dev", Role.DEVELOPER)
    people["dev"] = dev
    for name, user in people.items():
        raw = token_issue(user=user, name="t", scopes=TokenScope.values)[1]
        api[name] = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    releases = []
    for service in services:
        release = BuiltReleaseFactory(service=service, ref=f"{service.slug}-2.0")
        succeeded_in(release, path.beta)
        releases.append(release)
    return {"path": path, "services": services, "releases": releases, "api": api, **people}


def _make(world, **overrides) -> dict:
    body = {"name": "December train", "environment": "prod",
            "releases": [r.pk for r in world["releases"]], **overrides}  # fmt: skip
    return world["api"]["dev"].post("/api/v1/trains/", body, format="json")


def test_a_train_is_checked_when_made(world):
    shop, payments, _ = world["releases"]
    twice = _make(world, releases=[shop.pk, shop.pk])
    assert twice.status_code == 400
    other_shop = BuiltReleaseFactory(service=shop.service, ref="shop-2.1")
    same_service = _make(world, releases=[shop.pk, other_shop.pk])
    assert "one release per service" in same_service.json()["detail"]
    not_in_beta = _make(world, releases=[other_shop.pk, payments.pk])
    assert not_in_beta.status_code == 409
    assert not_in_beta.json()["detail"].startswith("Shop: Release #")
    assert not ReleaseTrain.objects.exists()


def test_one_approval_then_in_order_and_it_stops_at_the_second_service(world):
    made = _make(world)
    assert made.status_code == 201, made.content
    train = made.json()
    assert train["status"] == "awaiting_approval"
    assert [m["service"] for m in train["releases"]] == ["shop", "payments", "search"]
    # No environment-wide policy: a lead of each team.
    shop_team = world["services"][0].team.name
    assert sorted(r["name"] for r in train["rules"]) == sorted(
        ["Team lead (Payments)", "Team lead (Search)", f"Team lead ({shop_team})"]
    )
    pk = train["id"]
    url = f"/api/v1/trains/{pk}"
    own = world["api"]["dev"].post(f"{url}/approve", {}, format="json")
    assert own.status_code == 403
    for lead in ("lead-shop", "lead-payments"):
        answer = world["api"][lead].post(f"{url}/approve", {"comment": "ok"}, format="json")
        assert answer.status_code == 200, answer.content
        assert answer.json()["status"] == "awaiting_approval"
    approved = world["api"]["lead-search"].post(f"{url}/approve", {}, format="json")
    assert approved.json()["status"] == "running"
    assert {a["by"]: a["represented_as"] for a in approved.json()["approvals"]}[
        "lead-search"
    ] == "Team lead (Search)"

    # The worker's steps: the first release's deployment starts without another approval.
    assert train_advance(pk).startswith("started deployment")
    first = Deployment.objects.get(service__slug="shop", environment__slug="prod")
    assert first.status == "pending" and first.release == world["releases"][0]
    assert train_advance(pk) == f"waiting for deployment #{first.pk}"
    Deployment.objects.filter(pk=first.pk).update(status="succeeded")
    assert train_advance(pk).startswith("started deployment")
    second = Deployment.objects.get(service__slug="payments", environment__slug="prod")
    Deployment.objects.filter(pk=second.pk).update(
        status="failed", status_reason="Rollout timed out: 0/2 pods ready."
    )
    assert train_advance(pk) == "failed"
    assert train_advance(pk) == "not running"  # a duplicate step does nothing

    shown = world["api"]["dev"].get(f"{url}/").json()
    assert shown["status"] == "failed"
    assert shown["status_reason"] == (
        "Stopped at Payments (2 of 3): Rollout timed out: 0/2 pods ready."
    )
    assert [(m["service"], m["status"], m["deployment"]) for m in shown["releases"]] == [
        ("shop", "succeeded", first.pk),
        ("payments", "failed", second.pk),
        ("search", "not_started", None),
    ]
    assert not Deployment.objects.filter(service__slug="search", environment__slug="prod").exists()
    assert AuditEvent.objects.filter(action="train.failed", target_id=str(pk)).exists()
    started = AuditEvent.objects.get(action="deployment.promote", target_id=str(first.pk))
    assert started.after["train"] == pk and started.actor_name == "release train"


def test_a_rejection_ends_the_train_and_the_pages_show_it(world):
    pk = _make(world).json()["id"]
    browser = Client()
    browser.force_login(world["lead-payments"])
    inbox = browser.get("/approvals/").content.decode()
    assert "December train" in inbox and "Team lead (Payments)" in inbox
    assert 'aria-label="1 waiting for you"' in inbox  # the top bar counts the train
    browser.get(f"/trains/{pk}/")
    rejected = browser.post(
        f"/trains/{pk}/decide", {"decision": "reject", "comment": "payments freeze"}, follow=True
    )
    assert rejected.status_code == 200
    train = ReleaseTrain.objects.get(pk=pk)
    assert (train.status, train.status_reason) == (
        "cancelled",
        "rejected by lead-payments: payments freeze",
    )
    page = browser.get(f"/trains/{pk}/").content.decode()
    assert "rejected by lead-payments: payments freeze" in page and "Not started" in page


def test_the_cli_makes_and_shows_a_train(world, live_server, tmp_path):
    raw = token_issue(user=world["dev"], name="cli", scopes=TokenScope.values)[1]
    env = {"SLIPWAY_URL": live_server.url, "SLIPWAY_TOKEN": raw, "HOME": str(tmp_path)}
    ids = [str(r.pk) for r in world["releases"]]
    made = CliRunner().invoke(cli, ["train", "create", "Dec", "--to", "prod", *ids], env=env)
    assert made.exit_code == 0, made.output
    assert "awaiting_approval" in made.output
    pk = ReleaseTrain.objects.get().pk
    shown = CliRunner().invoke(cli, ["train", "show", str(pk)], env=env)
    assert "1. shop" in shown.output and "3. search" in shown.output
    assert "Team lead (Search): 0/1" in shown.output


def test_a_service_busy_in_the_environment_makes_the_train_wait_its_turn(world):
    from releases.models import TrainMember

    pk = _make(world).json()["id"]
    for lead in ("lead-shop", "lead-payments", "lead-search"):
        world["api"][lead].post(f"/api/v1/trains/{pk}/approve", {}, format="json")
    # Someone's Prod deployment of the shop is under way.
    shop = world["releases"][0]
    Deployment.objects.create(
        release=shop, environment=world["path"].prod, service=shop.service,
        status="deploying", image=shop.image,
    )  # fmt: skip
    assert train_advance(pk).startswith("started deployment")
    member = TrainMember.objects.get(train_id=pk, position=1)
    assert (member.status, member.deployment.status) == ("deploying", "queued")
    assert train_advance(pk) == f"waiting for deployment #{member.deployment_id}"
