"""Web origins (RFC 6454 §4): what a browser sends in ``Origin`` and CORS compares exactly."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_of(url: str) -> str:
    """The RFC 6454 origin of an http(s) URL, as a browser sends it in ``Origin``; "" if none."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    if scheme not in ("http", "https") or not parts.hostname:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")
