"""A report as one self-contained, printable HTML page.

Nothing is fetched: the CSS is inline and the charts are inline SVG drawn here from each
section's :class:`Chart` (``bars``: one horizontal bar per label; ``line``: values over
evenly spaced labels; ``heatmap``: hour of week, 7 rows Monday first by 24 local hours).
A Content-Security-Policy of ``default-src 'none'`` makes a browser refuse any request a
later change might add. Every text that comes from data goes through :func:`html.escape`.

The page is ``lang="vi"``: its own labels are Vietnamese with the English beside them
("Kỳ báo cáo / Period"); ward names are the config's display names, with their
diacritics; the header gives the period and its time zone. ``@media print`` lays it out
on A4 (tables repeat their header row, a chart or a row is never cut across pages).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from wardwatch.collector.reports.formats import display, header, is_numeric, number
from wardwatch.collector.reports.model import Chart, Report, Section

KIND_LABELS: Final = {
    "uptime": "Thời gian hoạt động / Uptime",
    "coverage": "Mức phủ sóng / Coverage",
    "capacity": "Dung lượng / Capacity",
}
DAYS: Final = ("T2 Mon", "T3 Tue", "T4 Wed", "T5 Thu", "T6 Fri", "T7 Sat", "CN Sun")
_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS: Final = """
:root { --ink: #1d2330; --muted: #5b6475; --rule: #d5dae3; --bar: #3b6fb6; --over: #d9822b; --limit: #c23030; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans", "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 24px 28px; max-width: 1000px; font-size: 14px; line-height: 1.4; }
header { border-bottom: 2px solid var(--ink); padding-bottom: 10px; margin-bottom: 8px; }
header .kind { margin: 0; color: var(--muted); font-size: 13px; letter-spacing: .02em; }
h1 { margin: 2px 0 8px; font-size: 24px; }
h2 { margin: 26px 0 8px; font-size: 18px; border-bottom: 1px solid var(--rule); padding-bottom: 3px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; }
figure { margin: 10px 0 14px; }
figcaption { font-weight: 600; font-size: 13px; margin-bottom: 4px; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg.chart text { font-family: inherit; fill: var(--ink); }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid var(--rule); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef1f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.nowrap { white-space: nowrap; } th { hyphens: none; }
tbody tr:nth-child(even) td { background: #f8f9fb; }
ul.notes { color: var(--muted); font-size: 12.5px; margin: 6px 0 0; padding-left: 18px; }
p.empty { color: var(--muted); font-style: italic; }
footer { margin-top: 28px; border-top: 1px solid var(--rule); padding-top: 6px; color: var(--muted); font-size: 12px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 9.5pt; }
  h1 { font-size: 17pt; } h2 { font-size: 12.5pt; break-after: avoid; }
  table { font-size: 8.5pt; } thead { display: table-header-group; }
  tr, figure, svg.chart { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render_html(report: Report) -> str:
    start = datetime.fromtimestamp(report.period.start_ms / 1000, report.period.tz)
    end = datetime.fromtimestamp(report.period.end_ms / 1000, report.period.tz)
    offset = start.strftime("%z")
    utc = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    when = f"{start:%Y-%m-%d %H:%M} \u2013 {end:%Y-%m-%d %H:%M}"
    kind = KIND_LABELS.get(report.kind, report.kind)
    wards = _wards_shown(report)
    meta = [("Kỳ báo cáo / Period", when), ("Múi giờ / Time zone", f"{report.period.tz.key} ({utc})")]
    if wards:
        meta.append(("Phường, xã / Wards", ", ".join(wards)))
    out = [
        "<!DOCTYPE html>",
        '<html lang="vi">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{e(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(report.title)} · {e(when)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<header>",
        f'<p class="kind">wardwatch · {e(kind)}</p>',
        f"<h1>{e(report.title)}</h1>",
        '<dl class="meta">',
        *(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in meta),
        "</dl>",
        "</header>",
        "<main>",
    ]
    for section in report.sections:
        out.append(_section(report, section))
    out.append("</main>")
    if report.notes:
        out.append('<footer><ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in report.notes) + "</ul></footer>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _wards_shown(report: Report) -> list[str]:
    """The display names of the wards in the report's rows, in order of appearance."""
    seen: dict[str, None] = {}
    for section in report.sections:
        for row in section.rows:
            ward = row.get("ward")
            if isinstance(ward, str):
                seen.setdefault(report.wards.get(ward, ward), None)
    return list(seen)


def _section(report: Report, section: Section) -> str:
    parts = [f'<section id="{e(section.key)}">', f"<h2>{e(section.title)}</h2>"]
    for chart in section.charts:
        caption = f"{chart.title} ({chart.unit})" if chart.unit else chart.title
        parts.append(f"<figure><figcaption>{e(caption)}</figcaption>{svg(report, chart)}</figure>")
    if section.rows:
        numeric = [any(is_numeric(r.get(c.key)) for r in section.rows) for c in section.columns]
        parts.append("<table><thead><tr>")
        parts += [f"<th{' class=num' if n else ''}>{e(header(c))}</th>"
                  for c, n in zip(section.columns, numeric, strict=True)]  # fmt: skip
        parts.append("</tr></thead><tbody>")
        for row in section.rows:
            cells = []
            for c, n in zip(section.columns, numeric, strict=True):
                value = row.get(c.key)
                text = display(report, c, value)
                attrs = ' class="num"' if n else ' class="nowrap"' if len(text) <= 24 else ""
                if c.key == "ward" and isinstance(value, str) and value in report.wards:
                    attrs += f' title="{e(value)}"'
                cells.append(f"<td{attrs}>{e(text)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append('<p class="empty">Không có dữ liệu trong kỳ này / No data in this period</p>')
    if section.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in section.notes) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


# --- charts ------------------------------------------------------------------------------


def svg(report: Report, chart: Chart) -> str:
    labels = [report.wards.get(label, label) for label in chart.labels]
    if chart.kind == "heatmap":
        return _heatmap(chart, labels)
    if chart.kind == "line":
        return _line(chart, labels)
    return _bars(chart, labels)


def _open(width: int, height: int, title: str, kind: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{e(title)}">')  # fmt: skip


def _flat(values: Sequence[Any]) -> list[float | None]:
    return [float(v) if is_numeric(v) else None for v in values]


def _bars(chart: Chart, labels: list[str]) -> str:
    values = _flat(chart.values)
    row_h, top, label_w, width = 22, 6, 190, 720
    area = width - label_w - 80
    known = [v for v in values if v is not None]
    vmax = max([*known, chart.limit or 0.0, 0.0]) or 1.0
    height = top * 2 + row_h * max(1, len(labels)) + (16 if chart.limit is not None else 0)
    out = [_open(width, height, chart.title, "bars")]
    for i, label in enumerate(labels):
        v = values[i] if i < len(values) else None
        y = top + i * row_h
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">{e(label)}</text>')
        if v is None:
            out.append(f'<text x="{label_w + 4}" y="{y + 15}" font-size="12" fill="#5b6475">&#8211;</text>')
            continue
        w = max(0.0, v) / vmax * area
        over = chart.limit is not None and v > chart.limit
        color = "#d9822b" if over else "#3b6fb6"
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{color}">'
                   f"<title>{e(label)}: {e(number(v, chart.unit))} {e(chart.unit)}</title></rect>")  # fmt: skip
        out.append(f'<text x="{label_w + w + 5:.1f}" y="{y + 15}" font-size="12">{e(number(v, chart.unit))}</text>')
    if chart.limit is not None:
        x = label_w + chart.limit / vmax * area
        bottom = top + row_h * max(1, len(labels))
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#c23030" '
                   'stroke-width="1.5" stroke-dasharray="4 3"/>')  # fmt: skip
        out.append(f'<text x="{x:.1f}" y="{bottom + 13}" text-anchor="middle" font-size="11" fill="#c23030">'
                   f"ngưỡng / limit {e(number(chart.limit, chart.unit))}</text>")  # fmt: skip
    out.append("</svg>")
    return "".join(out)


def _line(chart: Chart, labels: list[str]) -> str:
    values = _flat(chart.values)
    width, height, left, right, top, bottom = 720, 230, 56, 14, 12, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    known = [v for v in values if v is not None]
    vmax = max([*known, chart.limit or 0.0, 0.0]) or 1.0
    vmin = min([*known, 0.0])
    span = (vmax - vmin) or 1.0
    n = max(1, len(values))

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - (v - vmin) / span * plot_h

    out = [_open(width, height, chart.title, "line")]
    for frac in (0.0, 0.5, 1.0):
        tick = vmin + span * frac
        out.append(f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" y2="{y(tick):.1f}" stroke="#d5dae3"/>')
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">'
                   f"{e(number(tick, chart.unit))}</text>")  # fmt: skip
    step = max(1, (n + 5) // 6)
    for i in range(0, len(labels), step):
        out.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">'
                   f"{e(labels[i])}</text>")  # fmt: skip
    runs: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
    for run in runs:
        if len(run) == 1:
            cx, cy = run[0].split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="#3b6fb6"/>')
        elif run:
            out.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="#3b6fb6" stroke-width="2"/>')
    if chart.limit is not None:
        ly = y(chart.limit)
        out.append(f'<line x1="{left}" y1="{ly:.1f}" x2="{width - right}" y2="{ly:.1f}" stroke="#c23030" '
                   'stroke-width="1.5" stroke-dasharray="4 3"/>')  # fmt: skip
        out.append(f'<text x="{width - right}" y="{ly - 4:.1f}" text-anchor="end" font-size="11" fill="#c23030">'
                   f"ngưỡng / limit {e(number(chart.limit, chart.unit))}</text>")  # fmt: skip
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#5b6475"/>')
    out.append("</svg>")
    return "".join(out)


def _heat_color(frac: float) -> str:
    low, high = (241, 245, 251), (8, 81, 156)
    r, g, b = (round(lo + (hi - lo) * frac) for lo, hi in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _heatmap(chart: Chart, labels: list[str]) -> str:
    rows: list[list[float | None]] = []
    for r in range(7):
        raw = chart.values[r] if r < len(chart.values) else []
        cells = _flat(raw) if isinstance(raw, list) else []
        rows.append((cells + [None] * 24)[:24])
    # Our bilingual day names unless the builder named the days otherwise (not Mon..Sun).
    english = [d.split()[1] for d in DAYS]
    days = labels if len(labels) == 7 and [x[:3].title() for x in labels] != english else list(DAYS)
    cell_w, cell_h, left, top = 26, 22, 70, 20
    width, height = left + 24 * cell_w + 8, top + 7 * cell_h + 40
    known = [v for row in rows for v in row if v is not None]
    # From 0 (or below): a week at one level is dark, not the palest colour of an empty scale.
    vmin, vmax = (min(0.0, *known), max(known)) if known else (0.0, 1.0)
    span = (vmax - vmin) or 1.0
    out = [_open(width, height, chart.title, "heatmap")]
    for hour in range(0, 24, 3):
        out.append(f'<text x="{left + hour * cell_w + cell_w / 2}" y="{top - 6}" text-anchor="middle" '
                   f'font-size="11">{hour:02d}h</text>')  # fmt: skip
    for r, row in enumerate(rows):
        y = top + r * cell_h
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="12">{e(days[r])}</text>')
        for hour, v in enumerate(row):
            x = left + hour * cell_w
            fill = "#e4e6ea" if v is None else _heat_color((v - vmin) / span)
            over = v is not None and chart.limit is not None and v > chart.limit
            stroke = ' stroke="#c23030" stroke-width="2"' if over else ' stroke="#ffffff" stroke-width="1"'
            tip = f"{days[r]} {hour:02d}:00: {number(v, chart.unit)} {chart.unit}".rstrip()
            out.append(f'<rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" fill="{fill}"{stroke}>'
                       f"<title>{e(tip)}</title></rect>")  # fmt: skip
    legend_y = top + 7 * cell_h + 14
    for i in range(6):
        out.append(f'<rect x="{left + i * 22}" y="{legend_y}" width="22" height="12" fill="{_heat_color(i / 5)}"/>')
    out.append(f'<text x="{left - 8}" y="{legend_y + 10}" text-anchor="end" font-size="11">'
               f"{e(number(vmin, chart.unit))}</text>")  # fmt: skip
    out.append(f'<text x="{left + 6 * 22 + 6}" y="{legend_y + 10}" font-size="11">{e(number(vmax, chart.unit))}'
               f"{' ' + e(chart.unit) if chart.unit else ''}</text>")  # fmt: skip
    if chart.limit is not None:
        out.append(f'<rect x="{left + 230}" y="{legend_y}" width="22" height="12" fill="none" stroke="#c23030" '
                   f'stroke-width="2"/><text x="{left + 258}" y="{legend_y + 10}" font-size="11" fill="#c23030">'
                   f"&gt; ngưỡng / limit {e(number(chart.limit, chart.unit))}</text>")  # fmt: skip
    out.append("</svg>")
    return "".join(out)
