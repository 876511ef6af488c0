"""Evidence and the catalog from a terminal, against the live portal: `slipway evidence get`
saves the signed file, `slipway evidence verify` tells it from an altered copy (exit 1);
`slipway catalog sync --dry-run` shows what a repository's slipway.yaml would change, and
without it applies it (a real git daemon)."""

from __future__ import annotations

import json

import pytest

from devtools.git_server import GitServer
from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.catalog.models import (
    CatalogSource,
    ClusterEnvironment,
    Environment,
    NamespaceGrant,
    Service,
)
from tests.cli.test_cli import slipway
from tests.factories import (
    BuiltReleaseFactory,
    ClusterFactory,
    JenkinsServerFactory,
    TeamFactory,
    UserFactory,
    member,
    service_path,
    succeeded_in,
)
from tests.portal.test_services_as_code import FILE

pytestmark = pytest.mark.django_db(transaction=True)


def test_evidence_saved_then_verified_then_altered(live_server, tmp_path):
    path = service_path()
    release = BuiltReleaseFactory(service=path.service, ref="v4.0.0")
    succeeded_in(release, path.beta)
    viewer = member(path.team, "auditor", Role.VIEWER)
    token = token_issue(user=viewer, name="cli", scopes=[TokenScope.READ])[1]
    saved = tmp_path / "release.json"
    got = slipway(tmp_path, "--url", live_server.url, "evidence", "get", str(release.pk),
                  "-o", str(saved), token=token)  # fmt: skip
    assert f"evidence of release #{release.pk} saved in {saved}" in got.stderr
    assert json.loads(saved.read_text())["release"]["ref"] == "v4.0.0"

    valid = slipway(tmp_path, "--url", live_server.url, "evidence", "verify", str(saved),
                    token=token)  # fmt: skip
    assert valid.stdout.startswith("Valid: signed by audit key")
    altered = json.loads(saved.read_text())
    altered["build"]["digest"] = "sha256:" + "0" * 64  # another image than was built
    saved.write_text(json.dumps(altered))
    refused = slipway(tmp_path, "--url", live_server.url, "evidence", "verify", str(saved),
                      token=token, check=False)  # fmt: skip
    assert (refused.returncode, refused.stdout.strip()) == (
        1, "ALTERED: the signature does not match the content.",
    )  # fmt: skip
    saved.write_text("{not json")
    junk = slipway(tmp_path, "--url", live_server.url, "evidence", "verify", str(saved),
                   token=token, check=False)  # fmt: skip
    assert junk.returncode == 2 and "is not JSON" in junk.stderr


def test_a_platform_admin_previews_then_syncs_a_source(live_server, tmp_path):
    (tmp_path / "git").mkdir()
    git = GitServer(tmp_path / "git")
    try:
        team = TeamFactory(slug="shop", name="Shop")
        JenkinsServerFactory(name="main")
        cluster = ClusterFactory(slug="c1", name="c1")
        beta = Environment.objects.create(slug="beta", name="Beta", order=1)
        ClusterEnvironment.objects.create(cluster=cluster, environment=beta)
        NamespaceGrant.objects.create(cluster=cluster, team=team, pattern="shop-*")
        clone = git.repository("storefront")
        git.commit(clone, "declare", {"slipway.yaml": FILE.replace("REPLICAS", "2")})
        source = CatalogSource.objects.create(name="shop repos",
                                              repositories=git.url("storefront"))  # fmt: skip
        admin = UserFactory(username="platform", is_superuser=True, is_staff=True)
        token = token_issue(user=admin, name="cli", scopes=TokenScope.values)[1]
        cli = ("--url", live_server.url, "catalog")

        listed = slipway(tmp_path, *cli, "sources", token=token).stdout
        assert f"#{source.pk} shop repos: 1 repositories, last synced never" in listed
        preview = slipway(tmp_path, *cli, "sync", str(source.pk), "--dry-run", token=token)
        assert "shop repos: would change (dry run)" in preview.stdout
        assert "  create storefront (" in preview.stdout
        assert "+ beta on c1: shop-beta/storefront" in preview.stdout
        assert not Service.objects.filter(slug="storefront").exists()

        applied = slipway(tmp_path, *cli, "sync", str(source.pk), token=token)
        assert "shop repos: applied" in applied.stdout
        assert Service.objects.get(slug="storefront").default_values == {"replicaCount": 2}

        git.commit(clone, "typo", {"slipway.yaml": FILE.replace("team: shop", "teem: shop")})
        broken = slipway(tmp_path, *cli, "sync", str(source.pk), token=token, check=False)
        assert broken.returncode == 1
        assert "line 6: slipway.yaml: metadata.teem: unknown field" in broken.stdout

        developer = member(team, "dev", Role.DEVELOPER)
        theirs = token_issue(user=developer, name="cli", scopes=TokenScope.values)[1]
        denied = slipway(tmp_path, *cli, "sync", str(source.pk), token=theirs, check=False)
        assert denied.returncode == 2 and "403" in denied.stderr
    finally:
        git.stop()
