"""Verification from a terminal: a lead lists a release's runs with their values and
decides (skip, roll back) through `slipway verification`, against the live portal."""

from __future__ import annotations

import json

import pytest

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from releases.models import AnalysisMetric, AnalysisTemplate, Deployment
from releases.verifying import verification_begin, verification_step
from tests.cli.test_cli import slipway
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_lead_lists_runs_and_rolls_back_an_inconclusive_one(live_server, prometheus, tmp_path):
    path = service_path()
    template = AnalysisTemplate.objects.create(
        environment=path.beta, name="errors", prometheus_url=prometheus.url
    )
    AnalysisMetric.objects.create(
        template=template, name="error ratio", count=1, query='sum(nothing{release="{release}"})',
        success_condition="result < 0.05",
    )  # fmt: skip
    lead = member(path.team, "lead", Role.LEAD)
    token = token_issue(user=lead, name="cli", scopes=TokenScope.values)[1]
    cli = ("--url", live_server.url, "--json")
    first, second = (BuiltReleaseFactory(service=path.service) for _ in range(2))

    run_first = verification_begin(succeeded_in(first, path.beta))
    skipped = slipway(tmp_path, *cli, "verification", "decide", str(run_first.pk), "skip",
                      "--reason", "verified by hand", token=token)  # fmt: skip
    assert json.loads(skipped.stdout)["verified"] is True

    run_second = verification_begin(succeeded_in(second, path.beta))
    assert verification_step(run_second) is None  # no data: inconclusive at once
    listed = slipway(tmp_path, "--url", live_server.url, "verification", "list", str(second.pk),
                     token=token).stdout  # fmt: skip
    assert f"#{run_second.pk}" in listed and "inconclusive" in listed
    assert "error ratio: — (error)" in listed

    refused = slipway(tmp_path, *cli, "verification", "decide", str(run_second.pk), "continue",
                      "--reason", "", token=token, check=False)  # fmt: skip
    assert refused.returncode == 2 and "reason" in refused.stderr
    judged = slipway(tmp_path, *cli, "verification", "decide", str(run_second.pk), "rollback",
                     "--reason", "error budget unclear", token=token)  # fmt: skip
    answer = json.loads(judged.stdout)
    assert (answer["judgement"], answer["verified"]) == ("rollback", False)
    rollback = Deployment.objects.get(pk=answer["rollback"])
    assert (rollback.kind, rollback.release_id) == ("rollback", first.pk)
