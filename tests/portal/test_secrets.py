import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from clusters.models import Cluster
from portal.catalog.models import JenkinsServer
from portal.core import crypto

pytestmark = pytest.mark.django_db

KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user: {token: sekret-123}\n"


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{column}" FROM {table} WHERE id = %s', [pk])
        return cursor.fetchone()[0]


def test_kubeconfig_and_jenkins_token_are_encrypted_at_rest_and_read_back_intact():
    cluster = Cluster.objects.create(slug="c", name="C", kubeconfig=KUBECONFIG)
    jenkins = JenkinsServer.objects.create(
        name="j", url="http://j/", username="u", api_token="tok-abc-123"
    )

    raw_kubeconfig = _raw("clusters_cluster", "kubeconfig", cluster.pk)
    raw_token = _raw("portal_jenkinsserver", "api_token", jenkins.pk)
    assert "sekret-123" not in raw_kubeconfig and "apiVersion" not in raw_kubeconfig
    assert "tok-abc-123" not in raw_token

    assert Cluster.objects.get(pk=cluster.pk).kubeconfig.reveal() == KUBECONFIG
    assert JenkinsServer.objects.get(pk=jenkins.pk).api_token.reveal() == "tok-abc-123"


def test_a_secret_does_not_show_itself_in_str_or_repr():
    cluster = Cluster.objects.create(slug="c", name="C", kubeconfig=KUBECONFIG)
    loaded = Cluster.objects.get(pk=cluster.pk).kubeconfig
    assert "sekret" not in str(loaded) and "sekret" not in repr(loaded)


def test_rotation_re_encrypts_with_the_new_key_and_old_key_can_be_dropped(settings):
    old_key = settings.SLIPWAY_ENCRYPTION_KEYS[0]
    jenkins = JenkinsServer.objects.create(
        name="j", url="http://j/", username="u", api_token="tok-abc-123"
    )
    new_key = Fernet.generate_key().decode()
    settings.SLIPWAY_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_secrets")
    settings.SLIPWAY_ENCRYPTION_KEYS = [new_key]
    assert JenkinsServer.objects.get(pk=jenkins.pk).api_token.reveal() == "tok-abc-123"


def test_a_secret_under_an_unknown_key_fails_clearly(settings):
    jenkins = JenkinsServer.objects.create(name="j", url="http://j/", username="u", api_token="tok")
    settings.SLIPWAY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.SecretUnreadable):
        JenkinsServer.objects.get(pk=jenkins.pk)


def test_admin_never_renders_a_stored_secret(admin_client):
    cluster = Cluster.objects.create(slug="c", name="C", kubeconfig=KUBECONFIG)
    jenkins = JenkinsServer.objects.create(
        name="j", url="http://j/", username="u", api_token="tok-abc-123"
    )
    page = admin_client.get(f"/admin/clusters/cluster/{cluster.pk}/change/").content.decode()
    assert "sekret-123" not in page and "apiVersion" not in page
    page = admin_client.get(f"/admin/portal/jenkinsserver/{jenkins.pk}/change/").content.decode()
    assert "tok-abc-123" not in page


def test_admin_edit_with_blank_secret_keeps_the_stored_one(admin_client):
    jenkins = JenkinsServer.objects.create(
        name="j", url="http://j/", username="u", api_token="tok-abc-123"
    )
    response = admin_client.post(
        f"/admin/portal/jenkinsserver/{jenkins.pk}/change/",
        {"name": "j2", "url": "http://j/", "username": "u", "api_token": "", "timeout_seconds": 30},
    )
    assert response.status_code == 302
    jenkins = JenkinsServer.objects.get(pk=jenkins.pk)
    assert (jenkins.name, jenkins.api_token.reveal()) == ("j2", "tok-abc-123")


def test_admin_changes_are_audited_with_the_secret_masked(admin_client):
    from portal.audit.models import AuditEvent

    jenkins = JenkinsServer.objects.create(
        name="j", url="http://j/", username="u", api_token="tok-abc-123"
    )
    admin_client.post(
        f"/admin/portal/jenkinsserver/{jenkins.pk}/change/",
        {
            "name": "j",
            "url": "http://j/",
            "username": "u2",
            "api_token": "tok-new-456",
            "timeout_seconds": 30,
        },
    )
    event = AuditEvent.objects.get(action="jenkinsserver.change")
    assert event.actor_name == "admin"
    assert event.before == {"api_token": "********", "username": "u"}
    assert event.after == {"api_token": "********", "username": "u2"}
    assert "tok-" not in f"{event.before}{event.after}{event.target_repr}"


def _one_row_per_encrypted_field() -> dict[tuple[str, str], object]:
    """A stored secret in every encrypted column there is (the test fails when a new one
    appears without a row here, so rotation is tested on it too)."""
    from notifications.models import Channel
    from portal.catalog.models import EnvironmentVariable, Registry
    from tests.factories import service_path

    path = service_path()
    path.jenkins.notification_secret = "nt-5"
    path.jenkins.save()
    rows = {
        ("clusters.Cluster", "kubeconfig"): Cluster.objects.create(
            slug="c", name="C", kubeconfig=KUBECONFIG
        ),
        ("portal.JenkinsServer", "api_token"): path.jenkins,
        ("portal.JenkinsServer", "notification_secret"): path.jenkins,
        ("portal.Registry", "password"): Registry.objects.create(
            name="harbor", url="https://harbor.test", username="u", password="reg-pw-1"
        ),
        ("portal.EnvironmentVariable", "secret_value"): EnvironmentVariable.objects.create(
            environment=path.beta, name="DB_PASSWORD", is_secret=True, secret_value="db-pw-2"
        ),
    }
    channel = Channel.objects.create(
        team=path.team, name="ops", kind="webhook", url="https://hook.test/k-3", secret="wh-4"
    )
    rows[("notifications.Channel", "url")] = rows[("notifications.Channel", "secret")] = channel
    from portal.catalog.models import CatalogSource, DroneServer
    from releases.models import ChangeSystem

    rows[("portal.DroneServer", "token")] = DroneServer.objects.create(
        name="drone", url="https://drone.test", token="drone-8"
    )
    rows[("portal.CatalogSource", "webhook_secret")] = CatalogSource.objects.create(
        name="src", repositories="https://git.test/a.git", webhook_secret="hook-7"
    )

    rows[("releases.ChangeSystem", "secret")] = ChangeSystem.objects.create(
        environment=path.prod, name="SN", kind="servicenow", url="https://sn.test", secret="sn-6"
    )
    return rows


def test_rotation_finds_every_encrypted_field_and_the_old_key_can_be_dropped(settings):
    from django.apps import apps

    from portal.management.commands.rotate_secrets import encrypted_fields

    rows = _one_row_per_encrypted_field()
    every = {
        (model._meta.label, field.name)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, crypto.EncryptedTextField)
    }
    assert every == set(rows), "add a row for the new encrypted field above"
    assert {(m._meta.label, c) for m, c in encrypted_fields()} == every
    before = {
        key: getattr(type(row).objects.get(pk=row.pk), key[1]).reveal() for key, row in rows.items()
    }
    old_key = settings.SLIPWAY_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.SLIPWAY_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_secrets")
    settings.SLIPWAY_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    after = {
        key: getattr(type(row).objects.get(pk=row.pk), key[1]).reveal() for key, row in rows.items()
    }
    assert after == before and all(after.values())


def test_the_log_scrubber_masks_secrets_however_deep_they_sit():
    import io
    import logging

    import structlog

    secret = "kube-token-" + "9" * 24
    crypto.decrypt(crypto.encrypt(f"users:\n- user:\n    token: {secret}\n"))  # remembered
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().addHandler(handler)
    try:
        structlog.get_logger("slipway.test").warning(
            "deploy failed",
            reason=f"helm said: token {secret}",
            detail={"cluster": {"kubeconfig": {"token": secret}}, "tries": [1, f"x {secret}"]},
            headers=[("Authorization", "Bearer slw_" + "a" * 30)],
        )
    finally:
        logging.getLogger().removeHandler(handler)
    line = out.getvalue()
    assert "deploy failed" in line and "kubeconfig" in line
    assert secret not in line and "slw_aaaa" not in line
    assert line.count("********") >= 4
