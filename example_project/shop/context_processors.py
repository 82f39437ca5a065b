from typing import Any

from django.http import HttpRequest

from . import cart
from .consent import consent_decided


def shop(request: HttpRequest) -> dict[str, Any]:
    return {
        "consent_decided": consent_decided(request),
        "cart_count": sum(cart.items(request).values()),
    }
