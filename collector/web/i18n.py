"""Every visible string of the dashboard, in Vietnamese (the default) and English.

Templates call ``t("key")``; app.js gets the strings of the page's language embedded in the
page (:func:`strings_for`) and calls ``t("key")`` too. tests/test_web_i18n.py checks that
every key used in either exists here with both languages, and that no template carries
visible text of its own.

``{name}`` placeholders are filled by :func:`text` (Python) and ``t(key, {name: ...})`` (JS).
"""

from __future__ import annotations

from typing import Final

from wardwatch.collector import reasons

LANGS: Final = ("vi", "en")
DEFAULT_LANG: Final = "vi"
LANG_COOKIE: Final = "ww_lang"

# Families whose keys are built at run time (``"state." + state``): the i18n test checks
# each member of each family exists.
STATES: Final = ("ok", "degraded", "down", "unknown")
KINDS: Final = ("switch", "ap", "camera")
ALERT_STATES: Final = ("pending", "firing", "resolved", "suppressed", "silenced", "acknowledged")
SEVERITIES: Final = ("critical", "warning", "info")
REPORT_KINDS: Final = ("uptime", "coverage", "capacity")
RANGES: Final = ("24h", "7d", "30d")

STRINGS: Final[dict[str, dict[str, str]]] = {
    # the frame
    "app.title": {"vi": "Giám sát mạng Hội An", "en": "Hội An network monitor"},
    "nav.overview": {"vi": "Toàn thành phố", "en": "City overview"},
    "nav.alerts": {"vi": "Cảnh báo", "en": "Alerts"},
    "nav.reports": {"vi": "Báo cáo", "en": "Reports"},
    "nav.logout": {"vi": "Đăng xuất", "en": "Log out"},
    "nav.main": {"vi": "Điều hướng chính", "en": "Main navigation"},
    "lang.label": {"vi": "Ngôn ngữ", "en": "Language"},
    "lang.vi": {"vi": "Tiếng Việt", "en": "Tiếng Việt"},
    "lang.en": {"vi": "English", "en": "English"},
    "lang.vi_short": {"vi": "VI", "en": "VI"},
    "lang.en_short": {"vi": "EN", "en": "EN"},
    "live.connecting": {"vi": "Đang kết nối…", "en": "Connecting…"},
    "live.live": {"vi": "Trực tiếp", "en": "Live"},
    "live.stale": {"vi": "Mất kết nối", "en": "Disconnected"},
    "live.stale_banner": {
        "vi": "Mất kết nối với máy chủ: số liệu trên trang có thể đã cũ. Đang tự kết nối lại…",
        "en": "Lost the connection to the server: what this page shows may be out of date. Reconnecting…",
    },
    "live.updated": {"vi": "Cập nhật lúc {time}", "en": "Updated at {time}"},
    "time.zone": {"vi": "Giờ {tz}", "en": "Time zone {tz}"},
    "common.none": {"vi": "Không có", "en": "None"},
    "common.dash": {"vi": "\u2013", "en": "\u2013"},
    "common.loading": {"vi": "Đang tải…", "en": "Loading…"},
    "common.error": {"vi": "Lỗi: {message}", "en": "Error: {message}"},
    "common.back_overview": {"vi": "← Toàn thành phố", "en": "← City overview"},
    # states
    "state.ok": {"vi": "Bình thường", "en": "OK"},
    "state.degraded": {"vi": "Suy giảm", "en": "Degraded"},
    "state.down": {"vi": "Mất kết nối", "en": "Down"},
    "state.unknown": {"vi": "Không rõ", "en": "Unknown"},
    "state.legend": {"vi": "Chú thích trạng thái", "en": "State legend"},
    # kinds
    "kind.switch": {"vi": "Switch", "en": "Switch"},
    "kind.ap": {"vi": "Điểm phát Wi-Fi", "en": "Wi-Fi AP"},
    "kind.camera": {"vi": "Camera", "en": "Camera"},
    "kinds.switch": {"vi": "Switch", "en": "Switches"},
    "kinds.ap": {"vi": "Wi-Fi AP", "en": "APs"},
    "kinds.camera": {"vi": "Camera", "en": "Cameras"},
    # overview
    "overview.title": {"vi": "Toàn thành phố", "en": "City overview"},
    "overview.uptime_24h": {"vi": "Hoạt động 24 giờ", "en": "Uptime 24 h"},
    "overview.uptime_30d": {"vi": "Hoạt động 30 ngày", "en": "Uptime 30 d"},
    "overview.devices_up": {"vi": "Thiết bị hoạt động", "en": "Devices up"},
    "overview.alerts_total": {"vi": "Cảnh báo đang báo", "en": "Alerts firing"},
    "overview.wards": {"vi": "Phường, xã", "en": "Wards"},
    "overview.no_wards": {
        "vi": "Chưa có phường, xã nào: hãy khai báo trong mục wards: của cấu hình.",
        "en": "No wards yet: list them under wards: in the collector's config.",
    },
    "tile.alerts": {"vi": "Cảnh báo", "en": "Alerts"},
    "tile.wifi": {"vi": "Khách Wi-Fi", "en": "Wi-Fi clients"},
    "tile.wifi_value": {"vi": "{now} (đỉnh {peak})", "en": "{now} (peak {peak})"},
    "tile.open": {"vi": "Xem phường {name}", "en": "Open ward {name}"},
    # ward
    "ward.title": {"vi": "Phường, xã {name}", "en": "Ward {name}"},
    "ward.devices": {"vi": "Thiết bị", "en": "Devices"},
    "ward.wifi_now": {"vi": "Khách Wi-Fi hiện tại", "en": "Wi-Fi clients now"},
    "ward.wifi_peak": {"vi": "Cao nhất hôm nay", "en": "Today's peak"},
    "ward.active_alerts": {"vi": "Cảnh báo đang báo", "en": "Active alerts"},
    "ward.no_devices": {"vi": "Chưa có thiết bị nào báo về.", "en": "No device has reported yet."},
    "ward.not_found": {"vi": "Không có phường, xã này.", "en": "There is no such ward."},
    "ward.filter": {"vi": "Lọc thiết bị", "en": "Filter devices"},
    "ward.only_problems": {"vi": "Chỉ thiết bị có vấn đề", "en": "Only devices with a problem"},
    "col.state": {"vi": "Trạng thái", "en": "State"},
    "col.device": {"vi": "Thiết bị", "en": "Device"},
    "col.kind": {"vi": "Loại", "en": "Kind"},
    "col.reason": {"vi": "Nguyên nhân", "en": "Reason"},
    "col.since": {"vi": "Từ lúc", "en": "Since"},
    "col.feed": {"vi": "Cổng cấp", "en": "Fed by"},
    "col.vendor": {"vi": "Hãng", "en": "Vendor"},
    "col.ward": {"vi": "Phường, xã", "en": "Ward"},
    "col.alert": {"vi": "Cảnh báo", "en": "Alert"},
    "col.severity": {"vi": "Mức độ", "en": "Severity"},
    "col.time": {"vi": "Thời gian", "en": "Time"},
    "col.ack": {"vi": "Xác nhận", "en": "Acknowledged"},
    "col.actions": {"vi": "Thao tác", "en": "Actions"},
    "col.format": {"vi": "Định dạng", "en": "Format"},
    "col.report": {"vi": "Báo cáo", "en": "Report"},
    # device
    "device.title": {"vi": "{kind} {id}", "en": "{kind} {id}"},
    "device.host": {"vi": "Địa chỉ", "en": "Address"},
    "device.ward": {"vi": "Phường, xã", "en": "Ward"},
    "device.not_found": {"vi": "Không có thiết bị này.", "en": "There is no such device."},
    "device.range": {"vi": "Khoảng thời gian", "en": "Time range"},
    "range.24h": {"vi": "24 giờ", "en": "24 hours"},
    "range.7d": {"vi": "7 ngày", "en": "7 days"},
    "range.30d": {"vi": "30 ngày", "en": "30 days"},
    "chart.no_data": {"vi": "Chưa có số liệu trong khoảng này.", "en": "No data in this range."},
    "chart.port_rates": {"vi": "Lưu lượng cổng (bit/s)", "en": "Port rates (bit/s)"},
    "chart.clients": {"vi": "Khách Wi-Fi", "en": "Wi-Fi clients"},
    "chart.util": {"vi": "Mức sử dụng kênh (%)", "en": "Channel utilisation (%)"},
    "chart.rtt": {"vi": "Độ trễ ping (ms)", "en": "Ping round trip (ms)"},
    "chart.loss": {"vi": "Mất gói ping (%)", "en": "Ping loss (%)"},
    "chart.clock_skew": {"vi": "Lệch đồng hồ (giây)", "en": "Clock skew (s)"},
    "chart.bitrate": {"vi": "Tốc độ luồng video (kbit/s)", "en": "Video bitrate (kbit/s)"},
    "chart.timeline": {"vi": "Lịch sử trạng thái camera", "en": "Camera state timeline"},
    "chart.other": {"vi": "Số liệu khác ({unit})", "en": "Other readings ({unit})"},
    "chart.changes": {"vi": "Các lần đổi trạng thái", "en": "State changes"},
    "series.in_bps": {"vi": "vào", "en": "in"},
    "series.out_bps": {"vi": "ra", "en": "out"},
    "series.clients": {"vi": "tổng", "en": "total"},
    "series.util_pct": {"vi": "mức sử dụng", "en": "utilisation"},
    "series.rtt_ms": {"vi": "độ trễ", "en": "round trip"},
    "series.loss_pct": {"vi": "mất gói", "en": "loss"},
    "series.clock_skew_s": {"vi": "lệch đồng hồ", "en": "clock skew"},
    "series.bitrate_kbps": {"vi": "tốc độ luồng", "en": "bitrate"},
    # alerts page
    "alerts.title": {"vi": "Cảnh báo", "en": "Alerts"},
    "alerts.active": {"vi": "Đang báo", "en": "Active"},
    "alerts.history": {"vi": "Lịch sử", "en": "History"},
    "alerts.none": {"vi": "Không có cảnh báo nào đang báo.", "en": "No alert is active."},
    "alerts.no_history": {"vi": "Chưa có lịch sử.", "en": "No history yet."},
    "alerts.your_name": {"vi": "Tên của bạn (ghi vào xác nhận)", "en": "Your name (for acknowledgements)"},
    "alerts.name_needed": {
        "vi": "Hãy nhập tên của bạn trước khi xác nhận hoặc tạm tắt.",
        "en": "Enter your name before acknowledging or silencing.",
    },
    "alerts.ack": {"vi": "Xác nhận", "en": "Acknowledge"},
    "alerts.acked_by": {"vi": "{by}, {time}", "en": "{by}, {time}"},
    "alerts.silence": {"vi": "Tạm tắt", "en": "Silence"},
    "alerts.silence_for": {"vi": "Tạm tắt trong", "en": "Silence for"},
    "alerts.silenced": {"vi": "Đã tạm tắt đến {time}", "en": "Silenced until {time}"},
    "alerts.muted": {"vi": "Đang tắt tiếng", "en": "Muted"},
    "alerts.behind": {"vi": "{n} thiết bị phía sau", "en": "{n} devices behind it"},
    "alerts.done_ack": {"vi": "Đã xác nhận.", "en": "Acknowledged."},
    "alerts.done_silence": {"vi": "Đã tạm tắt.", "en": "Silenced."},
    "alerts.silences": {"vi": "Đang tạm tắt", "en": "Silences"},
    "alerts.no_silences": {"vi": "Không có lệnh tạm tắt nào.", "en": "No silence."},
    "alerts.matchers": {"vi": "Áp dụng cho", "en": "Applies to"},
    "alerts.until": {"vi": "Đến", "en": "Until"},
    "alerts.created_by": {"vi": "Người tạo", "en": "Created by"},
    "dur.1h": {"vi": "1 giờ", "en": "1 hour"},
    "dur.4h": {"vi": "4 giờ", "en": "4 hours"},
    "dur.24h": {"vi": "24 giờ", "en": "24 hours"},
    "alert_state.pending": {"vi": "Đang chờ", "en": "Pending"},
    "alert_state.firing": {"vi": "Đang báo", "en": "Firing"},
    "alert_state.resolved": {"vi": "Đã hết", "en": "Resolved"},
    "alert_state.suppressed": {"vi": "Bị gộp", "en": "Suppressed"},
    "alert_state.silenced": {"vi": "Tạm tắt", "en": "Silenced"},
    "alert_state.acknowledged": {"vi": "Đã xác nhận", "en": "Acknowledged"},
    "severity.critical": {"vi": "Nghiêm trọng", "en": "Critical"},
    "severity.warning": {"vi": "Cảnh báo", "en": "Warning"},
    "severity.info": {"vi": "Thông tin", "en": "Info"},
    # reports
    "reports.title": {"vi": "Báo cáo", "en": "Reports"},
    "reports.month": {"vi": "Tháng", "en": "Month"},
    "reports.show": {"vi": "Xem", "en": "Show"},
    "reports.intro": {
        "vi": "Mỗi báo cáo có ba dạng: trang HTML để đọc và in, CSV cho bảng tính, JSON cho máy.",
        "en": "Each report comes three ways: an HTML page to read and print, CSV for a spreadsheet, JSON for programs.",
    },
    "report.uptime": {"vi": "Thời gian hoạt động", "en": "Uptime"},
    "report.coverage": {"vi": "Độ phủ giám sát", "en": "Monitoring coverage"},
    "report.capacity": {"vi": "Dung lượng và quy hoạch", "en": "Capacity and planning"},
    "report.uptime_about": {
        "vi": "Tỉ lệ hoạt động của từng thiết bị và phường, xã trong tháng.",
        "en": "Each device's and ward's share of the month it was up.",
    },
    "report.coverage_about": {
        "vi": "Thiết bị nào báo về đủ số liệu, thiết bị nào thiếu.",
        "en": "Which devices reported fully, and which left gaps.",
    },
    "report.capacity_about": {
        "vi": "Khách Wi-Fi, băng thông camera và nguồn PoE so với giới hạn.",
        "en": "Wi-Fi clients, camera bandwidth and PoE power against their limits.",
    },
    "fmt.html": {"vi": "HTML", "en": "HTML"},
    "fmt.csv": {"vi": "CSV", "en": "CSV"},
    "fmt.json": {"vi": "JSON", "en": "JSON"},
    # login
    "login.title": {"vi": "Đăng nhập", "en": "Log in"},
    "login.token": {"vi": "Mã truy cập", "en": "Access token"},
    "login.help": {
        "vi": "Mã truy cập là http.token trong cấu hình của collector. Hỏi người quản trị nếu bạn chưa có.",
        "en": "The access token is http.token in the collector's config. Ask your administrator if you have none.",
    },
    "login.submit": {"vi": "Đăng nhập", "en": "Log in"},
    "login.bad_token": {"vi": "Mã truy cập không đúng.", "en": "That access token is wrong."},
    "login.rate_limited": {
        "vi": "Sai quá nhiều lần. Hãy thử lại sau một phút.",
        "en": "Too many wrong attempts. Try again in a minute.",
    },
    # reasons: collector/reasons.py (one table with the alert messages)
    **{f"reason.{code}": said for code, said in reasons.WORDS.items()},
    "reason.snmp_only_ping": dict(reasons.SNMP_ONLY_PING),
    "reason.other": {"vi": "Lý do: {code}", "en": "Reason: {code}"},
}


def text(key: str, lang: str, **values: object) -> str:
    """The string ``key`` in ``lang`` (Vietnamese when that is missing), placeholders filled;
    the key itself when there is no such string, so that a gap shows rather than hides."""
    entry = STRINGS.get(key)
    if entry is None:
        return key
    out = entry.get(lang) or entry[DEFAULT_LANG]
    if values:
        for name, value in values.items():
            out = out.replace("{" + name + "}", str(value))
    return out


def pick_lang(value: str | None) -> str:
    """A request's language from its ``ww_lang`` cookie: vi unless it says en."""
    return value if value in LANGS else DEFAULT_LANG


def strings_for(lang: str) -> dict[str, str]:
    """Every string in one language, for the page's script."""
    return {key: entry.get(lang) or entry[DEFAULT_LANG] for key, entry in STRINGS.items()}


def reason_words(code: str | None, lang: str) -> str:
    """A device's reason code in words; ``snmp_timeout`` (answers ping only) included."""
    if not code:
        return ""
    said = reasons.words(code, lang)
    return said if said is not None else text("reason.other", lang, code=code)
