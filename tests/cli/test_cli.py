"""The `slipway` command against a live portal: a real worker, the Jenkins emulator and
the local cluster behind it. Run as a user runs it: a subprocess with its own config home."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from tests.factories import JenkinsServerFactory, member, service_path
from tests.support.jenkins import TOKEN, job_config

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


@pytest.fixture
def shop(emulator, kube_cluster, request):
    emulator.control("POST", "jobs", job_config("demo/app", log=["compiling", "linking"]))
    path = service_path(
        slug="shop",
        name="Shop",
        # Its own namespaces: a release another test's target owns is refused to this one
        namespace_suffix=f"-cli-{hashlib.sha1(request.node.name.encode()).hexdigest()[:8]}",
        jenkins_server=JenkinsServerFactory(url=emulator.url, api_token=TOKEN),
        cluster={"kubeconfig": kube_cluster.kubeconfig()},
    )
    return path


def slipway(
    home, *args, token: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("SLIPWAY_TOKEN", None)
    env.pop("SLIPWAY_URL", None)
    if token:
        env["SLIPWAY_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-m", "slipway_cli", *args],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"slipway {args} exited {result.returncode}:\n{result.stderr}")
    return result


def test_the_whole_flow_from_the_command_line(live_server, shop, tmp_path):
    dev = member(shop.team, "dev", Role.DEVELOPER)
    lead = member(shop.team, "lead", Role.LEAD)
    dev_token = token_issue(user=dev, name="cli", scopes=TokenScope.values)[1]
    lead_token = token_issue(user=lead, name="cli", scopes=TokenScope.values)[1]

    login = slipway(tmp_path, "login", "--url", live_server.url, "--token", dev_token)
    assert "Logged in" in login.stdout and "as dev" in login.stdout
    config = tmp_path / "slipway" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    built = slipway(
        tmp_path, "--json", "build", "shop", "--ref", "v1", "--deploy-to", "beta", "--follow"
    )
    release = json.loads(built.stdout)
    assert release["status"] == "built"
    assert "linking" in built.stderr  # the log streamed
    assert [d["status"] for d in release["deployments"]] == ["succeeded"]

    promoted = json.loads(
        slipway(tmp_path, "--json", "promote", str(release["id"]), "--to", "prod").stdout
    )
    assert promoted["status"] == "awaiting_approval"

    approved = slipway(
        tmp_path, "--json", "approve", str(promoted["id"]), "--comment", "ok", token=lead_token
    )
    assert json.loads(approved.stdout)["status"] == "pending"

    from tests.support.waiting import wait_until

    def prod_running():
        detail = json.loads(slipway(tmp_path, "--json", "status", "shop").stdout)
        envs = {e["environment"]: e for e in detail["environments"]}
        return envs if envs["prod"]["running"] else None

    envs = wait_until(prod_running, 90, "Prod to run the release")
    assert (
        envs["beta"]["running"]["digest"]
        == envs["prod"]["running"]["digest"]
        == release["image_digest"]
    )
    text = slipway(tmp_path, "status", "shop").stdout
    assert text.count(release["image_digest"]) == 2

    services = json.loads(slipway(tmp_path, "--json", "services").stdout)
    assert [s["slug"] for s in services] == ["shop"]

    # A second release reaches Prod; the lead rolls Prod back to the first one.
    second = json.loads(
        slipway(
            tmp_path, "--json", "build", "shop", "--ref", "v2", "--deploy-to", "beta", "--follow"
        ).stdout
    )
    waiting = json.loads(
        slipway(tmp_path, "--json", "promote", str(second["id"]), "--to", "prod").stdout
    )
    slipway(tmp_path, "approve", str(waiting["id"]), token=lead_token)
    wait_until(
        lambda: prod_running()["prod"]["running"]["release"] == second["id"], 90, "Prod to run v2"
    )
    back = slipway(
        tmp_path, "--json", "rollback", "shop", "--env", "prod", "--wait", token=lead_token
    )
    assert json.loads(back.stdout)["status"] == "succeeded", back.stderr
    assert json.loads(back.stdout)["release"] == release["id"]
    assert prod_running()["prod"]["running"]["release"] == release["id"]

    history = json.loads(slipway(tmp_path, "--json", "history", "--service", "shop").stdout)
    assert [r["id"] for r in history] == [second["id"], release["id"]]


def test_a_failing_build_exits_non_zero(live_server, shop, emulator, tmp_path):
    emulator.control("POST", "jobs", job_config("demo/app", result="FAILURE", log=["boom"]))
    dev = member(shop.team, "dev", Role.DEVELOPER)
    token = token_issue(user=dev, name="cli", scopes=TokenScope.values)[1]
    slipway(tmp_path, "login", "--url", live_server.url, "--token", token)
    failed = slipway(tmp_path, "--json", "build", "shop", "--ref", "main", "--follow", check=False)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["status"] == "failed"

    refused = slipway(tmp_path, "build", "nope", "--ref", "main", check=False)
    assert refused.returncode == 2 and "HTTP 404" in refused.stderr


def test_without_login_it_says_what_to_do(tmp_path):
    result = slipway(tmp_path, "services", check=False)
    assert result.returncode == 2
    assert "Not logged in: run `slipway login`" in result.stderr
