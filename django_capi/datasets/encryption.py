"""Access tokens at rest: Fernet encryption with key rotation.

Keys come from ``CAPI["ENCRYPTION_KEYS"]``, a list of Fernet keys (``generate_key()``): the
first encrypts, every one decrypts, so a new key is put first, ``manage.py
capi_rotate_tokens`` re-encrypts every stored token with it, and the old key is then removed.
Without that setting the keys are derived from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``
(HKDF-SHA256), which works out of the box but ties the tokens to the secret key: the deploy
check ``django_capi.W006`` recommends keys of their own.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from django_capi import conf

__all__ = [
    "TokenDecryptionError",
    "decrypt_token",
    "encrypt_token",
    "encryption_keys",
    "generate_key",
    "rotate_token",
]

_HKDF_INFO = b"django_capi access tokens"


class TokenDecryptionError(Exception):
    """A stored token cannot be decrypted with any of the configured keys."""


def generate_key() -> str:
    """A new random key for ``CAPI["ENCRYPTION_KEYS"]``."""
    return Fernet.generate_key().decode()


def _derived_key(secret: str | bytes) -> bytes:
    material = secret.encode() if isinstance(secret, str) else secret
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(material)
    return base64.urlsafe_b64encode(raw)


def encryption_keys() -> list[bytes]:
    """The Fernet keys in use, the encrypting one first.

    Raises ImproperlyConfigured naming the entry of ``CAPI["ENCRYPTION_KEYS"]`` that is not
    a Fernet key.
    """
    configured = conf.get_setting("ENCRYPTION_KEYS")
    if isinstance(configured, str | bytes):
        configured = [configured]
    if configured:
        keys = []
        for position, key in enumerate(configured):
            raw = key.encode() if isinstance(key, str) else key
            try:
                Fernet(raw)
            except (ValueError, TypeError) as exc:
                raise ImproperlyConfigured(
                    f"CAPI['ENCRYPTION_KEYS'][{position}] is not a Fernet key: it must be 32 "
                    "url-safe base64-encoded bytes, as django_capi.datasets.encryption."
                    "generate_key() makes."
                ) from exc
            keys.append(raw)
        return keys
    secrets: Sequence[str | bytes] = [
        settings.SECRET_KEY,
        *getattr(settings, "SECRET_KEY_FALLBACKS", []),
    ]
    return [_derived_key(secret) for secret in secrets if secret]


def _fernet() -> MultiFernet:
    keys = encryption_keys()
    if not keys:
        raise ImproperlyConfigured(
            "No key to encrypt access tokens: set CAPI['ENCRYPTION_KEYS'] (or SECRET_KEY)."
        )
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_token(token: str) -> str:
    """``token`` encrypted with the first key, as text for a database column."""
    return _fernet().encrypt(token.encode()).decode()


def decrypt_token(ciphertext: str) -> str:
    """The token stored as ``ciphertext``; TokenDecryptionError when no key opens it."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError(
            "the stored access token cannot be decrypted with CAPI['ENCRYPTION_KEYS'] (or the "
            "keys derived from SECRET_KEY): was a key removed before capi_rotate_tokens ran?"
        ) from None


def rotate_token(ciphertext: str) -> str:
    """``ciphertext`` re-encrypted with the first key (TokenDecryptionError if unreadable)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError(
            "the stored access token cannot be decrypted with any configured key"
        ) from None
