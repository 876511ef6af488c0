"""Release evidence an auditor keeps: assembled from Slipway's records (build, approvals,
checklist, verification, audit event ids and the chain head), signed with the audit key;
`manage.py verify_evidence` and the evidence page tell a saved copy from an altered one."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from releases.deployments import deployment_decide, deployment_start
from releases.gates import checklist_tick
from releases.models import Measurement, PromotionGate, VerificationRun
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped():
    """A release in Beta (verified, QA ticked) and approved for Prod by a lead."""
    path = service_path()
    dev, lead = member(path.team, "dev", Role.DEVELOPER), member(path.team, "lead", Role.LEAD)
    release = BuiltReleaseFactory(service=path.service, commit_sha="a1b2c3d4")
    in_beta = succeeded_in(release, path.beta)
    run = VerificationRun.objects.create(
        deployment=in_beta, release=release, environment=path.beta, service=path.service,
        status="successful", reason="error ratio: 3 of 3 successful",
    )  # fmt: skip
    Measurement.objects.create(run=run, metric_name="error ratio", sequence=1, query="q",
                               phase="successful", value=0.004)  # fmt: skip
    qa = PromotionGate.objects.create(environment=path.beta, name="QA sign-off", kind="checklist")
    checklist_tick(gate=qa, release=release, user=lead, actor=Actor.for_user(lead), note="ok")
    prod = deployment_start(
        release=release, environment=path.prod, actor=Actor.for_user(dev), user=dev,
        kind="promote",
    )  # fmt: skip
    deployment_decide(deployment=prod, user=lead, approve=True, actor=Actor.for_user(lead),
                      comment="checked Beta")  # fmt: skip
    token = token_issue(user=dev, name="audit", scopes=[TokenScope.READ])[1]
    return {"release": release, "prod": prod, "dev": dev,
            "api": APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")}  # fmt: skip


def test_the_evidence_names_what_was_built_who_approved_what_passed_and_the_audit(shipped):
    release, prod = shipped["release"], shipped["prod"]
    answer = shipped["api"].get(f"/api/v1/releases/{release.pk}/evidence")
    assert answer.status_code == 200
    evidence = answer.json()
    assert evidence["format"] == "slipway.release-evidence/1"
    assert (evidence["release"]["commit"], evidence["build"]["digest"]) == (
        "a1b2c3d4", release.image_digest,
    )  # fmt: skip
    [to_prod] = [d for d in evidence["deployments"] if d["environment"] == "prod"]
    assert to_prod["approval"] == {
        "approved": True, "by": "lead", "comment": "checked Beta",
        "at": to_prod["approval"]["at"],
    }  # fmt: skip
    assert to_prod["requested_by"] == "dev" and to_prod["id"] == prod.pk
    assert evidence["checklist"][0]["ticked_by"] == "lead"
    assert evidence["verifications"][0]["measurements"][0]["value"] == 0.004
    ids = [e["id"] for e in evidence["audit"]["events"]]
    expected = AuditEvent.objects.filter(target_id__in=[str(release.pk), str(prod.pk)]).filter(
        target_type__in=["releases.Release", "releases.Deployment"]
    )
    assert set(ids) >= set(
        expected.filter(target_type="releases.Deployment", target_id=str(prod.pk)).values_list(
            "id", flat=True
        )
    )
    assert evidence["audit"]["chain_head"]["id"] == AuditEvent.objects.latest("id").pk
    assert evidence["signature"]["algorithm"] == "HMAC-SHA256"


def test_a_saved_copy_verifies_and_an_altered_one_does_not(shipped, tmp_path, capsys):
    evidence = shipped["api"].get(f"/api/v1/releases/{shipped['release'].pk}/evidence").json()
    saved = tmp_path / "evidence.json"
    saved.write_text(json.dumps(evidence, indent=2))
    call_command("verify_evidence", str(saved))
    assert "Valid: signed by audit key" in capsys.readouterr().out

    altered = json.loads(saved.read_text())
    [to_prod] = [d for d in altered["deployments"] if d["environment"] == "prod"]
    to_prod["approval"]["by"] = "someone-else"
    saved.write_text(json.dumps(altered))
    with pytest.raises(CommandError, match="ALTERED: the signature does not match"):
        call_command("verify_evidence", str(saved))
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(CommandError, match="is not JSON"):
        call_command("verify_evidence", str(tmp_path / "junk.json"))
    with override_settings(SLIPWAY_AUDIT_KEYS=["another-key-entirely-0123456789abcdef"]):
        saved.write_text(json.dumps(evidence))
        with pytest.raises(CommandError, match="which this Slipway does not hold"):
            call_command("verify_evidence", str(saved))


def test_the_api_checks_a_copy_with_a_read_token(shipped):
    api = shipped["api"]  # a read-only token: a check changes nothing
    evidence = api.get(f"/api/v1/releases/{shipped['release'].pk}/evidence").json()
    checked = api.post("/api/v1/evidence/verify", evidence, format="json")
    assert checked.status_code == 200, checked.content
    assert checked.json()["valid"] is True
    assert checked.json()["message"].startswith("Valid: signed by audit key")
    evidence["release"]["ref"] = "v9.9.9"
    altered = api.post("/api/v1/evidence/verify", evidence, format="json").json()
    assert altered == {"valid": False,
                       "message": "ALTERED: the signature does not match the content."}  # fmt: skip
    not_an_object = api.post("/api/v1/evidence/verify", [evidence], format="json")
    assert not_an_object.status_code == 400


def test_the_pages_print_it_offer_the_file_and_check_a_copy(client, shipped):
    release = shipped["release"]
    client.force_login(shipped["dev"])
    page = client.get(f"/releases/{release.pk}/evidence").content.decode()
    assert release.image_digest in page and "approved by lead as Team lead: “checked Beta”" in page
    download = client.get(f"/releases/{release.pk}/evidence.json")
    assert download["Content-Disposition"] == (
        f'attachment; filename="release-{release.pk}-evidence.json"'
    )
    evidence = json.loads(download.content)
    good = client.post("/evidence/verify", {"text": json.dumps(evidence)})
    assert good.status_code == 200 and "Valid: signed by audit key" in good.content.decode()
    evidence["build"]["digest"] = "sha256:" + "0" * 64
    bad = client.post("/evidence/verify", {"text": json.dumps(evidence)})
    assert bad.status_code == 400 and "ALTERED" in bad.content.decode()
    assert client.post("/evidence/verify", {"text": "nope"}).status_code == 400
    assert "Release evidence" in client.get(f"/releases/{release.pk}/").content.decode()
