import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from portal.catalog.models import DeploymentTarget, Service

pytestmark = pytest.mark.django_db


def test_home_requires_login_and_redirects_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_login_then_logout(client):
    get_user_model().objects.create_user("dev", password="pw-dev-123456")
    response = client.post("/login/", {"username": "dev", "password": "pw-dev-123456"})
    assert response.status_code == 302 and response.url == "/"
    assert "Services" in client.get("/").content.decode()
    client.post("/logout/")
    assert client.get("/").status_code == 302


def test_wrong_password_shows_a_clear_error(client):
    get_user_model().objects.create_user("dev", password="pw-dev-123456")
    response = client.post("/login/", {"username": "dev", "password": "nope"})
    assert response.status_code == 200
    assert "Wrong username or password" in response.content.decode()


def test_load_demo_is_idempotent_and_creates_users_services_and_targets(capsys):
    call_command("load_demo")
    call_command("load_demo")
    out = capsys.readouterr().out
    assert {"admin", "lead", "lead2", "dev"} <= set(
        get_user_model().objects.values_list("username", flat=True)
    )
    assert Service.objects.count() == 3
    assert DeploymentTarget.objects.count() == 6
    search = Service.objects.get(slug="search")  # the demo service Drone builds
    assert (search.build_backend, search.drone_repository) == ("drone", "demo/search")
    assert "lead2" in out


def test_load_demo_gives_prod_the_local_change_desk_when_make_run_starts_one(monkeypatch):
    from releases.models import ChangeSystem

    call_command("load_demo")
    assert not ChangeSystem.objects.exists()  # no desk given: none pointed at nothing
    monkeypatch.setenv("SLIPWAY_DEMO_CHANGES_URL", "http://127.0.0.1:18091")
    monkeypatch.setenv("SLIPWAY_DEMO_CHANGES_PASSWORD", "desk-pw-123")
    call_command("load_demo")
    call_command("load_demo")
    [desk] = ChangeSystem.objects.all()
    assert (desk.environment.slug, desk.kind, desk.url, desk.require_approved) == (
        "prod",
        "servicenow",
        "http://127.0.0.1:18091",
        False,  # opened and closed, not waited for: trains to Prod run in the demo
    )
    assert desk.secret.reveal() == "desk-pw-123"
    # The next start: the desk listens elsewhere; what an admin chose stays.
    ChangeSystem.objects.update(require_approved=True)
    monkeypatch.setenv("SLIPWAY_DEMO_CHANGES_URL", "http://127.0.0.1:18092")
    call_command("load_demo")
    desk.refresh_from_db()
    assert (desk.url, desk.require_approved) == ("http://127.0.0.1:18092", True)


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
