"""What each environment gives a service besides the image: variables injected into the
chart's values (ENV=beta, an Apollo meta URL, secrets) and links (Grafana, logs, its URL).

A target's own variable wins over the environment's of the same name. Secrets go to the
chart revealed, but everything Slipway records or shows (a deployment's values, the promote
dialog's diff, pages, the API) carries only a keyed fingerprint: a changed secret shows as a
change, its value never.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from portal.catalog.models import DeploymentTarget, EnvironmentLink, EnvironmentVariable
from portal.catalog.validators import LINK_PLACEHOLDER_RE, validate_link_template
from portal.core.crypto import plaintext


@dataclass(frozen=True)
class Variable:
    name: str
    value: str  # the secret's fingerprint unless revealed
    is_secret: bool
    scope: str  # "environment" or "target"


def secret_fingerprint(value: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()
    return f"(secret {digest[:12]})"


def _merged(rows: Iterable[EnvironmentVariable], reveal: bool) -> list[Variable]:
    chosen: dict[str, Variable] = {}
    for row in sorted(rows, key=lambda r: r.target_id is not None):  # targets last: they win
        secret = plaintext(row.secret_value)
        value = secret if reveal else secret_fingerprint(secret)
        chosen[row.name] = Variable(
            row.name,
            value if row.is_secret else row.value,
            row.is_secret,
            "target" if row.target_id else "environment",
        )
    return [chosen[name] for name in sorted(chosen)]


def target_variables(target: DeploymentTarget, *, reveal: bool = False) -> list[Variable]:
    rows = EnvironmentVariable.objects.filter(
        Q(target__isnull=True) | Q(target_id=target.pk), environment_id=target.environment_id
    )
    return _merged(rows, reveal)


def variables_by_target(targets: list[DeploymentTarget]) -> dict[int, list[Variable]]:
    """Per target id, its variables (shown values), in one query."""
    environment_ids = {t.environment_id for t in targets}
    target_ids = {t.pk for t in targets}
    rows = [
        row
        for row in EnvironmentVariable.objects.filter(environment_id__in=environment_ids)
        if row.target_id is None or row.target_id in target_ids
    ]
    return {
        t.pk: _merged(
            (
                r
                for r in rows
                if r.environment_id == t.environment_id and r.target_id in (None, t.pk)
            ),
            reveal=False,
        )
        for t in targets
    }


def variable_values(target: DeploymentTarget, *, reveal: bool) -> dict:
    """The chart values layer for the target's variables (empty when the service opts out)."""
    service = target.service
    if not service.env_values_key:
        return {}
    variables = target_variables(target, reveal=reveal)
    plain = {v.name: v.value for v in variables if not v.is_secret}
    secret = {v.name: v.value for v in variables if v.is_secret}
    if not service.secret_env_values_key:
        plain |= secret
        secret = {}
    layer = {service.env_values_key: plain} if plain else {}
    if secret:
        layer[service.secret_env_values_key] = secret
    return layer


# -- links ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    name: str
    url: str


def render_link(template: str, **values: str) -> str:
    """Fill the placeholders, each value URL-quoted; a placeholder with no value yet (no
    release runs there) leaves the link out (KeyError). Never `str.format`: a template
    saved before the validation existed may hold a format spec."""
    return LINK_PLACEHOLDER_RE.sub(lambda m: quote(str(values[m.group(1)]), safe=":@"), template)


def target_links(
    links: list[EnvironmentLink], *, service_slug: str, environment_slug: str, target, release=None
) -> list[Link]:
    """The environment's links for the service there; `release` fills {release} and
    {digest} (links needing them are left out when nothing runs)."""
    values = {
        "service": service_slug,
        "namespace": target.namespace,
        "environment": environment_slug,
    }
    if release is not None:
        values |= {"release": str(release.pk), "digest": release.image_digest}
    made = []
    for link in links:
        if link.environment_id != target.environment_id:
            continue
        try:
            # A template saved before the rules existed is shown only if it keeps them.
            validate_link_template(link.url_template)
        except ValidationError:
            continue
        try:
            made.append(Link(link.name, render_link(link.url_template, **values)))
        except KeyError:
            continue  # needs {release}/{digest} and nothing runs there yet
    return made


def links_by_environment(environment_ids: Iterable[int]) -> list[EnvironmentLink]:
    return list(EnvironmentLink.objects.filter(environment_id__in=list(environment_ids)))
