"""HTTP/RTSP Digest access authentication (RFC 7616, RFC 2617), for snapshots and RTSP.

Pure functions: parse a ``WWW-Authenticate`` challenge and compute the ``Authorization``
answer. Cameras use MD5 with ``qop=auth`` (most), MD5 without qop (older firmware and
many RTSP servers), and lately SHA-256. RTSP servers expect ``uri`` to be the full
request URL, HTTP servers the path and query.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*,?')


MAX_PARAM = 1024  # a realm, nonce or opaque longer than this is not a camera's


class DigestError(ValueError):
    """A challenge this client cannot answer: malformed, or an unknown algorithm."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge."""

    scheme: str  # "digest" or "basic", lower-case
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """All challenges in the given ``WWW-Authenticate`` header values, in order.

    Each header holds one challenge here: that is what cameras send, and splitting
    several challenges out of one header value is ambiguous in the grammar anyway.
    """
    out: list[Challenge] = []
    for value in headers:
        scheme, _, rest = value.strip().partition(" ")
        if not scheme:
            continue
        params: dict[str, str] = {}
        pos = 0
        rest = rest.strip()
        while pos < len(rest):
            m = _PARAM.match(rest, pos)
            if m is None or m.end() == pos:
                break
            key, raw = m.group(1).lower(), m.group(2)
            if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[key] = raw
            pos = m.end()
        out.append(Challenge(scheme=scheme.lower(), params=params))
    return out


def pick(challenges: list[Challenge]) -> Challenge | None:
    """The challenge to answer: Digest (the strongest algorithm offered) before Basic."""
    digests = [c for c in challenges if c.scheme == "digest" and _algorithm(c) in ("MD5", "SHA-256")]
    if digests:
        return max(digests, key=lambda c: _algorithm(c) == "SHA-256")
    return next((c for c in challenges if c.scheme == "basic"), None)


def _algorithm(ch: Challenge) -> str:
    algo = ch.params.get("algorithm", "MD5").upper()
    return algo.removesuffix("-SESS")


def _h(algo: str, text: str) -> str:
    if algo == "SHA-256":
        return hashlib.sha256(text.encode()).hexdigest()
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def authorization(
    ch: Challenge, *, method: str, uri: str, username: str, password: str, nc: int = 1, cnonce: str | None = None
) -> str:
    """The ``Authorization`` header value answering challenge ``ch``."""
    if ch.scheme == "basic":
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return f"Basic {token}"
    if ch.scheme != "digest":
        raise DigestError(f"unsupported auth scheme {ch.scheme!r}")
    raw_algo = ch.params.get("algorithm", "MD5")
    algo = _algorithm(ch)
    if algo not in ("MD5", "SHA-256"):
        raise DigestError(f"unsupported digest algorithm {raw_algo!r}")
    realm = ch.realm
    nonce = ch.params.get("nonce")
    if nonce is None:
        raise DigestError("digest challenge without a nonce")
    for key in ("realm", "nonce", "opaque", "qop", "algorithm"):
        value = ch.params.get(key, "")
        # echoed into our Authorization header: a CR, LF or NUL there would be header injection
        if len(value) > MAX_PARAM or not value.isprintable():
            raise DigestError(f"malformed digest challenge: unusable {key}")
    qops = [q.strip() for q in ch.params.get("qop", "").split(",") if q.strip()]
    cnonce = cnonce or os.urandom(8).hex()
    ha1 = _h(algo, f"{username}:{realm}:{password}")
    if raw_algo.upper().endswith("-SESS"):
        ha1 = _h(algo, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(algo, f"{method}:{uri}")
    parts = [
        f'username="{_quote(username)}"',
        f'realm="{_quote(realm)}"',
        f'nonce="{_quote(nonce)}"',
        f'uri="{_quote(uri)}"',
    ]
    if "auth" in qops:
        nc_text = f"{nc:08x}"
        response = _h(algo, f"{ha1}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={nc_text}", f'cnonce="{cnonce}"']
    elif qops:
        raise DigestError(f"unsupported qop {ch.params['qop']!r}")
    else:
        response = _h(algo, f"{ha1}:{nonce}:{ha2}")
        parts.append(f'response="{response}"')
    if "algorithm" in ch.params:
        parts.append(f"algorithm={raw_algo}")
    if "opaque" in ch.params:
        parts.append(f'opaque="{_quote(ch.params["opaque"])}"')
    return "Digest " + ", ".join(parts)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
