"""Small SVG charts as strings: no dependency, no JavaScript, nothing fetched from anywhere.

Shared by the collector's dashboard and the published site. Every label goes through
:func:`html.escape` (the values come from policies and the database, never from a browser, but a
chart must not be the place where that stops being true). A value of ``None`` is a suppressed or
missing cell: a line chart leaves a gap, a bar chart writes an en dash instead of a bar.

Each chart is an ``<svg>`` (or, for the percentile table, a ``<table>``) with ``class="chart"``, a
``data-chart`` name, ``role="img"`` and an ``aria-label`` holding the title, so a page reads the
same to a screen reader and to a test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

__all__ = [
    "PALETTE",
    "bar_chart",
    "fmt_count",
    "fmt_ms",
    "fmt_percent",
    "line_chart",
    "percentile_table",
]

#: Colour-blind-safe series colours (Okabe & Ito).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")

Formatter = Callable[[float], str]


def fmt_count(value: float) -> str:
    """``1234`` -> ``1,234``; non-integral values keep one decimal."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def fmt_percent(value: float) -> str:
    """A rate in ``0..1`` as a percentage."""
    return f"{value * 100:.1f} %"


def fmt_ms(value: float) -> str:
    """Milliseconds, in the unit a person reads best."""
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 120_000:
        return f"{value / 1000:.1f} s"
    return f"{value / 60_000:.1f} min"


def _attr(text: str) -> str:
    return escape(text, quote=True)


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (axis tops)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _open(name: str, title: str, width: int, height: int) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{_attr(name)}" role="img" aria-label="{_attr(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]


def _empty(name: str, title: str, width: int, message: str) -> str:
    parts = _open(name, title, width, 40)
    parts.append(f'<text x="4" y="24" fill="#666">{escape(message)}</text></svg>')
    return "".join(parts)


def line_chart(
    name: str,
    title: str,
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    width: int = 720,
    height: int = 240,
    fmt: Formatter = fmt_count,
) -> str:
    """One line per series over the same x positions (days, say); ``None`` leaves a gap.

    Only a handful of x labels are written (first, last and evenly spaced ones between), and
    each point carries a ``<title>`` so a browser shows its exact value on hover.
    """
    values = [v for points in series.values() for v in points if v is not None]
    if not x_labels or not values:
        return _empty(name, title, width, "no data in this period")
    left, right, top, bottom = 56, 12, 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max(values))
    n = len(x_labels)

    def x_at(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + plot_h * (1 - max(v, 0.0) / top_value)

    parts = _open(name, title, width, height)
    for tick in range(5):
        tick_value = top_value * tick / 4
        y = y_at(tick_value)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444">'
            f"{escape(fmt(tick_value))}</text>"
        )
    shown = sorted({0, n - 1, *(round(i * (n - 1) / 5) for i in range(1, 5))}) if n > 1 else [0]
    for i in shown:
        # The first and last labels hang inwards so that they are not cut at the edges.
        anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
        parts.append(
            f'<text x="{x_at(i):.1f}" y="{height - bottom + 16}" text-anchor="{anchor}" '
            f'fill="#444">{escape(x_labels[i])}</text>'
        )
    for index, (label, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(points[:n]):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x_at(i):.1f},{y_at(v):.1f}")
        parts.append(f'<g class="series" data-series="{_attr(label)}">')
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                    f'points="{" ".join(run)}"/>'
                )
        for i, v in enumerate(points[:n]):
            if v is not None:
                parts.append(
                    f'<circle cx="{x_at(i):.1f}" cy="{y_at(v):.1f}" r="2.5" fill="{colour}">'
                    f"<title>{escape(label)} {escape(x_labels[i])}: {escape(fmt(v))}</title>"
                    "</circle>"
                )
        parts.append("</g>")
        lx = left + index * 140
        parts.append(
            f'<rect x="{lx}" y="{height - 16}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{lx + 16}" y="{height - 11}" fill="#222">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    name: str,
    title: str,
    rows: Sequence[tuple[str, float | None]],
    *,
    width: int = 720,
    fmt: Formatter = fmt_count,
    max_value: float | None = None,
    highlight: Sequence[str] = (),
    empty: str = "no data in this period",
) -> str:
    """Horizontal bars, one per ``(label, value)`` in the given order; ``None`` shows "–".

    ``max_value`` fixes the scale (1.0 for rates); ``highlight`` labels are drawn in the
    warning colour (an error-rate spike, an option nobody used).
    """
    if not rows:
        return _empty(name, title, width, empty)
    bar_h, gap, top = 18, 6, 4
    label_w = min(280, max(80, 7 * max(len(label) for label, _ in rows) + 8))
    value_w = 80
    plot_w = width - label_w - value_w
    height = top + len(rows) * (bar_h + gap)
    known = [v for _, v in rows if v is not None]
    scale = max_value if max_value is not None else _nice_max(max(known, default=0.0))
    marked = set(highlight)
    parts = _open(name, title, width, height)
    for i, (label, value) in enumerate(rows):
        y = top + i * (bar_h + gap)
        colour = PALETTE[5] if label in marked else PALETTE[0]
        text = escape(label)
        parts.append(
            f'<g class="bar" data-label="{_attr(label)}">'
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" fill="#222">{text}</text>'
        )
        if value is None:
            parts.append(
                f'<text x="{label_w + 4}" y="{y + 13}" fill="#666">–'
                f"<title>{text}: suppressed or not available</title></text></g>"
            )
            continue
        w = 0.0 if scale <= 0 else plot_w * min(max(value, 0.0), scale) / scale
        shown = escape(fmt(value))
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{text}: {shown}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" fill="#222">{shown}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def percentile_table(
    name: str,
    title: str,
    rows: Sequence[tuple[str, Sequence[float | None]]],
    columns: Sequence[str] = ("p50", "p95"),
    *,
    fmt: Formatter = fmt_ms,
) -> str:
    """A plain HTML table: one row per command, one column per percentile."""
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in columns)
    body: list[str] = []
    for label, values in rows:
        cells = "".join(
            f"<td>{'–' if v is None else escape(fmt(v))}</td>" for v in values[: len(columns)]
        )
        body.append(f'<tr><th scope="row">{escape(label)}</th>{cells}</tr>')
    if not body:
        body.append(f'<tr><td colspan="{len(columns) + 1}">no data in this period</td></tr>')
    return (
        f'<table class="chart" data-chart="{_attr(name)}" aria-label="{_attr(title)}">'
        f"<caption>{escape(title)}</caption>"
        f'<thead><tr><th scope="col">command</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
