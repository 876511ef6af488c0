"""What the catalog's fields accept: host URLs, DNS labels and namespace patterns, variable
names, link templates, and the namespaces no target may use."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

# Django's URLValidator wants a dotted host, but in-cluster and compose hosts often have
# none (http://jenkins:8080/), so any http(s) host is accepted.
http_url = RegexValidator(r"^https?://[^\s/?#]+(/\S*)?$", "Enter an http:// or https:// URL.")

dns_label = RegexValidator(
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "Use lowercase letters, digits and '-', starting and ending with a letter or digit.",
)


def system_namespace(namespace: str) -> bool:
    """kube-system and its kind (SLIPWAY_SYSTEM_NAMESPACES): never a target's."""
    return any(fnmatchcase(namespace, pattern) for pattern in settings.SLIPWAY_SYSTEM_NAMESPACES)


namespace_pattern = RegexValidator(
    r"^[a-z0-9*]([-a-z0-9*]{0,61}[a-z0-9*])?$",
    "A namespace or a pattern of one: lowercase letters, digits, '-' and '*' (any characters), "
    "e.g. shop-*.",
)


ENV_NAME = RegexValidator(
    r"^[A-Za-z_][A-Za-z0-9_.-]*$", "A variable name: letters, digits, _ . - (not first)."
)
LINK_PLACEHOLDERS = ("service", "namespace", "environment", "release", "digest")
# A link template holds plain `{name}` placeholders and nothing else in braces: no format
# spec (`{service:>999999999}` would allocate a gigabyte per render), no attribute or index.
LINK_PLACEHOLDER_RE = re.compile(r"\{([a-z]+)\}")


def validate_link_template(template: str) -> None:
    if not re.match(r"^https?://[^\s/?#{}]", template, re.I):
        raise ValidationError("A link starts with http:// or https:// and a host.")
    bare = LINK_PLACEHOLDER_RE.sub("", template)
    if "{" in bare or "}" in bare:
        raise ValidationError(
            "Use plain placeholders only, such as {service}: no format, attribute or index."
        )
    unknown = sorted(set(LINK_PLACEHOLDER_RE.findall(template)) - set(LINK_PLACEHOLDERS))
    if unknown:
        raise ValidationError(
            f"Unknown placeholder {', '.join('{' + f + '}' for f in unknown)}; use "
            + ", ".join("{" + p + "}" for p in LINK_PLACEHOLDERS)
        )
