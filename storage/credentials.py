"""Storage credentials at rest: Fernet (cryptography) under ARV_CREDENTIALS_KEYS.

The first key encrypts; every key decrypts, so a key is rotated by putting a new one
first and running `manage.py rotate_credentials`. A key derived from DJANGO_SECRET_KEY
is always the last one that decrypts, and the one that encrypts when no key is set.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def derived_key(secret_key: str) -> bytes:
    """A Fernet key from DJANGO_SECRET_KEY (HKDF-SHA256): the default when no key is configured."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"arv storage credentials")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except ValueError:
            raise ImproperlyConfigured(
                f"ARV_CREDENTIALS_KEYS: key {position} is not a Fernet key (32 url-safe base64-encoded bytes;"
                ' make one with: python -c "from cryptography.fernet import Fernet;'
                ' print(Fernet.generate_key().decode())")'
            ) from None
    fernets.append(Fernet(derived_key(secret_key)))
    return MultiFernet(fernets)


def credentials_fernet() -> MultiFernet:
    return _fernet(tuple(settings.CREDENTIALS_KEYS), settings.SECRET_KEY)


def encrypt(credentials: dict[str, Any]) -> str:
    return credentials_fernet().encrypt(json.dumps(credentials).encode()).decode()


class UnreadableCredentials(ImproperlyConfigured):
    """Stored credentials that none of the configured keys decrypts."""


def decrypt(token: str) -> dict[str, Any]:
    try:
        return json.loads(credentials_fernet().decrypt(token.encode()))
    except InvalidToken:
        # Never the token or any part of it in the message.
        raise UnreadableCredentials(
            "Stored storage credentials cannot be decrypted with any of ARV_CREDENTIALS_KEYS (or the key"
            " derived from DJANGO_SECRET_KEY): a key that encrypted them was removed or changed."
        ) from None


class EncryptedCredentials:
    """Credentials as loaded from the database: still ciphertext, decrypted only by `decrypted()`.

    Like a FileField's FieldFile, the model attribute is a handle, not the content: listing,
    showing or saving a connection never decrypts (so a row under a removed key breaks no page),
    and saving it unchanged writes the same ciphertext back.
    """

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def decrypted(self) -> dict[str, Any]:
        """The credentials; UnreadableCredentials if no configured key decrypts them."""
        return decrypt(self.token)

    def __eq__(self, other: object) -> bool:  # the same ciphertext; never decrypted to compare
        if not isinstance(other, EncryptedCredentials):
            return NotImplemented
        return self.token == other.token

    def __hash__(self) -> int:
        return hash(self.token)

    def __repr__(self) -> str:
        return "<EncryptedCredentials>"  # never the token


def decrypted(value: dict[str, Any] | EncryptedCredentials | None) -> dict[str, Any]:
    """A credentials attribute's content: a dict set in Python as is, a loaded one decrypted."""
    if isinstance(value, EncryptedCredentials):
        return value.decrypted()
    return dict(value or {})
