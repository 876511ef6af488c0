"""Who may do what, for every page and API endpoint, from the URL configuration itself:
each named URL needs an entry here, so a new endpoint without one fails this test.

Roles: anonymous, outsider (signed in, in no team), viewer, developer, lead, admin (of
the service's team). API calls use a token with every scope, pages a session.
"""

from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from notifications.models import Channel
from portal.access.choices import TokenScope
from portal.access.models import ApiToken, Membership
from portal.access.tokens import token_issue
from portal.audit.chain import Actor
from portal.catalog.models import CatalogSource, DeploymentTarget, Environment, Freeze
from releases import preview
from releases.deployments import deployment_start
from releases.models import (
    ChecklistTick,
    Deployment,
    PromotionGate,
    Release,
    ReleaseTrain,
    VerificationRun,
)
from releases.trains import train_create
from tests.factories import (
    BuiltReleaseFactory,
    ServiceFactory,
    TeamFactory,
    UserFactory,
    allow,
    member,
    service_path,
    succeeded_in,
)

pytestmark = pytest.mark.django_db
ROLES = ("anonymous", "outsider", "viewer", "developer", "lead", "admin")
# Not the portal's to police: Django's own admin (staff only, its own checks).
EXCLUDED_NAMESPACES = {"admin"}


def statuses(anonymous, outsider, viewer, developer, lead, admin) -> dict[str, int]:
    return dict(zip(ROLES, (anonymous, outsider, viewer, developer, lead, admin), strict=True))


READ_API = statuses(401, 200, 200, 200, 200, 200)
TEAM_API = statuses(401, 404, 200, 200, 200, 200)
READ_PAGE = statuses(302, 200, 200, 200, 200, 200)
TEAM_PAGE = statuses(302, 404, 200, 200, 200, 200)
PUBLIC = statuses(200, 200, 200, 200, 200, 200)
DEVELOPER_API = statuses(401, 404, 403, 201, 201, 201)
DEVELOPER_PAGE = statuses(302, 404, 403, 302, 302, 302)
ADMIN_PAGE = statuses(302, 404, 403, 403, 403, 302)
LEAD_PAGE = statuses(302, 404, 403, 403, 302, 302)

# name: (method, path arguments, body, expected per role)
MATRIX = {
    # -- pages -------------------------------------------------------------------------
    "healthz": ("get", {}, None, PUBLIC),
    # Jenkins's Notification plugin: no session or token, a per-server secret in the URL
    # (tests/releases/test_jenkins_notifications.py has the secret's checks).
    "jenkins-hook": (
        "post",
        {"name": "no-such-jenkins"},
        {},
        statuses(404, 404, 404, 404, 404, 404),
    ),
    "readyz": ("get", {}, None, PUBLIC),
    # From a loopback address, which SLIPWAY_METRICS_ALLOW lets in (tests/portal/test_ops.py
    # shows the token and a refused address).
    "metrics": ("get", {}, None, PUBLIC),
    "login": ("get", {}, None, PUBLIC),
    "logout": ("post", {}, None, statuses(302, 302, 302, 302, 302, 302)),
    "home": ("get", {}, None, READ_PAGE),
    "approvals": ("get", {}, None, READ_PAGE),
    "approvals-count": ("get", {}, None, READ_PAGE),
    # The event stream: signed out, refused; signed in, a bad channel is a 400 (a stream
    # that opens would never end under this test's WSGI client: who may follow which
    # channel is tests/portal/test_live_events.py, over the ASGI server).
    "live-events": ("get", {"?": "channel=nope"}, None, statuses(403, 400, 400, 400, 400, 400)),
    "history": ("get", {}, None, READ_PAGE),
    "insights": ("get", {}, None, READ_PAGE),
    "release-gates-check": ("post", {"pk": "release"}, None, DEVELOPER_PAGE),
    "release-gate-tick": ("post", {"pk": "release", "gate": "gate"}, None, LEAD_PAGE),
    "api-release-gates": ("get", {"pk": "release"}, None, TEAM_API),
    "api-release-gates POST": (
        "post",
        {"pk": "release"},
        None,
        statuses(401, 404, 403, 200, 200, 200),
    ),
    "api-release-gate-tick": (
        "post",
        {"pk": "release", "gate": "gate"},
        {},
        statuses(401, 404, 403, 403, 201, 201),
    ),
    "api-insights": ("get", {}, None, READ_API),
    "team-notifications": ("get", {"slug": "team"}, None, TEAM_PAGE),
    "team-channel-create": ("post", {"slug": "team"}, {}, ADMIN_PAGE),
    "team-channel-change": (
        "post",
        {"slug": "team", "pk": "channel"},
        {"action": "pause"},
        ADMIN_PAGE,
    ),
    "audit": ("get", {}, None, READ_PAGE),
    "audit-verify": ("post", {}, None, statuses(302, 403, 403, 403, 403, 403)),
    "tokens": ("get", {}, None, READ_PAGE),
    "token-create": (
        "post",
        {},
        {"name": "x", "scopes": "read", "days": "5"},
        statuses(302, 302, 302, 302, 302, 302),
    ),
    "token-revoke": ("post", {"pk": "token"}, None, statuses(302, 302, 302, 302, 302, 302)),
    "team-detail": ("get", {"slug": "team"}, None, TEAM_PAGE),
    "team-member-set": (
        "post",
        {"slug": "team"},
        {"username": "viewer", "role": "developer"},
        ADMIN_PAGE,
    ),
    "team-member-remove": ("post", {"slug": "team", "pk": "membership"}, None, ADMIN_PAGE),
    "team-target-create": ("post", {"slug": "team"}, {}, ADMIN_PAGE),
    "team-target-save": ("post", {"slug": "team", "pk": "target"}, {}, ADMIN_PAGE),
    # A platform admin's (superuser's) only: a team admin gets 403 too.
    "team-target-adopt": (
        "post",
        {"slug": "team", "pk": "target"},
        None,
        statuses(302, 404, 403, 403, 403, 403),
    ),
    "team-freeze-create": ("post", {"slug": "team"}, {}, LEAD_PAGE),
    "team-freeze-delete": ("post", {"slug": "team", "pk": "freeze"}, None, LEAD_PAGE),
    "service-detail": ("get", {"slug": "service"}, None, TEAM_PAGE),
    "service-history": ("get", {"slug": "service"}, None, TEAM_PAGE),
    "service-audit": ("get", {"slug": "service"}, None, TEAM_PAGE),
    "release-new": ("post", {"slug": "service"}, {"ref": "main"}, DEVELOPER_PAGE),
    "release-detail": ("get", {"pk": "release"}, None, TEAM_PAGE),
    "release-status": ("get", {"pk": "release"}, None, TEAM_PAGE),
    "release-evidence": ("get", {"pk": "release"}, None, TEAM_PAGE),
    "release-evidence-json": ("get", {"pk": "release"}, None, TEAM_PAGE),
    "evidence-verify": ("get", {}, None, READ_PAGE),
    "api-release-evidence": ("get", {"pk": "release"}, None, TEAM_API),
    "api-evidence-verify": ("post", {}, {"format": "nothing"}, READ_API),
    "release-log": ("get", {"pk": "release"}, None, TEAM_PAGE),
    "release-confirm": (
        "get",
        {"pk": "release", "?": "environment=prod"},
        None,
        statuses(302, 404, 403, 200, 200, 200),
    ),
    "release-confirm-manifests": (
        "get",
        {"pk": "release", "?": "environment=prod"},
        None,
        TEAM_PAGE,
    ),
    "release-confirm-manifests POST": (
        "post",
        {"pk": "release", "?": "environment=prod&kind=promote"},
        {},
        DEVELOPER_PAGE,
    ),
    "release-deploy": (
        "post",
        {"pk": "release"},
        {"environment": "beta", "kind": "deploy"},
        DEVELOPER_PAGE,
    ),
    "release-cancel": ("post", {"pk": "release"}, None, DEVELOPER_PAGE),
    "deployment-detail": ("get", {"pk": "deployment"}, None, TEAM_PAGE),
    "deployment-decide": ("post", {"pk": "deployment"}, {"decision": "approve"}, LEAD_PAGE),
    "deployment-withdraw": (
        "post",
        {"pk": "deployment"},
        None,
        statuses(302, 404, 403, 302, 302, 302),
    ),
    # The world's deployment waits for approval: a lead is let in, then told it did not stop
    # at a cluster (tests/releases/test_waves.py has the retries and skips that go on).
    "deployment-cluster": (
        "post",
        {"pk": "deployment", "rollout": "rollout"},
        {"action": "retry", "reason": "r"},
        LEAD_PAGE,
    ),
    # -- API ---------------------------------------------------------------------------
    "api-schema": ("get", {}, None, PUBLIC),
    "api-docs": ("get", {}, None, PUBLIC),
    "api-me": ("get", {}, None, READ_API),
    "api-audit-events": ("get", {}, None, READ_API),
    "api-freezes": ("get", {"slug": "beta"}, None, READ_API),
    "api-freezes POST": (
        "post",
        {"slug": "beta"},
        "freeze",
        statuses(401, 404, 403, 403, 201, 201),
    ),
    "api-freeze": ("get", {"slug": "beta", "pk": "freeze"}, None, TEAM_API),
    "api-freeze DELETE": (
        "delete",
        {"slug": "beta", "pk": "freeze"},
        None,
        statuses(401, 404, 403, 403, 204, 204),
    ),
    "api-services": ("get", {}, None, READ_API),
    "api-service": ("get", {"slug": "service"}, None, TEAM_API),
    "api-service-releases": ("post", {"slug": "service"}, {"ref": "main"}, DEVELOPER_API),
    "api-releases": ("get", {}, None, READ_API),
    "api-release": ("get", {"pk": "release"}, None, TEAM_API),
    "api-release-log": ("get", {"pk": "release"}, None, TEAM_API),
    "api-release-cancel": ("post", {"pk": "release"}, None, statuses(401, 404, 403, 409, 409, 409)),
    "api-release-deploy": (
        "post",
        {"pk": "release"},
        {"environment": "beta", "kind": "deploy"},
        DEVELOPER_API,
    ),
    "api-deployments": ("get", {}, None, READ_API),
    "api-deployment": ("get", {"pk": "deployment"}, None, TEAM_API),
    "api-deployment-approvals": ("get", {"pk": "deployment"}, None, TEAM_API),
    "api-deployment-approve": (
        "post",
        {"pk": "deployment"},
        {},
        statuses(401, 404, 403, 403, 200, 200),
    ),
    "api-deployment-reject": (
        "post",
        {"pk": "deployment"},
        {},
        statuses(401, 404, 403, 403, 200, 200),
    ),
    "api-deployment-cancel": (
        "post",
        {"pk": "deployment"},
        None,
        statuses(401, 404, 403, 200, 200, 200),
    ),
    "api-deployment-cluster": (
        "post",
        {"pk": "deployment", "cluster": "cluster", "action": "retry"},
        {"reason": "r"},
        statuses(401, 404, 403, 403, 409, 409),
    ),
    # The world's deployment waits for approval: a lead is let in, then told it has no
    # canary (tests/releases/test_canary_e2e.py has the promotions and aborts that act).
    "deployment-canary": (
        "post",
        {"pk": "deployment"},
        {"action": "abort", "reason": "r"},
        LEAD_PAGE,
    ),
    "api-deployment-canary": (
        "post",
        {"pk": "deployment", "action": "abort"},
        {"reason": "r"},
        statuses(401, 404, 403, 403, 409, 409),
    ),
    # The world's release has an inconclusive verification in Beta: a lead skips it.
    # -- services as code: a platform admin's (superuser's) only; a team admin gets 403.
    "catalog": ("get", {}, None, statuses(302, 403, 403, 403, 403, 403)),
    "catalog-sync": (
        "post",
        {"pk": "catalog_source"},
        {"dry_run": "1"},
        statuses(302, 403, 403, 403, 403, 403),
    ),
    # A Git server's push hook: no session or token, the source's secret in the URL.
    "catalog-hook": ("post", {"pk": "catalog_source"}, {}, statuses(403, 403, 403, 403, 403, 403)),
    "api-catalog-sources": ("get", {}, None, statuses(401, 403, 403, 403, 403, 403)),
    "api-catalog-sync": (
        "post",
        {"pk": "catalog_source"},
        {"dry_run": True},
        statuses(401, 403, 403, 403, 403, 403),
    ),
    # -- release trains: the world's train (two of team T's services) waits for approval.
    "trains": ("get", {}, None, READ_PAGE),
    "train-new": ("post", {}, "train-page", statuses(302, 403, 403, 302, 302, 302)),
    "train-detail": ("get", {"pk": "train"}, None, TEAM_PAGE),
    "train-decide": ("post", {"pk": "train"}, {"decision": "approve"}, LEAD_PAGE),
    "train-cancel": ("post", {"pk": "train"}, None, statuses(302, 404, 403, 302, 302, 302)),
    "api-trains": ("get", {}, None, READ_API),
    "api-trains POST": ("post", {}, "train", statuses(401, 403, 403, 201, 201, 201)),
    "api-train": ("get", {"pk": "train"}, None, TEAM_API),
    "api-train-approve": ("post", {"pk": "train"}, {}, statuses(401, 404, 403, 403, 200, 200)),
    "api-train-reject": ("post", {"pk": "train"}, {}, statuses(401, 404, 403, 403, 200, 200)),
    "api-train-cancel": ("post", {"pk": "train"}, None, statuses(401, 404, 403, 200, 200, 200)),
    "verification-decide": (
        "post",
        {"pk": "verification"},
        {"action": "skip", "reason": "r"},
        LEAD_PAGE,
    ),
    "api-release-verifications": ("get", {"pk": "release"}, None, TEAM_API),
    "api-verification-decide": (
        "post",
        {"pk": "verification", "action": "skip"},
        {"reason": "r"},
        statuses(401, 404, 403, 403, 200, 200),
    ),
}


def _url_names(patterns, namespace=None) -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace in EXCLUDED_NAMESPACES:
                continue
            names |= _url_names(pattern.url_patterns, pattern.namespace)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)
    return names


def test_every_named_url_has_an_entry_in_the_matrix():
    named = _url_names(get_resolver().url_patterns)
    covered = {name.split(" ")[0] for name in MATRIX}
    assert named - covered == set(), "add these endpoints to MATRIX with who may use them"
    assert covered - named == set(), "these MATRIX entries name no URL any more"


@pytest.fixture
def world():
    path = service_path()
    team = path.team
    users = {"outsider": UserFactory(username="outsider")}
    for role in ("viewer", "developer", "lead", "admin"):
        users[role] = member(team, role, role)
    release = BuiltReleaseFactory(service=path.service)
    in_beta = succeeded_in(release, path.beta)
    verification = VerificationRun.objects.create(
        deployment=in_beta, release=release, environment=path.beta, service=path.service,
        status="inconclusive",
    )  # fmt: skip
    waiting = deployment_start(
        release=release,
        environment=path.prod,
        kind="promote",
        user=users["developer"],
        actor=Actor.for_user(users["developer"]),
    )
    web = ServiceFactory(slug="web", name="Web", team=team)
    for environment in (path.beta, path.prod):
        allow(
            DeploymentTarget.objects.create(
                service=web, environment=environment, cluster=path.cluster,
                namespace=f"{environment.slug}-web", helm_release_name="web",
            )
        )  # fmt: skip
    web_release = BuiltReleaseFactory(service=web, ref="web-1")
    succeeded_in(web_release, path.beta)
    train = train_create(
        name="winter", environment=path.prod, releases=[release.pk, web_release.pk],
        user=users["developer"], actor=Actor.for_user(users["developer"]),
    )  # fmt: skip
    freeze = Freeze.objects.create(
        environment=path.beta,
        team=team,
        starts_at=timezone.now() + timedelta(days=1),
        ends_at=timezone.now() + timedelta(days=2),
        reason="release train",
        created_by=users["lead"],
    )
    other = _other_team()
    return {
        "other": other,
        "users": users,
        "team": team.slug,
        "service": path.service.slug,
        "release": release.pk,
        "deployment": waiting.pk,
        "train": train.pk,
        "catalog_source": CatalogSource.objects.create(
            name="src", repositories="git://127.0.0.1:9/none.git", webhook_secret="hook-1"
        ).pk,
        "train_releases": [release.pk, web_release.pk],
        "verification": verification.pk,
        "rollout": waiting.rollouts.get().pk,
        "cluster": waiting.rollouts.get().target.cluster.name,
        "freeze": freeze.pk,
        "membership": Membership.objects.get(user=users["viewer"]).pk,
        "target": path.service.targets.get(environment=path.beta).pk,
        "beta": path.beta.slug,
        # On Prod: it gates promotions out of Prod (none), so it holds up no other call.
        "gate": PromotionGate.objects.create(environment=path.prod, name="QA", kind="checklist").pk,
        "channel": Channel.objects.create(
            team=team, name="ops", kind="slack", url="https://hooks.example.test/x", events=[]
        ).pk,
    }


def _other_team() -> dict:
    """Team U, whose objects team T's people must not even see."""
    team = TeamFactory(slug="u", name="Team U")
    lead = member(team, "u-lead", "lead")
    developer = member(team, "u-dev", "developer")
    service = ServiceFactory(slug="billing", name="Billing", team=team)
    targets = {}
    for environment in Environment.objects.order_by("order"):
        targets[environment.slug] = allow(
            DeploymentTarget.objects.create(
                service=service, environment=environment,
                cluster=DeploymentTarget.objects.first().cluster,
                namespace=f"billing-{environment.slug}", helm_release_name="billing",
            )
        )  # fmt: skip
    release = BuiltReleaseFactory(service=service, ref="u1")
    succeeded_in(release, targets["beta"].environment)
    waiting = deployment_start(
        release=release, environment=targets["prod"].environment, kind="promote",
        user=developer, actor=Actor.for_user(developer),
    )  # fmt: skip
    return {
        "team": team.slug,
        "service": service.slug,
        "release": release.pk,
        "deployment": waiting.pk,
        "freeze": Freeze.objects.create(
            environment=targets["beta"].environment,
            team=team,
            reason="theirs",
            starts_at=timezone.now() + timedelta(days=1),
            ends_at=timezone.now() + timedelta(days=2),
            created_by=lead,
        ).pk,
        "membership": Membership.objects.get(user=developer).pk,
        "target": targets["beta"].pk,
        "channel": Channel.objects.create(
            team=team, name="ops", kind="slack", url="https://hooks.example.test/u", events=[]
        ).pk,
    }


def _call(world, role: str, name: str):
    method, arguments, body, _ = MATRIX[name]
    url_name = name.split(" ")[0]
    query = arguments.get("?", "")
    kwargs = {}
    for key, value in arguments.items():
        if key == "?":
            continue
        if value == "token":
            user = world["users"].get(role) or world["users"]["outsider"]
            value = world["token"] = token_issue(user=user, name="t")[0].pk
        elif value in world:
            value = world[value]
        kwargs[key] = value
    url = reverse(url_name, kwargs=kwargs) + (f"?{query}" if query else "")
    if body == "train":
        body = {"name": "m", "environment": "prod", "releases": world["train_releases"]}
    if body == "train-page":
        first, second = world["train_releases"]
        body = {"name": "m", "environment": "prod", f"position-{first}": "1",
                f"position-{second}": "2"}  # fmt: skip
    if body == "freeze":
        body = {
            "team": world["team"],
            "ends_at": (timezone.now() + timedelta(hours=1)).isoformat(),
            "reason": "incident",
        }
    api = url.startswith("/api/")
    if api:
        client = APIClient()
        if role != "anonymous":
            raw = token_issue(user=world["users"][role], name="matrix", scopes=TokenScope.values)[1]
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return (
            getattr(client, method)(url, body, format="json")
            if body is not None
            else getattr(client, method)(url)
        )
    from django.test import Client

    client = Client()
    if role != "anonymous":
        client.force_login(world["users"][role])
    return getattr(client, method)(url, body or {})


def _deployment_status(world) -> str:
    return Deployment.objects.get(pk=world["deployment"]).status


def _train_status(world) -> str:
    return ReleaseTrain.objects.get(pk=world["train"]).status


def _preview_asked(world) -> bool:
    release = Release.objects.get(pk=world["release"])
    return preview.manifest_diff(
        release=release, environment=Environment.objects.get(slug="prod")
    ).asked


# What each action that changes something changes, seen in the database: it must happen
# exactly when the role may do it (a 2xx, or a page's redirect after success), never else.
EFFECTS = {
    "team-member-set": lambda w: Membership.objects.get(pk=w["membership"]).role == "developer",
    "team-member-remove": lambda w: not Membership.objects.filter(pk=w["membership"]).exists(),
    "team-freeze-delete": lambda w: not Freeze.objects.filter(pk=w["freeze"]).exists(),
    "api-freeze DELETE": lambda w: not Freeze.objects.filter(pk=w["freeze"]).exists(),
    "api-freezes POST": lambda w: Freeze.objects.filter(reason="incident").exists(),
    "team-channel-change": lambda w: not Channel.objects.get(pk=w["channel"]).enabled,
    "token-create": lambda w: ApiToken.objects.filter(name="x").exists(),
    "token-revoke": lambda w: ApiToken.objects.get(pk=w["token"]).revoked_at is not None,
    "release-new": lambda w: Release.objects.filter(ref="main").exists(),
    "api-service-releases": lambda w: Release.objects.filter(ref="main").exists(),
    "release-deploy": lambda w: Deployment.objects.filter(
        release=w["release"], environment__slug="beta", kind="deploy", status="pending"
    ).exists(),
    "api-release-deploy": lambda w: Deployment.objects.filter(
        release=w["release"], environment__slug="beta", kind="deploy", status="pending"
    ).exists(),
    "deployment-decide": lambda w: _deployment_status(w) == "pending",
    "api-deployment-approve": lambda w: _deployment_status(w) == "pending",
    "api-deployment-reject": lambda w: _deployment_status(w) == "cancelled",
    "api-deployment-cancel": lambda w: _deployment_status(w) == "cancelled",
    "deployment-withdraw": lambda w: _deployment_status(w) == "cancelled",
    "release-gate-tick": lambda w: ChecklistTick.objects.filter(gate=w["gate"]).exists(),
    "api-release-gate-tick": lambda w: ChecklistTick.objects.filter(gate=w["gate"]).exists(),
    "release-confirm-manifests POST": _preview_asked,
    "verification-decide": lambda w: VerificationRun.objects.filter(status="skipped").exists(),
    "api-verification-decide": lambda w: VerificationRun.objects.filter(status="skipped").exists(),
    "train-new": lambda w: ReleaseTrain.objects.filter(name="m").exists(),
    "api-trains POST": lambda w: ReleaseTrain.objects.filter(name="m").exists(),
    "train-decide": lambda w: _train_status(w) == "running",
    "api-train-approve": lambda w: _train_status(w) == "running",
    "api-train-reject": lambda w: _train_status(w) == "cancelled",
    "api-train-cancel": lambda w: _train_status(w) == "cancelled",
    "train-cancel": lambda w: _train_status(w) == "cancelled",
}
ALLOWED = {200, 201, 204, 302}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_who_may_do_what(world, name, role):
    response = _call(world, role, name)
    expected = MATRIX[name][3][role]
    assert response.status_code == expected, (
        f"{name} as {role}: {response.status_code}, expected {expected}: {response.content[:300]!r}"
    )
    if name.startswith("api-") and response.status_code >= 400:
        assert response["Content-Type"] == "application/problem+json"
    if name in EFFECTS:
        may = role != "anonymous" and expected in ALLOWED
        assert EFFECTS[name](world) == may, (
            f"{name} as {role}: effect {'missing' if may else 'made'}"
        )


# The arguments that name one team's objects: team T's admin tries team U's.
TEAM_OBJECTS = {"team", "service", "release", "deployment", "freeze", "membership", "target",
                "channel"}  # fmt: skip


@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n, (_, args, body, _) in MATRIX.items()
        if TEAM_OBJECTS & set(args.values()) or body == "freeze"
    ),
)
def test_another_teams_objects_do_not_exist_for_a_team_admin(world, name):
    theirs = {**world, **world["other"]}
    before = {key: EFFECTS[name](theirs) for key in [name] if key in EFFECTS}
    response = _call(theirs, "admin", name)
    assert response.status_code == 404, (
        f"{name} on team U's object as team T's admin: {response.status_code}"
    )
    if name in EFFECTS:
        assert EFFECTS[name](theirs) == before[name], f"{name} changed team U's object"
