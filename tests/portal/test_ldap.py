"""Sign-in with LDAP against a real slapd: users and team roles from the directory."""

import uuid

import ldap
import pytest
from django_auth_ldap.config import GroupOfNamesType, LDAPSearch
from rest_framework.test import APIClient

from portal.access.choices import Role
from portal.access.models import LdapGroupRole, Membership, Team
from portal.access.offboarding import ldap_offboarding_sync
from portal.access.tokens import token_issue
from portal.audit.models import AuditEvent
from tests.factories import member
from tests.support.ldap import GROUPS, group_dn, person_dn

pytestmark = pytest.mark.django_db


@pytest.fixture
def directory(slapd, settings):
    """Fresh people and groups in the session's slapd, and Slipway pointed at it."""
    tag = uuid.uuid4().hex[:6]
    names = {n: f"{n}-{tag}" for n in ("alice", "bob", "carol")}
    for uid in names.values():
        slapd.add_person(uid, f"pw-{uid}")
    groups = {g: f"{g}-{tag}" for g in ("shop-leads", "shop-devs", "disabled")}
    slapd.add_group(groups["shop-leads"], names["alice"])
    slapd.add_group(groups["shop-devs"], names["alice"], names["bob"], names["carol"])
    slapd.add_group(groups["disabled"], names["carol"])
    settings.AUTH_LDAP_SERVER_URI = slapd.uri
    settings.AUTHENTICATION_BACKENDS = [
        "axes.backends.AxesStandaloneBackend",
        "portal.access.ldap.SlipwayLDAPBackend",
        "portal.access.ldap.LocalBackend",
    ]
    settings.AUTH_LDAP_USER_DN_TEMPLATE = "uid=%(user)s,ou=people,dc=example,dc=com"
    settings.AUTH_LDAP_GROUP_SEARCH = LDAPSearch(
        GROUPS, ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)"
    )
    settings.AUTH_LDAP_GROUP_TYPE = GroupOfNamesType()
    settings.AUTH_LDAP_DENY_GROUP = group_dn(groups["disabled"])
    team = Team.objects.create(slug="shop", name="Shop")
    LdapGroupRole.objects.create(group_dn=group_dn(groups["shop-leads"]), team=team, role=Role.LEAD)
    LdapGroupRole.objects.create(
        group_dn=group_dn(groups["shop-devs"]).upper(), team=team, role=Role.DEVELOPER
    )
    return {"slapd": slapd, "names": names, "groups": groups, "team": team}


def sign_in(client, username: str, password: str):
    return client.post("/login/", {"username": username, "password": password})


def test_a_directory_user_signs_in_and_gets_the_role_their_groups_map_to(client, directory):
    alice = directory["names"]["alice"]
    response = sign_in(client, alice, f"pw-{alice}")
    assert response.status_code == 302 and response.url == "/"
    membership = Membership.objects.get(user__username=alice)
    # In both groups: the higher role wins; it is marked as coming from LDAP
    assert (membership.team.slug, membership.role, membership.source) == ("shop", "lead", "ldap")
    assert membership.user.email == f"{alice}@example.com"
    # Her directory groups, mirrored by name: an approval rule may name one.
    groups = directory["groups"]
    assert set(membership.user.groups.values_list("name", flat=True)) == {
        groups["shop-leads"], groups["shop-devs"],
    }  # fmt: skip
    assert not membership.user.has_usable_password()  # no local password to fall back on
    assert client.get("/services/").status_code in (200, 404)  # signed in
    assert AuditEvent.objects.filter(action="auth.login", actor_name=alice).exists()
    assert AuditEvent.objects.filter(action="membership.create", actor_name="ldap").exists()


def test_removed_from_a_group_the_role_is_gone_at_the_next_sign_in(client, directory):
    slapd, names, groups = directory["slapd"], directory["names"], directory["groups"]
    bob = names["bob"]
    sign_in(client, bob, f"pw-{bob}")
    assert Membership.objects.get(user__username=bob).role == "developer"
    # Roles granted by hand in Slipway are not LDAP's to take away
    other = Team.objects.create(slug="other", name="Other")
    member(other, bob, Role.VIEWER)
    slapd.set_members(groups["shop-devs"], names["alice"])
    client.logout()
    sign_in(client, bob, f"pw-{bob}")
    assert list(
        Membership.objects.filter(user__username=bob).values_list("team__slug", "role")
    ) == [("other", "viewer")]
    assert AuditEvent.objects.filter(action="membership.delete", actor_name="ldap").exists()


def test_a_user_disabled_in_the_directory_cannot_sign_in(client, directory):
    carol = directory["names"]["carol"]
    response = sign_in(client, carol, f"pw-{carol}")
    assert response.status_code == 200 and "Wrong username or password" in response.content.decode()
    assert not Membership.objects.filter(user__username=carol).exists()


def test_a_wrong_password_is_refused_audited_and_then_throttled(client, directory, settings):
    alice = directory["names"]["alice"]
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        refused = sign_in(client, alice, "wrong")
        assert (
            refused.status_code == 200 and "Wrong username or password" in refused.content.decode()
        )
    failed = AuditEvent.objects.filter(action="auth.login_failed", after__username=alice)
    assert failed.count() == 2 and failed.first().ip == "127.0.0.1"
    assert "wrong" not in str(list(failed.values_list("before", "after")))
    locked = sign_in(client, alice, "wrong")
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    # Locked out, even the right password waits for the cool-off
    assert sign_in(client, alice, f"pw-{alice}").status_code == 429


def test_a_local_break_glass_admin_still_signs_in(client, directory):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root-admin", password="pw-local-admin-1")
    assert sign_in(client, "root-admin", "pw-local-admin-1").status_code == 302


def test_an_unreachable_directory_refuses_without_a_500(client, directory, settings):
    settings.AUTH_LDAP_SERVER_URI = "ldap://127.0.0.1:1/"
    alice = directory["names"]["alice"]
    response = sign_in(client, alice, f"pw-{alice}")
    assert response.status_code == 200
    assert "The directory (LDAP) does not answer" in response.content.decode()


# -- offboarding -----------------------------------------------------------------------


def _signed_in_with_token(client, directory, name: str):
    uid = directory["names"][name]
    assert sign_in(client, uid, f"pw-{uid}").status_code == 302
    user = Membership.objects.get(user__username=uid).user
    raw = token_issue(user=user, name="ci")[1]
    api = APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/v1/me").status_code == 200
    return user, api


def test_removed_from_every_group_their_token_and_session_end_within_one_sync(client, directory):
    slapd, names, groups = directory["slapd"], directory["names"], directory["groups"]
    bob, api = _signed_in_with_token(client, directory, "bob")
    assert client.get("/").status_code == 200
    # When the directory takes bob out of his only mapped group
    slapd.set_members(groups["shop-devs"], names["alice"], names["carol"])
    counts = ldap_offboarding_sync()
    # Then within that one sync his role, token and session are gone
    assert counts.get("access ended") == 1
    assert not Membership.objects.filter(user=bob).exists()
    assert api.get("/api/v1/me").status_code == 401
    assert client.get("/").status_code == 302  # signed out: to the sign-in page
    event = AuditEvent.objects.get(action="account.access_end")
    assert event.after["reason"] == "in no mapped LDAP group any more"
    assert event.after["tokens_revoked"] == 1
    # A second sync finds nothing left to end (no event each time)
    ldap_offboarding_sync()
    assert AuditEvent.objects.filter(action="account.access_end").count() == 1


def test_someone_gone_from_the_directory_is_deactivated(client, directory):
    alice, api = _signed_in_with_token(client, directory, "alice")
    directory["slapd"].set_members(directory["groups"]["shop-leads"])
    directory["slapd"].set_members(directory["groups"]["shop-devs"], directory["names"]["bob"])
    directory["slapd"].delete(person_dn(directory["names"]["alice"]))
    assert ldap_offboarding_sync().get("offboarded") == 1
    alice.refresh_from_db()
    assert not alice.is_active
    assert api.get("/api/v1/me").status_code == 401
    assert client.get("/").status_code == 302
    event = AuditEvent.objects.get(action="account.offboard")
    assert (event.after["reason"], event.after["deactivated"]) == ("gone from the directory", True)
    assert event.after["memberships_removed"] == ["shop"]


def test_an_unreachable_directory_decides_nothing(client, directory, settings):
    bob, api = _signed_in_with_token(client, directory, "bob")
    settings.AUTH_LDAP_SERVER_URI = "ldap://127.0.0.1:1/"
    assert ldap_offboarding_sync() == {"directory unavailable": 1}
    assert Membership.objects.filter(user=bob).exists()
    assert api.get("/api/v1/me").status_code == 200


def test_a_directory_user_named_like_a_local_account_cannot_sign_in_as_it(client, directory):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root-admin", password="pw-local-admin-1")
    directory["slapd"].add_person("Root-Admin", "pw-from-the-directory")
    for name in ("root-admin", "Root-Admin", "ROOT-ADMIN"):
        refused = sign_in(client, name, "pw-from-the-directory")
        assert refused.status_code == 200, name
        assert "Wrong username or password" in refused.content.decode()
    assert sign_in(client, "root-admin", "pw-local-admin-1").status_code == 302


def test_an_ldap_account_never_signs_in_with_a_password_set_in_slipway(client, directory):
    alice = directory["names"]["alice"]
    sign_in(client, alice, f"pw-{alice}")
    client.logout()
    user = Membership.objects.filter(user__username=alice).first().user
    user.set_password("pw-set-locally-1")
    user.save()
    assert sign_in(client, alice, "pw-set-locally-1").status_code == 200
    assert sign_in(client, alice, f"pw-{alice}").status_code == 302


def test_a_manual_grant_never_silently_converts_an_ldap_role(client, directory):
    alice = directory["names"]["alice"]
    sign_in(client, alice, f"pw-{alice}")
    admin = member(directory["team"], "shop-admin", Role.ADMIN)
    client.force_login(admin)
    page = client.post("/teams/shop/members", {"username": alice, "role": "viewer"}, follow=True)
    assert "comes from an LDAP group and is refreshed from the directory" in page.content.decode()
    membership = Membership.objects.get(user__username=alice)
    assert (membership.role, membership.source) == ("lead", "ldap")
