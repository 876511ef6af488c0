"""A registry as the registry door takes it: its credentials decrypted here, in the worker
or request that checks an image, and handed over as plain values."""

from __future__ import annotations

from doors.registry import RegistryAccess
from portal.catalog.models import Registry
from portal.core.crypto import plaintext


def registry_access(registry: Registry) -> RegistryAccess:
    return RegistryAccess(
        name=registry.name,
        url=registry.url,
        username=registry.username,
        password=plaintext(registry.password),
        ca_certificate=registry.ca_certificate,
        timeout_seconds=registry.timeout_seconds,
    )
