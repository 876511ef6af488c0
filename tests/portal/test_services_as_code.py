"""Services as code through a real Git server (git daemon): a repository's slipway.yaml
creates, changes and orphans a service; invalid files and forbidden fields are refused per
repository with the line; every change audited with its commit."""

import textwrap

import pytest
from rest_framework.test import APIClient

from devtools.git_server import GitServer
from portal.access.choices import TokenScope
from portal.access.tokens import token_issue
from portal.audit.actions import Catalog
from portal.audit.chain import Actor
from portal.audit.models import AuditEvent
from portal.catalog.as_code import source_sync
from portal.catalog.models import (
    CatalogSource,
    ClusterEnvironment,
    DeploymentTarget,
    Environment,
    NamespaceGrant,
    Service,
)
from releases.builds import release_create
from releases.errors import ReleaseRefused
from tests.factories import ClusterFactory, JenkinsServerFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

FILE = textwrap.dedent(
    """\
    apiVersion: slipway.dev/v1
    kind: Service
    metadata:
      name: storefront
      title: Storefront
      team: shop
    spec:
      chart: {ref: ./charts/demo, version: 0.1.0}
      image: {repository: registry.local/shop/storefront}
      build: {backend: jenkins, server: main, job: shop/storefront}
      values: {replicaCount: REPLICAS}
      targets:
        - {environment: beta, cluster: c1, namespace: shop-beta}
    """
)
PROD_TARGET = "    - {environment: prod, cluster: c1, namespace: shop-prod, values: {tier: gold}}\n"


@pytest.fixture
def git(tmp_path):
    server = GitServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def world(git):
    team = TeamFactory(slug="shop", name="Shop")
    JenkinsServerFactory(name="main")
    cluster = ClusterFactory(slug="c1", name="c1")
    beta = Environment.objects.create(slug="beta", name="Beta", order=1)
    prod = Environment.objects.create(slug="prod", name="Prod", order=2, protected=True)
    for environment in (beta, prod):
        ClusterEnvironment.objects.create(cluster=cluster, environment=environment)
    NamespaceGrant.objects.create(cluster=cluster, team=team, pattern="shop-*")
    clone = git.repository("storefront")
    source = CatalogSource.objects.create(name="shop repos", repositories=git.url("storefront"))
    return {"git": git, "clone": clone, "source": source, "team": team}


def _push(world, text, message="slipway.yaml") -> str:
    return world["git"].commit(world["clone"], message, {"slipway.yaml": text})


def test_a_file_creates_then_changes_a_service_dry_run_first(world):
    first = _push(world, FILE.replace("REPLICAS", "1"))
    preview = source_sync(world["source"], dry_run=True)
    assert not Service.objects.exists()  # a dry run changes nothing
    [change] = preview.changes
    assert (change.action, change.service, change.commit) == ("create", "storefront", first)
    assert change.targets == ["+ beta on c1: shop-beta/storefront"]

    applied = source_sync(world["source"])
    assert applied.applied and applied.errors == []
    service = Service.objects.get(slug="storefront")
    assert (service.name, service.team.slug, service.jenkins_job) == (
        "Storefront", "shop", "shop/storefront",
    )  # fmt: skip
    assert (service.catalog_commit, service.default_values) == (first, {"replicaCount": 1})
    [target] = service.targets.all()
    assert (target.namespace, target.helm_release_name) == ("shop-beta", "storefront")
    declared = AuditEvent.objects.get(action=Catalog.SERVICE_DECLARED)
    assert declared.after["commit"] == first and declared.actor_name == "catalog sync"
    assert declared.after["repository"] == world["git"].url("storefront")

    second = _push(world, FILE.replace("REPLICAS", "3") + PROD_TARGET, "three replicas, prod")
    preview = source_sync(world["source"], dry_run=True).as_dict()
    [change] = preview["changes"]
    assert change["action"] == "update"
    assert change["fields"] == {"default_values": [{"replicaCount": 1}, {"replicaCount": 3}]}
    assert change["targets"] == ["+ prod on c1: shop-prod/storefront"]
    source_sync(world["source"])
    service.refresh_from_db()
    assert service.default_values == {"replicaCount": 3} and service.catalog_commit == second
    prod = DeploymentTarget.objects.get(service=service, environment__slug="prod")
    assert prod.values == {"tier": "gold"}
    changed = AuditEvent.objects.get(action=Catalog.SERVICE_REDECLARED)
    assert changed.after["commit"] == second
    # Nothing new: nothing changes, nothing audited.
    assert source_sync(world["source"]).as_dict()["unchanged"] == ["storefront"]
    assert AuditEvent.objects.filter(action=Catalog.SERVICE_REDECLARED).count() == 1


def test_invalid_files_and_forbidden_fields_are_refused_with_the_line(world):
    _push(world, FILE.replace("REPLICAS", "1"))
    source_sync(world["source"])
    broken = FILE.replace("REPLICAS", "1").replace("  team: shop\n", "  team: shop\n  owner: x\n")
    _push(world, broken)
    plan = source_sync(world["source"])
    [report] = plan.repositories
    assert report.line == 7 and "metadata.owner: unknown field" in report.error
    assert plan.changes == []  # neither changed nor orphaned
    assert not Service.objects.get(slug="storefront").orphaned_at

    outside = FILE.replace("REPLICAS", "1").replace("shop-beta", "payments-beta")
    _push(world, outside)
    [report] = source_sync(world["source"]).repositories
    assert report.line == 13
    assert "Shop may not deploy to namespace payments-beta on cluster c1" in report.error
    assert Service.objects.get(slug="storefront").targets.get().namespace == "shop-beta"

    _push(world, "apiVersion: [unclosed\n")
    [report] = source_sync(world["source"]).repositories
    assert report.error.startswith("slipway.yaml: not valid YAML") and report.line == 2


def test_a_file_that_disappears_orphans_its_service_until_it_is_back(world):
    _push(world, FILE.replace("REPLICAS", "1"))
    source_sync(world["source"])
    gone = world["git"].commit(world["clone"], "moved to another repo", {"slipway.yaml": None})
    [change] = source_sync(world["source"], dry_run=True).changes
    assert (change.action, change.service) == ("orphan", "storefront")
    source_sync(world["source"])
    service = Service.objects.get(slug="storefront")
    assert service.orphaned_at is not None and service.targets.count() == 1  # history kept
    assert AuditEvent.objects.filter(action=Catalog.SERVICE_ORPHANED).exists()
    with pytest.raises(ReleaseRefused, match=r"Storefront is orphaned: its slipway\.yaml is gone"):
        release_create(service=service, ref="main", actor=Actor.system("test"))
    assert gone
    _push(world, FILE.replace("REPLICAS", "1"), "back")
    [change] = source_sync(world["source"]).changes
    assert change.action == "restore"
    assert Service.objects.get(slug="storefront").orphaned_at is None


def test_a_service_it_does_not_own_and_a_backstage_pointer(world):
    world["git"].commit(
        world["clone"],
        "backstage",
        {
            "slipway.yaml": FILE.replace("REPLICAS", "1"),
            "catalog-info.yaml": textwrap.dedent(
                """\
                apiVersion: backstage.io/v1alpha1
                kind: Component
                metadata:
                  name: storefront-web
                  annotations:
                    slipway.dev/service: storefront
                spec: {type: service, owner: group:shop, lifecycle: production}
                """
            ),
        },
    )
    source_sync(world["source"])
    assert (
        Service.objects.get(slug="storefront").backstage_entity
        == "component:default/storefront-web"
    )
    other = CatalogSource.objects.create(
        name="someone else", repositories=world["source"].repositories
    )
    [report] = source_sync(other).repositories
    assert "exists and is declared by shop repos, not this source" in report.error


def test_a_file_may_choose_drone_to_build(world):
    from portal.catalog.models import DroneServer

    drone = DroneServer.objects.create(name="drone", url="https://drone.example.com", token="t")
    text = FILE.replace("REPLICAS", "1").replace(
        "build: {backend: jenkins, server: main, job: shop/storefront}",
        "build: {backend: drone, server: drone, repository: shop/storefront}",
    )
    _push(world, text)
    source_sync(world["source"])
    service = Service.objects.get(slug="storefront")
    assert (service.build_backend, service.drone_server, service.drone_repository) == (
        "drone", drone, "shop/storefront",
    )  # fmt: skip
    assert service.jenkins_server is None
    _push(world, text.replace("repository: shop/storefront", "job: shop/storefront"))
    [report] = source_sync(world["source"]).repositories
    assert report.line == 10 and "spec.build: repository is required for drone" in report.error


def _api(user) -> APIClient:
    raw = token_issue(user=user, name="t", scopes=TokenScope.values)[1]
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_platform_admins_preview_and_sync_from_the_api_and_the_page(world, client):
    commit = _push(world, FILE.replace("REPLICAS", "1"))
    admin = UserFactory(username="platform", is_superuser=True, is_staff=True)
    api = _api(admin)
    url = f"/api/v1/catalog/sources/{world['source'].pk}/sync"
    preview = api.post(url, {"dry_run": True}, format="json").json()
    assert preview["applied"] is False and preview["changes"][0]["action"] == "create"
    assert preview["repositories"][0]["commit"] == commit
    assert not Service.objects.exists()

    client.force_login(admin)
    page = client.post(f"/catalog/{world['source'].pk}/sync", {"dry_run": "1"})
    assert "Preview of shop repos: nothing changed yet" in page.content.decode()
    assert "+ beta on c1: shop-beta/storefront" in page.content.decode()
    client.post(f"/catalog/{world['source'].pk}/sync", {})
    assert Service.objects.filter(slug="storefront").exists()
    listed = api.get("/api/v1/catalog/sources/").json()
    assert listed[0]["last_report"]["repositories"][0]["service"] == "storefront"

    developer = UserFactory(username="dev")
    refused = _api(developer).post(url, {}, format="json")
    assert refused.status_code == 403


def test_the_push_hook_wants_the_sources_token(world, client):
    world["source"].webhook_secret = "push-secret-1"
    world["source"].save()
    hook = f"/hooks/catalog/{world['source'].pk}"
    assert client.post(f"{hook}?token=wrong").status_code == 403
    assert client.post(hook).status_code == 403
    assert client.post("/hooks/catalog/999999?token=x").status_code == 404


def test_variables_are_values_or_references_to_the_environments_secrets(world):
    from portal.catalog.models import EnvironmentVariable

    beta = Environment.objects.get(slug="beta")
    EnvironmentVariable.objects.create(
        environment=beta, name="SHOP_DB_PASSWORD", is_secret=True, secret_value="s3cr3t-db"
    )
    text = FILE.replace("REPLICAS", "1").replace(
        "namespace: shop-beta}",
        "namespace: shop-beta, variables: {LOG_LEVEL: debug, "
        "DB_PASSWORD: {secret: SHOP_DB_PASSWORD}}}",
    )
    _push(world, text)
    source_sync(world["source"])
    target = DeploymentTarget.objects.get(service__slug="storefront")
    kept = {v.name: (v.value, v.is_secret, v.secret_value.reveal()) for v in target.variables.all()}
    assert kept == {"LOG_LEVEL": ("debug", False, ""), "DB_PASSWORD": ("", True, "s3cr3t-db")}
    changed = AuditEvent.objects.get(action=Catalog.TARGET_CREATE)
    assert changed.after["variables"] == ["DB_PASSWORD", "LOG_LEVEL"]
    assert "s3cr3t-db" not in str(changed.after)  # names only, never values

    _push(world, text.replace("{secret: SHOP_DB_PASSWORD}", "{secret: NOPE}"))
    [report] = source_sync(world["source"]).repositories
    assert report.line == 13 and "Beta keeps no secret variable NOPE" in report.error
    _push(world, text.replace("LOG_LEVEL: debug, ", ""))
    source_sync(world["source"])
    assert sorted(target.variables.values_list("name", flat=True)) == ["DB_PASSWORD"]


VERIFICATION = """\
  verification:
    - environment: beta
      prometheus: http://prometheus.monitoring:9090
      metrics:
        - name: error-rate
          query: 'sum(rate(http_requests_total{release="{release}",code=~"5.."}[1m]))'
          interval: 30
          count: COUNT
          successCondition: result < 0.05
          failureCondition: result >= 0.2
"""


def test_the_file_declares_the_services_verification(world):
    from releases.models import AnalysisTemplate

    beta = Environment.objects.get(slug="beta")
    service_text = FILE.replace("REPLICAS", "1")
    _push(world, service_text + VERIFICATION.replace("COUNT", "3"))
    [change] = source_sync(world["source"], dry_run=True).changes
    assert "+ verification in beta: 1 metric(s)" in change.targets
    source_sync(world["source"])
    service = Service.objects.get(slug="storefront")
    AnalysisTemplate.objects.create(environment=beta, service=service, name="by hand",
                                    prometheus_url="http://p:9090")  # fmt: skip
    template = AnalysisTemplate.objects.get(service=service, name="slipway.yaml")
    [metric] = template.metrics.all()
    assert (metric.name, metric.interval_seconds, metric.count, metric.success_condition) == (
        "error-rate", 30, 3, "result < 0.05",
    )  # fmt: skip

    _push(world, service_text + VERIFICATION.replace("COUNT", "5"))
    [change] = source_sync(world["source"]).changes
    assert change.targets == ["~ verification in beta"]
    assert template.metrics.get().count == 5

    bad = VERIFICATION.replace("COUNT", "5").replace("result < 0.05", "result <> banana")
    _push(world, service_text + bad)
    [report] = source_sync(world["source"]).repositories
    assert report.line == 22 and "verification: error-rate:" in report.error
    assert template.metrics.get().count == 5  # unchanged

    _push(world, service_text)
    source_sync(world["source"])
    names = set(AnalysisTemplate.objects.filter(service=service).values_list("name", flat=True))
    assert names == {"by hand"}  # the file's went with it; the admin's stays


GATES = """\
  gates:
    - {environment: beta, name: soak, kind: soak, minutes: MINUTES}
    - {environment: beta, name: QA sign-off, kind: checklist}
    - environment: beta
      name: error ratio
      kind: prometheus
      prometheus: http://prometheus.monitoring:9090
      query: 'sum(rate(http_requests_total{app="{service}",code=~"5.."}[{window}]))'
      max: 0.01
      window: 15
"""


def test_the_file_adds_promotion_gates_for_its_service_only(world):
    from releases.errors import ReleaseRefused as Refused
    from releases.gates import checklist_tick, gates_check
    from releases.models import ChecklistTick, PromotionGate
    from tests.factories import BuiltReleaseFactory, ServiceFactory, member, succeeded_in

    beta = Environment.objects.get(slug="beta")
    prod = Environment.objects.get(slug="prod")
    everyone = PromotionGate.objects.create(environment=beta, name="smoke", kind="checklist")
    service_text = FILE.replace("REPLICAS", "1") + PROD_TARGET
    _push(world, service_text + GATES.replace("MINUTES", "60"))
    [change] = source_sync(world["source"], dry_run=True).changes
    assert [t for t in change.targets if "gate" in t] == [
        "+ gate soak (soak) in beta", "+ gate QA sign-off (checklist) in beta",
        "+ gate error ratio (prometheus) in beta",
    ]  # fmt: skip
    assert not PromotionGate.objects.filter(service__isnull=False).exists()  # a dry run
    source_sync(world["source"])
    service = Service.objects.get(slug="storefront")
    ratio = PromotionGate.objects.get(service=service, name="error ratio")
    assert (ratio.environment, ratio.kind, ratio.max_value, ratio.min_value) == (
        beta, "prometheus", 0.01, None,
    )  # fmt: skip
    assert ratio.soak_minutes == 15  # the query's {window}
    event = AuditEvent.objects.filter(action=Catalog.SERVICE_DECLARED).latest("id")
    assert "+ gate soak (soak) in beta" in event.after["targets"]

    # Promoting storefront out of Beta meets the environment's gate and its own;
    # another service leaving Beta only the environment's.
    release = BuiltReleaseFactory(service=service)
    succeeded_in(release, beta)
    checked = {v.gate.name: v for v in gates_check(release=release, environment=prod)}
    assert set(checked) == {"smoke", "soak", "QA sign-off", "error ratio"}
    assert not checked["soak"].passed and "of 60" in checked["soak"].detail
    other = ServiceFactory(slug="other", team=world["team"])
    cluster = service.targets.first().cluster
    for environment in (beta, prod):
        DeploymentTarget.objects.create(
            service=other, environment=environment, cluster=cluster,
            namespace=f"shop-{environment.slug}", helm_release_name="other",
        )  # fmt: skip
    theirs = BuiltReleaseFactory(service=other)
    succeeded_in(theirs, beta)
    assert [v.gate.name for v in gates_check(release=theirs, environment=prod)] == ["smoke"]
    lead = member(world["team"], "lead", "lead")
    qa = PromotionGate.objects.get(service=service, name="QA sign-off")
    with pytest.raises(Refused, match="QA sign-off is a gate of Storefront"):
        checklist_tick(gate=qa, release=theirs, user=lead, actor=Actor.system("t"))
    checklist_tick(gate=qa, release=release, user=lead, actor=Actor.system("t"))

    # Changed, then taken out: disabled, never deleted (the tick stays in the evidence).
    _push(
        world,
        service_text
        + GATES.replace("MINUTES", "90").replace(
            "    - {environment: beta, name: QA sign-off, kind: checklist}\n", ""
        ),
    )
    [change] = source_sync(world["source"]).changes
    assert [t for t in change.targets if "gate" in t] == [
        "~ gate soak in beta",
        "- gate QA sign-off in beta",
    ]
    qa.refresh_from_db()
    assert not qa.enabled and ChecklistTick.objects.filter(gate=qa, release=release).exists()
    assert PromotionGate.objects.get(service=service, name="soak").soak_minutes == 90
    checked = {v.gate.name for v in gates_check(release=release, environment=prod)}
    assert checked == {"smoke", "soak", "error ratio"}
    everyone.refresh_from_db()
    assert everyone.enabled  # the environment's own gate is never the file's to touch

    # What the file may not say, with its line.
    for bad, line, said in [
        (GATES.replace("kind: soak", "kind: vibes"), 16, "kind must be one of soak, prometheus"),
        (GATES.replace("      max: 0.01\n", ""), 18, "give min, max or both"),
        (GATES.replace("minutes: MINUTES", "minutes: 0"), 16, "minutes: a whole number"),
        (
            GATES.replace("environment: beta, name: soak", "environment: qa, name: soak"),
            16,
            "gates: no environment qa",
        ),
    ]:
        _push(world, service_text + bad.replace("MINUTES", "90"))
        [report] = source_sync(world["source"]).repositories
        assert (report.line, said in report.error) == (line, True), report
    assert PromotionGate.objects.get(service=service, name="soak").soak_minutes == 90


def test_the_demos_ledger_is_declared_in_its_repository(git):
    """What `make run` serves: the seeded repository's slipway.yaml makes Ledger, built by
    Drone, with its targets and its own gate, on the demo's first catalog sync."""
    from pathlib import Path

    from devtools import demo_catalog
    from releases.demo import DEMO_CATALOG_SOURCE, demo_load
    from releases.models import PromotionGate

    chart = Path(__file__).resolve().parents[2] / "charts" / "demo-service"
    assert demo_catalog.seed(git.root, chart)
    assert not demo_catalog.seed(git.root, chart)  # once: what was pushed since stays
    demo_load(catalog_url=git.url(demo_catalog.REPOSITORY))
    source = CatalogSource.objects.get(name=DEMO_CATALOG_SOURCE)
    plan = source_sync(source)
    assert [r.error for r in plan.repositories] == [""]
    ledger = Service.objects.get(slug="ledger")
    assert (ledger.build_backend, ledger.drone_repository, ledger.chart) == (
        "drone", "demo/ledger", str(chart),
    )  # fmt: skip
    assert sorted(t.namespace for t in ledger.targets.all()) == ["ledger-beta", "ledger-prod"]
    assert PromotionGate.objects.get(service=ledger).name == "Finance sign-off"
