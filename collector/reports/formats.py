"""Every report's four formats, rendered from the one :class:`Report` its builder returns.

- ``table``: for the terminal. Each section a titled table with aligned columns (numbers
  to the right, rounded for reading), its notes under it. Wards show their display names.
- ``csv``: for a spreadsheet. UTF-8 with a BOM, so that Excel shows the diacritics (without
  it Excel reads the file as the local ANSI code page). All sections in one file, one after
  another: a row ``# key: title``, the header row (the JSON keys), the rows, a blank row.
  Excel and LibreOffice open that as one sheet with the tables stacked, each under its
  title; a script splits it at the blank rows. :func:`csv_sections` gives one file per
  section instead (the command's ``--out NAME-{section}.csv``), for tools that want one
  table per file. The cells are the JSON's numbers unrounded, so CSV and JSON agree; a
  ``ward_name`` column beside ``ward`` carries the display name.
- ``json``: ``report.data`` with ``period`` first: the JSON contract of DESIGN.md.
- ``html``: one self-contained printable page (collector/reports/html.py).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from typing import Any, Final

from wardwatch.collector.reports.model import Column, Report, Section

FORMATS: Final = ("table", "csv", "json", "html")
BOM: Final = "\ufeff"
_SECTION_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def render(report: Report, fmt: str) -> bytes:
    """The report in ``fmt`` (one of :data:`FORMATS`), as UTF-8 bytes."""
    if fmt == "json":
        return (json.dumps(json_document(report), indent=2, ensure_ascii=False) + "\n").encode()
    if fmt == "csv":
        return (BOM + "\r\n".join(_csv_block(report, s, titled=True) for s in report.sections)).encode()
    if fmt == "table":
        return render_table(report).encode()
    if fmt == "html":
        from wardwatch.collector.reports.html import render_html

        return render_html(report).encode()
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def json_document(report: Report) -> dict[str, Any]:
    """``period`` then ``report.data``; NaN and infinities (which JSON lacks) become null."""
    doc: dict[str, Any] = {"period": report.period.as_json()}
    doc.update({k: v for k, v in report.data.items() if k != "period"})
    cleaned: dict[str, Any] = _finite(doc)
    return cleaned


def csv_sections(report: Report) -> dict[str, bytes]:
    """One CSV (with BOM, no title row) per section, by section key."""
    out: dict[str, bytes] = {}
    for section in report.sections:
        if not _SECTION_KEY.match(section.key):
            raise ValueError(f"section key {section.key!r} cannot be a file name")
        out[section.key] = (BOM + _csv_block(report, section, titled=False)).encode()
    return out


# --- csv ---------------------------------------------------------------------------------


def _csv_columns(report: Report, section: Section) -> list[str]:
    keys = [c.key for c in section.columns]
    if "ward" in keys and "ward_name" not in keys and report.wards:
        keys.insert(keys.index("ward") + 1, "ward_name")
    return keys


def _csv_block(report: Report, section: Section, *, titled: bool) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180, what Excel writes
    if titled:
        writer.writerow([f"# {section.key}: {section.title}"])
    keys = _csv_columns(report, section)
    writer.writerow(keys)
    for row in section.rows:
        cells = []
        for key in keys:
            if key == "ward_name" and "ward_name" not in row:
                cells.append(report.wards.get(str(row.get("ward", "")), ""))
            else:
                cells.append(csv_cell(row.get(key)))
        writer.writerow(cells)
    return buf.getvalue()


def csv_cell(value: Any) -> str:
    """The JSON value in a cell: numbers exactly as JSON writes them, null empty."""
    value = _finite(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# --- what a person reads (table and html) ------------------------------------------------


def display(report: Report, column: Column, value: Any) -> str:
    """A cell as a person reads it: wards by name, numbers rounded, nothing as "-"."""
    if column.key == "ward" and isinstance(value, str):
        return report.wards.get(value, value)
    return number(value, column.unit)


def number(value: Any, unit: str = "") -> str:
    """Rounded for reading: percentages to 2 decimals (99.95 is not 100), others to 2
    decimals below 10, 1 below 1000, none above (trailing zeros dropped); whole numbers as
    they are."""
    value = _finite(value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if unit == "%":
            return f"{value:.2f}"
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        size = abs(value)
        if size >= 1000:
            return f"{value:.0f}"
        text = f"{value:.1f}" if size >= 10 else f"{value:.2f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, list | tuple):
        return ", ".join(number(v, unit) for v in value)
    return str(value)


def is_numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def header(column: Column) -> str:
    return f"{column.title} ({column.unit})" if column.unit else column.title


# --- table -------------------------------------------------------------------------------


def width(text: str) -> int:
    """Terminal columns: combining marks take none, wide (CJK) characters two."""
    text = unicodedata.normalize("NFC", text)
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def _pad(text: str, size: int, right: bool) -> str:
    fill = " " * max(0, size - width(text))
    return fill + text if right else text + fill


def render_table(report: Report) -> str:
    p = report.period.as_json()
    lines = [report.title, f"{p['from']} .. {p['to']} ({p['timezone']})"]
    for section in report.sections:
        lines += ["", section.title, "=" * width(section.title)]
        heads = [header(c) for c in section.columns]
        cells = [[unicodedata.normalize("NFC", display(report, c, row.get(c.key))) for c in section.columns]
                 for row in section.rows]  # fmt: skip
        right = [any(is_numeric(row.get(c.key)) for row in section.rows) for c in section.columns]
        widths = [max([width(h), *(width(r[i]) for r in cells)]) for i, h in enumerate(heads)]
        lines.append("  ".join(_pad(h, w, r) for h, w, r in zip(heads, widths, right, strict=True)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for row_cells in cells:
            lines.append("  ".join(_pad(v, w, r) for v, w, r in zip(row_cells, widths, right, strict=True)).rstrip())
        if not cells:
            lines.append("(no data in this period)")
        lines += [f"  * {n}" for n in section.notes]
    if report.notes:
        lines.append("")
        lines += [f"* {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
