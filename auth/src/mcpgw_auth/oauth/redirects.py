"""Redirect URI rules: https or loopback http to a host name or IP address, no fragments, exact match once scheme
and host are lowercase (RFC 8252 §7.3 loopback port aside)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

from mcpgw_auth.oauth.urls import is_loopback_host

# RFC 1123 §2.1 labels (letters, digits, inner hyphens) of at most 63 octets (RFC 1035 §2.3.4), plus the underscore,
# which DNS allows and browsers resolve.
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986 §3.1
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _host_problem(parts: SplitResult) -> str | None:
    """Why the host of a URI cannot be redirected to: only an IP address or a DNS host name can.

    RFC 3986 §3.2.2 lets a reg-name hold `*`, `!`, `;` or percent-encoding, but no such name resolves, and
    since redirect URIs are matched exactly a `*` would never act as a wildcard: it is refused, not ignored.
    """
    host = parts.hostname or ""
    if parts.netloc.startswith("[") or parts.netloc.partition("@")[2].startswith("["):
        try:
            ipaddress.IPv6Address(host)  # RFC 3986 §3.2.2 IP-literal; IPvFuture and zone ids (RFC 6874) are refused
        except ValueError:
            return "must name an IPv6 address between brackets"
        return "must not name a network interface (RFC 6874 zone id)" if "%" in host else None
    if host and all(ch.isdigit() or ch == "." for ch in host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return "must name a valid IPv4 address or host name"  # RFC 3696 §2: no all-numeric top-level label
        return None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "must name a host by its DNS name or IP address (no wildcards or other characters)"
    return None


def redirect_uri_problem(uri: str, extra_schemes: frozenset[str]) -> str | None:
    """Why a redirect URI cannot be registered, or None when it can."""
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        return "must be a non-empty string of at most 2000 characters"
    if any(not "!" <= ch <= "~" for ch in uri):
        # RFC 3986 §2: a URI is printable ASCII; anything else (spaces, controls, non-ASCII) is percent-encoded.
        return "must contain only printable ASCII characters (RFC 3986 §2): no whitespace, controls or non-ASCII"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URI"
    if parts.fragment or "#" in uri:
        return "must not contain a fragment (RFC 6749 §3.1.2)"
    scheme = parts.scheme.lower()
    if scheme in ("https", "http"):
        if not parts.hostname:
            return "must name a host"
        if parts.username or parts.password or "@" in parts.netloc:
            return "must not carry credentials"
        if problem := _host_problem(parts):
            return problem
        if scheme == "http" and not is_loopback_host(parts.hostname):
            return "http is allowed only for loopback hosts (RFC 8252 §7.3); use https"
        return None
    if scheme in extra_schemes:
        # RFC 8252 §7.1 private-use scheme the operator allowed; an authority there still names a host.
        return _host_problem(parts) if parts.hostname else None
    return "must use https, loopback http, or an allowed private-use scheme"


def normalize_redirect_uri(uri: str) -> str:
    """RFC 3986 §6.2.2.1: scheme and host are case-insensitive, so both are lowercased; nothing else is touched.

    Only ASCII letters are folded: a non-ASCII character (never in a registered URI) stays as it is, so it can never
    come to match an ASCII one.
    """
    scheme, colon, rest = uri.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        return uri
    scheme = scheme.translate(_ASCII_LOWER)
    if not rest.startswith("//"):
        return f"{scheme}:{rest}"
    end = next((i for i in range(2, len(rest)) if rest[i] in "/?#"), len(rest))
    userinfo, at, hostport = rest[2:end].rpartition("@")
    if hostport.startswith("["):
        host_end = hostport.find("]") + 1 or len(hostport)
    else:
        host_end = hostport.find(":") if ":" in hostport else len(hostport)
    hostport = hostport[:host_end].translate(_ASCII_LOWER) + hostport[host_end:]
    return f"{scheme}://{userinfo}{at}{hostport}{rest[end:]}"


def redirect_uri_matches(registered: tuple[str, ...], presented: str) -> bool:
    """Simple string comparison (OAuth 2.1 §4.1.1, RFC 3986 §6.2.1) after case normalisation of scheme and host
    (§6.2.2.1), except that a loopback redirect may use any port (RFC 8252 §7.3)."""
    presented = normalize_redirect_uri(presented)
    wanted = [normalize_redirect_uri(uri) for uri in registered]  # records kept before registration normalised
    if presented in wanted:
        return True
    try:
        got = urlsplit(presented)
        _ = got.port
    except ValueError:
        return False
    if got.scheme != "http" or not got.hostname or not is_loopback_host(got.hostname):
        return False
    for uri in wanted:
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
