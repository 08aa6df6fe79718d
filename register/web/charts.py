"""Charts drawn on the server as SVG: no script, no style attribute (the pages' CSP allows neither), only
presentation attributes. A chart is decoration for the table beside it, which holds the same figures;
it still carries its own title and a text description for screen readers."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 240, 56, 40, 12
INK, BAR, HIDDEN, GRID = "#1b1f24", "#0b4f9c", "#4a5159", "#c9ced4"


def _axis(top: int) -> tuple[int, int]:
    """A round upper bound for the axis, at least `top` and at least 5, and its step: 1, 2 or 5 times a
    power of ten, in steps of a fifth or a half of a power of ten, so that every tick is a whole number."""
    power = 1
    while True:
        for bound, step in ((power, power // 5), (2 * power, power // 2), (5 * power, power)):
            if bound >= max(top, 5) and step >= 1:
                return bound, step
        power *= 10


def bar_chart(chart_id: str, title: str, description: str, labels: Sequence[str], values: Sequence[int | None],
              hidden_label: str) -> Markup:
    """Vertical bars, one per label; a suppressed value (None) is a short grey mark with `hidden_label`
    under it, never a bar of zero (which would read as "none")."""
    top, step = _axis(max([v for v in values if v is not None] + [0]))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(values), 1)
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
             f'xmlns="http://www.w3.org/2000/svg">',
             f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(description)}</desc>']
    for tick in range(0, top + 1, step):
        y = TOP + plot_h - plot_h * tick / top
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="{INK}">'
                     f'{tick:,}</text>'.replace(",", "\u202f"))
    for i, (label, value) in enumerate(zip(labels, values)):
        w = min(slot * 0.7, 48.0)
        x = LEFT + slot * i + (slot - w) / 2
        if value is None:
            parts.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - 3:.1f}" width="{w:.1f}" height="3" fill="{HIDDEN}"/>')
            parts.append(f'<text x="{x + w / 2:.1f}" y="{TOP + plot_h - 8:.1f}" text-anchor="middle" font-size="11" '
                         f'fill="{HIDDEN}">{escape(hidden_label)}</text>')
        else:
            h = plot_h * value / top
            parts.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{BAR}"/>')
        parts.append(f'<text x="{x + w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="12" '
                     f'fill="{INK}">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
