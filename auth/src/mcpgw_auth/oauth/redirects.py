"""Redirect URI rules: https or loopback http, no fragments, exact match (RFC 8252 §7.3 loopback port aside)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from mcpgw_auth.oauth.urls import is_loopback_host


def redirect_uri_problem(uri: str, extra_schemes: frozenset[str]) -> str | None:
    """Why a redirect URI cannot be registered, or None when it can."""
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        return "must be a non-empty string of at most 2000 characters"
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URI"
    if parts.fragment or "#" in uri:
        return "must not contain a fragment (RFC 6749 §3.1.2)"
    scheme = parts.scheme.lower()
    if scheme == "https":
        if not parts.hostname:
            return "must name a host"
        if parts.username or parts.password:
            return "must not carry credentials"
        return None
    if scheme == "http":
        if not parts.hostname or not is_loopback_host(parts.hostname):
            return "http is allowed only for loopback hosts (RFC 8252 §7.3); use https"
        if parts.username or parts.password:
            return "must not carry credentials"
        return None
    if scheme in extra_schemes:
        return None  # RFC 8252 §7.1 private-use scheme the operator allowed
    return "must use https, loopback http, or an allowed private-use scheme"


def redirect_uri_matches(registered: tuple[str, ...], presented: str) -> bool:
    """Exact string match (OAuth 2.1 §4.1.1), except that a loopback redirect may use any port (RFC 8252 §7.3)."""
    if presented in registered:
        return True
    try:
        got = urlsplit(presented)
        _ = got.port
    except ValueError:
        return False
    if got.scheme != "http" or not got.hostname or not is_loopback_host(got.hostname):
        return False
    for uri in registered:
        want = urlsplit(uri)
        same_apart_from_port = (
            want.scheme == "http"
            and want.hostname == got.hostname
            and want.path == got.path
            and want.query == got.query
            and "@" not in got.netloc  # no userinfo, not even an empty one
            and "#" not in presented  # RFC 6749 §3.1.2: no fragment, not even an empty one
        )
        if same_apart_from_port:
            return True
    return False


def with_params(uri: str, params: dict[str, str | None]) -> str:
    """Append response parameters to a redirect URI's query, keeping the query it already has (RFC 6749 §4.1.2)."""
    parts = urlsplit(uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
