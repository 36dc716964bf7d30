"""Line charts as server-rendered SVG (the Content-Security-Policy allows no chart library's inline
script or style): axes with rounded ticks, an axis title, a legend, a point with a tooltip for each
value above zero, and <title>/<desc> for screen readers. Every piece of text is escaped here, so the
result is Markup a template may show as it is.

`usage_charts` turns the per-minute points of zato.odb.stats_query.series into the three charts the
dashboard and a service's page show: requests, error rate, and latency p50/p99."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

WIDTH = 560
HEIGHT = 230
LEFT, RIGHT, TOP, BOTTOM = 58, 16, 34, 42

# Colour-blind-safe (Okabe-Ito), one per line in order
PALETTE = ('#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9')


@dataclass(frozen=True)
class Line:
    """One series: its label in the legend and one value per x label; None counts as zero."""
    label: str
    values: Sequence[float | None]


def nice_ticks(top: float, count: int = 4, whole: bool = False) -> list[float]:
    """Ticks from 0 to at least `top`, about `count` intervals of 1, 2, 2.5 or 5 times a power of ten;
    `whole` for things counted (no tick at 0.25 requests)."""
    if not math.isfinite(top) or top < 1e-9:  # nothing, or nothing worth a scale of its own
        top = 1.0
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next((m * power for m in (1, 2, 2.5, 5, 10)
                 if m * power >= raw * (1 - 1e-9) and (not whole or float(m * power).is_integer())), 1)
    intervals = max(1, math.ceil(top / step - 1e-9))
    digits = max(0, 2 - math.floor(math.log10(step)))  # enough to write 2.5 × 10^k exactly
    return [round(i * step, digits) for i in range(intervals + 1)]


def number(value: float) -> str:
    """A tick or tooltip value, short: 3, 2.5, 0.25, 0.00391, 12.3k, 4M."""
    if abs(value) >= 10_000:
        scale, suffix = next((s, x) for s, x in ((1e9, 'G'), (1e6, 'M'), (1e3, 'k')) if abs(value) >= s)
        return _trim(f'{value / scale:.1f}') + suffix
    if value == int(value):
        return str(int(value))
    if abs(value) < 1:
        return f'{value:.3g}'
    return _trim(f'{value:.2f}' if abs(value) < 10 else f'{value:.1f}')


def _trim(text: str) -> str:
    return text.rstrip('0').rstrip('.') if '.' in text else text


def _slug(text: str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-') or 'chart'


def line_chart(title: str, x_labels: Sequence[str], lines: Sequence[Line], *, unit: str = '', desc: str = '',
               heading: str = '', chart_id: str = '', whole: bool = False, label_every: int = 10,
               width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """An SVG line chart of `lines` over `x_labels` (every `label_every`-th one is written under the
    x axis, and the last one); `unit` titles the y axis and follows values in tooltips and the desc.
    `title` is for screen readers and tooltips, `heading` (the title by default) is written above the plot;
    `whole` keeps the y axis to whole numbers."""
    chart_id = _slug(chart_id or title)
    n = len(x_labels)
    values = [[0.0 if v is None or not math.isfinite(v) else max(0.0, float(v)) for v in line.values[:n]]
              + [0.0] * (n - len(line.values)) for line in lines]
    ticks = nice_ticks(max((max(vs, default=0.0) for vs in values), default=0.0), whole=whole)
    top = ticks[-1]
    x0, x1, y0, y1 = LEFT, width - RIGHT, TOP, height - BOTTOM

    def x(i: int) -> float:
        return (x0 + x1) / 2 if n < 2 else x0 + i * (x1 - x0) / (n - 1)

    def y(v: float) -> float:
        return y1 - v / top * (y1 - y0)

    suffix = f' {unit}' if unit else ''
    summary = desc or _describe(x_labels, lines, values, suffix)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-{chart_id}" role="img" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'aria-labelledby="chart-{chart_id}-title chart-{chart_id}-desc">',
           f'<title id="chart-{chart_id}-title">{escape(title)}</title>',
           f'<desc id="chart-{chart_id}-desc">{escape(summary)}</desc>',
           f'<text class="chart-title" x="{x0}" y="16" font-weight="600">{escape(heading or title)}</text>']

    # Grid and y axis ticks
    out.append('<g class="grid" stroke="#d9dee7" stroke-width="1">')
    out.extend(f'<line x1="{x0}" y1="{y(t):.1f}" x2="{x1}" y2="{y(t):.1f}"/>' for t in ticks)
    out.append('</g><g class="y-ticks" text-anchor="end" font-size="11" fill="#5b6475">')
    out.extend(f'<text x="{x0 - 6}" y="{y(t) + 4:.1f}">{escape(number(t))}</text>' for t in ticks)
    out.append('</g>')
    if unit:
        middle = (y0 + y1) / 2
        out.append(f'<text class="axis-title" x="14" y="{middle:.1f}" text-anchor="middle" font-size="11" '
                   f'fill="#5b6475" transform="rotate(-90 14 {middle:.1f})">{escape(unit)}</text>')

    # x axis: a label every `label_every` points, and the last
    out.append(f'<g class="x-ticks" text-anchor="middle" font-size="11" fill="#5b6475">'
               f'<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#5b6475"/>')
    for i, label in enumerate(x_labels):
        if i % max(1, label_every) == 0 or i == n - 1:
            out.append(f'<text x="{x(i):.1f}" y="{y1 + 16}">{escape(label)}</text>')
    out.append('</g>')

    # Lines, with a point (and its tooltip) wherever the value is above zero
    for k, (line, vs) in enumerate(zip(lines, values, strict=True)):
        colour = PALETTE[k % len(PALETTE)]
        points = ' '.join(f'{x(i):.1f},{y(v):.1f}' for i, v in enumerate(vs))
        out.append(f'<g class="series series-{k}" data-label="{escape(line.label)}">')
        if n:
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round" '
                       f'points="{points}"/>')
        for i, v in enumerate(vs):
            if v > 0:
                out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                           f'<title>{escape(x_labels[i])}: {escape(line.label)} {escape(number(v))}'
                           f'{escape(suffix)}</title></circle>')
        out.append('</g>')

    # Legend, right-aligned above the plot
    out.append('<g class="legend" font-size="11" fill="#1d2330">')
    right = x1
    for k, line in reversed(list(enumerate(lines))):
        text_width = 7 * len(line.label)
        right -= text_width
        out.append(f'<rect x="{right - 16}" y="8" width="12" height="4" fill="{PALETTE[k % len(PALETTE)]}"/>'
                   f'<text x="{right}" y="14">{escape(line.label)}</text>')
        right -= 28
    out.append('</g></svg>')
    return Markup(''.join(out))  # noqa: S704 - built above with every piece of text escaped


def _describe(x_labels: Sequence[str], lines: Sequence[Line], values: list[list[float]], suffix: str) -> str:
    """What the chart shows, in words: its span, and each line's highest value and when."""
    if not x_labels:
        return 'No data.'
    parts = [f'From {x_labels[0]} to {x_labels[-1]}.']
    for line, vs in zip(lines, values, strict=True):
        high = max(vs, default=0.0)
        if high <= 0:
            parts.append(f'{line.label}: zero throughout.')
        else:
            parts.append(f'{line.label}: highest {number(high)}{suffix} at {x_labels[vs.index(high)]}.')
    return ' '.join(parts)


# ################################################################################################ usage

def minute_labels(points: Sequence[dict[str, Any]]) -> list[str]:
    """HH:MM (UTC) of each point of stats_query.series."""
    return [p['minute'].strftime('%H:%M') if isinstance(p['minute'], datetime) else str(p['minute'])[11:16]
            for p in points]


def usage_charts(points: Sequence[dict[str, Any]], subject: str, prefix: str = '') -> dict[str, Markup]:
    """The requests, error-rate and latency charts of per-minute usage points (stats_query.series);
    minutes without calls are at zero. `subject` names what they are about ('All services' ...)."""
    labels = minute_labels(points)
    span = f' per minute, {labels[0]}–{labels[-1]} UTC' if labels else ''

    def column(key: str, scale: float = 1.0) -> list[float | None]:
        return [None if p.get(key) is None else p[key] * scale for p in points]

    return {
        'requests': line_chart(f'{subject}: requests{span}', labels,
                               [Line('Requests', column('count')), Line('Errors', column('errors'))],
                               unit='requests', heading='Requests per minute', chart_id=f'{prefix}requests',
                               whole=True),
        'errors': line_chart(f'{subject}: error rate{span}', labels, [Line('Error rate', column('error_rate', 100))],
                             unit='%', heading='Error rate', chart_id=f'{prefix}error-rate'),
        'latency': line_chart(f'{subject}: latency{span}', labels,
                              [Line('p50', column('p50_ms')), Line('p99', column('p99_ms'))],
                              unit='ms', heading='Latency', chart_id=f'{prefix}latency'),
    }
