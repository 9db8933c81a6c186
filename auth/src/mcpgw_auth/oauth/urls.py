"""URL helpers of the protocol core: the canonical form of issuer and resource URLs, and loopback hosts."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def normalize_url(url: str) -> str:
    """Canonical form of a resource or issuer URL: lowercase scheme and host, no trailing slash, no fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    if parts.fragment or parts.query:
        raise ValueError(f"URL must not carry a query or fragment: {url!r}")
    netloc = parts.hostname.lower()
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
