from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from portal.access.models import ApiToken
from portal.access.tokens import token_issue, token_revoke
from portal.audit.chain import Actor
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def dev():
    return get_user_model().objects.create_user("dev", password="pw-dev-123456")


def _me(raw: str):
    return APIClient().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_issue_token_prints_a_token_that_authenticates_the_user(dev, capsys):
    call_command("issue_token", "dev", "--name", "ci")
    raw = capsys.readouterr().out.strip()
    response = _me(raw)
    assert response.status_code == 200
    assert response.json()["username"] == "dev"
    assert response.json()["authenticated_by"] == "token"


def test_token_is_stored_hashed_never_in_plain(dev):
    _, raw = token_issue(user=dev, name="ci")
    stored = ApiToken.objects.get()
    assert raw not in (stored.token_hash, stored.prefix)
    assert raw[12:] not in str(AuditEvent.objects.values_list("after", flat=True)[0])


def test_revoked_token_is_refused(dev):
    token, raw = token_issue(user=dev, name="ci")
    token_revoke(token=token, actor=Actor.for_user(dev))
    response = _me(raw)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert AuditEvent.objects.filter(action="api_token.revoke").count() == 1


def test_expired_token_is_refused(dev):
    token, raw = token_issue(user=dev, name="ci")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _me(raw).status_code == 401


def test_unknown_token_is_refused():
    assert _me("slw_nope").status_code == 401


def test_no_credentials_is_refused_with_401():
    assert APIClient().get("/api/v1/me").status_code == 401


def test_issue_token_for_unknown_user_fails_clearly():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("issue_token", "ghost")


def test_a_token_lives_at_most_the_longest_life_set(dev, settings):
    from portal.access.tokens import TokenRefused

    settings.SLIPWAY_TOKEN_MAX_DAYS = 30
    with pytest.raises(TokenRefused, match="A token lives at most 30 days"):
        token_issue(user=dev, name="forever", expires_at=timezone.now() + timedelta(days=365))
    with pytest.raises(CommandError, match="at most 30 days"):
        call_command("issue_token", "dev", "--expires-days", "31")
    # A token issued when the setting was longer stops working once it is older than that
    token, raw = token_issue(user=dev, name="old", expires_at=timezone.now() + timedelta(days=20))
    assert _me(raw).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert _me(raw).status_code == 401
