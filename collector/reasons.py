"""The agents' reason codes in words, Vietnamese and English: one table for the alert
messages (collector/alerts) and the dashboard (collector/web). Codes come from the camera
pipeline (agent/camera/state.py, docs/cameras.md), the SNMP and ICMP pollers
(device_status.reason: ``snmp_<error>`` when only ping answers, ``onvif_<error>``) and the
collector's own (agent_offline, stale, removed)."""

from __future__ import annotations

from typing import Final

WORDS: Final[dict[str, dict[str, str]]] = {
    "ok": {"vi": "Bình thường", "en": "All checks passed"},
    "poe_lost": {"vi": "Cổng switch mất nguồn PoE", "en": "The switch port stopped delivering PoE power"},
    "port_down": {"vi": "Cổng switch cấp cho thiết bị bị tắt", "en": "The switch port feeding it is down"},
    "offline": {"vi": "Không trả lời (ONVIF)", "en": "Not answering (ONVIF)"},
    "auth": {"vi": "Sai tên đăng nhập hoặc mật khẩu", "en": "Credentials refused"},
    "clock_skew_auth": {
        "vi": "Đồng hồ camera lệch, phải bù giờ mới đăng nhập được",
        "en": "Camera clock is off; login works only with the offset applied",
    },
    "bad_xml": {"vi": "Camera trả lời sai định dạng XML", "en": "The camera's answer is not usable XML"},
    "onvif_error": {"vi": "Lỗi ONVIF", "en": "ONVIF error"},
    "rtsp_401": {"vi": "Luồng RTSP từ chối đăng nhập", "en": "RTSP refused the credentials"},
    "rtsp_404": {"vi": "Không tìm thấy luồng RTSP", "en": "RTSP does not know the stream"},
    "rtsp_timeout": {"vi": "Luồng RTSP không trả lời kịp", "en": "RTSP did not answer in time"},
    "rtsp_error": {"vi": "Lỗi luồng RTSP", "en": "RTSP error"},
    "no_snapshot_uri": {"vi": "Không có địa chỉ ảnh chụp", "en": "No snapshot URI"},
    "snapshot_failed": {"vi": "Không lấy được ảnh chụp", "en": "The snapshot failed"},
    "frozen": {"vi": "Hình ảnh bị đứng", "en": "The image is frozen"},
    "timeout": {"vi": "Không trả lời kịp", "en": "No answer in time"},
    "refused": {"vi": "Từ chối kết nối", "en": "Connection refused"},
    "disconnected": {"vi": "Ngắt kết nối giữa chừng", "en": "Closed the connection without answering"},
    "unreachable": {"vi": "Không tới được thiết bị", "en": "Unreachable"},
    "protocol": {"vi": "Trả lời sai giao thức", "en": "Answered something that is no answer"},
    "no_such_object": {"vi": "Thiết bị thiếu số liệu cần đọc", "en": "The device lacks the values to read"},
    "internal_error": {"vi": "Lỗi bên trong agent", "en": "Internal error in the agent"},
    "error": {"vi": "Lỗi", "en": "Error"},
    "agent_offline": {"vi": "Agent của phường mất kết nối", "en": "The ward's agent is offline"},
    "stale": {"vi": "Lâu không có số liệu", "en": "No reading for too long"},
    "no_data": {"vi": "Chưa có số liệu", "en": "No reading yet"},
    "removed": {"vi": "Đã bỏ khỏi cấu hình của trạm", "en": "Removed from the agent's config"},
}
SNMP_ONLY_PING: Final = {
    "vi": "Ping được nhưng SNMP không trả lời ({detail})",
    "en": "Answers ping, but not SNMP ({detail})",
}


def words(code: str, language: str) -> str | None:
    """``code`` in words in ``language`` (vi or en); None for a code nobody wrote words for."""
    lang = language if language in ("vi", "en") else "vi"
    entry = WORDS.get(code)
    if entry is not None:
        return entry[lang]
    if code.startswith("snmp_"):
        detail = code.removeprefix("snmp_")
        said = WORDS[detail][lang] if detail in WORDS else detail
        return SNMP_ONLY_PING[lang].replace("{detail}", said)
    if code.startswith("onvif_"):
        return f"{WORDS['onvif_error'][lang]} ({code.removeprefix('onvif_')})"
    return None
