"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-00, "the draft"): the pure half.

Which client IDs are URLs, which URLs may be fetched, which resolved addresses may be connected to, how long a
document is fresh, and whether a fetched document describes the client it was fetched for. The fetch itself is
service/cimd.py.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from mcpgw_auth.oauth.errors import InvalidClient, OAuthError
from mcpgw_auth.oauth.redirects import redirect_uri_problem
from mcpgw_auth.oauth.registration import validate_metadata
from mcpgw_auth.oauth.text import for_description
from mcpgw_auth.oauth.urls import is_loopback_host
from mcpgw_auth.records import ClientMetadata

MAX_CLIENT_ID_URL = 1000
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)
_SHARED_SECRET_METHODS = ("client_secret_basic", "client_secret_post", "client_secret_jwt")
# NAT64 well-known prefix (RFC 6052 §2.1): the last 32 bits are an IPv4 address a NAT64 gateway would reach.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_url_client_id(client_id: str) -> bool:
    """A client ID meant as a URL. Registered client IDs are URL-safe Base64 and never hold a colon, so anything with
    one goes the metadata-document way, where a scheme other than https is refused with its reason."""
    return ":" in client_id


def client_id_url_problem(url: str) -> str | None:
    """Why `url` cannot be a client identifier (the draft §3), or None when it can be fetched."""
    if len(url) > MAX_CLIENT_ID_URL:
        return f"must be at most {MAX_CLIENT_ID_URL} characters long"
    if not url.startswith("https://"):
        return "must be an https URL (draft-ietf-oauth-client-id-metadata-document §3)"
    # The redirect URI rules already refuse non-ASCII, whitespace, fragments, credentials and malformed hosts/ports.
    if problem := redirect_uri_problem(url, frozenset()):
        return problem
    path = url[len("https://") :].partition("/")[2].partition("?")[0]
    if not path:
        return "must have a path, such as https://example.com/client.json (draft §3)"
    if any(segment in (".", "..") for segment in path.split("/")):
        return "must not contain . or .. path segments (draft §3)"
    return None


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What kind of address `address` is when it must not be connected to (the draft §6.5, SSRF), or None for a
    public unicast one.

    An IPv6 address carrying an IPv4 one (IPv4-mapped, 6to4, Teredo, NAT64) is judged by the IPv4 address inside.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner: ipaddress.IPv4Address | None = address.ipv4_mapped or address.sixtofour
        if inner is None and address.teredo:
            inner = address.teredo[1]
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            problem = address_problem(inner)
            return f"{problem} (carried in an IPv6 address)" if problem else None
    checks = (
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "the unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "an address that is not publicly routable"),
    )
    for refused, kind in checks:
        if refused:
            return kind  # not the address: the error page must not tell what internal names resolve to
    return None


def cache_lifetime(cache_control: str | None, minimum: int, maximum: int) -> int:
    """Seconds a fetched document stays fresh: its Cache-Control max-age (RFC 9111 §5.2.2.1) within the operator's
    bounds; no-store, no-cache or no max-age at all keep it for the minimum (the draft §4.4 lets the server cache)."""
    if not cache_control or _NO_CACHE.search(cache_control):
        return minimum
    found = _MAX_AGE.search(cache_control)
    if found is None:
        return minimum
    return max(minimum, min(maximum, int(found.group(1))))


def _refuse(description: str) -> InvalidClient:
    return InvalidClient(f"the client's metadata document {description}")


def validate_document(
    document: object, client_id: str, scopes_supported: frozenset[str], extra_schemes: frozenset[str]
) -> ClientMetadata:
    """The client metadata a fetched document declares, checked as a registration would be (RFC 7591 §2), plus the
    draft's own rules: it names the URL it was fetched from, exactly (§4.1), and holds no shared secret."""
    if not isinstance(document, dict):
        raise _refuse("must be a JSON object")
    body: dict[str, Any] = dict(document)
    named = body.get("client_id")
    if named != client_id:  # the draft §4.1: simple string comparison, RFC 3986 §6.2.1
        raise _refuse(f"names client_id '{for_description(named)}', not the URL it was fetched from")
    if "client_secret" in body or "client_secret_expires_at" in body:
        raise _refuse("must not carry a client_secret (draft §4.1)")
    # A document has no shared secret, so `none` is the only method the RFC 7591 default could stand for.
    method = body.setdefault("token_endpoint_auth_method", "none")
    if method in _SHARED_SECRET_METHODS:
        raise _refuse(f"must not use {method}: there is no shared secret with a metadata document (draft §4.1)")
    if method != "none":
        raise _refuse(
            f"asks for token_endpoint_auth_method '{for_description(method)}', which this gateway cannot verify; "
            "use none (a public client with PKCE)"
        )
    try:
        metadata = validate_metadata(body, scopes_supported, extra_schemes)
    except OAuthError as exc:  # registration's own words, for a client that is refused rather than not registered
        raise _refuse(f"is invalid: {exc.description}") from exc
    if problem := application_type_problem(body.get("application_type"), metadata.redirect_uris):
        raise _refuse(f"is invalid: {problem}")
    return metadata


def application_type_problem(application_type: object, redirect_uris: tuple[str, ...]) -> str | None:
    """OpenID Connect Dynamic Client Registration 1.0 §2 `application_type`, when a client declares it: a native
    client redirects to a loopback http address or a private-use scheme, a web client to https only. A client that
    declares none is held only to the redirect URI rules (the MCP client-registration page: non-OIDC servers ignore
    it), since MCP clients commonly list loopback URIs without saying `native`."""
    if application_type is None:
        return None
    if application_type not in ("native", "web"):
        return 'application_type must be "native" or "web"'
    for uri in redirect_uris:
        scheme, host = uri.partition(":")[0], urlsplit(uri).hostname or ""
        if application_type == "web" and scheme != "https":
            return f"a web application redirects only to https URLs, not '{for_description(uri)}'"
        if application_type == "web" and is_loopback_host(host):
            return f"a web application does not redirect to a loopback host ('{for_description(uri)}'): use native"
        if application_type == "native" and scheme == "https":
            return f"a native application redirects to loopback http or its own scheme, not '{for_description(uri)}'"
    return None
