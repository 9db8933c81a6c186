"""Discovery documents: RFC 8414 authorization server metadata and RFC 9728 protected resource metadata."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

PRM_WELL_KNOWN = "/.well-known/oauth-protected-resource"
AS_WELL_KNOWN = "/.well-known/oauth-authorization-server"


def authorization_server_metadata(
    issuer: str, scopes_supported: list[str], *, registration: bool = True
) -> dict[str, Any]:
    """`registration`: whether RFC 7591 registration is served (RFC 8414 §2: without it, no `registration_endpoint`)."""
    methods = ["none", "client_secret_basic", "client_secret_post"]
    registration_endpoint = {"registration_endpoint": f"{issuer}/register"} if registration else {}
    return {
        "issuer": issuer,  # RFC 8414 §3.3: identical to the URL the document is derived from
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        **registration_endpoint,
        "jwks_uri": f"{issuer}/jwks",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "scopes_supported": scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": methods,
        "code_challenge_methods_supported": ["S256"],  # OAuth 2.1 §4.1.1: S256 only
        "authorization_response_iss_parameter_supported": True,  # RFC 9207 §3
        "client_id_metadata_document_supported": True,  # draft-ietf-oauth-client-id-metadata-document-00 §5
    }


def prm_url(resource: str) -> str:
    """RFC 9728 §3.1: insert the well-known segment between the host and the resource's path."""
    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{PRM_WELL_KNOWN}{parts.path}"


def resource_for_prm(origin: str, suffix: str, resources: list[str]) -> str | None:
    """Which fronted resource a PRM request at `origin` + well-known + `suffix` describes.

    The path-inserted form names the resource exactly; the root form (empty suffix) answers for a host that
    fronts exactly one resource.
    """
    if suffix and suffix != "/":
        wanted = origin + suffix.rstrip("/")
        return wanted if wanted in resources else None
    on_host = [r for r in resources if r == origin or r.startswith(origin + "/")]
    return on_host[0] if len(on_host) == 1 else None


def protected_resource_metadata(resource: str, issuer: str, scopes_supported: list[str]) -> dict[str, Any]:
    return {
        "resource": resource,  # RFC 9728 §3.3: identical to the resource the client connects to
        "authorization_servers": [issuer],
        "scopes_supported": scopes_supported,
        "bearer_methods_supported": ["header"],  # tokens only in the Authorization header (RFC 6750 §2.1)
        "resource_signing_alg_values_supported": ["RS256"],
    }
