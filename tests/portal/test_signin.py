"""Lockouts that cannot be turned against others: keyed by the user and the real client
address behind the ingress, plus a rate per address."""

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db
INGRESS = "10.0.0.5"


@pytest.fixture
def admin(settings):
    settings.SLIPWAY_TRUSTED_PROXIES = [f"{INGRESS}/32"]
    settings.AXES_FAILURE_LIMIT = 5
    return get_user_model().objects.create_superuser("admin", password="pw-admin-123456")


def _from(address: str) -> Client:
    """A browser at `address`, reaching Slipway through the ingress."""
    return Client(REMOTE_ADDR=INGRESS, HTTP_X_FORWARDED_FOR=address)


def _sign_in(client: Client, password: str):
    return client.post("/login/", {"username": "admin", "password": password})


def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_from_another(admin):
    attacker, owner = _from("203.0.113.5"), _from("198.51.100.7")
    for _ in range(4):
        assert _sign_in(attacker, "guess").status_code == 200
    assert _sign_in(attacker, "guess").status_code == 429  # the fifth locks
    # The attacker's address is locked out, even with the right password
    locked = _sign_in(attacker, "pw-admin-123456")
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    # The admin, from their own address behind the same ingress, signs in
    assert _sign_in(owner, "pw-admin-123456").status_code == 302
    failed = AuditEvent.objects.filter(action="auth.login_failed")
    assert set(failed.values_list("ip", flat=True)) == {"203.0.113.5"}


def test_an_untrusted_forwarded_header_is_ignored(admin):
    # Without the ingress in between, X-Forwarded-For is the client's own word: not used
    spoofing = Client(REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_FOR="198.51.100.7")
    for _ in range(5):
        _sign_in(spoofing, "guess")
    assert _sign_in(_from("198.51.100.7"), "pw-admin-123456").status_code == 302
    assert _sign_in(spoofing, "pw-admin-123456").status_code == 429


def test_one_address_trying_many_names_is_slowed_down_alone(admin, settings):
    settings.SLIPWAY_SIGNIN_RATE = "10/m"
    spraying, owner = _from("203.0.113.99"), _from("198.51.100.8")
    # One fixed window of the rate (django-ratelimit) for the whole burst
    with time_machine.travel(timezone.now(), tick=False):
        for n in range(10):
            spraying.post("/login/", {"username": f"user{n}", "password": "x"})
        limited = spraying.post("/login/", {"username": "someone-else", "password": "x"})
    assert limited.status_code == 429
    assert "Too many sign-in attempts" in limited.content.decode()
    assert _sign_in(owner, "pw-admin-123456").status_code == 302
