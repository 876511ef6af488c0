"""Per-environment variables reach the chart (ENV=beta in Beta, ENV=prod in Prod, same
digest), secrets among them only as a Kubernetes Secret, never in what Slipway records or
shows; link templates render with each environment's values on pages and in the API."""

from __future__ import annotations

import base64
import json
import re

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from portal.access.choices import Role, TokenScope
from portal.access.tokens import token_issue
from portal.catalog.models import DeploymentTarget, EnvironmentLink, EnvironmentVariable
from tests.factories import BuiltReleaseFactory, member, service_path, succeeded_in
from tests.support.deploy import built_release, deploy, image_in, namespace, rollout_of

SECRET = "db-pw-s3cr3t-91"


def _configure(service, beta, prod) -> None:
    EnvironmentVariable.objects.create(environment=beta, name="ENV", value="beta")
    EnvironmentVariable.objects.create(environment=prod, name="ENV", value="prod")
    EnvironmentVariable.objects.create(
        environment=prod, name="DB_PASSWORD", is_secret=True, secret_value=SECRET
    )
    EnvironmentVariable.objects.create(
        environment=beta,
        target=DeploymentTarget.objects.get(service=service, environment=beta),
        name="APOLLO_META",
        value="http://apollo-beta:8080",
    )


def _env(world, env: str) -> dict:
    deployment = world["apps"].read_namespaced_deployment("app", namespace(world, env))
    container = deployment.spec.template.spec.containers[0]
    return {
        e.name: e.value if e.value is not None else f"secret:{e.value_from.secret_key_ref.key}"
        for e in container.env or []
    }


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_each_environment_gets_its_variables_with_the_same_digest(world):
    _configure(world["service"], world["beta"], world["prod"])
    release = built_release(world, 1)
    beta = deploy(world, release, "beta")
    assert beta.status == "succeeded", beta.status_reason
    prod = deploy(world, release, "prod", kind="promote")
    assert prod.status == "succeeded", prod.status_reason

    assert image_in(world, "beta") == image_in(world, "prod") == release.image
    assert _env(world, "beta") == {
        "ENV": "beta", "APOLLO_META": "http://apollo-beta:8080", "FROM": "service",
    }  # fmt: skip
    assert _env(world, "prod") == {
        "ENV": "prod",
        "FROM": "service",
        "DB_PASSWORD": "secret:DB_PASSWORD",
    }

    from kubernetes import client

    core = client.CoreV1Api(world["apps"].api_client)
    stored = core.read_namespaced_secret("app-secret-env", namespace(world, "prod"))
    assert base64.b64decode(stored.data["DB_PASSWORD"]).decode() == SECRET

    # What Slipway records of the deployment holds a fingerprint, never the secret.
    prod.refresh_from_db()
    recorded = json.dumps(rollout_of(prod).values)
    assert SECRET not in recorded and "(secret " in recorded


@pytest.mark.django_db
def test_links_and_variables_show_on_pages_and_in_the_api_and_secrets_never(client):
    path = service_path(image_repository="registry.local/shop/app")
    _configure(path.service, path.beta, path.prod)
    EnvironmentLink.objects.create(
        environment=path.beta,
        name="Grafana",
        url_template="https://grafana.test/d/svc?var-service={service}&var-ns={namespace}",
    )
    EnvironmentLink.objects.create(
        environment=path.prod,
        name="Logs",
        url_template="https://kibana.test/app?q={service}+{digest}",
    )
    lead = member(path.team, "lead", Role.LEAD)
    release = BuiltReleaseFactory(service=path.service, ref="v7")
    succeeded_in(release, path.prod)
    grafana = "https://grafana.test/d/svc?var-service=app&amp;var-ns=beta"
    logs = f"https://kibana.test/app?q=app+{release.image_digest}"

    client.force_login(lead)
    for page in ("/", f"/services/{path.service.slug}/", f"/releases/{release.pk}/"):
        html = client.get(page).content.decode()
        assert grafana in html and logs in html, page
        assert SECRET not in html, page
    service_page = client.get(f"/services/{path.service.slug}/").content.decode()
    assert "APOLLO_META" in service_page and "http://apollo-beta:8080" in service_page
    assert "DB_PASSWORD" in service_page and "secret, set" in service_page

    api = APIClient(
        HTTP_AUTHORIZATION=f"Bearer {token_issue(user=lead, name='t', scopes=[TokenScope.READ])[1]}"
    )
    body = api.get(f"/api/v1/services/{path.service.slug}/").json()
    environments = {e["environment"]: e for e in body["environments"]}
    assert environments["beta"]["links"] == [
        {"name": "Grafana", "url": "https://grafana.test/d/svc?var-service=app&var-ns=beta"}
    ]
    assert environments["prod"]["links"] == [{"name": "Logs", "url": logs}]
    assert {"name": "DB_PASSWORD", "value": None, "secret": True, "scope": "environment"} in (
        environments["prod"]["variables"]
    )
    assert SECRET not in json.dumps(body)


@pytest.mark.django_db
def test_a_link_with_an_unknown_placeholder_is_refused():
    path = service_path()
    link = EnvironmentLink(environment=path.beta, name="Bad", url_template="https://x.test/{team}")
    with pytest.raises(ValidationError, match=r"Unknown placeholder \{team\}"):
        link.full_clean()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("javascript:alert(document.cookie)//{service}", "starts with http:// or https://"),
        ("data:text/html,<script>x</script>", "starts with http:// or https://"),
        ("//evil.test/{service}", "starts with http:// or https://"),
        ("https://grafana.test/d/{service:>999999999}", "plain placeholders only"),
        ("https://grafana.test/d/{service!r}", "plain placeholders only"),
        ("https://grafana.test/d/{service.__class__}", "plain placeholders only"),
        ("https://grafana.test/d/{service[0]}", "plain placeholders only"),
    ],
)
def test_links_are_http_with_plain_placeholders_only(template, message):
    path = service_path()
    link = EnvironmentLink(environment=path.beta, name="Bad", url_template=template)
    with pytest.raises(ValidationError, match=re.escape(message)):
        link.full_clean()


@pytest.mark.django_db
def test_a_bad_link_saved_before_the_rules_is_never_rendered(client):
    # Given a link stored before templates were validated (the model's validators are not
    # run by a plain save)
    path = service_path()
    EnvironmentLink.objects.create(
        environment=path.beta, name="Evil", url_template="javascript:alert(1)//{service}"
    )
    EnvironmentLink.objects.create(
        environment=path.beta, name="Huge", url_template="https://g.test/{service:>999999999}"
    )
    EnvironmentLink.objects.create(
        environment=path.beta, name="Grafana", url_template="https://g.test/d?var={service}"
    )
    client.force_login(member(path.team, "viewer", "viewer"))
    page = client.get("/services/app/").content.decode()
    assert "https://g.test/d?var=app" in page
    assert "javascript:" not in page and "Evil" not in page and "Huge" not in page
