"""The door to the LDAP directory for offboarding: is this person still there, and in
which groups? Read with Slipway's bind account, outside any sign-in.

django-auth-ldap answers "not found" both when a person is gone and when the directory is
down (it logs the error and carries on); offboarding cannot tell those apart that way, or
an outage would strip everyone's roles. So this door asks python-ldap itself and raises
`DirectoryUnavailable` on any error but "no such entry".
"""

from __future__ import annotations

from dataclasses import dataclass

import ldap
import ldap.dn
import ldap.filter
from django.conf import settings

from portal.core.errors import DoorError


class DirectoryUnavailable(DoorError):
    retryable = True

    """The directory did not answer (or refused Slipway's bind): decide nothing now."""


@dataclass(frozen=True)
class DirectoryEntry:
    dn: str
    group_dns: frozenset[str]  # lowercased


def _connection():
    connection = ldap.initialize(settings.AUTH_LDAP_SERVER_URI, bytes_mode=False)
    for option, value in settings.AUTH_LDAP_CONNECTION_OPTIONS.items():
        connection.set_option(option, value)
    if settings.AUTH_LDAP_START_TLS:
        connection.start_tls_s()
    connection.simple_bind_s(settings.AUTH_LDAP_BIND_DN, settings.AUTH_LDAP_BIND_PASSWORD)
    return connection


def user_dn(username: str) -> str:
    return settings.AUTH_LDAP_USER_DN_TEMPLATE % {"user": ldap.dn.escape_dn_chars(username)}


def directory_entry(username: str) -> DirectoryEntry | None:
    """The person's entry and groups; None when the directory has no such person."""
    dn = user_dn(username)
    try:
        connection = _connection()
        try:
            try:
                connection.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["1.1"])
            except ldap.NO_SUCH_OBJECT:
                return None
            search = settings.AUTH_LDAP_GROUP_SEARCH
            member = ldap.filter.escape_filter_chars(dn)
            found = connection.search_s(
                search.base_dn,
                search.scope,
                f"(&{search.filterstr}(member={member}))",
                ["1.1"],
            )
        finally:
            connection.unbind_s()
    except ldap.LDAPError as exc:
        name = type(exc).__name__
        raise DirectoryUnavailable(f"the directory did not answer the lookup ({name})") from exc
    return DirectoryEntry(dn, frozenset(group.lower() for group, _ in found if group))
