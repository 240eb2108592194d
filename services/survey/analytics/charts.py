"""The dashboard's charts as inline SVG, drawn on the server: nothing to download, no JavaScript.

Each function takes plain figures and returns markup; every text in it is escaped (segment values and key
phrases come from customers and CRMs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PROMOTER = "#1a7f4b"
PASSIVE = "#9aa4ae"
DETRACTOR = "#c0392b"
ACCENT = "#0b5cad"
BAND = "#cfe0f5"
GRID = "#e1e5ea"
INK = "#1b1f24"
MUTED = "#5f6b76"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


@dataclass(frozen=True)
class Point:
    """One period of the trend: its label, NPS, margin of error and responses."""

    label: str
    nps: float | None
    margin: float | None
    responses: int


@dataclass(frozen=True)
class Bar:
    """One group of a bar chart: its label, NPS, margin of error, responses and response rate."""

    label: str
    nps: float | None
    margin: float | None
    responses: int
    response_rate: float | None = None


def _svg(width: int, height: int, title: str, body: list[str], stretch: bool = False) -> Markup:
    # Drawn at its own size (text stays readable), narrowed by CSS on a small screen; a stretched chart
    # (the trend) fills its card's width instead.
    size = 'width="100%"' if stretch else f'width="{width}" height="{height}"'
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" {size} role="img" '
        f'preserveAspectRatio="xMinYMin meet" {FONT} font-size="13">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", fill: str = INK, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" {extra}>{escape(text)}</text>'


def signed(value: float) -> str:
    """An NPS as people read it: +20, -6.5, 0."""
    text = f"{value:.1f}".removesuffix(".0")
    return ("+" + text) if value > 0 else text


def _nps_axis(low: float, high: float) -> tuple[float, float]:
    """A y range in tens around low..high, always showing 0, within -100..100."""
    low, high = min(low, 0.0), max(high, 0.0)
    low = max(-100.0, math.floor(low / 10) * 10 - (10 if low > -100 else 0))
    high = min(100.0, math.ceil(high / 10) * 10 + (10 if high < 100 else 0))
    return low, high


def trend(points: Sequence[Point], width: int = 1100, height: int = 300) -> Markup:
    """NPS per period as a line, its 95% margin of error as a band around it."""
    known = [p for p in points if p.nps is not None]
    title = "NPS over time with its 95% margin of error"
    if not known:
        return _svg(width, 60, title, [_text(10, 35, "No responses in this range.", fill=MUTED)])
    low, high = _nps_axis(
        min(p.nps - (p.margin or 0) for p in known), max(p.nps + (p.margin or 0) for p in known)
    )
    left, right, top, bottom = 48, 40, 26, 44
    plot_w, plot_h = width - left - right, height - top - bottom

    inset = 24  # the first and last points clear of the axis labels

    def x(i: int) -> float:
        if len(points) == 1:
            return left + plot_w / 2
        return left + inset + (plot_w - 2 * inset) * i / (len(points) - 1)

    def y(value: float) -> float:
        return top + plot_h * (high - max(low, min(high, value))) / (high - low)

    body = []
    step = 20 if high - low > 100 else 10
    tick = math.ceil(low / step) * step  # multiples of the step, so that 0 is one of them
    while tick <= high:
        line_color = MUTED if tick == 0 else GRID
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="{line_color}" stroke-width="1"/>'
        )
        body.append(_text(left - 6, y(tick) + 4, signed(tick), "end", MUTED, 'font-size="14"'))
        tick += step
    indexed = [(i, p) for i, p in enumerate(points) if p.nps is not None]
    upper = [f"{x(i):.1f},{y(p.nps + (p.margin or 0)):.1f}" for i, p in indexed]
    lower = [f"{x(i):.1f},{y(p.nps - (p.margin or 0)):.1f}" for i, p in reversed(indexed)]
    body.append(f'<polygon points="{" ".join(upper + lower)}" fill="{BAND}" opacity="0.8"/>')
    line = " ".join(f"{x(i):.1f},{y(p.nps):.1f}" for i, p in indexed)
    body.append(f'<polyline points="{line}" fill="none" stroke="{ACCENT}" stroke-width="2.5"/>')
    label_every = max(1, math.ceil(len(points) / 10))
    for i, point in enumerate(points):
        if i % label_every == 0 or i == len(points) - 1:
            body.append(_text(x(i), height - bottom + 18, point.label, "middle", MUTED, 'font-size="14"'))
        if point.nps is None:
            continue
        tip = f"{point.label}: NPS {signed(point.nps)} ±{point.margin or 0:.1f}, {point.responses} responses"
        body.append(
            f'<circle cx="{x(i):.1f}" cy="{y(point.nps):.1f}" r="4" fill="{ACCENT}">'
            f"<title>{escape(tip)}</title></circle>"
        )
        if len(points) <= 16:
            body.append(
                _text(
                    x(i),
                    y(point.nps) - 10,
                    signed(point.nps),
                    "middle",
                    INK,
                    'font-weight="600" font-size="15"',
                )
            )
    body.append(
        _text(
            left,
            height - 6,
            "Shaded: 95% margin of error. Each point: one period's answers.",
            fill=MUTED,
            extra='font-size="14"',
        )
    )
    return _svg(width, height, title, body, stretch=True)


def nps_bars(bars: Sequence[Bar], title: str, width: int = 540) -> Markup:
    """NPS per group as bars left (negative) or right (positive) of zero, with the margin as a whisker."""
    if not bars:
        return _svg(width, 40, title, [_text(8, 25, "No responses in this range.", fill=MUTED)])
    row, label_w, value_w = 34, 120, 150
    height = row * len(bars) + 26
    plot_left, plot_right = label_w, width - value_w
    zero = (plot_left + plot_right) / 2
    # The scale reaches the farthest whisker, in quarters of 100: small differences stay visible.
    farthest = (
        max(abs(bar.nps) + (bar.margin or 0) for bar in bars if bar.nps is not None)
        if any(bar.nps is not None for bar in bars)
        else 100.0
    )
    reach = min(100.0, max(25.0, math.ceil(farthest / 25) * 25))

    def x(value: float) -> float:
        return zero + (plot_right - plot_left) / 2 * max(-reach, min(reach, value)) / reach

    body = []
    for tick in (-reach, -reach / 2, reach / 2, reach):
        body.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="4" y2="{height - 20}" stroke="{GRID}"/>'
        )
    body += [
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="4" y2="{height - 20}" stroke="{MUTED}"/>',
        _text(plot_left, height - 6, signed(-reach), "start", MUTED, 'font-size="11"'),
        _text(zero, height - 6, "0", "middle", MUTED, 'font-size="11"'),
        _text(plot_right, height - 6, signed(reach), "end", MUTED, 'font-size="11"'),
    ]
    for n, bar in enumerate(bars):
        top = 4 + n * row
        middle = top + row / 2
        body.append(_text(label_w - 8, middle + 4, _short(bar.label, 18), "end"))
        if bar.nps is None:
            body.append(_text(plot_right + 8, middle + 4, "no responses", fill=MUTED))
            continue
        color = PROMOTER if bar.nps > 0 else DETRACTOR if bar.nps < 0 else PASSIVE
        start, end = sorted((zero, x(bar.nps)))
        body.append(
            f'<rect x="{start:.1f}" y="{top + 7}" width="{max(end - start, 2):.1f}" height="{row - 14}" '
            f'rx="2" fill="{color}"><title>{escape(bar.label)}: NPS {signed(bar.nps)}</title></rect>'
        )
        if bar.margin:
            lo, hi = x(bar.nps - bar.margin), x(bar.nps + bar.margin)
            body.append(
                f'<path d="M{lo:.1f} {middle:.1f}H{hi:.1f}M{lo:.1f} {middle - 6:.1f}v12M{hi:.1f} '
                f'{middle - 6:.1f}v12" stroke="{INK}" stroke-width="1.3" fill="none" opacity="0.75"/>'
            )
        value = f"{signed(bar.nps)} ±{bar.margin or 0:.1f}"
        body.append(_text(plot_right + 8, middle + 4, value, extra='font-weight="600"'))
        body.append(_text(width - 4, middle + 4, f"n={bar.responses}", "end", MUTED, 'font-size="12"'))
    return _svg(width, height, title, body)


def rate_bars(bars: Sequence[Bar], title: str, width: int = 540) -> Markup:
    """Response rate per group, 0 to 100%."""
    known = [bar for bar in bars if bar.response_rate is not None]
    if not known:
        return _svg(width, 40, title, [_text(8, 25, "No invitations in this range.", fill=MUTED)])
    row, label_w, value_w = 30, 130, 70
    height = row * len(known) + 8
    plot_w = width - label_w - value_w
    body = []
    for n, bar in enumerate(known):
        top = 4 + n * row
        rate = bar.response_rate or 0.0
        body.append(_text(label_w - 8, top + row / 2 + 4, _short(bar.label, 18), "end"))
        body.append(
            f'<rect x="{label_w}" y="{top + 6}" width="{plot_w}" height="{row - 12}" rx="2" fill="{GRID}"/>'
        )
        body.append(
            f'<rect x="{label_w}" y="{top + 6}" width="{plot_w * min(rate, 1.0):.1f}" height="{row - 12}" '
            f'rx="2" fill="{ACCENT}"/>'
        )
        body.append(
            _text(width - 4, top + row / 2 + 4, f"{rate * 100:.0f}%", "end", extra='font-weight="600"')
        )
    return _svg(width, height, title, body)


def stacked(parts: Sequence[tuple[str, int, str]], title: str, width: int = 540) -> Markup:
    """One bar split by share (label, count, colour), with a legend of counts and percentages."""
    total = sum(count for _, count, _ in parts)
    if not total:
        return _svg(width, 40, title, [_text(8, 25, "No responses in this range.", fill=MUTED)])
    body, x = [], 0.0
    for label, count, color in parts:
        share = width * count / total
        if share > 0:
            body.append(
                f'<rect x="{x:.1f}" y="4" width="{share:.1f}" height="28" fill="{color}">'
                f"<title>{escape(label)}: {count}</title></rect>"
            )
            if share > 42:
                body.append(
                    _text(
                        x + share / 2,
                        23,
                        f"{100 * count / total:.0f}%",
                        "middle",
                        "#fff",
                        'font-weight="600"',
                    )
                )
        x += share
    legend_y, column = 54, 0
    per_row = 3
    for n, (label, count, color) in enumerate(parts):
        column, line = n % per_row, n // per_row
        lx, ly = column * (width / per_row), legend_y + line * 22
        body.append(f'<rect x="{lx:.1f}" y="{ly - 10}" width="12" height="12" rx="2" fill="{color}"/>')
        body.append(_text(lx + 18, ly, f"{_short(label, 18)} {count} ({100 * count / total:.0f}%)"))
    height = legend_y + ((len(parts) - 1) // per_row) * 22 + 10
    return _svg(width, height, title, body)


def count_bars(
    rows: Sequence[tuple[str, int]], title: str, width: int = 540, color: str = DETRACTOR
) -> Markup:
    """Counts per label, longest first (key phrases)."""
    if not rows:
        return _svg(
            width, 40, title, [_text(8, 25, "No key phrases in detractors' comments yet.", fill=MUTED)]
        )
    row, label_w, value_w = 28, 190, 40
    most = max(count for _, count in rows)
    plot_w = width - label_w - value_w
    body = []
    for n, (label, count) in enumerate(rows):
        top = 4 + n * row
        body.append(_text(label_w - 8, top + row / 2 + 4, _short(label, 26), "end"))
        body.append(
            f'<rect x="{label_w}" y="{top + 6}" width="{max(plot_w * count / most, 2):.1f}" '
            f'height="{row - 12}" rx="2" fill="{color}" opacity="0.85"/>'
        )
        body.append(_text(width - 4, top + row / 2 + 4, str(count), "end", extra='font-weight="600"'))
    return _svg(width, row * len(rows) + 8, title, body)


def _short(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
