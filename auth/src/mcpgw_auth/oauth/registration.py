"""Dynamic client registration (RFC 7591) and management (RFC 7592): metadata validation."""

from __future__ import annotations

from typing import Any, cast

from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.oauth.redirects import normalize_redirect_uri, redirect_uri_problem
from mcpgw_auth.oauth.text import for_description, text_problem
from mcpgw_auth.records import AuthMethod, ClientMetadata

AUTH_METHODS: tuple[AuthMethod, ...] = ("none", "client_secret_basic", "client_secret_post")
GRANT_TYPES = ("authorization_code", "refresh_token")
_MAX_REDIRECT_URIS = 20
_MAX_STRING = 1000
_STRING_FIELDS = (
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
)
_URL_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")


def _bad(description: str) -> OAuthError:
    return OAuthError("invalid_client_metadata", description)  # RFC 7591 §3.2.2


def _text(name: str, value: object, max_length: int) -> str:
    """A string kept and shown to people: short, valid Unicode, no controls (RFC 7591 §3.2.2 otherwise)."""
    if not isinstance(value, str) or len(value) > max_length:
        raise _bad(f"{name} must be a string of at most {max_length} characters")
    if problem := text_problem(value):
        raise _bad(f"{name} {problem}")
    return value


def _string_list(body: dict[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise _bad(f"{name} must be a non-empty array of strings")
    return tuple(dict.fromkeys(cast(list[str], value)))


def validate_metadata(body: object, scopes_supported: frozenset[str], extra_schemes: frozenset[str]) -> ClientMetadata:
    """RFC 7591 §2: check every field we understand; ignore unknown ones (§3.2.1 says the server may)."""
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object")
    uris = body.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must be a non-empty array")  # RFC 7591 §2
    if len(uris) > _MAX_REDIRECT_URIS:
        raise OAuthError("invalid_redirect_uri", f"at most {_MAX_REDIRECT_URIS} redirect_uris")
    for uri in uris:
        problem = redirect_uri_problem(uri, extra_schemes)
        if problem:
            raise OAuthError("invalid_redirect_uri", f"redirect URI '{for_description(uri)}' {problem}")

    method = body.get("token_endpoint_auth_method", "client_secret_basic")  # RFC 7591 §2 default
    if method not in AUTH_METHODS:
        raise _bad(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    grant_types = _string_list(body, "grant_types", ("authorization_code",))  # RFC 7591 §2 default
    if unknown := set(grant_types) - set(GRANT_TYPES):
        raise _bad(f"unsupported grant_types: {for_description(', '.join(sorted(unknown)))}")
    if "authorization_code" not in grant_types:
        raise _bad("grant_types must include authorization_code")
    response_types = _string_list(body, "response_types", ("code",))
    if set(response_types) != {"code"}:
        raise _bad('response_types must be ["code"]')  # RFC 7591 §2.1: consistent with grant_types

    fields: dict[str, Any] = {}
    for name in _STRING_FIELDS:
        value = body.get(name)
        if value is not None:
            fields[name] = _text(name, value, _MAX_STRING)
    for name in _URL_FIELDS:
        if name in fields and not fields[name].lower().startswith(("https://", "http://")):
            raise _bad(f"{name} must be an http(s) URL")
    if "scope" in fields:
        requested = set(fields["scope"].split(" "))  # RFC 6749 §3.3: tokens separated by SP
        if not requested - {""} <= scopes_supported:
            raise _bad(f"scope may only name {' '.join(sorted(scopes_supported))}")
    contacts = body.get("contacts")
    if contacts is not None:
        if not isinstance(contacts, list):
            raise _bad("contacts must be an array of strings")
        fields["contacts"] = tuple(_text("contacts", contact, 320) for contact in contacts)

    # RFC 3986 §6.2.2.1 case normalisation; RFC 7591 §3.2.1 lets the server substitute a value it registers.
    normal_uris = (normalize_redirect_uri(uri) for uri in uris)
    return ClientMetadata(
        redirect_uris=tuple(dict.fromkeys(normal_uris)),
        token_endpoint_auth_method=cast(AuthMethod, method),
        grant_types=grant_types,
        response_types=response_types,
        **fields,
    )


def metadata_json(metadata: ClientMetadata) -> dict[str, Any]:
    """The client metadata as returned in RFC 7591 §3.2.1 / RFC 7592 §3 responses."""
    out = metadata.model_dump(exclude_none=True)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
