"""Whom a camera's credentials may go to, and how (issue 14, "Camera traffic").

A camera names the addresses the agent talks to next: service XAddrs, the PullPoint's
address, the stream and snapshot URIs, a snapshot's redirect. A hostile or misconfigured
camera can name any host, and an agent that followed with the camera's credentials would
hand them to whoever listens there. The rule: the configured ``host`` of the device is the
only trusted host. Another port or scheme on that host is fine; another host, even one that
resolves to the same address (``localhost`` for ``127.0.0.1``), is not: nothing here
resolves names, so a DNS answer cannot widen the trust.

Basic auth puts the password on the wire in clear (Base64), so it is sent only over TLS
(https, rtsps) or where the device's auth profile says ``onvif.allow_basic: true``.
Digest, and the WS-UsernameToken PasswordDigest of the SOAP calls, never carry the password.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

TLS_SCHEMES = frozenset({"https", "rtsps"})
BASIC_REFUSED = "only Basic offered over plain {scheme}; set allow_basic: true in the auth profile to allow it"


def norm_host(host: str) -> str:
    """A host for comparison: lower-case, no IPv6 brackets, no trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def same_host(host: str | None, trusted: str) -> bool:
    """Is ``host`` (from a URI the camera gave) the configured ``trusted`` host?"""
    return host is not None and bool(host) and norm_host(host) == norm_host(trusted)


def basic_allowed(scheme: str, allow_basic: bool) -> bool:
    """May a Basic Authorization header go over ``scheme``?"""
    return allow_basic or scheme.lower() in TLS_SCHEMES


def offhost(what: str, host: str | None, trusted: str) -> str:
    """The technician's words for a URI pointing away from the camera."""
    return f"{what} points at {host or '(no host)'}, not the camera ({trusted}); not followed"


def redact(uri: str) -> str:
    """``uri`` without ``user:password@``, for logs and readings."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri.rpartition("@")[2] if "@" in uri else uri
    if "@" not in parts.netloc:
        return uri
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))
