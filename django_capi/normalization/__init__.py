"""Normalization of event data before it is stored and sent to Meta.

The ``user_data`` helpers are re-exported here; see :mod:`.user_data` and :mod:`.hashing`.
"""

from .hashing import is_sha256_hex, sha256_hex
from .user_data import (
    HASHED_KEYS,
    UNHASHED_KEYS,
    USER_DATA_ALIASES,
    NormalizationWarning,
    NormalizedUserData,
    normalize_city,
    normalize_country,
    normalize_date_of_birth,
    normalize_email,
    normalize_external_id,
    normalize_gender,
    normalize_name,
    normalize_phone,
    normalize_state,
    normalize_user_data,
    normalize_zip,
)

__all__ = [
    "HASHED_KEYS",
    "UNHASHED_KEYS",
    "USER_DATA_ALIASES",
    "NormalizationWarning",
    "NormalizedUserData",
    "is_sha256_hex",
    "normalize_city",
    "normalize_country",
    "normalize_date_of_birth",
    "normalize_email",
    "normalize_external_id",
    "normalize_gender",
    "normalize_name",
    "normalize_phone",
    "normalize_state",
    "normalize_user_data",
    "normalize_zip",
    "sha256_hex",
]
