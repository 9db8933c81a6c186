"""The authorization request (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, RFC 8707, RFC 9207)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mcpgw_auth.oauth import pkce
from mcpgw_auth.oauth.errors import OAuthError, UserFacingError
from mcpgw_auth.oauth.redirects import redirect_uri_matches, with_params
from mcpgw_auth.oauth.urls import normalize_url
from mcpgw_auth.records import AuthRequest, Client

_SINGLE = (
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "scope",
)
_MAX_PARAM = 2000


class AuthorizationError(OAuthError):
    """An error sent back to the client's (already validated) redirect URI."""

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None) -> None:
        super().__init__(error.error, error.description, error.status)
        self.redirect_uri = redirect_uri
        self.state = state


def error_redirect(redirect_uri: str, error: OAuthError, state: str | None, issuer: str) -> str:
    # RFC 6749 §4.1.2.1 error response; RFC 9207 §2: `iss` in every authorization response, errors included.
    params = {"error": error.error, "error_description": error.description, "state": state, "iss": issuer}
    return with_params(redirect_uri, params)


def code_redirect(redirect_uri: str, code: str, state: str | None, issuer: str) -> str:
    return with_params(redirect_uri, {"code": code, "state": state, "iss": issuer})  # RFC 6749 §4.1.2, RFC 9207


def resolve_client_redirect(params: Mapping[str, Sequence[str]], client: Client | None) -> tuple[Client, str]:
    """RFC 6749 §4.1.2.1: a bad client or redirect URI is shown to the user, never redirected to."""
    client_ids = params.get("client_id", [])
    if len(client_ids) != 1 or not client_ids[0]:
        raise UserFacingError("Invalid request", "The request must name exactly one client_id.")
    if client is None:
        raise UserFacingError("Unknown client", "This application is not registered with the gateway.")
    uris = params.get("redirect_uri", [])
    if len(uris) != 1:
        raise UserFacingError("Invalid redirect URI", "The request must carry exactly one redirect_uri.")
    if not redirect_uri_matches(client.metadata.redirect_uris, uris[0]):
        raise UserFacingError("Invalid redirect URI", "The redirect URI is not registered for this application.")
    return client, uris[0]


def parse_authorization_request(
    params: Mapping[str, Sequence[str]],
    client: Client,
    redirect_uri: str,
    *,
    resources: frozenset[str],
    require_resource: bool,
    scopes_supported: frozenset[str],
    default_scopes: tuple[str, ...],
    request_id: str,
    csrf: str,
    now: int,
) -> AuthRequest:
    """Validate the rest of the request once client and redirect URI are known good; errors go to the client."""
    states = params.get("state", [])
    state = states[0] if len(states) == 1 else None

    def fail(error: str, description: str) -> AuthorizationError:
        return AuthorizationError(OAuthError(error, description), redirect_uri, state)  # type: ignore[arg-type]

    for name in _SINGLE:
        if len(params.get(name, [])) > 1:
            raise fail("invalid_request", f"{name} must not be repeated")  # RFC 6749 §3.1
    for name, values in params.items():
        if any(len(v) > _MAX_PARAM for v in values):
            raise fail("invalid_request", f"{name[:40]} is too long")
    response_type = params.get("response_type", [""])[0]
    if response_type != "code":
        raise fail("unsupported_response_type", "only response_type=code is supported (OAuth 2.1 §4.1)")
    if "code" not in client.metadata.response_types or "authorization_code" not in client.metadata.grant_types:
        raise fail("unauthorized_client", "the client is not registered for the authorization code grant")
    try:
        challenge = pkce.check_challenge(
            params.get("code_challenge", [None])[0], params.get("code_challenge_method", [None])[0]
        )
    except OAuthError as exc:
        raise AuthorizationError(exc, redirect_uri, state) from exc

    scope_param = params.get("scope", [""])[0]
    requested = tuple(dict.fromkeys(scope_param.split())) if scope_param.strip() else default_scopes
    if not set(requested) <= scopes_supported:
        raise fail("invalid_scope", f"supported scopes: {' '.join(sorted(scopes_supported))}")
    if client.metadata.scope is not None and not set(requested) <= set(client.metadata.scope.split()):
        raise fail("invalid_scope", "the client did not register for that scope")

    # RFC 8707 §2: one resource we front; absent means every resource (legacy clients) unless required.
    resource_values = params.get("resource", [])
    if len(resource_values) > 1:
        raise fail("invalid_target", "exactly one resource may be requested")
    resource: str | None = None
    if resource_values:
        try:
            resource = normalize_url(resource_values[0])
        except ValueError:
            raise fail("invalid_target", "the resource must be an absolute URL without a fragment") from None
        if resource not in resources:
            raise fail("invalid_target", "the resource is not served by this gateway")
    elif require_resource:
        raise fail("invalid_target", "the resource parameter (RFC 8707) is required")

    return AuthRequest(
        request_id=request_id,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        state=state,
        code_challenge=challenge,
        scopes=requested,
        resource=resource,
        csrf=csrf,
        created_at=now,
    )
