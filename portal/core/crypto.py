"""Encryption at rest for secrets (kubeconfigs, Jenkins tokens).

Keys come from SLIPWAY_ENCRYPTION_KEYS, newest first. MultiFernet encrypts with the
first key and decrypts with any of them, so a key is rotated by putting a new one in
front and running `manage.py rotate_secrets` before dropping the old one.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

from portal.core.logs import remember_secret


class SecretUnreadable(Exception):
    """A stored secret could not be decrypted with any configured key."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.SLIPWAY_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        plaintext = fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("secret cannot be decrypted with SLIPWAY_ENCRYPTION_KEYS") from exc
    remember_secret(plaintext)  # masked in every log line from now on
    return plaintext


def rotate(token: str) -> str:
    """Re-encrypt a stored token with the newest key."""
    return fernet().rotate(token.encode()).decode()


class Secret:
    """A decrypted value that does not show itself in reprs, logs or templates."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __str__(self) -> str:
        return "********" if self._value else ""

    __repr__ = __str__


def plaintext(value: Secret | str | None) -> str:
    """A field's value as text, whether read back (a `Secret`) or just assigned (a `str`)."""
    if isinstance(value, Secret):
        return value.reveal()
    return "" if value is None else str(value)


class EncryptedTextField(models.TextField):
    """A text column holding Fernet ciphertext; Python sees a `Secret`.

    Assign a plain `str` (or a `Secret`); it is encrypted on save. The database never
    sees the plaintext.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return Secret("")
        return Secret(decrypt(value))

    def to_python(self, value):
        if isinstance(value, Secret) or value is None:
            return value
        return Secret(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        plaintext = value.reveal() if isinstance(value, Secret) else str(value)
        return encrypt(plaintext) if plaintext else ""

    def value_to_string(self, obj):
        # Serialization (dumpdata) never carries the plaintext.
        return ""
