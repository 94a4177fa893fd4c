"""The agents' reason codes in words, for messages: a technician reads "mất kết nối", not
"offline". Codes come from agent/camera/state.py (cameras, docs/cameras.md) and the SNMP and
ICMP pollers (device_status.reason). An unknown code is shown as it is."""

from __future__ import annotations

from typing import Final

WORDS: Final[dict[str, dict[str, str]]] = {
    "ok": {"vi": "bình thường", "en": "OK"},
    "offline": {"vi": "mất kết nối", "en": "offline"},
    "timeout": {"vi": "không phản hồi", "en": "no answer"},
    "unreachable": {"vi": "không tới được", "en": "unreachable"},
    "auth": {"vi": "sai tài khoản/mật khẩu", "en": "credentials refused"},
    "clock_skew_auth": {"vi": "lệch đồng hồ, xác thực thất bại", "en": "clock too far off for digest auth"},
    "bad_xml": {"vi": "phản hồi ONVIF hỏng", "en": "broken ONVIF answer"},
    "onvif_error": {"vi": "lỗi ONVIF", "en": "ONVIF error"},
    "rtsp_401": {"vi": "luồng RTSP từ chối đăng nhập", "en": "RTSP stream refused the login"},
    "rtsp_404": {"vi": "không có luồng RTSP", "en": "RTSP stream not found"},
    "rtsp_timeout": {"vi": "luồng RTSP không phản hồi", "en": "RTSP stream not answering"},
    "rtsp_error": {"vi": "lỗi luồng RTSP", "en": "RTSP stream error"},
    "no_snapshot_uri": {"vi": "không có ảnh chụp", "en": "no snapshot URI"},
    "snapshot_failed": {"vi": "không lấy được ảnh chụp", "en": "snapshot failed"},
    "frozen": {"vi": "hình ảnh bị đứng", "en": "frozen image"},
    "poe_lost": {"vi": "mất nguồn PoE", "en": "PoE lost"},
    "port_down": {"vi": "cổng switch mất kết nối", "en": "switch port down"},
    "snmp_timeout": {"vi": "SNMP không phản hồi, ping vẫn được", "en": "SNMP not answering, ping answers"},
    "snmp_auth": {"vi": "SNMP sai thông tin xác thực", "en": "SNMP credentials refused"},
    "internal_error": {"vi": "lỗi nội bộ của trạm", "en": "agent internal error"},
    "removed": {"vi": "đã bỏ khỏi cấu hình của trạm", "en": "removed from the agent's config"},
}


def words(code: str, language: str) -> str:
    """``code`` in ``language`` (vi or en); an unknown code as it is."""
    entry = WORDS.get(code)
    return entry.get(language, code) if entry else code
