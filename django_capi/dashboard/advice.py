"""What staff should do about an error, a paused dataset or weak customer information.

Error codes and their meaning come from the contract (/work/shared/capi-contract.md,
"Responses"); match-key advice paraphrases Meta's Event Match Quality guidance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from django.utils.translation import gettext_lazy as _

from django_capi.transports.base import (
    AUTH_CODE_SUBCODES,
    AUTH_CODES,
    PERMISSION_CODES,
    THROTTLE_CODES,
    TRANSIENT_CODES,
)

__all__ = [
    "ERROR_TITLES",
    "MATCH_KEYS",
    "MatchKey",
    "error_advice",
    "error_label",
    "estimate_match_quality",
    "lag_advice",
    "pause_advice",
    "quality_label",
    "throttle_advice",
]

TOKEN_CODES: Final = frozenset({190, 102})

ERROR_TITLES: Final[dict[tuple[int, int | None], str]] = {
    (1, None): "Unknown error (transient)",
    (2, None): "Service temporarily unavailable",
    (4, None): "Application request limit reached",
    (10, None): "Permission denied",
    (17, None): "User request limit reached",
    (32, None): "Page request limit reached",
    (100, None): "Invalid parameter",
    (100, 33): "Dataset does not exist or the token cannot access it",
    (100, 2804003): "Event timestamp too old",
    (100, 2804009): "Missing value for Purchase",
    (100, 2804016): "User parameter not hashed",
    (102, None): "Session key invalid",
    (190, None): "Invalid or expired access token",
    (341, None): "Application limit reached (transient)",
    (613, None): "Rate limit reached",
}
"""Short names of the Graph API error codes django_capi meets; ``None`` means any subcode."""


def error_label(code: int | None, subcode: int | None = None) -> str:
    """``"100/2804016 User parameter not hashed"``; ``""`` when there is no code."""
    if code is None:
        return ""
    number = f"{code}/{subcode}" if subcode else str(code)
    title = ERROR_TITLES.get((code, subcode)) or ERROR_TITLES.get((code, None))
    if title is None and code in PERMISSION_CODES:
        title = "Permission missing"
    return f"{number} {title}" if title else number


def error_advice(code: int | None, subcode: int | None = None, status: str = "") -> str:
    """What to do about events that failed (or are retrying) with this error."""
    if code is None:
        if status == "expired":
            return str(
                _(
                    "Not sent before Meta's age limit (7 days, 62 for physical stores). Keep "
                    "the workers and the periodic django_capi.deliver_due task running; these "
                    "events cannot be sent any more."
                )
            )
        return str(
            _(
                "Rejected before sending (validation) or no answer from Meta. For validation "
                "errors fix the integration so it passes the fields named; such events are "
                "never sent."
            )
        )
    if code in AUTH_CODES or code in PERMISSION_CODES or (code, subcode) in AUTH_CODE_SUBCODES:
        return pause_advice(code, subcode)
    if code in THROTTLE_CODES:
        return str(_("Rate limited by Meta: delivery backs off and retries by itself."))
    if code in TRANSIENT_CODES:
        return str(_("A temporary problem at Meta: retried automatically with back-off."))
    if (code, subcode) == (100, 2804003):
        return str(
            _(
                "Send events within 7 days, ideally within an hour: check that the workers "
                "keep up and that event_time is the time of the action."
            )
        )
    if (code, subcode) == (100, 2804009):
        return str(_("Purchase events need custom_data value and currency: pass them."))
    if (code, subcode) == (100, 2804016):
        return str(
            _(
                "A customer-information value reached Meta unhashed: pass contact data under "
                "its documented key (em, ph, ...) so that django_capi hashes it."
            )
        )
    if code == 100:
        return str(
            _(
                "Meta refused the event's content: read the message, fix the data the "
                "integration passes, then record the event again. Retrying unchanged fails."
            )
        )
    return str(_("Look the code up in Meta's Marketing API error reference."))


def pause_advice(code: int | None, subcode: int | None = None) -> str:
    """What to do about a dataset paused by a token or permission error."""
    if code in TOKEN_CODES:
        return str(
            _(
                "The access token is invalid or expired: generate a new one in Events Manager "
                "(Settings, Conversions API) and deploy it as CAPI ACCESS_TOKEN (or the "
                "dataset's DATASETS entry). Delivery resumes by itself once the new token is "
                "in use; pending events are kept."
            )
        )
    if code == 100 and subcode == 33:
        return str(
            _(
                "The dataset id does not exist or the token cannot access it: check the id "
                "and give the token's system user access to the dataset. Delivery is retried "
                "every PAUSE_PROBE_INTERVAL seconds and resumes by itself; events are kept."
            )
        )
    return str(
        _(
            "The token lacks a permission for this dataset: grant it to the system user "
            "(Business settings, Datasets) or replace the token. Delivery is retried every "
            "PAUSE_PROBE_INTERVAL seconds and resumes by itself; pending events are kept."
        )
    )


def throttle_advice() -> str:
    """What to do about a throttled dataset."""
    return str(
        _(
            "Meta is rate-limiting this dataset: delivery backs off and resumes by itself. If "
            "it lasts, send fewer, larger requests (BATCH_SIZE, MAX_PARALLEL_TASKS)."
        )
    )


def lag_advice() -> str:
    """What to do when due events are not being sent."""
    return str(
        _(
            "Events are due but nothing sends them: check that the Celery workers run and "
            "that the periodic django_capi.deliver_due task is scheduled (or run manage.py "
            "capi_deliver)."
        )
    )


@dataclass(frozen=True)
class MatchKey:
    """One customer-information signal counted for match quality.

    ``keys`` must all be present in ``user_data`` for an event to count as carrying it.
    ``weight`` is its share of the estimated score (the weights add up to 10).
    """

    name: str
    label: str
    keys: tuple[str, ...]
    weight: float
    advice: str


MATCH_KEYS: Final[tuple[MatchKey, ...]] = (
    MatchKey(
        "em",
        "em",
        ("em",),
        3.0,
        "Send the customer's email with every event where it is known (checkout, login, "
        "sign-up); django_capi normalizes and hashes it.",
    ),
    MatchKey(
        "ph",
        "ph",
        ("ph",),
        2.0,
        "Send the phone number together with the country (or DEFAULT_COUNTRY), so that it "
        "gets its calling code.",
    ),
    MatchKey(
        "name",
        "fn + ln",
        ("fn", "ln"),
        0.5,
        "Send first and last name (fn, ln) when the customer gave them.",
    ),
    MatchKey(
        "external_id",
        "external_id",
        ("external_id",),
        1.0,
        "Send a stable customer id as external_id, the same value the pixel gets, for "
        "customers who are logged in.",
    ),
    MatchKey(
        "ip_ua",
        "IP + user agent",
        ("client_ip_address", "client_user_agent"),
        1.5,
        "Pass the request to track() so the client IP address and user agent are sent; behind "
        "a reverse proxy, list it in TRUSTED_PROXIES. For events recorded later (webhooks, "
        "tasks), store them with the order.",
    ),
    MatchKey(
        "fbp",
        "fbp",
        ("fbp",),
        1.0,
        "Keep the _fbp browser id: load the pixel or let django_capi set the cookie "
        "(SET_BROWSER_COOKIES), pass the request, and store fbp with the order for later "
        "events.",
    ),
    MatchKey(
        "fbc",
        "fbc",
        ("fbc",),
        1.0,
        "Keep the click id of ad clicks: the _fbc cookie, built server-side from ?fbclid= "
        "when missing; store it with the order for later events.",
    ),
)
"""The signals Meta names as strongest for Event Match Quality, with estimate weights."""


def estimate_match_quality(shares: dict[str, float]) -> float:
    """Estimated match quality (0-10) from the share (0-1) of events carrying each signal.

    ``score = sum(weight[k] * share[k])`` over :data:`MATCH_KEYS` (weights: em 3, ph 2,
    IP + user agent 1.5, external_id 1, fbp 1, fbc 1, fn + ln 0.5). Equivalently, the
    average over events of the weights of the signals each event carries. This is an
    estimate: Meta does not publish its formula; Events Manager shows the real score.
    """
    score = sum(key.weight * min(1.0, max(0.0, shares.get(key.name, 0.0))) for key in MATCH_KEYS)
    return round(score, 1)


def quality_label(score: float) -> str:
    """Events Manager's words for a score: Poor (<4), OK (<6), Good (<8), Great."""
    if score < 4:
        return "Poor"
    if score < 6:
        return "OK"
    if score < 8:
        return "Good"
    return "Great"
