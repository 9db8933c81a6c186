"""The origin a client used, as Traefik forwards it (X-Forwarded-Proto/Host), falling back to Host."""

from __future__ import annotations

from collections.abc import Mapping


def origin_from(proto: str | None, host: str | None) -> str:
    scheme = (proto or "http").split(",", 1)[0].strip().lower()
    if scheme not in ("http", "https"):
        scheme = "http"
    netloc = (host or "").split(",", 1)[0].strip().lower()
    # Default ports are not part of a resource URL (oauth/urls.py: their normalized form).
    if (scheme == "https" and netloc.endswith(":443")) or (scheme == "http" and netloc.endswith(":80")):
        netloc = netloc.rsplit(":", 1)[0]
    return f"{scheme}://{netloc}"


def request_origin(headers: Mapping[str, str]) -> str:
    return origin_from(headers.get("x-forwarded-proto"), headers.get("x-forwarded-host") or headers.get("host"))
