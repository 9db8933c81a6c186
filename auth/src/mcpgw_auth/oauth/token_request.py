"""Token endpoint requests (RFC 6749 §4.1.3, §6), parsed into a discriminated union."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.oauth.urls import normalize_url


@dataclass(frozen=True)
class AuthorizationCodeGrant:
    code: str
    redirect_uri: str
    code_verifier: str
    resource: str | None


@dataclass(frozen=True)
class RefreshTokenGrant:
    refresh_token: str
    scopes: tuple[str, ...] | None
    resource: str | None


TokenGrant = AuthorizationCodeGrant | RefreshTokenGrant


def _one(form: Mapping[str, Sequence[str]], name: str, required: bool = True) -> str | None:
    values = form.get(name, [])
    if len(values) > 1:
        raise OAuthError("invalid_request", f"{name} must not be repeated")  # RFC 6749 §3.2
    if not values or values[0] == "":
        if required:
            raise OAuthError("invalid_request", f"{name} is required")
        return None
    return values[0]


def _resource(form: Mapping[str, Sequence[str]]) -> str | None:
    value = _one(form, "resource", required=False)
    if value is None:
        return None
    try:
        return normalize_url(value)  # RFC 8707 §2
    except ValueError:
        raise OAuthError("invalid_target", "resource must be an absolute URL without a fragment") from None


def parse_token_request(form: Mapping[str, Sequence[str]]) -> TokenGrant:
    for name in ("grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "resource"):
        _one(form, name, required=False)
    grant_type = _one(form, "grant_type")
    match grant_type:
        case "authorization_code":
            return AuthorizationCodeGrant(
                code=_one(form, "code") or "",
                redirect_uri=_one(form, "redirect_uri") or "",
                code_verifier=_one(form, "code_verifier") or "",  # OAuth 2.1 §4.1.3: PKCE verifier required
                resource=_resource(form),
            )
        case "refresh_token":
            scope = _one(form, "scope", required=False)
            return RefreshTokenGrant(
                refresh_token=_one(form, "refresh_token") or "",
                scopes=tuple(dict.fromkeys(scope.split())) if scope else None,
                resource=_resource(form),
            )
        case _:
            raise OAuthError("unsupported_grant_type", "supported: authorization_code, refresh_token")
