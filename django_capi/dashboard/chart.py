"""A bar chart drawn on the server as inline SVG: no JavaScript, no external resources."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

__all__ = ["Series", "nice_ceiling", "render_bar_chart"]


@dataclass(frozen=True)
class Series:
    """One series of bars: its key (used in CSS classes and ``data-series``), label, colour."""

    key: str
    label: str
    color: str


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (min 4)."""
    if value <= 4:
        return 4
    magnitude = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        top = step * magnitude
        if top >= value:
            return math.ceil(top)
    return int(10 * magnitude)  # pragma: no cover  (the loop always returns)


def render_bar_chart(
    starts: Sequence[datetime],
    values: dict[str, Sequence[int]],
    series: Sequence[Series],
    *,
    title: str,
    label_every: int = 1,
    label_format: Callable[[datetime], str] | None = None,
    width: int = 760,
    height: int = 260,
) -> SafeString:
    """Grouped bars, one group per time bucket, as an ``<svg>`` element.

    ``values[series.key][i]`` is the bar of ``series`` in the bucket starting at
    ``starts[i]``. Every bar carries ``data-series``, ``data-value`` and a ``<title>``
    tooltip; the chart has a legend, a y axis with four steps and a text alternative.
    """
    fmt = label_format or (lambda moment: timezone.localtime(moment).strftime("%H:%M"))
    left, right, top, bottom = 48, 12, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(1, len(starts))
    peak = max((max(values[s.key], default=0) for s in series), default=0)
    y_max = nice_ceiling(peak)
    slot = plot_w / count
    bar_w = max(1.0, slot * 0.8 / max(1, len(series)))

    def y(value: int) -> float:
        return top + plot_h - plot_h * value / y_max

    parts: list[str] = []
    for step in range(5):
        value = y_max * step // 4
        parts.append(
            format_html(
                '<line class="capi-grid" x1="{}" x2="{}" y1="{}" y2="{}" stroke="#8884" />'
                '<text x="{}" y="{}" text-anchor="end" font-size="11" '
                'fill="currentColor">{}</text>',
                left,
                width - right,
                _n(y(value)),
                _n(y(value)),
                left - 6,
                _n(y(value) + 4),
                value,
            )
        )
    for i, start in enumerate(starts):
        x0 = left + slot * i + slot * 0.1
        for j, s in enumerate(series):
            value = int(values[s.key][i])
            bar_top = y(value)
            parts.append(
                format_html(
                    '<rect class="capi-bar capi-bar-{}" data-series="{}" data-value="{}" '
                    'x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{} {}: {}</title></rect>",
                    s.key,
                    s.key,
                    value,
                    _n(x0 + bar_w * j),
                    _n(bar_top),
                    _n(bar_w),
                    _n(top + plot_h - bar_top),
                    s.color,
                    fmt(start),
                    s.label,
                    value,
                )
            )
        if i % max(1, label_every) == 0:
            parts.append(
                format_html(
                    '<text class="capi-xlabel" x="{}" y="{}" text-anchor="middle" '
                    'font-size="11" fill="currentColor">{}</text>',
                    _n(left + slot * i + slot / 2),
                    height - bottom + 16,
                    fmt(start),
                )
            )
    legend = format_html_join(
        "",
        '<rect x="{}" y="8" width="12" height="12" fill="{}" />'
        '<text x="{}" y="18" font-size="12" fill="currentColor">{}</text>',
        ((left + 120 * k, s.color, left + 120 * k + 16, s.label) for k, s in enumerate(series)),
    )
    totals = ", ".join(f"{s.label}: {sum(values[s.key])}" for s in series)
    return format_html(
        '<svg class="capi-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" '
        'width="100%" role="img" aria-labelledby="capi-chart-title capi-chart-desc">'
        '<title id="capi-chart-title">{}</title><desc id="capi-chart-desc">{}</desc>'
        '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="currentColor" />{}{}</svg>',
        width,
        height,
        title,
        totals,
        left,
        width - right,
        top + plot_h,
        top + plot_h,
        legend,
        mark_safe("".join(parts)),  # noqa: S308  (every part was built with format_html)
    )


def _n(value: float) -> str:
    """A coordinate with at most one decimal."""
    return escape(f"{value:.1f}".rstrip("0").rstrip("."))
