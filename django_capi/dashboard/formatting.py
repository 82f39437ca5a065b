"""Small formatting helpers shared by the dashboard, the admin and the commands."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

__all__ = ["STATUS_COLORS", "format_duration", "percent"]

STATUS_COLORS: Final[dict[str, str]] = {
    "pending": "#2f6fb5",
    "sending": "#7a4fc4",
    "sent": "#2e7d32",
    "failed": "#c62828",
    "expired": "#d35400",
    "discarded": "#616161",
}
"""Badge colours by event status (white text reads on each, in light and dark themes)."""


def format_duration(value: timedelta | None) -> str:
    """``"45 s"``, ``"12 min"``, ``"3 h 5 min"``, ``"2 d 4 h"``; ``"-"`` for None."""
    if value is None:
        return "-"
    seconds = max(0, int(value.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def percent(part: int, whole: int) -> int:
    """``part`` as a whole percentage of ``whole`` (0 when ``whole`` is 0)."""
    return round(100 * part / whole) if whole else 0
