"""Signed acknowledgement links: ``{external_url}/ack/{token}``.

A token is ``{fingerprint}.{expiry}.{mac}``: the alert's fingerprint, the expiry in epoch
ms (base 36) and the first 128 bits of HMAC-SHA256 over both, base64url without padding.
Every part is URL-safe, so the token goes into a path as it is. Whoever holds the link may
acknowledge that one alert until it expires, and nothing else; the key lives in the state
file (or ``alerts.ack_secret``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Final

MAC_BYTES: Final = 16  # 128 bits of HMAC-SHA256
MAX_TOKEN: Final = 200  # longer is malformed, before any work is done on it
_CONTEXT: Final = b"wardwatch ack v1\x00"  # a key used for nothing else today, and never confused later
_FINGERPRINT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EXPIRY = re.compile(r"^[0-9a-z]{1,13}$")
_MAC = re.compile(r"^[A-Za-z0-9_-]{22}$")  # 16 bytes, base64url, unpadded
_DIGITS: Final = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(value: int) -> str:
    out = ""
    while True:
        value, digit = divmod(value, 36)
        out = _DIGITS[digit] + out
        if value == 0:
            return out


def _mac(secret: bytes, fingerprint: str, expiry: str) -> bytes:
    message = _CONTEXT + f"{fingerprint}.{expiry}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:MAC_BYTES]


def sign(secret: bytes, fingerprint: str, *, expires_ms: int) -> str:
    """A token that acknowledges ``fingerprint`` until ``expires_ms`` (epoch ms)."""
    if not secret:
        raise ValueError("empty signing key")
    if not _FINGERPRINT.match(fingerprint):
        raise ValueError(f"{fingerprint!r} is not a fingerprint")
    if expires_ms < 0:
        raise ValueError("expiry before 1970")
    expiry = _base36(expires_ms)
    mac = base64.urlsafe_b64encode(_mac(secret, fingerprint, expiry)).rstrip(b"=").decode()
    return f"{fingerprint}.{expiry}.{mac}"


def verify(secret: bytes, token: str, *, now_ms: int) -> str | None:
    """The fingerprint the token acknowledges; None when it is forged, malformed or expired."""
    if not secret or len(token) > MAX_TOKEN:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    fingerprint, expiry, mac_text = parts
    if not (_FINGERPRINT.match(fingerprint) and _EXPIRY.match(expiry) and _MAC.match(mac_text)):
        return None
    try:
        given = base64.urlsafe_b64decode(mac_text + "==")
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(given, _mac(secret, fingerprint, expiry)):
        return None
    if now_ms >= int(expiry, 36):
        return None
    return fingerprint
