"""A script's view of Slipway for e2e tests: token clients on the REST API, and helpers
that build, request, approve and wait as CI would."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from releases.models import Deployment, Release
from tests.factories import member
from tests.support.deploy import finished
from tests.support.jenkins import TOKEN
from tests.support.releases import wait_for_release


@pytest.fixture
def api(world, emulator):
    """Token clients for a developer and two leads; the service builds on the emulator."""
    jenkins = world["jenkins"]
    jenkins.url, jenkins.username, jenkins.api_token = emulator.url, "slipway", TOKEN
    jenkins.save()
    clients = {}
    for name, role in (("ci", Role.DEVELOPER), ("lead", Role.LEAD), ("lead2", Role.LEAD)):
        _, raw = token_issue(
            user=member(world["service"].team, name, role), name="script", scopes=TokenScope.values
        )
        clients[name] = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return clients


def build(api, ref: str, deploy_to: str = "") -> Release:
    body = {"ref": ref, **({"deploy_to": deploy_to} if deploy_to else {})}
    response = api["ci"].post("/api/v1/services/app/releases/", body, format="json")
    assert response.status_code == 201, response.json()
    release = wait_for_release(Release.objects.get(pk=response.json()["id"]))
    assert release.status == "built", release.status_reason
    return release


def request(client, release: Release, environment: str, kind: str = "promote", **body):
    """Ask for `release` in `environment` (`body`: emergency_reason, gate_override …)."""
    return client.post(
        f"/api/v1/releases/{release.pk}/deployments/",
        {"environment": environment, "kind": kind, **body},
        format="json",
    )


def decide(client, deployment_id: int, verb: str = "approve", **body):
    """Approve (or `verb="reject"`) a request; `body`: comment, represented_as."""
    return client.post(f"/api/v1/deployments/{deployment_id}/{verb}", body, format="json")


def deployed(client, release, environment, kind="deploy") -> Deployment:
    response = request(client, release, environment, kind)
    assert response.status_code == 201, response.json()
    deployment = finished(Deployment.objects.get(pk=response.json()["id"]))
    assert deployment.status == "succeeded", deployment.status_reason
    return deployment


def approved(api, deployment_id: int, by: str = "lead2") -> Deployment:
    response = decide(api[by], deployment_id)
    assert response.status_code == 200, response.json()
    deployment = finished(Deployment.objects.get(pk=deployment_id))
    assert deployment.status == "succeeded", deployment.status_reason
    return deployment
