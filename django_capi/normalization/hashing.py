"""SHA-256 helpers for the customer information Meta wants hashed."""

from __future__ import annotations

import hashlib
import re

__all__ = ["is_sha256_hex", "sha256_hex"]

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def sha256_hex(value: str) -> str:
    """Return the lowercase hex SHA-256 digest of ``value``'s UTF-8 bytes."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_sha256_hex(value: str) -> bool:
    """Tell whether ``value`` is exactly 64 hex digits (either case), i.e. already hashed."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None
