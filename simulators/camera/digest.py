"""HTTP Digest access authentication (RFC 7616 with MD5; RFC 2617 style without qop for RTSP).

Nonces are stateless: a timestamp signed with a per-camera secret, good for ``NONCE_TTL_S``.
A stale nonce gets a fresh challenge with ``stale=TRUE``, as browsers and aiohttp expect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import time

NONCE_TTL_S = 300.0
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def parse_authorization(value: str) -> dict[str, str] | None:
    """The parameters of a ``Digest ...`` Authorization header, or None for other schemes."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    return {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM.finditer(rest)}


class DigestAuth:
    """One camera's digest realm and credentials."""

    def __init__(self, *, realm: str, username: str, password: str, qop: bool = True) -> None:
        self.realm = realm
        self.username = username
        self.password = password
        self.qop = qop
        self._secret = os.urandom(16)
        self.opaque = hashlib.md5(self._secret).hexdigest()

    def _nonce(self, stamp: int) -> str:
        sig = hmac.new(self._secret, str(stamp).encode(), hashlib.sha256).hexdigest()[:24]
        return f"{stamp:x}{sig}"

    def _nonce_state(self, nonce: str) -> str:
        """``ok``, ``stale`` or ``bad``."""
        stamp_hex = nonce[:-24]
        try:
            stamp = int(stamp_hex, 16)
        except ValueError:
            return "bad"
        if not hmac.compare_digest(self._nonce(stamp), nonce):
            return "bad"
        return "ok" if time.time() - stamp <= NONCE_TTL_S else "stale"

    def challenge(self, *, stale: bool = False) -> str:
        nonce = self._nonce(int(time.time()))
        if self.qop:
            return (f'Digest realm="{self.realm}", qop="auth", nonce="{nonce}", opaque="{self.opaque}", '
                    f'algorithm=MD5, stale={"TRUE" if stale else "FALSE"}')
        return f'Digest realm="{self.realm}", nonce="{nonce}", stale="{"TRUE" if stale else "FALSE"}"'

    def verify(self, method: str, header: str | None) -> str:
        """``ok``, ``stale`` (right credentials, expired nonce) or ``bad``."""
        if not header:
            return "bad"
        p = parse_authorization(header)
        if p is None or p.get("username") != self.username or p.get("realm") != self.realm:
            return "bad"
        nonce, uri, response = p.get("nonce", ""), p.get("uri", ""), p.get("response", "")
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm != "MD5":
            return "bad"
        state = self._nonce_state(nonce)
        if state == "bad":
            return "bad"
        ha1 = _md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = _md5(f"{method}:{uri}")
        qop = p.get("qop")
        if qop == "auth":
            expected = _md5(f"{ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        elif qop is None:
            expected = _md5(f"{ha1}:{nonce}:{ha2}")
        else:
            return "bad"
        if not hmac.compare_digest(expected, response.lower()):
            return "bad"
        return state

    # Basic (RFC 7617), for the ``basic_only`` knob: what old firmware offers on plain http/rtsp.

    def basic_challenge(self) -> str:
        return f'Basic realm="{self.realm}"'

    def verify_basic(self, header: str | None) -> str:
        """``ok`` or ``bad`` for a ``Basic`` Authorization header."""
        scheme, _, token = (header or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return "bad"
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "bad"
        ok = sep and hmac.compare_digest(user, self.username) and hmac.compare_digest(password, self.password)
        return "ok" if ok else "bad"
