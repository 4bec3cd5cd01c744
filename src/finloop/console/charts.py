"""Charts drawn on the server as SVG: they need no script, print as they show, and work offline.

Each function takes plain numbers (already exact where they are money: the caller converts minor units
to major for the axis) and returns markup to place in a template.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal

from markupsafe import Markup, escape

PALETTE = ("#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
Number = int | float | Decimal


def _ticks(low: float, high: float) -> list[float]:
    """Round gridline values covering [low, high], zero among them: steps of 1, 2, 2.5 or 5 times a power of ten."""
    span = max(high, 0.0) - min(low, 0.0)
    if span < 1e-9:  # nothing to show, or less than a billionth: a unit axis
        return [0.0, 1.0]
    raw = span / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(min(low, 0.0) / step) * step
    last = math.ceil(max(high, 0.0) / step) * step
    count = round((last - first) / step)
    return [first + step * k for k in range(max(count, 1) + 1)]


def _label(value: float, fmt: Callable[[float], str] | None) -> str:
    if fmt is not None:
        return fmt(value)
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:g}"


def line_chart(series: dict[str, Sequence[tuple[str, Number | None]]], *, title: str = "",
               width: int = 640, height: int = 240, y_format: Callable[[float], str] | None = None,
               y_max: float | None = None) -> Markup:
    """Lines over shared x labels (the first series' labels); a None value leaves a gap."""
    labels = [label for label, _ in next(iter(series.values()), [])]
    values = [float(v) for points in series.values() for _, v in points if v is not None]
    ticks = _ticks(min(values, default=0.0), y_max if y_max is not None else max(values, default=0.0))
    bottom, top = ticks[0], ticks[-1]
    left, right, upper, lower = 56, 12, 24, 28
    plot_w, plot_h = width - left - right, height - upper - lower
    n = max(len(labels), 2)

    def x(i: int) -> float:
        return left + plot_w * i / (n - 1)

    def y(v: float) -> float:
        return upper + plot_h * (top - v) / (top - bottom)

    parts = [_frame(width, height, title)]
    parts += _grid(left, width - right, upper, plot_h, ticks, y_format)
    step = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{height - 8}" class="axis" text-anchor="middle">'
                         f"{escape(label)}</text>")
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        path, pen = [], "M"
        for i, (label, value) in enumerate(points):
            if value is None:
                pen = "M"
                continue
            path.append(f"{pen}{x(i):.1f},{y(float(value)):.1f}")
            pen = "L"
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(float(value)):.1f}" r="2.5" fill="{colour}">'
                         f"<title>{escape(name)} {escape(label)}: {_label(float(value), y_format)}</title></circle>")
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    parts.append(_legend(list(series), left, 14))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it was escaped above


def bar_chart(items: Sequence[tuple[str, Number]], *, title: str = "", width: int = 640, height: int = 240,
              y_format: Callable[[float], str] | None = None, colours: Sequence[str] | None = None) -> Markup:
    """Vertical bars, one per item; negative values hang below the zero line."""
    values = [float(v) for _, v in items]
    ticks = _ticks(min(values, default=0.0), max(values, default=0.0))
    low, high = ticks[0], ticks[-1]
    left, right, upper, lower = 56, 12, 24, 40
    plot_w, plot_h = width - left - right, height - upper - lower

    def y(v: float) -> float:
        return upper + plot_h * (high - v) / (high - low)

    parts = [_frame(width, height, title)]
    parts += _grid(left, width - right, upper, plot_h, ticks, y_format)
    slot = plot_w / max(len(items), 1)
    for i, (label, value) in enumerate(items):
        colour = (colours or PALETTE)[i % len(colours or PALETTE)] if colours else PALETTE[0]
        top, bottom = sorted((y(float(value)), y(0.0)))
        parts.append(f'<rect x="{left + i * slot + slot * 0.15:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{max(bottom - top, 0.5):.1f}" fill="{colour}"><title>{escape(label)}: '
                     f"{_label(float(value), y_format)}</title></rect>")
        parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - lower + 14}" class="axis" '
                     f'text-anchor="middle">{escape(label[:14])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it was escaped above


def _frame(width: int, height: int, title: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
            + (f"<title>{escape(title)}</title>" if title else ""))


def _grid(x0: float, x1: float, upper: float, plot_h: float, ticks: list[float],
          fmt: Callable[[float], str] | None) -> list[str]:
    lines = []
    low, high = ticks[0], ticks[-1]
    for value in ticks:
        y = upper + plot_h * (high - value) / (high - low)
        lines.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        lines.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{_label(value, fmt)}</text>')
    return lines


def _legend(names: list[str], x: float, y: float) -> str:
    if len(names) < 2:
        return ""
    parts, offset = [], x
    for index, name in enumerate(names):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(f'<rect x="{offset:.0f}" y="{y - 8}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{offset + 14:.0f}" y="{y + 1}" class="axis">{escape(name)}</text>')
        offset += 24 + 7 * len(name)
    return "".join(parts)


def pct_axis(value: float) -> str:
    return f"{value * 100:.0f}%"
