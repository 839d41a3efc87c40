"""Small inline SVG charts for the HTML report: no JavaScript, no external asset.

    stacked_bars(rows, colours)          one horizontal bar per row, split by share
    line_chart(series, labels)           a few lines over the same x axis

Each returns an `<svg>` element as text, sized by its viewBox so it scales
with the page and prints sharply; every shape has a `<title>` (a tooltip and
what a screen reader says) and the whole chart an `aria-label`. Every text
that goes in is escaped here: callers pass plain text.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _n(x: float) -> str:
    """A coordinate with at most one decimal."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def stacked_bars(
    rows: Sequence[tuple[str, Mapping[str, int]]],
    colours: Mapping[str, tuple[str, str]],
    *,
    title: str,
    width: int = 640,
    label_width: int = 130,
    bar_height: int = 26,
    gap: int = 10,
) -> str:
    """One bar per (label, {part: count}) row, its parts in `colours` order.

    `colours` maps a part to (fill, text colour); a segment wide enough shows its
    count; the total follows the bar."""
    total_width = width - label_width - 56
    height = len(rows) * (bar_height + gap) + gap
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" style="{FONT}">',
        f"<title>{_e(title)}</title>",
    ]
    for i, (label, counts) in enumerate(rows):
        y = gap + i * (bar_height + gap)
        total = sum(max(0, int(counts.get(k, 0))) for k in colours)
        out.append(
            f'<text x="{label_width - 8}" y="{_n(y + bar_height / 2 + 5)}" text-anchor="end" '
            f'font-size="14" fill="#222">{_e(label)}</text>'
        )
        x = float(label_width)
        if total == 0:
            out.append(
                f'<rect x="{label_width}" y="{y}" width="{total_width}" height="{bar_height}" '
                'fill="#eee"><title>no accounts</title></rect>'
            )
        for part, (fill, ink) in colours.items():
            n = max(0, int(counts.get(part, 0)))
            if not n or not total:
                continue
            w = total_width * n / total
            share = round(100 * n / total)
            out.append(
                f'<rect x="{_n(x)}" y="{y}" width="{_n(w)}" height="{bar_height}" fill="{fill}">'
                f"<title>{_e(label)}: {n} {_e(part)} ({share}%)</title></rect>"
            )
            if w >= 22:
                out.append(
                    f'<text x="{_n(x + w / 2)}" y="{_n(y + bar_height / 2 + 5)}" text-anchor="middle" '
                    f'font-size="13" font-weight="600" fill="{ink}">{n}</text>'
                )
            x += w
        out.append(
            f'<text x="{label_width + total_width + 8}" y="{_n(y + bar_height / 2 + 5)}" '
            f'font-size="13" fill="#555">{total}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def line_chart(
    series: Sequence[tuple[str, str, Sequence[int]]],
    labels: Sequence[str],
    *,
    title: str,
    width: int = 640,
    height: int = 190,
) -> str:
    """Lines of (name, colour, values) over the x positions `labels` (all the same length).

    The y axis starts at 0; the first and last labels are written under the axis;
    a legend names each line with its latest value."""
    left, right, top, bottom = 44, 190, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(labels)
    peak = max((max(v) for _, _, v in series if v), default=0)
    top_value = _nice(peak)
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" style="{FONT}">',
        f"<title>{_e(title)}</title>",
    ]
    for k in range(3):
        value = top_value * k / 2
        y = top + plot_h - plot_h * k / 2
        out.append(
            f'<line x1="{left}" y1="{_n(y)}" x2="{left + plot_w}" y2="{_n(y)}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{_n(y + 4)}" text-anchor="end" font-size="12" '
            f'fill="#555">{_n(value)}</text>'
        )

    def xy(i: int, v: int) -> tuple[float, float]:
        x = left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))
        y = top + plot_h - (plot_h * v / top_value if top_value else 0)
        return x, y

    for s, (name, colour, values) in enumerate(series):
        points = [xy(i, v) for i, v in enumerate(values)]
        if len(points) > 1:
            path = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5" '
                'stroke-linejoin="round"/>'
            )
        for (x, y), v, label in zip(points, values, labels, strict=True):
            out.append(
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3.5" fill="{colour}">'
                f"<title>{_e(label)}: {_e(name)} {v}</title></circle>"
            )
        latest = values[-1] if values else 0
        ly = top + 8 + s * 20
        out.append(
            f'<rect x="{width - right + 14}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{width - right + 32}" y="{ly + 2}" font-size="13" fill="#222">'
            f"{_e(name)}: {latest}</text>"
        )
    if n:
        out.append(
            f'<text x="{left}" y="{height - 10}" font-size="12" fill="#555">{_e(labels[0])}</text>'
        )
        if n > 1:
            out.append(
                f'<text x="{left + plot_w}" y="{height - 10}" text-anchor="end" font-size="12" '
                f'fill="#555">{_e(labels[-1])}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def _nice(peak: float) -> float:
    """The axis top: a round number (1, 2, 2.5 or 5 times a power of ten) at or above `peak`."""
    if peak <= 2:
        return 2
    step = int(10 ** (len(str(int(peak))) - 1))
    for m in (1, 2, 2.5, 5):
        if m * step >= peak:
            return m * step
    return 10 * step
