"""Approval policies: several rules per environment, each approval counted for one rule,
the requester, a rejection, the inbox of people outside the team (QA), the API and CLI."""

import pytest
from click.testing import CliRunner
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.models import AuditEvent
from releases.models import ApprovalPolicy, ApprovalRule, ApprovalVote, Deployment
from slipway_cli.main import cli
from tests.factories import (
    BuiltReleaseFactory,
    UserFactory,
    member,
    service_path,
    succeeded_in,
)
from tests.support.scripted import decide, request

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    path = service_path(image_repository="reg/app")
    qa = Group.objects.create(name="qa")
    people = {
        "dev": member(path.team, "dev", Role.DEVELOPER),
        "lead1": member(path.team, "lead1", Role.LEAD),
        "lead2": member(path.team, "lead2", Role.LEAD),
        # QA and security people are not in the service's team at all.
        "qa1": UserFactory(username="qa1"),
        "qa2": UserFactory(username="qa2"),
        "sec": UserFactory(username="sec"),
    }
    # lead1 is also in QA: one person, two groups, but one approval.
    for name in ("qa1", "qa2", "lead1", "dev"):
        people[name].groups.add(qa)
    policy = ApprovalPolicy.objects.create(
        environment=path.prod, team=path.team, name="Prod: lead, QA, security"
    )
    ApprovalRule.objects.create(policy=policy, name="Team lead", role=Role.LEAD, order=1)
    ApprovalRule.objects.create(policy=policy, name="QA", group=qa, required_approvals=2, order=2)
    security = ApprovalRule.objects.create(policy=policy, name="Security", order=3)
    security.users.add(people["sec"])
    clients = {}
    for name, user in people.items():
        raw = token_issue(user=user, name="t", scopes=TokenScope.values)[1]
        clients[name] = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    release = BuiltReleaseFactory(service=path.service)
    succeeded_in(release, path.beta)
    return {"path": path, "policy": policy, "release": release, "api": clients, **people}


def _request(world) -> int:
    response = request(world["api"]["dev"], world["release"], "prod")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "awaiting_approval"
    return response.json()["id"]


def _decide(world, who, pk, verb="approve", **body):
    return decide(world["api"][who], pk, verb, **body)


def _rules(world, who, pk) -> dict:
    response = world["api"][who].get(f"/api/v1/deployments/{pk}/approvals")
    assert response.status_code == 200, response.content
    return {rule["name"]: rule for rule in response.json()["rules"]}


def test_each_approval_counts_for_one_rule_and_the_last_rule_met_starts_it(world):
    pk = _request(world)
    assert Deployment.objects.get(pk=pk).approval_policy == world["policy"]

    # lead1 is a lead and in QA: counted once, for the first unmet rule.
    first = _decide(world, "lead1", pk, comment="code looks fine")
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "awaiting_approval"
    assert first.json()["approvals"] == [
        {**first.json()["approvals"][0], "by": "lead1", "represented_as": "Team lead"}
    ]
    again = _decide(world, "lead1", pk, represented_as="QA")
    assert again.status_code == 409 and "each person counts once" in again.json()["detail"]

    rules = _rules(world, "qa1", pk)
    assert (rules["Team lead"]["met"], rules["QA"]["met"], rules["Security"]["met"]) == (
        True,
        False,
        False,
    )
    assert [a["by"] for a in rules["Team lead"]["approvals"]] == ["lead1"]
    # The requester (in QA too) does not count; lead1 already decided.
    assert rules["QA"]["may_approve"] == ["qa1", "qa2"]
    assert rules["Security"]["may_approve"] == ["sec"]

    wrong = _decide(world, "qa2", pk, represented_as="Security")
    assert wrong.status_code == 403 and "do not count for 'Security'" in wrong.json()["detail"]
    unknown = _decide(world, "qa2", pk, represented_as="Legal")
    assert (
        unknown.status_code == 400 and "'Team lead', 'QA', 'Security'" in unknown.json()["detail"]
    )
    stranger = _decide(world, "lead2", pk, represented_as="QA")
    assert stranger.status_code == 403

    assert _decide(world, "qa1", pk).json()["status"] == "awaiting_approval"
    assert _decide(world, "qa2", pk, represented_as="QA").json()["status"] == "awaiting_approval"
    assert _rules(world, "sec", pk)["QA"]["met"] is True
    last = _decide(world, "sec", pk, comment="no new dependencies")
    assert last.status_code == 200 and last.json()["status"] == "pending"
    assert [(a["by"], a["represented_as"]) for a in last.json()["approvals"]] == [
        ("lead1", "Team lead"),
        ("qa1", "QA"),
        ("qa2", "QA"),
        ("sec", "Security"),
    ]
    counted = AuditEvent.objects.filter(action="deployment.approval_counted", target_id=str(pk))
    assert [e.after["rule"] for e in counted.order_by("id")] == ["Team lead", "QA", "QA"]
    assert counted.order_by("id").last().after["still_missing"] == "Security 0/1"
    started = AuditEvent.objects.get(action="deployment.pending", target_id=str(pk))
    assert started.actor_name.startswith("sec")


def test_the_requester_counts_only_when_the_policy_says_so(world):
    pk = _request(world)
    own = _decide(world, "dev", pk)
    assert own.status_code == 403 and "other than the requester" in own.json()["detail"]
    world["policy"].requester_may_approve = True
    world["policy"].save()
    counted = _decide(world, "dev", pk)
    assert counted.status_code == 200, counted.content
    assert counted.json()["approvals"][0]["represented_as"] == "QA"


def test_a_rejection_ends_the_request(world):
    pk = _request(world)
    assert _decide(world, "qa1", pk).status_code == 200
    rejected = _decide(world, "sec", pk, verb="reject", comment="CVE-2026-1234 unpatched")
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "cancelled"
    assert "rejected by sec" in rejected.json()["status_reason"]
    late = _decide(world, "lead2", pk)
    assert late.status_code == 409 and "not awaiting approval" in late.json()["detail"]
    state = world["api"]["lead2"].get(f"/api/v1/deployments/{pk}/approvals").json()
    assert state["rejection"]["by"] == "sec" and state["met"] is False


def test_the_inbox_shows_outsiders_what_waits_for_them_and_where_it_stands(world):
    pk = _request(world)
    assert _decide(world, "lead1", pk).status_code == 200
    browser = Client()
    browser.force_login(world["qa1"])
    page = browser.get("/approvals/").content.decode()
    assert f"#{pk}" in page and "Team lead</strong> 1/1" in page and "QA</strong> 0/2" in page
    assert "approved by lead1" in page and "may still approve: qa1, qa2" in page
    assert 'name="represented_as"' in page
    # lead1 decided already: nothing waits for them; the requester never sees their own.
    for who in ("lead1", "dev"):
        other = Client()
        other.force_login(world[who])
        assert (
            f'deployment <a href="/deployments/{pk}/">'
            not in other.get("/approvals/").content.decode()
        )
    # qa1 approves from the inbox (a page they may not otherwise see: not in the team).
    browser.get("/approvals/")
    decided = browser.post(
        f"/deployments/{pk}/decide",
        {"decision": "approve", "comment": "tested", "represented_as": "QA"},
        follow=True,
    )
    assert "is counted; it waits for the policy" in decided.content.decode()
    vote = ApprovalVote.objects.get(deployment_id=pk, user=world["qa1"])
    assert (vote.represented_as, vote.comment) == ("QA", "tested")


def test_the_cli_shows_the_rules_and_approves_as_a_rule(world, live_server, tmp_path):
    pk = _request(world)
    raw = token_issue(user=world["qa1"], name="cli", scopes=TokenScope.values)[1]
    env = {"SLIPWAY_URL": live_server.url, "SLIPWAY_TOKEN": raw, "HOME": str(tmp_path)}
    runner = CliRunner()
    approved = runner.invoke(cli, ["approve", str(pk), "--as", "QA"], env=env)
    assert approved.exit_code == 0, approved.output
    assert "awaiting_approval (counted as QA)" in approved.output
    shown = runner.invoke(cli, ["approvals", str(pk)], env=env)
    assert "QA: 1/2 waiting — approved by qa1; may approve: lead1, qa2" in shown.output
    assert "Security: 0/1 waiting" in shown.output
