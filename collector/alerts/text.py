"""Plain-text rendering of a :class:`~wardwatch.collector.alerts.model.Notice`, in Vietnamese
or English, for the chat channels (Telegram, Zalo), the email body and the webhook's
annotations.

Every message names the ward by its display name and gives times in the deployment's
time zone. :func:`render` keeps the whole message within a character limit (Telegram's
4,096, Zalo's 2,000): alerts that do not fit are counted in a last line, "… và N cảnh báo
khác". Lengths are counted in UTF-16 code units, as Telegram counts them; for text without
emoji that is the same as Python's ``len``, and never less.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wardwatch.collector import reasons
from wardwatch.collector.alerts.model import Alert, Notice, NoticeAlert

_SEVERITY_RANK: Final = {"critical": 0, "warning": 1, "info": 2}
# Markers from the Basic Multilingual Plane only: each is one UTF-16 unit, one character.
_MARK: Final = {"critical": "⛔", "warning": "⚠", "info": "●", "resolved": "✅"}

_T: Final[dict[str, dict[str, str]]] = {
    "vi": {
        "firing": "Cảnh báo",
        "resolved": "Đã khắc phục",
        "repeat": "Nhắc lại: vẫn còn lỗi",
        "escalation": "CHUYỂN CẤP: chưa ai xác nhận",
        "n_firing": "{n} đang lỗi",
        "n_resolved": "{n} đã hết",
        "since": "từ {t}",
        "ended": "hết lúc {t}",
        "lasted": "kéo dài {d}",
        "reason": "lý do: {r}",
        "behind": "phía sau: {b}",
        "feed": "cấp bởi {f}",
        "ack": "xác nhận: {u}",
        "acked": "đã xác nhận bởi {who}",
        "more": "… và {n} cảnh báo khác",
        "devices_behind": "+{n} thiết bị phía sau",
        "zone": "giờ Việt Nam",
        "camera": "camera",
        "ap": "AP",
        "switch": "switch",
        "device": "thiết bị",
        # email
        "e_what": "Quy tắc",
        "e_device": "Thiết bị",
        "e_ward": "Phường/xã",
        "e_since": "Từ lúc",
        "e_ended": "Hết lúc",
        "e_reason": "Lý do",
        "e_feed": "Cấp nguồn/kết nối bởi",
        "e_behind": "Thiết bị phía sau (bị ẩn cảnh báo)",
        "e_ack": "Xác nhận (dừng nhắc lại và chuyển cấp)",
        "e_acked": "Đã xác nhận bởi",
        "e_footer": "Gửi bởi wardwatch. Thời gian theo {zone}.",
        "min": "{n} phút",
        "hour": "{h} giờ {m} phút",
        "day": "{d} ngày {h} giờ",
    },
    "en": {
        "firing": "Alert",
        "resolved": "Resolved",
        "repeat": "Reminder: still firing",
        "escalation": "ESCALATION: not acknowledged",
        "n_firing": "{n} firing",
        "n_resolved": "{n} resolved",
        "since": "since {t}",
        "ended": "ended {t}",
        "lasted": "lasted {d}",
        "reason": "reason: {r}",
        "behind": "behind it: {b}",
        "feed": "fed by {f}",
        "ack": "acknowledge: {u}",
        "acked": "acknowledged by {who}",
        "more": "… and {n} more",
        "devices_behind": "+{n} devices behind it",
        "zone": "Vietnam time",
        "camera": "camera",
        "ap": "AP",
        "switch": "switch",
        "device": "device",
        "e_what": "Rule",
        "e_device": "Device",
        "e_ward": "Ward",
        "e_since": "Since",
        "e_ended": "Ended",
        "e_reason": "Reason",
        "e_feed": "Fed by",
        "e_behind": "Devices behind it (their alerts suppressed)",
        "e_ack": "Acknowledge (stops repeats and escalation)",
        "e_acked": "Acknowledged by",
        "e_footer": "Sent by wardwatch. Times in {zone}.",
        "min": "{n} min",
        "hour": "{h} h {m} min",
        "day": "{d} d {h} h",
    },
}


def _t(lang: str) -> dict[str, str]:
    return _T.get(lang, _T["vi"])


def units(text: str) -> int:
    """The length as Telegram counts it: UTF-16 code units (an emoji outside the BMP is 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` units, ending in "…" when cut."""
    if units(text) <= limit:
        return text
    if limit <= 0:
        return ""
    out: list[str] = []
    used = 0
    for ch in text:
        w = 2 if ord(ch) > 0xFFFF else 1
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out).rstrip() + "…"


def _zone(tz: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_name(tz: str, lang: str) -> str:
    """How the time zone is named in a message: "giờ Việt Nam" for Asia/Ho_Chi_Minh."""
    if tz in ("Asia/Ho_Chi_Minh", "Asia/Saigon"):
        return _t(lang)["zone"]
    return tz


def local_time(ms: int, tz: str, *, with_zone: bool = False, lang: str = "vi") -> str:
    """``14:05 02/12/2026`` in ``tz`` (UTC when the zone is unknown), as staff in Vietnam
    write it; with the zone's name in brackets when ``with_zone``."""
    zone = _zone(tz)
    when = datetime.fromtimestamp(ms / 1000, tz=zone or UTC)
    text = when.strftime("%H:%M %d/%m/%Y")
    if with_zone:
        text += f" ({zone_name(tz, lang) if zone else 'UTC'})"
    return text


def duration(seconds: float, lang: str) -> str:
    t = _t(lang)
    minutes = max(0, round(seconds / 60))
    if minutes < 60:
        return t["min"].format(n=minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return t["hour"].format(h=hours, m=minutes)
    days, hours = divmod(hours, 24)
    return t["day"].format(d=days, h=hours)


def summary(alert: Alert, lang: str) -> str:
    """The alert's summary in ``lang`` (else English, else any, else its rule and device)."""
    text = alert.summary.get(lang) or alert.summary.get("en") or next(iter(alert.summary.values()), "")
    return " ".join((text or f"{alert.rule} {alert.device}").split())


def behind_counts(alert: Alert, lang: str) -> str:
    """``10 camera, 3 AP``: what the alert suppresses, counted by kind, most first."""
    t = _t(lang)
    counts = Counter(b.kind for b in alert.behind)
    def name(kind: str, n: int) -> str:
        word = t.get(kind, kind)
        return f"{word}s" if lang == "en" and n != 1 else word  # Vietnamese has no plural

    return ", ".join(f"{n} {name(kind, n)}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _reason(code: str, lang: str) -> str:
    """The reason in words with its code beside, for the technician who greps logs."""
    said = reasons.words(code, lang)
    return code if said is None else f"{said} ({code})"


def reason_shown(alert: Alert, lang: str) -> str:
    """The reason, unless the summary already says it."""
    code = " ".join(alert.reason.split())
    reason = (reasons.words(code, lang) or code) if code else ""
    return "" if not reason or reason in summary(alert, lang) else reason


def ordered(alerts: Iterable[NoticeAlert]) -> list[NoticeAlert]:
    """Firing first; then by severity, then oldest first, then device."""
    return sorted(
        alerts,
        key=lambda na: (
            na.status != "firing",
            _SEVERITY_RANK.get(na.alert.severity, 9),
            na.alert.started_ms,
            na.alert.device,
        ),
    )


def _line(na: NoticeAlert, notice: Notice) -> str:
    lang, tz = notice.language, notice.timezone
    t = _t(lang)
    a = na.alert
    parts: list[str]
    if na.status == "firing":
        parts = [f"{_MARK.get(a.severity, '⚠')} {a.severity.upper()} {a.device}: {summary(a, lang)}"]
        parts.append(t["since"].format(t=local_time(a.started_ms, tz)))
    else:
        parts = [f"{_MARK['resolved']} {a.device}: {summary(a, lang)}"]
        if a.ended_ms is not None:
            parts.append(t["ended"].format(t=local_time(a.ended_ms, tz)))
            parts.append(t["lasted"].format(d=duration((a.ended_ms - a.started_ms) / 1000, lang)))
    reason = reason_shown(a, lang)
    if reason:
        parts.append(t["reason"].format(r=reason))
    if na.status == "firing" and a.feed:
        parts.append(t["feed"].format(f=a.feed))
    if a.behind:
        parts.append(t["behind"].format(b=behind_counts(a, lang)))
    if na.status == "firing":
        if a.acked_by:
            parts.append(t["acked"].format(who=a.acked_by))
        elif na.ack_url:
            parts.append(t["ack"].format(u=na.ack_url))
    return " · ".join(parts)


def _heading(notice: Notice) -> str:
    t = _t(notice.language)
    firing = sum(1 for na in notice.alerts if na.status == "firing")
    resolved = len(notice.alerts) - firing
    counts = []
    if firing:
        counts.append(t["n_firing"].format(n=firing))
    if resolved:
        counts.append(t["n_resolved"].format(n=resolved))
    head = f"[wardwatch] {t[notice.kind]} — {notice.ward_name}"
    if counts:
        head += f" ({', '.join(counts)})"
    return f"{head} · {zone_name(notice.timezone, notice.language)}"


def render(notice: Notice, *, limit: int) -> str:
    """The notice as plain text within ``limit`` characters (UTF-16 units): a heading, then
    one line per alert, firing first; the alerts that do not fit are counted at the end."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    t = _t(notice.language)
    head = _heading(notice)
    lines = [_line(na, notice) for na in ordered(notice.alerts)]
    n = len(lines)

    def more(rest: int) -> str:
        return t["more"].format(n=rest)

    if units(head) > limit:
        return _cut(head, limit)
    out = [head]
    size = units(head)
    taken = 0
    for i, line in enumerate(lines):
        rest = n - i - 1
        need = size + 1 + units(line) + (1 + units(more(rest)) if rest else 0)
        if need > limit:
            break
        out.append(line)
        size += 1 + units(line)
        taken += 1
    rest = n - taken
    if rest:
        if taken == 0:
            # Not even one whole alert fits: show the first one cut short, if that leaves
            # something worth reading, rather than only a count.
            tail = more(rest - 1)
            room = limit - size - 1 - ((1 + units(tail)) if rest > 1 else 0)
            if room >= 40:
                out.append(_cut(lines[0], room))
                size += 1 + units(out[-1])
                taken, rest = 1, rest - 1
        if rest:
            footer = more(rest)
            if size + 1 + units(footer) > limit:
                return _cut("\n".join([*out, footer]), limit)
            out.append(footer)
    return "\n".join(out)


def subject(notice: Notice) -> str:
    """One line for an email Subject, e.g.
    ``[wardwatch] CRITICAL Cẩm Phô: sw-a không phản hồi: timeout (+13 thiết bị phía sau)``."""
    t = _t(notice.language)
    alerts = ordered(notice.alerts)
    if not alerts:
        return f"[wardwatch] {t[notice.kind]} {notice.ward_name}"
    first = alerts[0]
    if notice.status == "firing":
        word = first.alert.severity.upper()
        if notice.kind in ("escalation", "repeat"):
            word = f"{t[notice.kind]} · {word}"
    else:
        word = t["resolved"].upper()
    text = summary(first.alert, notice.language).replace(f" ({notice.ward_name})", "")
    out = f"[wardwatch] {word} {notice.ward_name}: {text}"
    if first.alert.behind:
        out += f" ({t['devices_behind'].format(n=len(first.alert.behind))})"
    if len(alerts) > 1:
        out += f" {t['more'].format(n=len(alerts) - 1).removeprefix('… ')}"
    return _cut(" ".join(out.split()), 250)


def description(na: NoticeAlert, notice: Notice) -> str:
    """The webhook's ``description`` annotation: the facts beyond the summary, one line."""
    lang = notice.language
    t = _t(lang)
    a = na.alert
    parts = [t["since"].format(t=local_time(a.started_ms, notice.timezone, with_zone=True, lang=lang))]
    reason = " ".join(a.reason.split())
    if reason:
        parts.append(t["reason"].format(r=_reason(reason, lang)))
    if a.feed:
        parts.append(t["feed"].format(f=a.feed))
    if a.behind:
        parts.append(t["behind"].format(b=behind_counts(a, lang)))
    return "; ".join(parts)


def email_body(notice: Notice) -> str:
    """The email's plain-text body: per alert, everything a technician needs on site."""
    lang, tz = notice.language, notice.timezone
    t = _t(lang)
    out = [_heading(notice), ""]
    for na in ordered(notice.alerts):
        a = na.alert
        mark = _MARK.get(a.severity, "⚠") if na.status == "firing" else _MARK["resolved"]
        state = a.severity.upper() if na.status == "firing" else t["resolved"].upper()
        out.append(f"{mark} {state}: {summary(a, lang)}")
        kind = t.get(a.labels.get("kind", ""), a.labels.get("kind", t["device"]))
        rows = [
            (t["e_ward"], notice.ward_name),
            (t["e_device"], f"{a.device} ({kind})"),
            (t["e_what"], f"{a.rule}" + (f" [{a.labels['if_name']}]" if a.labels.get("if_name") else "")),
            (t["e_since"], local_time(a.started_ms, tz, with_zone=True, lang=lang)),
        ]
        if na.status == "resolved" and a.ended_ms is not None:
            rows.append((t["e_ended"], local_time(a.ended_ms, tz, with_zone=True, lang=lang)))
        if a.reason:
            code = " ".join(a.reason.split())
            rows.append((t["e_reason"], _reason(code, lang)))
        if a.feed:
            rows.append((t["e_feed"], a.feed))
        for label, value in rows:
            out.append(f"  {label}: {value}")
        if a.behind:
            out.append(f"  {t['e_behind']}: {len(a.behind)} ({behind_counts(a, lang)})")
            by_kind: dict[str, list[str]] = {}
            for b in a.behind:
                by_kind.setdefault(b.kind, []).append(b.device)
            for kind_name, devices in sorted(by_kind.items()):
                out.append(f"    {t.get(kind_name, kind_name)}: {', '.join(sorted(devices))}")
        if na.status == "firing":
            if a.acked_by:
                out.append(f"  {t['e_acked']}: {a.acked_by}")
            elif na.ack_url:
                out.append(f"  {t['e_ack']}: {na.ack_url}")
        out.append("")
    if notice.external_url:
        out.append(notice.external_url)
    out.append(t["e_footer"].format(zone=zone_name(tz, lang)))
    return "\n".join(out) + "\n"
